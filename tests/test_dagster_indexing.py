"""The Dagster layer on a real devnet: the sensor adds block-range partitions up to the safe
head, materializing them runs the blocking checks, and the lake ends up identical to what
`contagion index` (the same library, called directly) writes."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from contagion.chain.rpc import RpcClient
from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.indexing import index_range
from contagion.lake import Lake
from contagion.registry import load_registry
from dagster_project.assets import (
    BLOCK_RANGES,
    INDEXING_ASSETS,
)
from dagster_project.definitions import registry as registry_asset
from dagster_project.resources import ChainResource, LakeResource
from dagster_project.sensors import block_range_sensor

pytestmark = pytest.mark.devnet


def test_sensor_partitions_checks_and_same_lake_as_the_cli(tmp_path: Path) -> None:
    info = start_node(tmp_path / "node", free_port(), attached=True)
    try:
        registry = deploy_ecosystem(info.url, tmp_path)
        chain = ChainResource(rpc_url=info.url, registry=str(tmp_path / "registry.yaml"),
                              confirmations=0, partition_width=4)
        lake = LakeResource(root=str(tmp_path / "lake_dagster"))
        instance = dg.DagsterInstance.ephemeral()
        context = dg.build_sensor_context(instance=instance,
                                          resources={"chain": chain, "lake": lake})
        result = block_range_sensor(context)
        assert isinstance(result, dg.SensorResult)
        assert result.dynamic_partitions_requests
        keys = list(result.dynamic_partitions_requests[0].partition_keys or [])
        instance.add_dynamic_partitions(BLOCK_RANGES, keys)
        assert [r.partition_key for r in result.run_requests or []] == list(keys)
        for key in keys:
            run = dg.materialize([registry_asset, *INDEXING_ASSETS], partition_key=key,
                                 instance=instance, resources={"chain": chain, "lake": lake},
                                 selection=INDEXING_ASSETS)
            assert run.success
            checks = run.get_asset_check_evaluations()
            assert {c.check_name for c in checks} == {
                "raw_logs_unique_log_keys", "blocks_contiguous_coverage", "quarantine_reconciles",
                "prices_valid", "states_read"}
            assert all(c.passed for c in checks)
        # Nothing new on chain: the sensor asks for nothing more.
        again = block_range_sensor(dg.build_sensor_context(
            instance=instance, resources={"chain": chain, "lake": lake}))
        assert isinstance(again, dg.SensorResult) and not again.run_requests

        client = RpcClient(info.url)
        summary = index_range(client, Lake(tmp_path / "lake_cli"), load_registry(
            tmp_path / "registry.yaml"), width=4)
        # Dagster's files say what they were read and derived for, as the CLI's do: the CLI
        # skips them all on the same registry
        over = index_range(client, Lake(tmp_path / "lake_dagster"), load_registry(
            tmp_path / "registry.yaml"), width=4)
        client.close()
        assert (over.skipped, over.refetched, over.rederived, over.windows) == (len(keys), 0, 0, [])
        assert summary.logs > 0 and len(summary.windows) == len(keys)
        dagster_lake, cli_lake = Lake(tmp_path / "lake_dagster"), Lake(tmp_path / "lake_cli")
        for table in ("raw_logs", "blocks", "quarantine", "erc20__transfer",
                      "morpho_blue__create_market", "chainlink__answer_updated", "flows",
                      "prices", "compound_v3__states", "compound_v3__principals"):
            parts = dagster_lake.partitions(table, registry.chain_id)
            assert parts == cli_lake.partitions(table, registry.chain_id)
            for part in parts:
                assert dagster_lake.read(table, part).equals(cli_lake.read(table, part))
        # A backfill of the whole range runs as one run and writes the same partitions.
        ranged = LakeResource(root=str(tmp_path / "lake_range"))
        run = dg.materialize([registry_asset, *INDEXING_ASSETS],
                             instance=instance, resources={"chain": chain, "lake": ranged},
                             selection=INDEXING_ASSETS,
                             tags={"dagster/asset_partition_range_start": keys[0],
                                   "dagster/asset_partition_range_end": keys[-1]})
        assert run.success and all(c.passed for c in run.get_asset_check_evaluations())
        range_lake = Lake(tmp_path / "lake_range")
        for table in ("raw_logs", "blocks", "erc20__transfer", "flows", "prices",
                      "compound_v3__states"):
            parts = range_lake.partitions(table, registry.chain_id)
            assert parts == cli_lake.partitions(table, registry.chain_id)
            for part in parts:
                assert range_lake.read(table, part).equals(cli_lake.read(table, part))
        created = sum(cli_lake.read("morpho_blue__create_market", p).num_rows
                      for p in cli_lake.partitions("morpho_blue__create_market",
                                                   registry.chain_id))
        assert created == len(next(v for v in registry.venues if v.id == "morpho_blue").markets)
    finally:
        stop_node(tmp_path / "node")
