"""Aave v3's index math (contagion.protocols.aave_v3), as the warehouse's SQL functions use it."""

from __future__ import annotations

from fractions import Fraction

import duckdb
import pytest

from contagion.protocols.aave_v3 import (
    RAY,
    SECONDS_PER_YEAR,
    normalized_income,
    normalized_variable_debt,
    ray_div,
    ray_mul,
    register,
)


def test_ray_math_rounds_half_up() -> None:
    assert ray_mul(3, RAY // 2) == 2  # 1.5 -> 2
    assert ray_mul(1, RAY // 2 - 1) == 0
    assert ray_div(1, 2 * RAY) == 1  # 0.5 -> 1
    assert ray_div(1, 3 * RAY) == 0


def test_linear_income_is_simple_interest() -> None:
    rate = 5 * RAY // 100  # 5 % a year
    index = RAY + RAY // 10
    assert normalized_income(index, rate, 0) == index
    year = normalized_income(index, rate, SECONDS_PER_YEAR)
    assert year == ray_mul(RAY + rate, index) == index * 105 // 100
    # one second: RAY + ⌊rate / year⌋, then times the index, half up
    assert normalized_income(RAY, rate, 1) == RAY + rate // SECONDS_PER_YEAR


def test_compounded_debt_is_the_binomial_expansion_of_compounding_every_second() -> None:
    # MathUtils.calculateCompoundedInterest: (1 + r/year)^n cut after the cubic term, each term
    # floored in ray units, the squared and cubed per-second rates too (a cubed rate of 8 % a
    # year is about 16 rays: the floor shifts the cubic term by up to n^3/6 rays)
    rate = 8 * RAY // 100
    for seconds in (1, 2, 3, 3600, 86_400, 30 * 86_400, SECONDS_PER_YEAR):
        grown = normalized_variable_debt(RAY, rate, seconds)
        a, n = Fraction(rate, RAY * SECONDS_PER_YEAR), seconds
        binomial = 1 + n * a + n * (n - 1) * a**2 / 2 + n * (n - 1) * (n - 2) * a**3 / 6
        assert abs(Fraction(grown, RAY) - binomial) <= Fraction(n**3 // 6 + n * n + 2, RAY), n
        assert grown > RAY
    # pinned (computed once by the code above): a change of rounding shows here first
    assert normalized_variable_debt(RAY, rate, 3600) == 1_000_009_132_461_780_413_383_438_042
    # the first two seconds: no cubic term (expMinusTwo is 0), one second no quadratic either
    assert normalized_variable_debt(RAY, rate, 1) == RAY + rate // SECONDS_PER_YEAR
    assert normalized_variable_debt(5 * RAY, 0, 10**6) == 5 * RAY


def test_an_index_read_before_its_update_is_an_error() -> None:
    with pytest.raises(ValueError, match="before its last update"):
        normalized_income(RAY, 1, -1)


def test_sql_functions_equal_the_python() -> None:
    con = duckdb.connect()
    register(con)
    index, rate, seconds = 1_034_567_891_234_567_890_123_456_789, 71 * RAY // 1000, 12_345
    row = con.execute(
        "select aave_normalized_income(?, ?, ?), aave_normalized_variable_debt(?::decimal(38, 0),"
        " ?, ?)", [str(index), str(rate), seconds, str(index), str(rate), seconds]).fetchone()
    assert row is not None
    income, debt = row
    assert int(income) == normalized_income(index, rate, seconds)
    assert int(debt) == normalized_variable_debt(index, rate, seconds)
    assert con.execute("select aave_normalized_income(null, 1, 1)").fetchone() == (None,)


def test_the_index_at_a_moment_picks_the_side_and_needs_no_time_at_a_zero_rate() -> None:
    con = duckdb.connect()
    register(con)
    li, vi, rate = 1_01 * RAY // 100, 1_02 * RAY // 100, 3 * RAY // 100

    def at(side: str, lr: int, vr: int, seconds: int | None) -> int | None:
        row = con.execute("select aave_index_at(?, ?::decimal(38, 0), ?::decimal(38, 0), "
                          "?::decimal(38, 0), ?::decimal(38, 0), ?)",
                          [side, str(li), str(lr), str(vi), str(vr), seconds]).fetchone()
        assert row is not None
        return None if row[0] is None else int(row[0])

    assert at("collateral", rate, rate, 600) == normalized_income(li, rate, 600)
    assert at("debt", rate, rate, 600) == normalized_variable_debt(vi, rate, 600)
    assert at("collateral", 0, rate, None) == li and at("debt", rate, 0, None) == vi
    assert at("debt", rate, rate, None) is None  # interest accrues and the time is unknown
