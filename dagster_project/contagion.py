"""Contagion assets: the systemic importance of each venue, the strongest contagion paths and
the stress suite at the latest snapshot, written into the analysts' database as
fct_systemic_risk, fct_contagion_paths and fct_stress_results (contagion/graph/marts.py); and
downstream of them the early warning: anomaly scores, the ecosystem score and the
coordinated-freeze recommendations (contagion/risk/marts.py)."""


from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from contagion.graph.marts import write_graph_marts
from contagion.policy.model import load_policy
from contagion.risk.marts import write_risk_marts
from dagster_project.resources import ChainResource
from dagster_project.warehouse import DATABASE

_MARTS = {"systemic_risk": "fct_systemic_risk", "contagion_paths": "fct_contagion_paths",
          "stress_results": "fct_stress_results"}
_DEPS = [DATABASE, "fct_exposure_edges", "fct_positions", "fct_venue_balance_sheet",
         "int_token_prices", "int_amm_reserves"]


@dg.multi_asset(
    specs=[dg.AssetSpec(name, deps=_DEPS, group_name="contagion", kinds={"duckdb"},
                        description=f"{table} (docs/schema.md), at the latest snapshot")
           for name, table in _MARTS.items()],
    check_specs=[dg.AssetCheckSpec("stress_losses_consistent", asset="stress_results",
                                   blocking=True,
                                   description="every scenario's total loss is at least its "
                                               "initial loss, and amplification ≥ 1")],
    can_subset=False,
)
def contagion_marts(context: dg.AssetExecutionContext, chain: ChainResource,
                    duckdb: DuckDBResource
                    ) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    marts = write_graph_marts(Path(duckdb.database), chain.load_registry())
    for name, table in _MARTS.items():
        yield dg.MaterializeResult(asset_key=name,
                                   metadata={"rows": marts.tables[table].num_rows})
    stress = marts.tables["fct_stress_results"].to_pylist()
    broken = [r["scenario"] for r in stress
              if r["total_loss_usd"] < r["initial_loss_usd"] - 1e-6
              or (r["amplification"] is not None and r["amplification"] < 1 - 1e-9)]
    context.log.info(f"{len(stress)} stress scenarios")
    yield dg.AssetCheckResult(check_name="stress_losses_consistent", asset_key="stress_results",
                              passed=not broken, metadata={"scenarios": len(stress),
                                                           "inconsistent": ", ".join(broken[:10])})


_RISK = {"anomaly_scores": "fct_anomaly_scores", "ecosystem_score": "fct_ecosystem_score",
         "freeze_recommendations": "fct_freeze_recommendations"}


@dg.multi_asset(
    specs=[dg.AssetSpec(name, deps=["systemic_risk", "contagion_paths", "fct_venue_state",
                                    "int_token_signals"],
                        group_name="early_warning", kinds={"duckdb"},
                        description=f"{table} (docs/schema.md, docs/policy.md), every window")
           for name, table in _RISK.items()],
    check_specs=[
        dg.AssetCheckSpec("scores_add_up", asset="anomaly_scores", blocking=True,
                          description="every venue is scored every window, p-values lie in "
                                      "[0, 1] and the feature contributions add up to the "
                                      "squared distance"),
        dg.AssetCheckSpec("actions_carry_evidence", asset="freeze_recommendations",
                          blocking=True,
                          description="every action beyond watch cut the simulated loss by the "
                                      "policy's minimum and names its paths and features"),
    ],
    can_subset=False,
)
def early_warning(context: dg.AssetExecutionContext, chain: ChainResource,
                  duckdb: DuckDBResource
                  ) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    policy = load_policy()
    marts = write_risk_marts(Path(duckdb.database), chain.load_registry(), policy=policy)
    scores, eco = marts["fct_anomaly_scores"], marts["fct_ecosystem_score"]
    recs = marts["fct_freeze_recommendations"]
    for name, table in _RISK.items():
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": marts[table].height})
    latest = eco.tail(1).to_dicts()
    if latest:
        context.log.info(f"ecosystem level {latest[0]['level']} (score "
                         f"{latest[0]['score']:.1f}, driven by {latest[0]['driver']})")
    gaps = [abs(r["distance"] ** 2 - sum(f["contribution"] for f in r["features"]))
            for r in scores.iter_rows(named=True) if r["method"] != "none"]
    per_window = scores.group_by("snapshot_block").len()["len"].unique().to_list()
    yield dg.AssetCheckResult(
        check_name="scores_add_up", asset_key="anomaly_scores",
        passed=bool(scores.is_empty() or (scores["p_value"].is_between(0, 1).all()
                                          and max(gaps, default=0.0) < 1e-6
                                          and len(per_window) == 1)),
        metadata={"largest_gap": max(gaps, default=0.0), "venues_per_window": str(per_window)})
    acted = recs.filter(pl.col("action") != "watch")
    weak = [f"{r['snapshot_block']}:{r['venue']}:{r['action']}"
            for r in acted.iter_rows(named=True)
            if r["loss_cut_usd"] < policy.min_loss_cut_usd or '"paths"' not in r["evidence"]]
    yield dg.AssetCheckResult(check_name="actions_carry_evidence",
                              asset_key="freeze_recommendations", passed=not weak,
                              metadata={"actions": acted.height, "weak": ", ".join(weak[:10])})
