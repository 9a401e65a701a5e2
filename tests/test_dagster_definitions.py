import shutil
from pathlib import Path

import dagster as dg
import pytest

import dagster_project
from dagster_project.assets import LAKE_POOL
from dagster_project.definitions import defs


def test_definitions_load_with_registry_asset() -> None:
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "registry" in keys


def test_the_lake_is_held_by_one_run_at_a_time(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # every asset that writes or reads the lake is in one pool ...
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys()}
    for name in ("raw_logs", "blocks", "quarantine", "flows", "prices", "fct_positions"):
        assert pools[name] == {LAKE_POOL}, name
    assert not pools["registry"]
    # ... and the instance `make ui` installs lets one run at a time hold it
    shutil.copy(Path(dagster_project.__file__).parent / "dagster.yaml", tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        pool = instance.get_concurrency_config().pool_config
        assert pool.default_pool_limit == 1
        assert pool.pool_granularity is not None and pool.pool_granularity.value == "run"
        assert instance.run_coordinator is not None
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_the_index_job_writes_every_lake_table_the_models_read() -> None:
    """`contagion demo` once indexed with a hand-kept list of assets that missed the state
    reads: the warehouse then found no Compound state and the truth check stopped the build.
    The index job, the demo pipeline and the Definitions take INDEXING_ASSETS; every lake table
    the warehouse reads must come out of it."""
    from contagion.warehouse import lake_schemas
    from dagster_project.assets import INDEXING_ASSETS
    from dagster_project.sensors import index_job

    written = {key.to_user_string() for asset in INDEXING_ASSETS for key in asset.keys}
    assert set(lake_schemas()) <= written
    graph = defs.resolve_asset_graph()
    selected = {key.to_user_string() for key in
                index_job.selection.resolve(graph)}
    assert selected == written
