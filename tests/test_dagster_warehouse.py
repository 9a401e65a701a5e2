"""The warehouse in Dagster: one materialization builds every model and the database file and
runs the SQL checks and the truth check against the chain; lineage follows the SQL files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from conftest import FEED_TEST_KEY, World
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
def test_marts_and_outputs_materialize_after_the_database(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from contagion.feed.keys import KEY_ENV
    from contagion.feed.publisher import FeedStore
    from contagion.registry import save_registry
    from dagster_project.contagion import contagion_marts, early_warning
    from dagster_project.outputs import health_report, risk_feed, solvency_commitments
    from dagster_project.resources import FeedResource, ReportResource

    db = tmp_path / "contagion.duckdb"
    shutil.copy(world.db, db)
    registry = world.registry if world.registry.risk_oracle else world.registry.model_copy(
        update={"risk_oracle": "0x00000000000000000000000000000000000000aa"})
    save_registry(registry, tmp_path / "registry.yaml")
    resources = {
        "chain": ChainResource(rpc_url=world.client.url,
                               registry=str(tmp_path / "registry.yaml")),
        "duckdb": DuckDBResource(database=str(db)),
        "feed": FeedResource(feed_dir=str(tmp_path / "feed")),
        "lake": LakeResource(root=str(world.data / "lake")),
        "report": ReportResource(report_dir=str(tmp_path)),
    }
    assets = [contagion_marts, early_warning, solvency_commitments, risk_feed, health_report]
    monkeypatch.delenv(KEY_ENV, raising=False)
    unsigned = dg.materialize(assets, resources=resources, raise_on_error=False)
    assert not unsigned.success  # no key: the feed asset fails, saying so
    assert FeedStore(tmp_path / "feed").latest() is None
    monkeypatch.setenv(KEY_ENV, FEED_TEST_KEY)
    run = dg.materialize(assets, resources=resources)
    assert run.success
    assert all(c.passed for c in run.get_asset_check_evaluations())
    materialized = {str(e.asset_key.to_user_string()) for e in
                    run.get_asset_materialization_events() if e.asset_key is not None}
    assert materialized == {"systemic_risk", "contagion_paths", "stress_results",
                            "anomaly_scores", "ecosystem_score", "freeze_recommendations",
                            "solvency_commitments", "risk_feed", "health_report"}
    feed = FeedStore(tmp_path / "feed").latest()
    assert feed is not None and all(v.commitment for v in feed.venues)
    # one report per run (the report does not wait for the feed), the newest as report.html
    reports = sorted((tmp_path / "reports").glob("health-*.html"))
    assert len(reports) == 2
    assert (tmp_path / "report.html").read_bytes() == reports[-1].read_bytes()
