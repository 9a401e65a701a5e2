"""Contagion assets: the systemic importance of each venue, the strongest contagion paths and
the stress suite at the latest snapshot, written into the analysts' database as
fct_systemic_risk, fct_contagion_paths and fct_stress_results (contagion/graph/marts.py); and
downstream of them the early warning: anomaly scores, the ecosystem score and the
coordinated-freeze recommendations (contagion/risk/marts.py)."""


from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from contagion.checks import (
    Outcome,
    actions_carry_evidence,
    scores_add_up,
    stress_losses_consistent,
)
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
    outcome = stress_losses_consistent(marts.tables["fct_stress_results"].to_pylist())
    context.log.info(f"{outcome.metadata['scenarios']} stress scenarios")
    yield _check_result(outcome, "stress_results")


def _check_result(outcome: Outcome, asset: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(check_name=outcome.name, asset_key=asset, passed=outcome.passed,
                               metadata=outcome.metadata)


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
    yield _check_result(scores_add_up(scores), "anomaly_scores")
    yield _check_result(actions_carry_evidence(recs, policy), "freeze_recommendations")
