"""Exact integer arithmetic for the SQL models.

A venue's rule multiplies token amounts by oracle answers and fixed-point factors before it
divides (Morpho's oracle scale is 10^36, perps USD values carry 30 decimals), in 256-bit
integers, and its rounding decides the boundary case (floor, ceiling, Aave's half up). DuckDB's
widest integer has 128 bits, so a product would overflow long before the EVM's does. The models
call these SQL functions instead, computed on Python integers:

- `mul_div_down(a, b, d)`: ⌊a·b / d⌋
- `mul_div_up(a, b, d)`: ⌈a·b / d⌉
- `mul_div_half_up(a, b, d)`: ⌊(a·b + ⌊d/2⌋) / d⌋ (Aave's PercentageMath and WadRayMath)

Each takes integer-valued arguments of any type (decimal text too, for values beyond 38 digits)
and returns DECIMAL(38,0); null when an argument is null, when d is 0 (the venue's division
would revert) or when the result needs more than 38 digits (the model says why in its own
columns). A negative argument is an error: the rules these serve work on unsigned integers.

An intermediate value may itself pass 38 digits (a Morpho WBTC/USDC oracle price is about
2·10^38): `exact_mul_div(a, b, d, rounding)` takes and returns decimal text for such a step, and
the functions above accept its text.

`register(con)` adds them to a connection; `warehouse.build_database` does so before it runs
the models, so the tables they compute hold plain values and readers need nothing of this.
"""

from __future__ import annotations

from typing import Literal

import duckdb
from duckdb.func import FunctionNullHandling

__all__ = ["ROUNDINGS", "Rounding", "mul_div", "register"]

Rounding = Literal["down", "up", "half_up"]
ROUNDINGS: tuple[Rounding, ...] = ("down", "up", "half_up")


def mul_div(a: int, b: int, d: int, rounding: Rounding) -> int | None:
    """a·b / d rounded as the EVM code does; None when d is 0."""
    if a < 0 or b < 0 or d < 0:
        raise ValueError(f"mul_div takes non-negative integers, got {a}, {b}, {d}")
    if d == 0:
        return None
    product = a * b
    if rounding == "down":
        return product // d
    if rounding == "up":
        return -(-product // d)
    if rounding == "half_up":
        return (product + d // 2) // d
    raise ValueError(f"unknown rounding {rounding!r}; one of {', '.join(ROUNDINGS)}")


def _mul_div_text(a: str | None, b: str | None, d: str | None, rounding: str) -> str | None:
    if a is None or b is None or d is None:
        return None
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; one of {', '.join(ROUNDINGS)}")
    result = mul_div(_integer(a), _integer(b), _integer(d), rounding)
    return None if result is None else str(result)


def _integer(text: str) -> int:
    """Decimal text of an integer ("12", "12.0" as DuckDB writes a whole DECIMAL) as an int."""
    whole, _, fraction = text.strip().partition(".")
    if fraction.strip("0"):
        raise ValueError(f"mul_div takes integers, got {text!r}")
    return int(whole)


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Add mul_div_down, mul_div_up and mul_div_half_up to the connection (for its lifetime)."""
    con.create_function("exact_mul_div", _mul_div_text, ["varchar"] * 4, "varchar",
                        null_handling=FunctionNullHandling.SPECIAL, side_effects=False)
    for rounding in ROUNDINGS:
        con.execute(
            f"create or replace temp macro mul_div_{rounding}(a, b, d) as try_cast("
            f"exact_mul_div(a::varchar, b::varchar, d::varchar, '{rounding}') "
            f"as decimal(38, 0))")
