"""Compound III's interest math (contagion.protocols.compound_v3), against numbers worked out by
hand from CometCore and Comet.sol: every division rounds down except a borrow's principal."""

from __future__ import annotations

import pytest

from contagion.protocols.compound_v3 import (
    BASE_INDEX_SCALE,
    SECONDS_PER_YEAR,
    ZERO_RATES,
    InterestRates,
    accrued_indices,
    borrow_rate,
    present_value,
    present_value_borrow,
    present_value_supply,
    principal_value,
    principal_value_borrow,
    principal_value_supply,
    supply_rate,
    utilization,
)

ONE = BASE_INDEX_SCALE
E18 = 10**18
# USDC-like: supply 3 % a year at the 90 % kink then +250 %; borrow 1.5 % + 3.5 % then +300 %
RATES = InterestRates.per_year(9 * 10**17, 3 * 10**16, 25 * 10**17, 0,
                               9 * 10**17, 35 * 10**15, 3 * E18, 15 * 10**15)


def test_present_and_principal_values_round_as_comet() -> None:
    index = 105 * ONE // 100  # 1.05
    assert present_value_supply(index, 100) == 105
    assert present_value_supply(index, 99) == 103  # 103.95, down
    assert present_value_borrow(index, 99) == 103
    assert principal_value_supply(index, 105) == 100
    assert principal_value_supply(index, 104) == 99  # 99.05, down: never credit too much
    assert principal_value_borrow(index, 104) == 100  # 99.05, up: never owe too little
    assert principal_value_borrow(index, 105) == 100  # exact stays exact
    # signed: supply at the supply index, debt at the borrow index
    supply_index, borrow_index = index, 11 * ONE // 10
    assert present_value(supply_index, borrow_index, 100) == 105
    assert present_value(supply_index, borrow_index, -100) == -110
    assert present_value(supply_index, borrow_index, 0) == 0
    assert principal_value(supply_index, borrow_index, 104) == 99
    assert principal_value(supply_index, borrow_index, -111) == -101  # 100.9 up
    assert principal_value(supply_index, borrow_index, -110) == -100
    # at index 1 a principal is its present value
    for amount in (-(10**12) - 7, -1, 0, 1, 10**12 + 7):
        assert present_value(ONE, ONE, amount) == principal_value(ONE, ONE, amount) == amount


def test_utilization_is_borrows_over_supplies_at_the_indexes() -> None:
    # 1000 x 1.1 = 1100 supplied, 500 x 1.2 = 600 borrowed: 6/11
    assert utilization(11 * ONE // 10, 12 * ONE // 10, 1000, 500) == 545_454_545_454_545_454
    assert utilization(ONE, ONE, 0, 0) == 0
    assert utilization(ONE, ONE, 0, 5) == 0  # no supply: 0, as Comet


def test_per_year_rates_are_divided_down_as_comets_constructor_does() -> None:
    assert RATES == (9 * 10**17, 951_293_759, 79_274_479_959, 0,
                     9 * 10**17, 1_109_842_719, 95_129_375_951, 475_646_879)
    assert InterestRates.per_year(1, SECONDS_PER_YEAR - 1, 0, 0, 2, 0, 0, 0) == \
        (1, 0, 0, 0, 2, 0, 0, 0)


def test_kinked_curves() -> None:
    # supply: 951,293,759 x u below the kink, each product floored
    assert supply_rate(RATES, 0) == 0
    assert supply_rate(RATES, 5 * 10**17) == 475_646_879  # 475,646,879.5
    assert supply_rate(RATES, 9 * 10**17) == 856_164_383  # at the kink: the low slope only
    # 95 %: 856,164,383 + 79,274,479,959 x 0.05 (3,963,723,997.95)
    assert supply_rate(RATES, 95 * 10**16) == 4_819_888_380
    # borrow: base, then base + low x kink + high x (u - kink)
    assert borrow_rate(RATES, 0) == 475_646_879
    assert borrow_rate(RATES, 8 * 10**17) == 475_646_879 + 887_874_175
    assert borrow_rate(RATES, E18) == 475_646_879 + 998_858_447 + 9_512_937_595
    assert borrow_rate(ZERO_RATES, E18) == supply_rate(ZERO_RATES, E18) == 0


def test_accrued_indices_grow_linearly_between_accruals() -> None:
    flat = InterestRates(0, 0, 0, 10**9, 0, 0, 0, 2 * 10**9)  # 1e-9 and 2e-9 a second
    assert accrued_indices(ONE, ONE, 0, 0, flat, 1000) == (ONE + 10**9, ONE + 2 * 10**9)
    # two accruals compound: the second grows the already grown index
    once = accrued_indices(ONE, ONE, 0, 0, flat, 2000)
    s, b = accrued_indices(ONE, ONE, 0, 0, flat, 1000)
    assert once == (ONE + 2 * 10**9, ONE + 4 * 10**9)
    assert accrued_indices(s, b, 0, 0, flat, 1000) == (ONE + 2 * 10**9 + 1000,
                                                       ONE + 4 * 10**9 + 4000)
    # a day at 80 % utilization (800 of 1000): supply 761,035,007 a second, borrow
    # 1,363,521,054; index x rate x 86,400 / 1e18, floored
    assert accrued_indices(ONE, ONE, 1000, 800, RATES, 86_400) == (
        1_000_065_753_424_604, 1_000_117_808_219_065)
    assert accrued_indices(ONE + 5, ONE + 7, 1000, 800, RATES, 0) == (ONE + 5, ONE + 7)
    assert accrued_indices(ONE, ONE, 1000, 800, ZERO_RATES, 10**8) == (ONE, ONE)


def test_an_index_read_before_its_accrual_is_an_error() -> None:
    with pytest.raises(ValueError, match="before its last accrual"):
        accrued_indices(ONE, ONE, 0, 0, RATES, -1)


def test_the_sql_functions_equal_the_python_math() -> None:
    """register: comet_index_at computes what accrued_indices does, and comet_present_value
    what present_value does, from the state values as the lake stores them (decimal(38,0),
    the accrual time and the seconds of any integer type); a debt comes out negative; null
    in, null out; an index asked for before its accrual is an error, as in Python."""
    import duckdb

    from contagion import exact
    from contagion.protocols.compound_v3 import register

    con = duckdb.connect()
    exact.register(con)
    register(con)
    state = (ONE + 123_456, ONE + 987_654, 10**15 + 11, 8 * 10**14 + 5, *RATES)
    args = ", ".join(f"{v}::decimal(38, 0)" for v in state)

    def balance(principal: str, state_sql: str, seconds: str) -> str:
        return (f"comet_present_value({principal}, comet_index_at('supply', {state_sql}, "
                f"{seconds}), comet_index_at('borrow', {state_sql}, {seconds}))")

    for principal, seconds in ((10**12 + 7, 86_400), (-(10**12) - 7, 86_400), (-1, 1),
                               (0, 10**6), (10**12, 0), (-(10**12), 30 * 86_400)):
        indices = accrued_indices(*state[:4], RATES, seconds)
        (value, supply_index, borrow_index), = con.execute(
            f"select {balance(f'{principal}::decimal(38, 0)', args, f'{seconds}::ubigint')}, "
            f"comet_index_at('supply', {args}, {seconds}), "
            f"comet_index_at('borrow', {args}, {seconds}::double)").fetchall()
        assert value == present_value(*indices, principal), (principal, seconds)
        assert (supply_index, borrow_index) == indices
    # by hand: 1e-9 and 2e-9 a second for 1000 s (supply, borrow); a debt's value is negative
    flat = ", ".join(map(str, (ONE, ONE, 0, 0, 0, 0, 0, 10**9, 0, 0, 0, 2 * 10**9)))
    assert con.execute(f"select {balance('-1000000', flat, '1000')}, "
                       f"{balance('1000000', flat, '1000')}, "
                       f"comet_index_at('borrow', {flat}, 1000)").fetchall() == [
        (-1_000_002, 1_000_001, ONE + 2 * 10**9)]
    # at 1.05 and 1.1: 99 supplied is worth 103 (103.95 down), 100 owed 110
    assert con.execute(f"select comet_present_value(99, {105 * ONE // 100}, {11 * ONE // 10}), "
                       f"comet_present_value(-100, {105 * ONE // 100}, {11 * ONE // 10})"
                       ).fetchall() == [(103, -110)]
    # a null anywhere: null, the other rows computed
    rows = con.execute(f"""select {balance('p', args, 's')}
        from (values (5::decimal(38, 0), 10), (null, 10), (5, null)) as t(p, s)""").fetchall()
    assert rows[0][0] == present_value(*accrued_indices(*state[:4], RATES, 10), 5)
    assert rows[1:] == [(None,), (None,)]
    nulls = ", ".join("null" if i == 6 else f"{v}" for i, v in enumerate(state))
    assert con.execute(f"select comet_index_at('supply', {nulls}, 10)").fetchall() == [(None,)]
    assert con.execute(f"select typeof(comet_index_at('supply', {args}, 10)), "
                       f"typeof({balance('5::decimal(38, 0)', args, '10')})").fetchall() == [
        ("DECIMAL(38,0)", "DECIMAL(38,0)")]
    with pytest.raises(duckdb.Error, match="before its last accrual"):
        con.execute(f"select comet_index_at('borrow', {args}, -1)").fetchall()
    with pytest.raises(duckdb.Error, match="'supply' or 'borrow'"):
        con.execute(f"select comet_index_at('debt', {args}, 1)").fetchall()
