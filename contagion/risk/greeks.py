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

__all__ = ["Greeks", "black_scholes", "register", "smile_vol"]

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


def smile_vol(spot: npt.ArrayLike, strike: npt.ArrayLike, years: npt.ArrayLike,
              atm_vol: npt.ArrayLike, risk_reversal: npt.ArrayLike) -> Array:
    """The implied vol at a strike from the at-the-money vol and the 25-delta risk reversal
    (σ of the 25-delta call − σ of the 25-delta put), by Malz's (1997) smile, quadratic in the
    call delta, here without a butterfly: σ = ATM − 2·RR·(Δc − ½), Δc the call delta at the
    ATM vol. The 25-delta call (Δc = ¼) gets ATM + RR/2, the 25-delta put (Δc = ¾) ATM − RR/2,
    the wings stay within ATM ± RR, and a put and a call on one strike get one vol, so their
    prices keep put–call parity. Zero rate, as `black_scholes` is used here."""
    s, k, t, atm, rr = (np.asarray(x, dtype=np.float64)
                        for x in (spot, strike, years, atm_vol, risk_reversal))
    call_delta = black_scholes(s, k, t, atm).delta
    return atm - 2.0 * rr * (call_delta - 0.5)


def _arrow_inputs(*columns: pa.Array) -> tuple[list[Array], npt.NDArray[np.bool_]]:
    """Arrow columns as float arrays and where none of them is null."""
    inputs = [pc.cast(a, pa.float64()) for a in columns]
    valid = np.ones(len(columns[0]), dtype=bool)
    for a in inputs:
        valid &= ~pc.is_null(a).to_numpy(zero_copy_only=False)
    return [a.to_numpy(zero_copy_only=False) for a in inputs], valid


def _price_column(spot: pa.Array, strike: pa.Array, years: pa.Array, vol: pa.Array,
                  is_put: pa.Array) -> pa.Array:
    """`black_scholes(...).price` over Arrow columns; null where an input is null or out of
    the model's domain (spot or strike not positive, negative volatility)."""
    (s, k, t, v), valid = _arrow_inputs(spot, strike, years, vol)
    put = pc.fill_null(is_put, False).to_numpy(zero_copy_only=False)
    valid &= ~pc.is_null(is_put).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        valid &= (s > 0) & (k > 0) & (v >= 0) & np.isfinite(t)
    price = np.full(len(s), np.nan)
    if valid.any():
        price[valid] = black_scholes(s[valid], k[valid], t[valid], v[valid],
                                     is_put=put[valid]).price
    return pa.array(price, mask=~valid)


def _smile_column(spot: pa.Array, strike: pa.Array, years: pa.Array, atm_vol: pa.Array,
                  risk_reversal: pa.Array) -> pa.Array:
    """`smile_vol` over Arrow columns; null where an input is null or out of its domain."""
    (s, k, t, atm, rr), valid = _arrow_inputs(spot, strike, years, atm_vol, risk_reversal)
    with np.errstate(invalid="ignore"):
        valid &= (s > 0) & (k > 0) & (atm >= 0) & np.isfinite(t) & np.isfinite(rr)
    vol = np.full(len(s), np.nan)
    if valid.any():
        vol[valid] = smile_vol(s[valid], k[valid], t[valid], atm[valid], rr[valid])
    return pa.array(vol, mask=~valid)


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Add `black_scholes_price(spot, strike, years, vol, is_put)` (this module's price, zero
    rate) and `smile_vol(spot, strike, years, atm_vol, risk_reversal)` to the connection, for
    the models that mark options (int_otoken_prices)."""
    con.create_function("black_scholes_price", _price_column,
                        ["double", "double", "double", "double", "boolean"], "double",
                        type=ARROW, null_handling=FunctionNullHandling.SPECIAL,
                        side_effects=False)
    con.create_function("smile_vol", _smile_column, ["double"] * 5, "double",
                        type=ARROW, null_handling=FunctionNullHandling.SPECIAL,
                        side_effects=False)
