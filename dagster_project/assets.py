"""Indexing assets, partitioned by block-range windows: raw logs and headers, decoded events
(one asset per `<protocol>__<event>` table) and the quarantine, canonical tables and the state
reads the events call for, each a thin call into
`contagion.indexing` with blocking checks beside it."""


import itertools
import json
from collections.abc import Iterator

import dagster as dg
import polars as pl
import pyarrow as pa

from contagion.chain.logs import safe_head
from contagion.chain.rpc import RpcClient
from contagion.indexing import (
    CANONICAL_TABLES,
    DECODED_TABLES,
    FETCHED_FOR,
    QUARANTINE,
    TOPIC0S,
    canonical_partition,
    child_addresses,
    contract_addresses,
    decode_partition,
    derived_for,
    discover_children,
    drop_invalidated,
    fetched_for,
    parse_window_key,
    stored_part,
    supersede,
)
from contagion.ingest import BLOCKS, RAW_LOGS, index_partition
from contagion.lake import Lake, PartitionFile
from contagion.protocols.chainlink import resolve_feeds
from contagion.protocols.compound_v3 import READ_FROM
from contagion.states import STATE_TABLES, state_partition
from dagster_project.resources import ChainResource, LakeResource

Result = dg.MaterializeResult[None] | dg.AssetCheckResult
BLOCK_RANGES = "block_ranges"
block_ranges = dg.DynamicPartitionsDefinition(name=BLOCK_RANGES)


def _window_parts(context: dg.AssetExecutionContext, client: RpcClient, confirmations: int,
                  chain_id: int, first_block: int) -> Iterator[tuple[PartitionFile, int]]:
    """Each window of this run (one, or a backfill range run at once) clipped to the blocks that
    exist at or below the safe head, with its width."""
    safe = safe_head(client, confirmations)
    for key in context.partition_keys:
        start, stop = parse_window_key(key)
        part = PartitionFile(chain_id, max(start, first_block), min(stop, safe + 1))
        if part.stop <= part.start:
            raise dg.Failure(f"window {key} holds no block at or below the safe head {safe} "
                             f"from block {first_block}")
        yield part, stop - start


def _stored_windows(context: dg.AssetExecutionContext, store: Lake, chain_id: int,
                    upstream: str) -> Iterator[tuple[PartitionFile, int]]:
    """The partition file `upstream` holds for each window of this run, and the width."""
    for key in context.partition_keys:
        start, stop = parse_window_key(key)
        part = stored_part(store, upstream, chain_id, start, stop)
        if part is None:
            raise dg.Failure(f"no {upstream} for window {key}: materialize it first")
        yield part, stop - start


# A backfill of many windows runs as one run: Dagster's per-run overhead (seconds) would
# otherwise dwarf indexing a window (a fraction of a second).
_SINGLE_RUN = dg.BackfillPolicy.single_run()
# The lake has one writer (docs/lake.md): a run that re-indexes after a reorg deletes other
# windows' invalidated files. Every asset that writes or reads the lake is in this pool, and
# the instance's dagster.yaml (dagster_project/dagster.yaml, installed by `make ui`) lets one
# run at a time hold it: concurrent backfills and sensor runs queue instead of interleaving.
LAKE_POOL = "contagion_lake"


@dg.multi_asset(
    backfill_policy=_SINGLE_RUN,
    pool=LAKE_POOL,
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
    store = lake.lake()
    logs = headers = duplicates = 0
    meta: dict[str, int | str] = {}
    client = chain.client()
    try:
        # what a reorg invalidated goes first, as in `contagion index`: also the partitions
        # above a shorter chain's head, which no window of a run asks for
        dropped = drop_invalidated(client, store, registry.chain_id, chain.partition_width,
                                   chain.reorg_window)
        parts = list(_window_parts(context, client, chain.confirmations, registry.chain_id,
                                   registry.deployed_at_block))
        # discovered once for the run, as `contagion index` does for its range
        listed = registry
        registry = resolve_feeds(client, registry, parts[-1][0].stop - 1)
        created = discover_children(client, registry, parts[-1][0].stop - 1,
                                    chunk_blocks=chain.chunk_blocks,
                                    max_in_flight=chain.max_in_flight)
        addresses = sorted({*contract_addresses(registry), *child_addresses(created)})
        wanted = fetched_for(listed, created, (part for part, _ in parts))
        for part, width in parts:
            stats = index_partition(client, store, registry.chain_id, part, addresses,
                                    list(TOPIC0S), chunk_blocks=chain.chunk_blocks,
                                    max_in_flight=chain.max_in_flight,
                                    extra={FETCHED_FOR: wanted[part]})
            supersede(store, (RAW_LOGS, BLOCKS), part, width)
            logs, headers = logs + stats.logs, headers + stats.headers
            meta = {"first_block": meta.get("first_block", part.start),
                    "last_block": part.stop - 1, "last_block_hash": stats.last_block_hash}
            stored = store.read(RAW_LOGS, part)
            duplicates += stored.num_rows - stored.group_by(
                ["chain_id", "block_number", "log_index"]).aggregate([]).num_rows
    finally:
        client.close()
    meta["invalidated_by_reorg"] = len(dropped)
    yield dg.MaterializeResult(asset_key=RAW_LOGS, metadata={**meta, "rows": logs})
    yield dg.MaterializeResult(asset_key=BLOCKS, metadata={**meta, "rows": headers})
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
    backfill_policy=_SINGLE_RUN,
    pool=LAKE_POOL,
    specs=[dg.AssetSpec(name, deps=[RAW_LOGS, BLOCKS], partitions_def=block_ranges,
                        group_name="decoded") for name in (*DECODED_TABLES, QUARANTINE)],
    check_specs=[dg.AssetCheckSpec("quarantine_reconciles", asset=QUARANTINE, blocking=True,
                                   description="decoded + quarantined + ignored = input logs")],
)
def decoded_events(context: dg.AssetExecutionContext, chain: ChainResource,
                   lake: LakeResource) -> Iterator[Result]:
    registry, store = chain.load_registry(), lake.lake()
    rows = dict.fromkeys((*DECODED_TABLES, QUARANTINE), 0)
    counts = {"input": 0, "decoded": 0, "quarantined": 0, "ignored": 0}
    ignored: dict[str, int] = {}
    reconciles = True
    derived = derived_for(registry)  # as `contagion index` writes it: a later run can skip these
    for part, width in _stored_windows(context, store, registry.chain_id, RAW_LOGS):
        result = decode_partition(store, registry, part, derived=derived)
        supersede(store, (*DECODED_TABLES, QUARANTINE), part, width)
        for name, table in result.tables.items():
            rows[name] += table.num_rows
        rows[QUARANTINE] += result.quarantine.num_rows
        for reason, n in result.ignored.items():
            ignored[reason] = ignored.get(reason, 0) + n
        reconciles &= result.reconciles
        for key, n in (("input", result.input_rows), ("decoded", result.decoded_rows),
                       ("quarantined", result.quarantine.num_rows),
                       ("ignored", result.ignored_rows)):
            counts[key] += n
    for name in DECODED_TABLES:
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": rows[name]})
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        "rows": rows[QUARANTINE], "ignored": json.dumps(ignored)})
    yield dg.AssetCheckResult(check_name="quarantine_reconciles", asset_key=QUARANTINE,
                              passed=reconciles, metadata=dict(counts))


@dg.multi_asset(
    backfill_policy=_SINGLE_RUN,
    pool=LAKE_POOL,
    specs=[dg.AssetSpec(name, deps=[*DECODED_TABLES], partitions_def=block_ranges,
                        group_name="canonical") for name in CANONICAL_TABLES],
    check_specs=[dg.AssetCheckSpec("prices_valid", asset="prices", blocking=True,
                                   description="Prices are finite, non-negative and ordered "
                                               "by block and log index per feed.")],
)
def canonical(context: dg.AssetExecutionContext, chain: ChainResource,
              lake: LakeResource) -> Iterator[Result]:
    registry, store = chain.load_registry(), lake.lake()
    rows = dict.fromkeys(CANONICAL_TABLES, 0)
    prices: list[pa.Table] = []
    parts = list(_stored_windows(context, store, registry.chain_id, QUARANTINE))
    client = chain.client()
    try:  # the claims created up to the run's last window (oTokens) are claims here too,
        # and the aggregators behind proxy feeds log their answers
        registry = resolve_feeds(client, registry, parts[-1][0].stop - 1)
        created = discover_children(client, registry, parts[-1][0].stop - 1,
                                    chunk_blocks=chain.chunk_blocks,
                                    max_in_flight=chain.max_in_flight)
        for part, width in parts:
            tables = canonical_partition(store, registry, part, created=created)
            supersede(store, CANONICAL_TABLES, part, width)
            for name, table in tables.items():
                rows[name] += table.num_rows
            prices.append(tables["prices"])
    finally:
        client.close()
    for name in CANONICAL_TABLES:
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": rows[name]})
    yield _prices_check(pa.concat_tables(prices))


@dg.multi_asset(
    backfill_policy=_SINGLE_RUN,
    pool=LAKE_POOL,
    specs=[dg.AssetSpec(name, deps=[BLOCKS, *READ_FROM], partitions_def=block_ranges,
                        group_name="states",
                        description="Contract state the events call for, read at the "
                                    "partition's blocks by hash (contagion.states).")
           for name in STATE_TABLES],
    check_specs=[dg.AssetCheckSpec("states_read", asset=name, blocking=False,
                                   description="Every state read answered (no unread_reason).")
                 for name in STATE_TABLES],
)
def contract_states(context: dg.AssetExecutionContext, chain: ChainResource,
                    lake: LakeResource) -> Iterator[Result]:
    registry, store = chain.load_registry(), lake.lake()
    rows = dict.fromkeys(STATE_TABLES, 0)
    unread = dict.fromkeys(STATE_TABLES, 0)
    client = chain.client()
    try:
        for part, width in _stored_windows(context, store, registry.chain_id, QUARANTINE):
            tables = state_partition(client, store, registry, part)
            supersede(store, STATE_TABLES, part, width)
            for name, table in tables.items():
                rows[name] += table.num_rows
                unread[name] += table.num_rows - table["unread_reason"].null_count
    finally:
        client.close()
    for name in STATE_TABLES:
        yield dg.MaterializeResult(asset_key=name, metadata={"rows": rows[name]})
        yield dg.AssetCheckResult(check_name="states_read", asset_key=name,
                                  passed=unread[name] == 0, metadata={"unread": unread[name]})


def _prices_check(prices: pa.Table) -> dg.AssetCheckResult:
    frame = pl.from_arrow(prices)
    assert isinstance(frame, pl.DataFrame)
    bad_value = frame.filter(~pl.col("price").is_finite() | (pl.col("price") < 0)).height
    keys = frame.select("source", "block_number", "log_index")
    unordered = keys.height - keys.filter(
        pl.struct("block_number", "log_index").rank("ordinal").over("source")
         == pl.int_range(1, pl.len() + 1).over("source")).height
    return dg.AssetCheckResult(check_name="prices_valid", asset_key="prices",
                               passed=bad_value == 0 and unordered == 0,
                               metadata={"rows": frame.height, "negative_or_nan": bad_value,
                                         "out_of_order": unordered})


# Every asset that fills a block range of the lake, in lineage order: the index job, the demo
# pipeline and the Definitions all take this one list.
INDEXING_ASSETS = [chain_logs, decoded_events, canonical, contract_states]
