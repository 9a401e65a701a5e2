"""State vectors: per venue and window, the features the anomaly score reads.

Most features are SQL (`fct_venue_state`, from `int_token_signals` and the positions); the
options book's greeks need the normal distribution, so they are computed here with the
vectorized Black–Scholes of `contagion.risk.greeks`. Every feature has a direction (+1: higher
is worse, −1: lower is worse, 0: either way) and a noise floor: the smallest move that matters,
used as a lower bound on its standard deviation so a feature that sat still in the baseline
does not turn a rounding-size move into an alarm. Definitions: docs/schema.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from contagion.risk.greeks import black_scholes

__all__ = ["FEATURES", "Feature", "features_of", "state_vectors"]


@dataclass(frozen=True)
class Feature:
    name: str
    direction: int  # +1 higher is worse, -1 lower is worse, 0 both
    floor: float  # the smallest move that matters (a floor on its standard deviation)


_MARKET = (
    Feature("oracle_drift", +1, 0.005),
    Feature("order_flow_imbalance", +1, 0.15),
    Feature("implied_vol_change", +1, 0.02),
    Feature("skew_change", -1, 0.01),
    Feature("exposure_return", -1, 0.005),
    Feature("flow_asymmetry", +1, 0.15),
)
FEATURES: dict[str, tuple[Feature, ...]] = {
    "lending": (
        Feature("collateral_ratio_change", -1, 0.01),
        Feature("collateral_ratio_acceleration", -1, 0.01),
        Feature("utilization", +1, 0.01),
        Feature("debt_share_within_5pct", +1, 0.01),
        Feature("debt_share_within_10pct", +1, 0.01),
        Feature("liquidation_distance_sigmas", -1, 0.25),
        Feature("liquidation_slippage", +1, 0.05),
        Feature("liquidated_share", +1, 0.002),
        Feature("collateral_hhi", +1, 0.01),
        *_MARKET,
    ),
    "perps": (
        Feature("open_interest_imbalance", 0, 0.02),
        Feature("net_margin_flow", -1, 0.01),
        Feature("liquidated_share", +1, 0.002),
        *_MARKET,
    ),
    "options": (
        Feature("book_delta", 0, 0.01),
        Feature("book_gamma", +1, 0.001),
        Feature("book_vega", +1, 0.001),
        Feature("liquidated_share", +1, 0.002),
        *_MARKET,
    ),
    "amm": _MARKET,
    "staking": _MARKET,
}


def features_of(kind: str) -> tuple[Feature, ...]:
    return FEATURES.get(kind, _MARKET)


def _options_book(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Greeks of the oTokens written at each options venue, per USD of the margin behind them:
    book delta (USD per 1 % move of the underlying), gamma (change of that delta per 1 % move)
    and vega (USD per volatility point), from the writers' side (short), at the inputs that mark
    each series (int_otoken_prices: the underlying's price, the years left, the vol at the
    strike on the feed's smile)."""
    book = con.sql("""
        select v.snapshot_block, v.chain_id, v.venue, v.amount_raw::double / 1e8 as amount,
               p.strike_price_usd as strike, p.is_put, p.years, p.spot_usd as spot, p.vol
        from int_options_vaults as v
        join int_otoken_prices as p
            on p.chain_id = v.chain_id and p.snapshot_block = v.snapshot_block
            and p.token = v.token
        where v.side = 'debt' and v.amount_raw > 0 and p.spot_usd > 0 and p.vol is not null
    """).pl()
    keys = ["snapshot_block", "chain_id", "venue"]
    spot = book["spot"].to_numpy()
    g = black_scholes(spot, book["strike"].to_numpy(), book["years"].to_numpy(),
                      book["vol"].to_numpy(), is_put=book["is_put"].to_numpy())
    short = -book["amount"].to_numpy()
    greeks: pl.DataFrame = book.select(keys).with_columns(
        book_delta_usd=pl.Series(short * g.delta * spot * 0.01),
        book_gamma_usd=pl.Series(short * g.gamma * spot**2 * 1e-4),
        book_vega_usd=pl.Series(short * g.vega * 0.01),
    ).group_by(keys).agg(pl.col("^book_.*$").sum())
    return greeks


def state_vectors(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """`fct_venue_state` with the options book's greeks per USD of margin (magnitudes: a
    short book's gamma and vega are negative, the risk grows with their size)."""
    state = con.sql("select * from fct_venue_state").pl()
    margin = con.sql("select snapshot_block, chain_id, venue, margin_usd "
                     "from fct_venue_balance_sheet").pl()
    book = _options_book(con)
    keys = ["snapshot_block", "chain_id", "venue"]
    out = state.join(margin, on=keys, how="left").join(book, on=keys, how="left")
    per_margin = pl.when(pl.col("margin_usd") > 0).then(1 / pl.col("margin_usd"))
    options = pl.col("venue_kind") == "options"
    vectors: pl.DataFrame = out.with_columns(
        book_delta=pl.when(options).then(pl.col("book_delta_usd").fill_null(0) * per_margin),
        book_gamma=pl.when(options).then(pl.col("book_gamma_usd").fill_null(0).abs()
                                         * per_margin),
        book_vega=pl.when(options).then(pl.col("book_vega_usd").fill_null(0).abs() * per_margin),
    ).drop("book_delta_usd", "book_gamma_usd", "book_vega_usd").sort(keys)
    return vectors
