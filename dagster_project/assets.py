"""Indexing assets, partitioned by block-range windows: raw logs and headers, decoded events
(one asset per `<protocol>__<event>` table) and the quarantine, each a thin call into
`contagion.indexing` with blocking checks beside it."""


import itertools
import json
from collections.abc import Iterator

import dagster as dg
import polars as pl
import pyarrow as pa

from contagion.chain.logs import safe_head
from contagion.indexing import (
    CANONICAL_TABLES,
    DECODED_TABLES,
    QUARANTINE,
    TOPIC0S,
    canonical_partition,
    child_addresses,
    contract_addresses,
    decode_partition,
    discover_children,
    parse_window_key,
    stored_part,
    supersede,
)
from contagion.ingest import BLOCKS, RAW_LOGS, index_partition
from contagion.lake import Lake, PartitionFile
from dagster_project.resources import ChainResource, LakeResource

Result = dg.MaterializeResult[None] | dg.AssetCheckResult
BLOCK_RANGES = "block_ranges"
block_ranges = dg.DynamicPartitionsDefinition(name=BLOCK_RANGES)


def _window_part(context: dg.AssetExecutionContext, chain: ChainResource, chain_id: int,
                 first_block: int) -> tuple[PartitionFile, int]:
    """The blocks of this run's window that exist (clipped to the safe head), and its width."""
    start, stop = parse_window_key(context.partition_key)
    client = chain.client()
    try:
        safe = safe_head(client, chain.confirmations)
    finally:
        client.close()
    part = PartitionFile(chain_id, max(start, first_block), min(stop, safe + 1))
    if part.stop <= part.start:
        raise dg.Failure(f"window {context.partition_key} holds no block at or below the safe "
                         f"head {safe} from block {first_block}")
    return part, stop - start


def _stored_window(context: dg.AssetExecutionContext, store: Lake, chain_id: int,
                   upstream: str) -> tuple[PartitionFile, int]:
    """The partition file `upstream` holds for this run's window, and the window's width."""
    start, stop = parse_window_key(context.partition_key)
    part = stored_part(store, upstream, chain_id, start, stop)
    if part is None:
        raise dg.Failure(f"no {upstream} for window {context.partition_key}: materialize it "
                         "first")
    return part, stop - start


@dg.multi_asset(
    specs=[dg.AssetSpec(RAW_LOGS, deps=["registry"], partitions_def=block_ranges,
                        group_name="indexing",
                        description="Logs of the registry's contracts with known topic0s "
                                    "(cryo's columns)."),
           dg.AssetSpec(BLOCKS, deps=["registry"], partitions_def=block_ranges,
                        group_name="indexing",
                        description="Headers of every block with a log, and both boundaries.")],
    check_specs=[
        dg.AssetCheckSpec("raw_logs_unique_log_keys", asset=RAW_LOGS, blocking=True,
                          description="(chain_id, block_number, log_index) is unique."),
        dg.AssetCheckSpec("blocks_contiguous_coverage", asset=BLOCKS, blocking=True,
                          description="The stored partitions join up: no gap, and each first "
                                      "block's parent is the previous partition's last block."),
    ],
)
def chain_logs(context: dg.AssetExecutionContext, chain: ChainResource,
               lake: LakeResource) -> Iterator[Result]:
    registry = chain.load_registry()
    part, width = _window_part(context, chain, registry.chain_id, registry.deployed_at_block)
    store = lake.lake()
    client = chain.client()
    try:
        created = discover_children(client, registry, part.stop - 1,
                                    chunk_blocks=chain.chunk_blocks,
                                    max_in_flight=chain.max_in_flight)
        addresses = sorted({*contract_addresses(registry), *child_addresses(created)})
        stats = index_partition(client, store, registry.chain_id, part, addresses,
                                list(TOPIC0S), chunk_blocks=chain.chunk_blocks,
                                max_in_flight=chain.max_in_flight)
    finally:
        client.close()
    supersede(store, (RAW_LOGS, BLOCKS), part, width)
    meta: dict[str, int | str] = {"first_block": part.start, "last_block": part.stop - 1,
                                  "last_block_hash": stats.last_block_hash}
    yield dg.MaterializeResult(asset_key=RAW_LOGS, metadata={**meta, "rows": stats.logs})
    yield dg.MaterializeResult(asset_key=BLOCKS, metadata={**meta, "rows": stats.headers})
    logs = store.read(RAW_LOGS, part)
    duplicates = logs.num_rows - logs.group_by(["chain_id", "block_number", "log_index"]
                                                ).aggregate([]).num_rows
    yield dg.AssetCheckResult(check_name="raw_logs_unique_log_keys", asset_key=RAW_LOGS,
                              passed=duplicates == 0, metadata={"duplicates": duplicates})
    yield _coverage_check(store, registry.chain_id, registry.deployed_at_block)


def _coverage_check(store: Lake, chain_id: int, first_block: int) -> dg.AssetCheckResult:
    parts = store.partitions(BLOCKS, chain_id)
    problems = []
    if parts and parts[0].start > first_block:
        problems.append(f"blocks {first_block}..{parts[0].start - 1} are not indexed")
    for before, after in itertools.pairwise(parts):
        if after.start != before.stop:
            problems.append(f"gap or overlap between {before} and {after}")
            continue
        linked = (store.metadata(BLOCKS, before)["last_block_hash"]
                  == store.metadata(BLOCKS, after)["first_parent_hash"])
        if not linked:
            problems.append(f"{after} does not continue {before}'s chain")
    return dg.AssetCheckResult(check_name="blocks_contiguous_coverage", asset_key=BLOCKS,
                               passed=not problems, metadata={
                                   "partitions": len(parts),
                                   "problems": "; ".join(problems[:5]) or "none"})


@dg.multi_asset(
    specs=[dg.AssetSpec(name, deps=[RAW_LOGS, BLOCKS], partitions_def=block_ranges,
                        group_name="decoded") for name in (*DECODED_TABLES, QUARANTINE)],
    check_specs=[dg.AssetCheckSpec("quarantine_reconciles", asset=QUARANTINE, blocking=True,
                                   description="decoded + quarantined + ignored = input logs")],
)
def decoded_events(context: dg.AssetExecutionContext, chain: ChainResource,
                   lake: LakeResource) -> Iterator[Result]:
    registry, store = chain.load_registry(), lake.lake()
    part, width = _stored_window(context, store, registry.chain_id, RAW_LOGS)
    result = decode_partition(store, registry, part)
    supersede(store, (*DECODED_TABLES, QUARANTINE), part, width)
    for name, table in result.tables.items():
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": table.num_rows})
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        "rows": result.quarantine.num_rows, "ignored": json.dumps(result.ignored)})
    yield dg.AssetCheckResult(check_name="quarantine_reconciles", asset_key=QUARANTINE,
                              passed=result.reconciles,
                              metadata={"input": result.input_rows,
                                        "decoded": result.decoded_rows,
                                        "quarantined": result.quarantine.num_rows,
                                        "ignored": result.ignored_rows})


@dg.multi_asset(
    specs=[dg.AssetSpec(name, deps=[*DECODED_TABLES], partitions_def=block_ranges,
                        group_name="canonical") for name in CANONICAL_TABLES],
    check_specs=[dg.AssetCheckSpec("prices_valid", asset="prices", blocking=True,
                                   description="Prices are finite, non-negative and ordered "
                                               "by block and log index per feed.")],
)
def canonical(context: dg.AssetExecutionContext, chain: ChainResource,
              lake: LakeResource) -> Iterator[Result]:
    registry, store = chain.load_registry(), lake.lake()
    part, width = _stored_window(context, store, registry.chain_id, QUARANTINE)
    client = chain.client()
    try:  # the claims created before this window (oTokens) are claims here too
        created = discover_children(client, registry, part.stop - 1,
                                    chunk_blocks=chain.chunk_blocks,
                                    max_in_flight=chain.max_in_flight)
    finally:
        client.close()
    tables = canonical_partition(store, registry, part, created=created)
    supersede(store, CANONICAL_TABLES, part, width)
    for name, table in tables.items():
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": table.num_rows})
    yield _prices_check(tables["prices"])


def _prices_check(prices: pa.Table) -> dg.AssetCheckResult:
    frame = pl.from_arrow(prices)
    assert isinstance(frame, pl.DataFrame)
    bad_value = frame.filter(~pl.col("price_usd").is_finite() | (pl.col("price_usd") < 0)).height
    keys = frame.select("source", "block_number", "log_index")
    unordered = keys.height - keys.filter(
        pl.struct("block_number", "log_index").rank("ordinal").over("source")
         == pl.int_range(1, pl.len() + 1).over("source")).height
    return dg.AssetCheckResult(check_name="prices_valid", asset_key="prices",
                               passed=bad_value == 0 and unordered == 0,
                               metadata={"rows": frame.height, "negative_or_nan": bad_value,
                                         "out_of_order": unordered})
