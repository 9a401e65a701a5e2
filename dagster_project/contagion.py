"""Contagion assets: the systemic importance of each venue, the strongest contagion paths and
the stress suite at the latest snapshot, written into the analysts' database as
fct_systemic_risk, fct_contagion_paths and fct_stress_results (contagion/graph/marts.py)."""


from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from contagion.graph.marts import write_graph_marts
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
