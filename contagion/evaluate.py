"""`contagion evaluate`: early warning measured on scenarios, against a static baseline.

Each scenario runs on a fresh devnet; the pipeline indexes it with one partition per window,
builds the database, the contagion and the early-warning marts, and the chain's own bad-debt
events say when harm began. Two detectors are read off the same run:
- ours: the ecosystem level (amber or above is an alert);
- the Generation-1 baseline: a static collateral-ratio floor per lending venue, alerting when
  its borrowers' collateral falls below `floor_margin` (1.10) × the collateral ratio at which
  they would on average sit at their liquidation threshold, that floor fixed at the first
  window with debt. 1.10 is the most demanding margin that stays silent on the calm scenario
  (1.20 alerts from its first windows); 1.00 is the venues' own liquidation point.

Our first freeze is the first window with a recommended action beyond `watch` that is not a
lift (`normal` undoes a freeze; it is not one).
Calm windows are those that close before the scenario's first injected shock (every window of a
scenario without shocks, unless it replays real prices, whose crisis is in the data and whose
calm is therefore not known); an alert there is a false alert. Lead time counts
from the first alert at or after the first shock (or the first alert, without shocks) to the
first bad debt; a detector that alerts only after it has a negative lead.

The lead ceiling is the lead of a detector that alerts in the first window closing at or after
the first shock: no detector without false alerts can do better at this window width, so
ceiling / the baseline's lead bounds the lead ratio any detector can show on the scenario.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import polars as pl

from contagion.chain.rpc import RpcClient
from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.node import start_node, stop_node
from contagion.devnet.runner import run_scenario
from contagion.devnet.scenario import load_scenario
from contagion.graph.marts import write_graph_marts
from contagion.indexing import index_range
from contagion.lake import Lake
from contagion.policy.model import Policy
from contagion.registry import load_registry
from contagion.risk.marts import write_risk_marts
from contagion.warehouse import build_database

__all__ = [
    "BASELINE_MARGIN",
    "Detection",
    "ScenarioEvaluation",
    "baseline_alerts",
    "detect",
    "evaluate_scenario",
    "freeze_windows",
    "lead_ceiling",
    "write_table",
]

BASELINE_MARGIN = 1.10


@dataclass(frozen=True)
class Detection:
    first_amber: int | None
    first_red: int | None
    first_freeze: int | None
    lead_blocks: int | None  # first bad debt − first alert (None without either)
    lead_minutes: float | None
    false_alerts: int  # calm windows at amber or above
    calm_windows: int


@dataclass(frozen=True)
class ScenarioEvaluation:
    scenario: str
    windows: int
    window_blocks: int
    first_shock_block: int | None
    first_bad_debt_block: int | None
    bad_debt_usd: float
    ours: Detection
    baseline: Detection
    lead_ceiling_blocks: int | None = None  # first bad debt − first window end ≥ first shock

    @property
    def lead_ratio(self) -> float | None:
        """Our lead over the baseline's: infinite when we alerted before the bad debt and the
        baseline did not; None when there is no bad debt or we had no lead."""
        a, b = self.ours.lead_blocks, self.baseline.lead_blocks
        if a is None or a <= 0:
            return None
        return a / b if b is not None and b > 0 else float("inf")

    @property
    def ceiling_ratio(self) -> float | None:
        """The lead ratio of a detector alerting in the first window of the first shock: the
        most any detector can show against this baseline (see the module)."""
        c, b = self.lead_ceiling_blocks, self.baseline.lead_blocks
        if c is None or c <= 0:
            return None
        return c / b if b is not None and b > 0 else float("inf")


def lead_ceiling(snapshots: list[int], *, first_shock: int | None,
                 first_bad_debt: int | None) -> int | None:
    """first bad debt − the first window end at or after the first shock (None without a shock,
    a bad debt, or such a window)."""
    if first_shock is None or first_bad_debt is None:
        return None
    first = min((b for b in snapshots if b >= first_shock), default=None)
    return None if first is None else first_bad_debt - first


def detect(levels: pl.DataFrame, *, first_shock: int | None, calm_until: int | None,
           first_bad_debt: int | None, seconds_per_block: float,
           freezes: list[int] | None = None) -> Detection:
    """Read a detector off its per-window levels (columns snapshot_block, level). Windows
    closing before `calm_until` are calm (None: none is known to be)."""
    frame = levels.sort("snapshot_block")
    blocks = frame["snapshot_block"].to_list()
    alert = [lvl != "green" for lvl in frame["level"]]
    calm = [calm_until is not None and b < calm_until for b in blocks]
    start = first_shock or 0

    def first(when: list[bool]) -> int | None:
        return next((b for b, w in zip(blocks, when, strict=True) if w and b >= start), None)

    amber = first(alert)
    red = first([lvl == "red" for lvl in frame["level"]])
    lead = first_bad_debt - amber if amber is not None and first_bad_debt is not None \
        else None
    return Detection(
        first_amber=amber, first_red=red,
        first_freeze=min((b for b in freezes or [] if b >= start), default=None),
        lead_blocks=lead,
        lead_minutes=None if lead is None else lead * seconds_per_block / 60,
        false_alerts=sum(a and c for a, c in zip(alert, calm, strict=True)),
        calm_windows=sum(calm))


def baseline_alerts(con: duckdb.DuckDBPyConnection, margin: float = BASELINE_MARGIN
                    ) -> pl.DataFrame:
    """The Generation-1 detector's level per window: amber when any lending venue's
    borrowers' collateral ratio is under its static floor (see the module)."""
    state: pl.DataFrame = con.sql("select snapshot_block, venue, borrower_collateral_ratio, "
                    "liquidation_collateral_ratio from fct_venue_state "
                    "where venue_kind = 'lending' order by snapshot_block").pl()
    floors = (state.drop_nulls("liquidation_collateral_ratio")
              .group_by("venue").agg(pl.col("liquidation_collateral_ratio").first() * margin)
              .rename({"liquidation_collateral_ratio": "floor"}))
    alerts: pl.DataFrame = (state.join(floors, on="venue", how="left")
            .with_columns(alert=pl.col("borrower_collateral_ratio") < pl.col("floor"))
            .group_by("snapshot_block").agg(pl.col("alert").fill_null(False).any())
            .with_columns(level=pl.when(pl.col("alert")).then(pl.lit("amber"))
                          .otherwise(pl.lit("green")))
            .sort("snapshot_block"))
    return alerts


def freeze_windows(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The windows with a recommendation that acts: beyond `watch`, and not a lift (`normal`
    undoes a freeze; it is not one)."""
    return sorted(int(b) for (b,) in con.execute(
        "select distinct snapshot_block from fct_freeze_recommendations "
        "where action not in ('watch', 'normal')").fetchall())


def evaluate_scenario(scenario: str, workdir: Path, port: int, *, window: int = 25,
                      floor_margin: float = BASELINE_MARGIN, policy: Policy | None = None,
                      progress: bool = False) -> ScenarioEvaluation:
    """Run one scenario on a fresh devnet in `workdir` and measure both detectors."""
    spec, path = load_scenario(scenario)
    lake = Lake(str(workdir / "lake"))
    info = start_node(workdir, port)
    try:
        deploy_ecosystem(info.url, workdir)
        run = run_scenario(spec, path, info.url, workdir, progress=progress)
        registry = load_registry(workdir / "registry.yaml")
        index_range(RpcClient(info.url), lake, registry, width=window)
    finally:
        stop_node(workdir)
    db = workdir / "contagion.duckdb"
    build_database(db, lake, registry)
    write_graph_marts(db, registry)
    write_risk_marts(db, registry, policy=policy)
    manifest = json.loads(run.manifest_path.read_text())
    shocks = [int(i["block"]) for i in manifest["injections"]]
    first_shock = min(shocks) if shocks else None
    harm = run.summary.venues
    bad_blocks = [h.first_bad_debt_block for h in harm.values()
                  if h.first_bad_debt_block is not None]
    first_bad = min(bad_blocks) if bad_blocks else None
    with duckdb.connect(str(db), read_only=True) as con:
        ours = con.sql("select snapshot_block, level from fct_ecosystem_score").pl()
        freezes = freeze_windows(con)
        base = baseline_alerts(con, floor_margin)
    # calm: before the first shock; without shocks, everything unless real prices are replayed
    # (their crisis is in the data, not in the scenario file)
    replayed = any(p.replay is not None for p in spec.prices.values())
    calm_until = first_shock if first_shock is not None else None if replayed else 2**63

    def read(levels: pl.DataFrame, freezes: list[int] | None = None) -> Detection:
        return detect(levels, first_shock=first_shock, calm_until=calm_until,
                      first_bad_debt=first_bad, seconds_per_block=spec.seconds_per_block,
                      freezes=freezes)

    return ScenarioEvaluation(
        scenario=spec.name, windows=ours.height, window_blocks=window,
        first_shock_block=first_shock, first_bad_debt_block=first_bad,
        bad_debt_usd=sum(h.bad_debt_usd for h in harm.values()),
        ours=read(ours, freezes), baseline=read(base),
        lead_ceiling_blocks=lead_ceiling(ours["snapshot_block"].to_list(),
                                         first_shock=first_shock, first_bad_debt=first_bad))


def write_table(results: list[ScenarioEvaluation], path: Path) -> None:
    """The evaluation as JSON (one object per scenario, with the lead ratio)."""
    def finite(x: float | None) -> float | None:
        return None if x == float("inf") else x

    rows = [{**asdict(r), "lead_ratio": finite(r.lead_ratio),
             "ceiling_ratio": finite(r.ceiling_ratio),
             "baseline_alerted_before_bad_debt": r.baseline.lead_blocks is not None
             and r.baseline.lead_blocks > 0} for r in results]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(rows, indent=2))
    tmp.replace(path)
