"""The whole Dagster pipeline on one data folder, in process: what `contagion demo` runs and what
`make ui` then shows. Two runs on a Dagster instance kept in the folder: every block-range window
indexed in one backfill run, then the build from the lake to the outputs."""


from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from contagion.chain.logs import safe_head
from contagion.chain.rpc import RpcClient
from contagion.indexing import window_keys
from contagion.registry import load_registry
from dagster_project.assets import BLOCK_RANGES, INDEXING_ASSETS
from dagster_project.definitions import BUILD_ASSETS
from dagster_project.definitions import registry as registry_asset
from dagster_project.resources import (
    ChainResource,
    FeedResource,
    LakeResource,
    ReportResource,
    WarehouseResource,
)

__all__ = ["PipelineRun", "run_pipeline"]

# the runs' own event log keeps every step; the terminal only needs warnings
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class PipelineRun:
    windows: int  # block-range partitions indexed
    index: dg.ExecuteInProcessResult
    build: dg.ExecuteInProcessResult

    def checks(self) -> list[dg.AssetCheckEvaluation]:
        return [*self.index.get_asset_check_evaluations(),
                *self.build.get_asset_check_evaluations()]

    def metadata(self, asset: str) -> dict[str, object]:
        for event in self.build.get_asset_materialization_events():
            if event.asset_key is not None and event.asset_key.to_user_string() == asset:
                materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
                return {k: v.value for k, v in materialization.metadata.items()}
        return {}


def run_pipeline(data_dir: Path, rpc_url: str, *, width: int = 25,
                 truth_sample: int = 25) -> PipelineRun:
    """Index the chain into data_dir/lake in windows of `width` blocks (each window's end is a
    snapshot: the early warning's window), then build the database, marts, commitments,
    signed feed, report and oracle updates, with the resources pointed at data_dir. Raises
    dagster's error when a step fails (a blocking check stops what depends on it)."""
    registry_file = data_dir / "registry.yaml"
    registry = load_registry(registry_file)
    chain = ChainResource(rpc_url=rpc_url, registry=str(registry_file), confirmations=0,
                          partition_width=width)
    resources = {
        "chain": chain, "lake": LakeResource(root=str(data_dir / "lake")),
        "warehouse_settings": WarehouseResource(truth_sample=truth_sample),
        "feed": FeedResource(feed_dir=str(data_dir / "feed")),
        "report": ReportResource(report_dir=str(data_dir)),
        "duckdb": DuckDBResource(database=str(data_dir / "contagion.duckdb"),
                                 connection_config={"access_mode": "READ_ONLY"}),
    }
    client = RpcClient(rpc_url)
    try:
        head = safe_head(client, 0)
    finally:
        client.close()
    keys = window_keys(registry.deployed_at_block, head, width)
    (data_dir / "dagster").mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.local_temp(str((data_dir / "dagster").resolve()),
                                             overrides={"telemetry": {"enabled": False}})
    instance.add_dynamic_partitions(BLOCK_RANGES, keys)
    index = dg.materialize(
        [registry_asset, *INDEXING_ASSETS], instance=instance,
        resources=resources, selection=INDEXING_ASSETS,
        run_config=_QUIET,
        tags={"dagster/asset_partition_range_start": keys[0],
              "dagster/asset_partition_range_end": keys[-1]})
    build = dg.materialize([registry_asset, *BUILD_ASSETS], instance=instance,
                           resources=resources, run_config=_QUIET)
    return PipelineRun(len(keys), index, build)
