"""The early-warning marts, written into the analysts' database after the contagion marts
(they read the systemic importance and the contagion paths): `fct_anomaly_scores` (per venue
and window: score, level, the features and what each contributed), `fct_ecosystem_score` (per
window) and `fct_freeze_recommendations` (per window where a venue is at amber or above: the
policy's coordinated actions with their evidence). Columns: docs/schema.md."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from contagion.graph.cascade import Ecosystem
from contagion.graph.load import bad_debt_buffers, ecosystem_at
from contagion.policy.model import Policy, load_policy
from contagion.policy.recommend import Anomaly, InForce, Market, lifts, recommend
from contagion.registry import Registry
from contagion.risk.derivatives import derivatives_at
from contagion.risk.insolvency import insolvency_probability
from contagion.risk.scores import ScoreSettings, ecosystem_scores, venue_scores
from contagion.risk.state import state_vectors
from contagion.warehouse import replace_table

__all__ = ["RISK_MARTS", "compute_risk_marts", "write_risk_marts"]

RISK_MARTS = ("fct_anomaly_scores", "fct_ecosystem_score", "fct_freeze_recommendations")
RATE_WINDOWS = 4  # the recent borrowing rate: mean over this many windows
CORRELATION_WINDOWS = 20  # assets' return correlation: over this many windows
INSOLVENCY_HORIZON_DAYS = 1.0
INSOLVENCY_PATHS = 1_000


def _weights(con: duckdb.DuckDBPyConnection
             ) -> tuple[dict[tuple[int, str], float], dict[tuple[int, str], float]]:
    """Per (snapshot, venue): the DebtRank of its failure, and the share of the other venues
    its contagion paths reach (fct_systemic_risk, fct_contagion_paths)."""
    importance = {(int(b), str(node).removeprefix("venue:")): float(rank)
                  for b, node, rank in con.execute(
                      "select snapshot_block, node, debtrank from fct_systemic_risk "
                      "where node_type = 'venue'").fetchall()}
    venues = con.execute("select count(*) from ref_venues").fetchone()
    others = max(int(venues[0]) - 1, 1) if venues else 1
    reach = {(int(b), str(source).removeprefix("venue:")): min(int(n) / others, 1.0)
             for b, source, n in con.execute(
                 "select snapshot_block, source, count(distinct target) "
                 "from fct_contagion_paths where source like 'venue:%' "
                 "and target like 'venue:%' group by all").fetchall()}
    return importance, reach


def _market(con: duckdb.DuckDBPyConnection, snapshot: int, window_seconds: float,
            symbols: dict[str, str]) -> Market:
    volatility = {t: float(v) for t, v in con.execute(
        "select token, volatility from int_token_signals where snapshot_block = ? "
        "and volatility is not null", [snapshot]).fetchall()}
    borrow_rate = {v: float(r) for v, r in con.execute(f"""
        with recent as (
            select snapshot_block, window_start from fct_venue_state
            where snapshot_block <= $1 group by all
            order by snapshot_block desc limit {RATE_WINDOWS}
        ),
        borrowed as (
            select f.venue, sum(f.amount * p.price_usd) as usd
            from stg_flows as f
            join recent as w
                on f.block_number > w.window_start and f.block_number <= w.snapshot_block
            join int_token_prices as p on p.snapshot_block = $1 and p.token = f.token
            where f.action = 'borrow'
            group by all
        )
        select b.venue, b.usd / (select count(*) from recent) / s.debt_usd
        from borrowed as b
        join fct_venue_balance_sheet as s on s.venue = b.venue and s.snapshot_block = $1
        where s.debt_usd > 0""", [snapshot]).fetchall()}
    paths = [(s, t, float(x), list(p)) for s, t, x, p in con.execute(
        "select source, target, transmission, path from fct_contagion_paths "
        "where snapshot_block = ? order by transmission desc", [snapshot]).fetchall()]
    return Market(volatility, borrow_rate, paths, window_seconds, symbols)


def freeze_recommendations(con: duckdb.DuckDBPyConnection, ecosystems: Mapping[int, Ecosystem],
                           scores: pl.DataFrame, ecosystem: pl.DataFrame,
                           policy: Policy) -> pl.DataFrame:
    """The policy's recommendations at every window where a venue is at amber or above, and
    the lifts (`normal`) of what the RiskOracle still holds where the venue and the ecosystem
    have been calm long enough; an action issued at a market is not proposed again within the
    policy's cooldown."""
    seconds = con.execute(
        "select median(date_diff('second', a.block_time, b.block_time)) "
        "from fct_venue_state as s join stg_blocks as a on a.block_number = s.window_start "
        "join stg_blocks as b on b.block_number = s.snapshot_block "
        "where s.window_start > 0").fetchall()
    window_seconds = float(seconds[0][0]) if seconds and seconds[0][0] is not None else 300.0
    symbols = dict(con.execute("select token, symbol from int_tokens").fetchall())
    rows: list[dict[str, object]] = []
    issued: dict[tuple[str, str, str | None], int] = {}  # -> window index of the last issue
    level_of = dict(zip(ecosystem["snapshot_block"], ecosystem["level"], strict=True))
    calm: dict[str, int] = {}  # venue -> green windows in a row, up to this one
    ecosystem_calm = 0
    lifting = any(r.action == "normal" for r in policy.rules)
    for index, block in enumerate(sorted(level_of)):
        here = scores.filter(pl.col("snapshot_block") == block)
        for venue, level in zip(here["venue"], here["level"], strict=True):
            calm[venue] = calm.get(venue, 0) + 1 if level == "green" else 0
        ecosystem_calm = ecosystem_calm + 1 if level_of[block] == "green" else 0
        at = here.filter(pl.col("level") != "green")
        cooling = frozenset(k for k, i in issued.items()
                            if index - i <= policy.guardrails.cooldown_windows)
        held = _in_force(con, int(block)) if lifting else []
        if at.is_empty() and not held:
            continue
        eco, market = ecosystems[int(block)], _market(con, int(block), window_seconds, symbols)
        recs = []
        if not at.is_empty():
            anomalies = [Anomaly(r["venue"], r["level"], r["score"],
                                 {f["feature"]: f["value"] for f in r["features"]},
                                 {f["feature"]: f["contribution"] for f in r["features"]})
                         for r in at.iter_rows(named=True)]
            recs = recommend(eco, anomalies, str(level_of[block]), market, policy,
                             cooling=cooling)
        acted = {(r.venue, r.asset) for r in recs}  # an action this window outranks a lift
        recs += lifts(eco, held, calm, ecosystem_calm, market, policy, cooling=cooling,
                      acted=frozenset(acted))
        for rec in recs:
            issued[(rec.action, rec.venue, rec.asset)] = index
            rows.append({"snapshot_block": block, **asdict(rec)})
    schema: dict[str, pl.DataType] = {
        "snapshot_block": pl.UInt64(), "venue": pl.Utf8(), "asset": pl.Utf8(),
        "action": pl.Utf8(), "rule": pl.Utf8(), "params": pl.Utf8(),
        "anomalous_venue": pl.Utf8(), "loss_before_usd": pl.Float64(),
        "loss_after_usd": pl.Float64(), "loss_cut_usd": pl.Float64(),
        "coordinated_with": pl.List(pl.Utf8()), "evidence": pl.Utf8()}
    for row in rows:
        row["params"] = json.dumps(row["params"])
        row["coordinated_with"] = list(row["coordinated_with"])  # type: ignore[call-overload]
    return pl.DataFrame(rows, schema=schema)


def _in_force(con: duckdb.DuckDBPyConnection, snapshot: int) -> list[InForce]:
    """What the RiskOracle holds at the snapshot that is not plain normal (int_oracle_markets)."""
    zero = "0x" + "0" * 40
    return [InForce(venue, None if asset == zero else asset, bool(frozen), cut / 10**4)
            for venue, asset, frozen, cut in con.execute(
                "select venue, asset, frozen, margin_cut_bps from int_oracle_markets "
                "where snapshot_block = ? and (frozen or margin_cut_bps > 0) "
                "order by venue, asset", [snapshot]).fetchall()]


def _vols_and_correlation(con: duckdb.DuckDBPyConnection, snapshot: int
                          ) -> tuple[dict[str, float], np.ndarray]:
    """Each asset's implied vol (realised where it has no feed) and the correlation of their
    oracle returns over the last windows (0 where a series did not move)."""
    signals = con.execute(
        "select token, coalesce(implied_vol, realised_vol) from int_token_signals "
        "where snapshot_block = ?", [snapshot]).fetchall()
    vols = {t: float(v) for t, v in signals if v is not None and v > 0}
    tokens = list(vols)
    prices = con.sql(
        "pivot (select snapshot_block, token, ln(oracle_price_usd) as p from int_token_signals "
        f"where snapshot_block <= {int(snapshot)} qualify row_number() over (partition by "
        f"token order by snapshot_block desc) <= {CORRELATION_WINDOWS + 1}) "
        "on token using any_value(p) order by snapshot_block").pl()
    if len(tokens) < 2 or prices.height < 3:
        return vols, np.eye(len(tokens))
    returns = np.diff(prices.select(tokens).to_numpy(), axis=0)
    return vols, pairwise_correlation(returns)


def pairwise_correlation(returns: np.ndarray, min_windows: int = 3) -> np.ndarray:
    """Each pair's correlation over the windows where both have a return (0 where fewer than
    `min_windows`, or where either did not move): a token listed late, or one missing price,
    costs only its own pairs, not every other pair's. A matrix of pairs need not be positive
    semidefinite; the Monte Carlo takes the nearest one that is (insolvency._factor)."""
    k = returns.shape[1]
    corr = np.eye(k)
    finite = np.isfinite(returns)
    for i in range(k):
        for j in range(i + 1, k):
            both = finite[:, i] & finite[:, j]
            a, b = returns[both, i], returns[both, j]
            if both.sum() >= min_windows and a.std() > 0 and b.std() > 0:
                corr[i, j] = corr[j, i] = np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0)
    return corr


def insolvency(con: duckdb.DuckDBPyConnection, registry: Registry,
               ecosystems: Mapping[int, Ecosystem]) -> pl.DataFrame:
    """Per snapshot and lending, perps or options venue: the Monte Carlo probability that the
    next day's prices, through the DeFi cascade, leave it more bad debt than its buffer
    (contagion.risk.insolvency; the derivatives venues' positions valued at the prices each path
    ends with), with the mean and 99 % quantile of that bad debt."""
    rows = []
    modelled = [v.id for v in registry.venues if v.kind in ("lending", "perps", "options")]
    for block, eco in sorted(ecosystems.items()):
        vols, corr = _vols_and_correlation(con, int(block))
        buffers = bad_debt_buffers(con, int(block))
        moving = {t: v for t, v in vols.items() if t in eco.prices}
        index = [list(vols).index(t) for t in moving]
        result = insolvency_probability(
            eco, vols=moving, correlation=corr[np.ix_(index, index)] if index else None,
            horizon_days=INSOLVENCY_HORIZON_DAYS, paths=INSOLVENCY_PATHS, seed=int(block),
            buffers_usd=buffers, derivatives=derivatives_at(con, int(block)).priced(eco.prices))
        # a venue with no borrower or open position yet cannot be left with bad debt
        rows += [{"snapshot_block": block, "venue": v,
                  "insolvency_probability": result.probability.get(v, 0.0),
                  "expected_bad_debt_usd": result.mean_bad_debt_usd.get(v, 0.0),
                  "bad_debt_q99_usd": result.q99_bad_debt_usd.get(v, 0.0)} for v in modelled]
    return pl.DataFrame(rows, schema={"snapshot_block": pl.UInt64(), "venue": pl.Utf8(),
                                      "insolvency_probability": pl.Float64(),
                                      "expected_bad_debt_usd": pl.Float64(),
                                      "bad_debt_q99_usd": pl.Float64()})


def compute_risk_marts(con: duckdb.DuckDBPyConnection, registry: Registry, *,
                       settings: ScoreSettings = ScoreSettings(),
                       policy: Policy | None = None) -> dict[str, pl.DataFrame]:
    """The early-warning marts; first, the policy is checked against the registry: an exempt
    asset it does not have is refused (a PolicyError), before anything is computed."""
    policy = policy or load_policy()
    policy.check_against((t.symbol for t in registry.tokens),
                         f"the {registry.network} registry")
    # the ecosystem at each snapshot, read once: the insolvency paths and the policy share it
    ecosystems = {int(b): ecosystem_at(con, registry, int(b)) for (b,) in con.execute(
        "select snapshot_block from ref_snapshots order by 1").fetchall()}
    if not ecosystems:  # nothing to score, and no window to score it against
        raise ValueError("the database has no snapshot: index some blocks and build it first")
    scores = venue_scores(state_vectors(con), settings).join(
        insolvency(con, registry, ecosystems), on=["snapshot_block", "venue"],
        how="left").with_columns(
        insolvency_horizon_days=pl.lit(INSOLVENCY_HORIZON_DAYS),
        insolvency_paths=pl.lit(INSOLVENCY_PATHS))
    importance, reach = _weights(con)
    ecosystem = ecosystem_scores(scores, importance, reach, settings)
    return {"fct_anomaly_scores": scores, "fct_ecosystem_score": ecosystem,
            "fct_freeze_recommendations": freeze_recommendations(
                con, ecosystems, scores, ecosystem, policy)}


def write_risk_marts(db_path: Path, registry: Registry, *,
                     settings: ScoreSettings = ScoreSettings(), policy: Policy | None = None
                     ) -> dict[str, pl.DataFrame]:
    """Compute the marts from the database and write them into it (needs the contagion
    marts, `contagion.graph.marts.write_graph_marts`, first)."""
    with duckdb.connect(str(db_path)) as con:
        marts = compute_risk_marts(con, registry, settings=settings, policy=policy)
        for name, frame in marts.items():
            replace_table(con, name, frame.to_arrow())
    return marts
