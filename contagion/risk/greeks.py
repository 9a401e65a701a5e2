"""Black–Scholes prices and greeks, vectorized over numpy arrays (Black & Scholes 1973; no
dividends). Spot and strike in the same currency, `years` to expiry, `vol` and `rate` annual
(continuous compounding). Vega is per unit of volatility (per 1.00, not per 1 %)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.func import ARROW, FunctionNullHandling
from scipy.special import ndtr

__all__ = ["Greeks", "black_scholes", "register"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Greeks:
    price: Array
    delta: Array
    gamma: Array
    vega: Array


def black_scholes(spot: npt.ArrayLike, strike: npt.ArrayLike, years: npt.ArrayLike,
                  vol: npt.ArrayLike, *, is_put: npt.ArrayLike = False,
                  rate: npt.ArrayLike = 0.0) -> Greeks:
    """Price, delta, gamma and vega of European options, element by element (broadcast).
    An expired option (years ≤ 0) or one without volatility is worth its intrinsic value
    against the discounted strike, with delta 0 or ±1 and no gamma or vega."""
    s, k, t, v, r = (np.asarray(x, dtype=np.float64) for x in (spot, strike, years, vol, rate))
    put = np.asarray(is_put, dtype=bool)
    s, k, t, v, r, put = np.broadcast_arrays(s, k, t, v, r, put)
    if (s <= 0).any() or (k <= 0).any() or (v < 0).any():
        raise ValueError("spot and strike must be positive and volatility non-negative")
    # an option with no time or no volatility left is worth its discounted intrinsic value
    live = (t > 0) & (v * np.sqrt(np.maximum(t, 0.0)) > 1e-12)
    tt, vv = np.where(live, t, 1.0), np.where(live, v, 1.0)
    root = vv * np.sqrt(tt)
    d1 = (np.log(s / k) + (r + 0.5 * vv**2) * tt) / root
    d2 = d1 - root
    discount = np.exp(-r * np.maximum(t, 0.0))
    call = s * ndtr(d1) - k * discount * ndtr(d2)
    put_price = k * discount * ndtr(-d2) - s * ndtr(-d1)
    density = np.exp(-0.5 * d1**2) / np.sqrt(2 * np.pi)
    strike_now = k * discount
    intrinsic = np.where(put, np.maximum(strike_now - s, 0.0), np.maximum(s - strike_now, 0.0))
    dead_delta = np.where(put, -(s < strike_now).astype(float),
                          (s > strike_now).astype(float))
    return Greeks(
        price=np.where(live, np.where(put, put_price, call), intrinsic),
        delta=np.where(live, np.where(put, ndtr(d1) - 1.0, ndtr(d1)), dead_delta),
        gamma=np.where(live, density / (s * root), 0.0),
        vega=np.where(live, s * density * np.sqrt(tt), 0.0),
    )


def _price_column(spot: pa.Array, strike: pa.Array, years: pa.Array, vol: pa.Array,
                  is_put: pa.Array) -> pa.Array:
    """`black_scholes(...).price` over Arrow columns; null where an input is null or out of
    the model's domain (spot or strike not positive, negative volatility)."""
    inputs = [pc.cast(a, pa.float64()) for a in (spot, strike, years, vol)]
    s, k, t, v = (a.to_numpy(zero_copy_only=False) for a in inputs)
    put = pc.fill_null(is_put, False).to_numpy(zero_copy_only=False)
    valid = np.ones(len(s), dtype=bool)
    for a in (*inputs, is_put):
        valid &= ~pc.is_null(a).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        valid &= (s > 0) & (k > 0) & (v >= 0) & np.isfinite(t)
    price = np.full(len(s), np.nan)
    if valid.any():
        price[valid] = black_scholes(s[valid], k[valid], t[valid], v[valid],
                                     is_put=put[valid]).price
    return pa.array(price, mask=~valid)


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Add `black_scholes_price(spot, strike, years, vol, is_put)` (this module's price, zero
    rate) to the connection, for the models that mark options (int_otoken_prices)."""
    con.create_function("black_scholes_price", _price_column,
                        ["double", "double", "double", "double", "boolean"], "double",
                        type=ARROW, null_handling=FunctionNullHandling.SPECIAL,
                        side_effects=False)
