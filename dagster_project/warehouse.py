"""Warehouse assets: every SQL model under sql/ as an asset (lineage read from the files), the
database file, and the checks of sql/checks plus the truth check against the chain as asset
checks (error-severity ones blocking). One run builds the whole database with
`contagion.warehouse.build_database`; the checks read it through dagster-duckdb's resource,
read-only."""


import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from contagion.truth import truth_check
from contagion.warehouse import Model, build_database, lake_schemas, load_checks, load_models
from contagion.warehouse import run_checks as run_sql_checks
from dagster_project.assets import LAKE_POOL
from dagster_project.resources import ChainResource, LakeResource, WarehouseResource

MODELS = load_models()
CHECKS = load_checks()
DATABASE = "contagion_duckdb"
TRUTH_CHECK = "positions_match_chain"
_LAKE_TABLES = set(lake_schemas())


def _upstream(model: Model) -> list[str]:
    """The models it reads, the lake tables behind its src_ views, and the registry."""
    lake = {t for t in re.findall(r"\bsrc_(\w+)", model.sql) if t in _LAKE_TABLES}
    registry = ["registry"] if re.search(r"\bref_\w+", model.sql) else []
    return [*model.depends, *sorted(lake), *registry]


_SPECS = [dg.AssetSpec(m.name, deps=_upstream(m), group_name=f"sql_{m.layer}",
                       description=f"sql/{m.layer}/{m.name}.sql · grain: {m.grain}",
                       kinds={"duckdb"}, metadata={"layer": m.layer,
                                                   "materialized": m.materialized})
          for m in MODELS]
_DATABASE_SPEC = dg.AssetSpec(
    DATABASE, deps=[m.name for m in MODELS if m.layer == "marts"], group_name="sql_marts",
    kinds={"duckdb"}, description="The analysts' database file (docs/schema.md); open it "
                                  "read-only with `contagion sql` or the duckdb CLI.")
_CHECK_SPECS = [
    *(dg.AssetCheckSpec(c.name, asset=c.asset, blocking=c.severity == "error",
                        description=c.description) for c in CHECKS),
    dg.AssetCheckSpec(TRUTH_CHECK, asset="fct_positions", blocking=True,
                      description="fct_positions at the latest snapshot equals the contracts' "
                                  "own state (eth_call at that block) for a sample of accounts "
                                  "at every venue"),
]


@dg.multi_asset(specs=[*_SPECS, _DATABASE_SPEC], check_specs=_CHECK_SPECS,
                can_subset=False, pool=LAKE_POOL)  # reads the lake: not while a run writes it
def warehouse(context: dg.AssetExecutionContext, chain: ChainResource, lake: LakeResource,
              warehouse_settings: WarehouseResource, duckdb: DuckDBResource
              ) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    registry = chain.load_registry()
    path = Path(duckdb.database)
    build_database(path, lake.lake(), registry)
    with duckdb.get_connection() as con:
        for model in MODELS:
            row = con.execute(f"select count(*) from {model.name}").fetchone()
            yield dg.MaterializeResult(asset_key=model.name, metadata={
                "rows": int(row[0]) if row else 0, "materialized": model.materialized})
        snapshots = [int(b) for (b,) in con.execute(
            "select snapshot_block from ref_snapshots order by 1").fetchall()]
        yield dg.MaterializeResult(asset_key=DATABASE, metadata={
            "path": str(path), "bytes": path.stat().st_size, "snapshots": len(snapshots),
            "last_snapshot": snapshots[-1] if snapshots else -1})
        for result in run_sql_checks(con, CHECKS,
                                     max_price_age_seconds=warehouse_settings.max_price_age_seconds):
            check = result.check
            yield dg.AssetCheckResult(
                check_name=check.name, asset_key=check.asset, passed=result.passed,
                severity=(dg.AssetCheckSeverity.ERROR if check.severity == "error"
                          else dg.AssetCheckSeverity.WARN),
                metadata={"failing_rows": result.failing_rows,
                          "examples": dg.MetadataValue.json(
                              [{k: str(v) for k, v in row.items()} for row in result.sample])})
        if not snapshots:
            yield dg.AssetCheckResult(check_name=TRUTH_CHECK, asset_key="fct_positions",
                                      passed=True, metadata={"note": "no snapshot yet"})
            return
        client = chain.client()
        try:
            report = truth_check(client, con, registry, snapshots[-1],
                                 sample=warehouse_settings.truth_sample)
        finally:
            client.close()
        context.log.info(report.summary())
        yield dg.AssetCheckResult(
            check_name=TRUTH_CHECK, asset_key="fct_positions", passed=report.ok,
            metadata={"block": snapshots[-1], "values_compared": report.compared,
                      "accounts": dg.MetadataValue.json(report.accounts),
                      "mismatches": len(report.mismatches),
                      "first_mismatches": dg.MetadataValue.json([
                          m.__dict__ for m in report.mismatches[:10]])})
