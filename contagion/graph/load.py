"""The contagion engine's inputs read from the analysts' database at a snapshot: the exposure
graph (`graph_at`) and the ecosystem the DeFi cascade runs on (`ecosystem_at`), with each
venue's liquidation rules taken from the registry and its liquidation thresholds as in force at
the snapshot (the registry's less any RiskOracle margin cut, `int_market_thresholds`)."""

from __future__ import annotations

import duckdb

from contagion.graph.build import ExposureGraph
from contagion.graph.cascade import Ecosystem, Leg, LiquidationRule, Pool, morpho_incentive
from contagion.registry import Registry, Venue

__all__ = ["bad_debt_buffers", "ecosystem_at", "graph_at", "latest_snapshot",
           "venue_rule"]


def latest_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute("select max(snapshot_block) from ref_snapshots").fetchall()
    row = rows[0] if rows else None
    if row is None or row[0] is None:
        raise ValueError("the database has no snapshot: index some blocks and build it")
    return int(row[0])


def bad_debt_buffers(con: duckdb.DuckDBPyConnection, snapshot: int) -> dict[str, float]:
    """Per venue, the bad debt it can absorb at a snapshot (`bad_debt_buffer_usd`): what the
    cascade's and the insolvency paths' bad debt, already net of each position's collateral,
    is measured against."""
    return {venue: float(b) for venue, b in con.execute(
        "select venue, bad_debt_buffer_usd from fct_venue_balance_sheet "
        "where snapshot_block = ?", [snapshot]).fetchall()}


def graph_at(con: duckdb.DuckDBPyConnection, snapshot: int, *,
             min_account_usd: float = 0.0) -> ExposureGraph:
    edges = con.sql(f"select * from fct_exposure_edges where snapshot_block = {int(snapshot)}"
                    ).to_arrow_table()
    return ExposureGraph.from_edges(edges, min_account_usd=min_account_usd)


def venue_rule(venue: Venue) -> tuple[LiquidationRule, dict[str, float]]:
    """The venue's liquidation rule and the bonus of each collateral market (by registry
    market id), read from the registry's risk parameters."""
    risk = venue.risk
    bonuses: dict[str, float] = {}
    for market in venue.markets:
        params = market.params
        if isinstance(b := params.get("liquidation_bonus_bps"), int):
            bonuses[market.id] = b / 10**4
        elif isinstance(f := params.get("liquidation_factor"), int) and f > 0:
            bonuses[market.id] = 10**18 / f
        elif isinstance(lltv := params.get("lltv"), int):
            bonuses[market.id] = morpho_incentive(lltv / 10**18)
    if venue.protocol == "aave_v3":
        close = risk.get("close_factor_bps", 5000)
        full = risk.get("close_factor_full_below_hf_bps", 9500)
        rule = LiquidationRule(close_factor=float(close) / 10**4 if isinstance(close, int)
                               else 0.5,
                               full_close_below=float(full) / 10**4 if isinstance(full, int)
                               else 0.95)
    elif venue.protocol == "compound_v3":  # Comet absorbs the whole account
        rule = LiquidationRule(close_factor=1.0, absorb=True)
    else:  # Morpho may repay all of a position
        rule = LiquidationRule(close_factor=1.0)
    return rule, bonuses


def ecosystem_at(con: duckdb.DuckDBPyConnection, registry: Registry, snapshot: int
                 ) -> Ecosystem:
    prices = {t: float(p) for t, p in con.execute(
        "select token, price_usd from int_token_prices where snapshot_block = ? "
        "and price_usd is not null", [snapshot]).fetchall()}
    symbols = dict(con.execute("select token, symbol from int_tokens").fetchall())
    market_ids = {(v, m): mid for v, m, mid in con.execute(
        "select venue, market, market_id from ref_markets").fetchall()}
    rules, bonus_of = {}, {}
    for venue in registry.venues:
        rules[venue.id], bonuses = venue_rule(venue)
        bonus_of[venue.id] = bonuses
    legs = []
    for venue, protocol, account, market, token, side, amount, threshold in con.execute(
            "select p.venue, p.protocol, p.account, p.market, p.token, p.side, p.amount, "
            "m.liquidation_threshold from fct_positions as p "
            "left join int_market_thresholds as m on m.snapshot_block = p.snapshot_block "
            "and m.chain_id = p.chain_id and m.venue = p.venue "
            "and m.market = p.market and m.collateral_token = p.token "
            "where p.snapshot_block = ? and p.venue_kind = 'lending' "
            "and p.side in ('collateral', 'debt') and p.amount is not null",
            [snapshot]).fetchall():
        group = f"{account}|{market}" if protocol == "morpho_blue" else account
        bonus = bonus_of.get(venue, {}).get(market_ids.get((venue, market), ""))
        legs.append(Leg(venue, group, token, float(amount), side, float(threshold or 0.0),
                        bonus if side == "collateral" else None))
    pools = [Pool(t0, t1, float(r0) / 10**d0, float(r1) / 10**d1)
             for t0, t1, r0, r1, d0, d1 in con.execute(
                 "select r.token0, r.token1, r.reserve0, r.reserve1, a.decimals, b.decimals "
                 "from int_amm_reserves as r join int_tokens as a on a.token = r.token0 "
                 "join int_tokens as b on b.token = r.token1 where r.snapshot_block = ?",
                 [snapshot]).fetchall()]
    claims: dict[str, tuple[str, str | None]] = {
        token: (issuer, underlying if kind == "atoken" else None)
        for token, issuer, underlying, kind in con.execute(
            "select token, issued_by, underlying, token_kind from int_tokens "
            "where issued_by is not null and token_kind <> 'debt_token' "
            "and (token_kind <> 'atoken' or underlying is not null)").fetchall()}
    margin_cuts = {(venue, asset): cut / 10**4 for venue, asset, cut in con.execute(
        "select distinct venue, collateral_token, margin_cut_bps from int_market_thresholds "
        "where snapshot_block = ? and margin_cut_bps > 0", [snapshot]).fetchall()}
    deposits = {venue: float(usd) for venue, usd in con.execute(
        "select venue, collateral_usd + supply_usd from fct_venue_balance_sheet "
        "where snapshot_block = ?", [snapshot]).fetchall()}
    return Ecosystem(prices, legs, pools, rules, claims, deposits, symbols, margin_cuts)
