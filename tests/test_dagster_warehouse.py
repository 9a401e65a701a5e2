"""The warehouse in Dagster: one materialization builds every model and the database file and
runs the SQL checks and the truth check against the chain; lineage follows the SQL files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from conftest import World
from dagster_duckdb import DuckDBResource

from dagster_project.resources import ChainResource, LakeResource, WarehouseResource
from dagster_project.warehouse import CHECKS, DATABASE, MODELS, TRUTH_CHECK, warehouse


def test_lineage_follows_the_sql_files() -> None:
    deps = {spec.key.to_user_string(): {d.asset_key.to_user_string() for d in spec.deps}
            for spec in warehouse.specs}
    assert set(deps) == {m.name for m in MODELS} | {DATABASE}
    assert {"stg_flows", "ref_flow_signs"} & deps["int_balances"] == {"stg_flows"}
    assert {"flows", "registry"} <= deps["stg_flows"]
    assert {"fct_positions", "fct_venue_balance_sheet"} <= deps[DATABASE]
    blocking = {c.name for c in warehouse.check_specs if c.blocking}
    assert blocking == {c.name for c in CHECKS if c.severity == "error"} | {TRUTH_CHECK}


@pytest.mark.devnet
def test_materializing_builds_the_database_and_every_check_passes(world: World,
                                                                  tmp_path: Path) -> None:
    db = tmp_path / "contagion.duckdb"
    run = dg.materialize(
        [warehouse],
        resources={
            "chain": ChainResource(rpc_url=world.client.url,
                                   registry=str(world.data / "registry.yaml")),
            "lake": LakeResource(root=str(world.data / "lake")),
            "warehouse_settings": WarehouseResource(truth_sample=10),
            "duckdb": DuckDBResource(database=str(db),
                                     connection_config={"access_mode": "READ_ONLY"}),
        })
    assert run.success
    checks = {c.check_name: c for c in run.get_asset_check_evaluations()}
    assert set(checks) == {c.name for c in CHECKS} | {TRUTH_CHECK}
    failed = {name for name, c in checks.items() if not c.passed}
    assert failed <= {c.name for c in CHECKS if c.severity == "warn"}
    truth = checks[TRUTH_CHECK]
    assert truth.passed and int(str(truth.metadata["values_compared"].value)) > 50
    materialized = {str(event.asset_key.to_user_string()) for event in
                    run.get_asset_materialization_events() if event.asset_key is not None}
    assert materialized == {m.name for m in MODELS} | {DATABASE}
    assert db.exists()


@pytest.mark.devnet
def test_contagion_and_early_warning_materialize_after_the_database(world: World,
                                                                   tmp_path: Path) -> None:
    import shutil

    from dagster_project.contagion import contagion_marts, early_warning

    db = tmp_path / "contagion.duckdb"
    shutil.copy(world.db, db)
    run = dg.materialize(
        [contagion_marts, early_warning],
        resources={
            "chain": ChainResource(rpc_url=world.client.url,
                                   registry=str(world.data / "registry.yaml")),
            "duckdb": DuckDBResource(database=str(db)),
        })
    assert run.success
    assert all(c.passed for c in run.get_asset_check_evaluations())
    materialized = {str(e.asset_key.to_user_string()) for e in
                    run.get_asset_materialization_events() if e.asset_key is not None}
    assert materialized == {"systemic_risk", "contagion_paths", "stress_results",
                            "anomaly_scores", "ecosystem_score", "freeze_recommendations"}
