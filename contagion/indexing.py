"""The indexing pipeline over block-range partitions: raw logs and headers, decoded events,
canonical tables (flows, prices, perp positions, option trades, AMM swaps) and the state reads
the events call for (`contagion.states`). Dagster's assets
and `contagion index` both call these functions.

Partitions are aligned windows of `width` blocks, [k·width, (k+1)·width), clipped to the blocks
asked for and to the safe head. The window at the head may be indexed while still open; when
the chain has moved on it is indexed again to its new end, and the file with the larger range
replaces the smaller one (`supersede`): for each window start the lake keeps one file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from contagion.chain.logs import chain_id_of, get_logs, safe_head
from contagion.chain.rpc import RpcClient
from contagion.ingest import (
    BLOCKS,
    RAW_LOGS,
    PartitionRead,
    StoredPartition,
    check_reorgs,
    complete_partitions,
    read_partition,
    write_partition,
)
from contagion.lake import Lake, PartitionFile
from contagion.protocols import CREATOR
from contagion.protocols.canonical import CANONICAL_SCHEMAS, canonical_tables
from contagion.protocols.chainlink import resolve_feeds
from contagion.protocols.decode import (
    CATALOG,
    DecodeResult,
    decode_logs,
    registered_contracts,
    snake_case,
)
from contagion.registry import Registry
from contagion.states import STATE_SCHEMAS, STATE_TABLES, state_partition

__all__ = [
    "CANONICAL_TABLES",
    "DECODED_TABLES",
    "DERIVATION_CODE",
    "DERIVATION_VERSION",
    "IndexSummary",
    "StoredWindows",
    "WindowResult",
    "canonical_partition",
    "child_addresses",
    "contract_addresses",
    "decode_partition",
    "derived_for",
    "discover_children",
    "drop_invalidated",
    "index_range",
    "parse_window_key",
    "plan_windows",
    "stored_part",
    "supersede",
    "window_key",
    "window_keys",
]

QUARANTINE = "quarantine"
DECODED_TABLES = tuple(layout.table for layout in CATALOG.layouts)
CANONICAL_TABLES = tuple(CANONICAL_SCHEMAS)
ALL_TABLES = (RAW_LOGS, BLOCKS, *DECODED_TABLES, QUARANTINE, *CANONICAL_TABLES, *STATE_TABLES)
# written last: the partition is complete
DERIVED_TABLES = (QUARANTINE, *CANONICAL_TABLES, *STATE_TABLES)
# partitions read while one is decoded and written: two keep the node busy while a partition
# is decoded (+14 % on the ingest bench against one); the client's max_in_flight still bounds
# the requests on the wire
READ_AHEAD = 2
TOPIC0S = tuple(dict.fromkeys(layout.spec.topic0 for layout in CATALOG.layouts))


def contract_addresses(registry: Registry) -> list[str]:
    """Every contract the registry lists (venues, tokens, feeds): what `eth_getLogs` asks for."""
    everything, _ = registered_contracts(registry)
    return sorted("0x" + address.hex() for address in everything)


def discover_children(client: RpcClient, registry: Registry, upto: int, *,
                      chunk_blocks: int = 2_000, max_in_flight: int = 4) -> pa.Table:
    """The creation events (`protocols.CREATOR`) the registry's contracts emitted from the
    deployment block to `upto`, decoded: one `opyn_gamma__otoken_created` table. Its addresses
    join the registry's in eth_getLogs, and its rows tell the canonical mapping which tokens
    are claims. Reading the whole history up to the window (narrow: a few contracts, one topic)
    keeps every partition independent of the order partitions are indexed in."""
    spec, _ = CREATOR
    creators = sorted({"0x" + a.hex() for protocol, contracts in
                       registered_contracts(registry)[1].items() if protocol == spec.protocol
                       for a in contracts})
    layout = CATALOG.layout(f"{spec.protocol}__{snake_case(spec.name)}")
    if not creators or upto < registry.deployed_at_block:
        return layout.schema.empty_table()
    logs = get_logs(client, registry.deployed_at_block, upto, creators, [spec.topic0],
                    chain_id=registry.chain_id, chunk_blocks=chunk_blocks,
                    max_in_flight=max_in_flight)
    return decode_logs(logs, registry=registry).tables[layout.table]


def child_addresses(created: pa.Table) -> list[str]:
    _, column = CREATOR
    return sorted({"0x" + bytes(a).hex() for a in created[column].to_pylist()})


FETCHED_FOR = "fetched_for"  # raw_logs / blocks metadata: what eth_getLogs asked for


def fetched_for(registry: Registry, created: pa.Table, parts: Iterable[PartitionFile]
                ) -> dict[PartitionFile, str]:
    """Per partition, a digest of what its eth_getLogs asks for: the contracts the registry
    lists, those created before the partition ends (a contract cannot log before it exists),
    and the topic0s the decoder knows. Stored with the partition's files; a stored partition
    whose digest differs was read for another registry or an older decoder, so it may lack logs
    the pipeline now keeps, and is read again (`index_range`). The registry is the one listed,
    not `resolve_feeds`' (the aggregators it finds follow from the proxies listed)."""
    contracts, topics = contract_addresses(registry), sorted(TOPIC0S)
    born = created.sort_by("block_number")
    blocks = born["block_number"].to_numpy()
    digests: dict[int, str] = {}  # by the number of children born before the partition ends
    out = {}
    for part in parts:
        n = int(np.searchsorted(blocks, part.stop))  # those with block_number < part.stop
        if n not in digests:
            wanted = "\n".join([*contracts, "", *child_addresses(born.slice(0, n)), "",
                                *topics])
            digests[n] = hashlib.sha256(wanted.encode()).hexdigest()
        out[part] = digests[n]
    return out


DERIVED_FOR = "derived_for"  # quarantine metadata: what decoded and mapped the partition


DERIVATION_VERSION = 1
"""Raised by hand when the code that turns logs into rows (DERIVATION_CODE) changes in a way
that can change a stored partition's rows without changing a schema: every partition of a lake
is then derived again (`derived_for`). tests/protocols/test_derivation_version.py pins these
files' contents to this number, so no such change lands without someone deciding."""

DERIVATION_CODE = ("contagion/protocols/*.py", "contagion/states.py", "contagion/chain/logs.py")


def derived_for(registry: Registry) -> str:
    """A digest of what turns a partition's raw logs into its decoded, canonical and state
    tables: the listed registry whole (venue attribution, feeds' decimals and quotes, claims),
    the tables the pipeline writes (event declarations, schemas) and DERIVATION_VERSION. Stored
    on the quarantine file, the mark of a finished decoding; a partition derived under another
    digest is derived again from the lake's raw logs, without reading the chain's logs again
    (`index_range`)."""
    tables = [f"{layout.table} {layout.spec.declaration} {layout.schema}"
              for layout in CATALOG.layouts]
    tables += [f"{name} {schema}" for name, schema in
               sorted({**CANONICAL_SCHEMAS, **STATE_SCHEMAS}.items())]
    wanted = "\n".join([f"derivation {DERIVATION_VERSION}", registry.model_dump_json(), "",
                        *tables])
    return hashlib.sha256(wanted.encode()).hexdigest()


def plan_windows(chain_id: int, first: int, last: int, width: int) -> list[PartitionFile]:
    """The partitions covering blocks first..last (inclusive): aligned windows, clipped."""
    if width < 1:
        raise ValueError(f"partition width must be at least 1 block, got {width}")
    if last < first:
        return []
    starts = range(first - first % width, last + 1, width)
    return [PartitionFile(chain_id, max(s, first), min(s + width, last + 1)) for s in starts]


def window_of(part: PartitionFile, width: int) -> int:
    return part.start - part.start % width


def window_key(start: int, stop: int) -> str:
    """A window's partition key, e.g. `000000001000-000000002000` (half-open)."""
    return f"{start:012d}-{stop:012d}"


def parse_window_key(key: str) -> tuple[int, int]:
    start, _, stop = key.partition("-")
    if not (start.isdigit() and stop.isdigit()) or int(stop) <= int(start):
        raise ValueError(f"{key!r} is not a block-range partition key (start-stop)")
    return int(start), int(stop)


def window_keys(first: int, last: int, width: int) -> list[str]:
    """The keys of the aligned windows that hold blocks first..last."""
    if last < first:
        return []
    return [window_key(s, s + width) for s in range(first - first % width, last + 1, width)]


class StoredWindows:
    """The files of some tables grouped by window (the start of its aligned range): one folder
    listing per table, then kept up to date as files are written (`add`) and superseded.
    Listing a folder for every partition would make a run quadratic in the lake's size (a
    mainnet lake at 1,000-block partitions holds 20,000 files per table)."""

    def __init__(self, lake: Lake, tables: Iterable[str], chain_id: int, width: int) -> None:
        self.width = width
        self.tables = tuple(tables)
        self._files: dict[str, dict[int, set[PartitionFile]]] = {}
        for table in self.tables:
            windows = self._files[table] = defaultdict(set)
            for part in lake.partitions(table, chain_id):
                windows[window_of(part, width)].add(part)

    def in_window(self, table: str, start: int) -> set[PartitionFile]:
        """The files of `table` in the window starting at `start` (a multiple of width)."""
        return self._files[table].get(start, set())

    def has(self, table: str, part: PartitionFile) -> bool:
        return part in self.in_window(table, window_of(part, self.width))

    def add(self, tables: Iterable[str], part: PartitionFile) -> None:
        for table in tables:
            self._files[table][window_of(part, self.width)].add(part)

    def discard(self, table: str, part: PartitionFile) -> None:
        self._files[table][window_of(part, self.width)].discard(part)


def stored_part(lake: Lake, table: str, chain_id: int, start: int, stop: int,
                stored: StoredWindows | None = None) -> PartitionFile | None:
    """The file of `table` inside window [start, stop), if the lake has one (from `stored`
    when given, which must list `table` by windows of stop - start blocks)."""
    candidates = (lake.partitions(table, chain_id) if stored is None
                  else stored.in_window(table, start))
    inside = [p for p in candidates if start <= p.start and p.stop <= stop]
    return max(inside, key=lambda p: p.stop) if inside else None


def covers(outer: PartitionFile, inner: PartitionFile) -> bool:
    return outer.start <= inner.start and inner.stop <= outer.stop


def supersede(lake: Lake, tables: Iterable[str], part: PartitionFile, width: int,
              stored: StoredWindows | None = None) -> None:
    """Delete the other files of `part`'s window that `part` covers (a window indexed while
    open, or a partition left by an interrupted run); `stored`, when given, says which files
    there are and is kept up to date. A file `part` does not cover is kept: its blocks are not
    in `part`, and deleting it would lose them."""
    window = window_of(part, width)
    for table in tables:
        candidates = (lake.partitions(table, part.chain_id) if stored is None
                      else list(stored.in_window(table, window)))
        for other in candidates:
            if other != part and window_of(other, width) == window and covers(part, other):
                lake.delete(table, other)
                if stored is not None:
                    stored.discard(table, other)


def drop_partition(lake: Lake, part: PartitionFile, stored: StoredWindows) -> None:
    """Delete every file of `part` in `stored`'s tables, `blocks` first: from the first
    deletion on the partition no longer looks complete, so a crash half-way leaves files a
    rerun replaces, never a partition that looks whole."""
    for table in sorted(stored.tables, key=lambda t: t != BLOCKS):
        if stored.has(table, part):
            lake.delete(table, part)
            stored.discard(table, part)


def tidy_window(lake: Lake, stored: StoredWindows, window: int,
                complete: Iterable[PartitionFile], derived: Sequence[str],
                done: set[PartitionFile]) -> None:
    """Delete what an interrupted run left in a window, so no block is read twice: a complete
    partition (with its derived files) that a wider complete one covers (the run stopped
    between writing a grown window and superseding the narrower one), and every file that is
    not one of the complete partitions left (a partition half written or half deleted).
    `done` loses the partitions deleted."""
    whole = sorted(complete, key=lambda p: p.start - p.stop)  # widest first
    for part in whole:
        if part in done and all(stored.has(t, part) for t in derived):
            for other in [o for o in whole if o != part and o in done and covers(part, o)]:
                drop_partition(lake, other, stored)
                done.discard(other)
    kept = {p for p in whole if p in done}
    for table in stored.tables:
        for file in list(stored.in_window(table, window)):
            if file not in kept:
                lake.delete(table, file)
                stored.discard(table, file)


def drop_invalidated(client: RpcClient, lake: Lake, chain_id: int, width: int,
                     reorg_window: int, *, complete: Sequence[StoredPartition] | None = None,
                     stored: StoredWindows | None = None) -> list[PartitionFile]:
    """Delete from every table the partitions a reorg invalidated (`check_reorgs`), and what an
    interrupted run left in their windows (`tidy_window`); returns the partitions deleted.
    Above the chain's new head (a reorg to a shorter chain) nothing would index them again, so
    they must go here. A reorg deeper than `reorg_window` raises DeepReorgError and changes
    nothing. `stored`: the lake's files of `ALL_TABLES`, kept up to date (listed here only if
    something is to go: a run without a reorg lists no folder)."""
    complete = complete_partitions(lake, chain_id) if complete is None else complete
    stale = check_reorgs(client, lake, chain_id, reorg_window, complete=complete)
    if not stale:
        return []
    stored = StoredWindows(lake, ALL_TABLES, chain_id, width) if stored is None else stored
    for part in stale:
        drop_partition(lake, part, stored)
    done = {part for part, _ in complete} - set(stale)
    for window in sorted({window_of(p, width) for p in stale}):
        tidy_window(lake, stored, window, [p for p in stored.in_window(BLOCKS, window)
                                           if p in done], DERIVED_TABLES, done)
    return stale


def grown_to_stored(part: PartitionFile, here: Sequence[PartitionFile]) -> PartitionFile:
    """The partition to index for `part`: a complete stored one of its window (`here`) that
    covers it, else the smallest range covering `part` and those, so writing it supersedes them
    instead of losing the blocks they hold outside `part`."""
    holder = max((c for c in here if covers(c, part)), key=lambda c: c.stop - c.start,
                 default=None)
    if holder is not None:
        return holder
    return PartitionFile(part.chain_id, min([part.start, *(c.start for c in here)]),
                         max([part.stop, *(c.stop for c in here)]))


def decode_partition(lake: Lake, registry: Registry | None, part: PartitionFile,
                     read: PartitionRead | None = None, *,
                     derived: str | None = None) -> DecodeResult:
    """Decode a partition's raw logs (the lake's, unless the `read` just stored is given) into
    one file per decoded table, plus its quarantine.

    The quarantine file is written last and carries the accounting (input, decoded, ignored),
    so its presence says the partition's decoding is complete, and `derived` (the registry's
    `derived_for`) under what."""
    if read is None:
        raw, blocks = lake.read(RAW_LOGS, part), lake.read(BLOCKS, part)
    else:
        raw, blocks = read.logs, read.headers
    result = decode_logs(raw, blocks=blocks, registry=registry)
    for name, table in result.tables.items():
        lake.write(name, part, table)
    lake.write(QUARANTINE, part, result.quarantine, metadata={
        "input_rows": str(result.input_rows), "decoded_rows": str(result.decoded_rows),
        "ignored": json.dumps(result.ignored, sort_keys=True),
        **({} if derived is None else {DERIVED_FOR: derived})})
    return result


def canonical_partition(lake: Lake, registry: Registry | None, part: PartitionFile,
                        decoded: dict[str, pa.Table] | None = None, *,
                        created: pa.Table | None = None) -> dict[str, pa.Table]:
    """Flows, prices, perp positions, option trades, AMM swaps (and the flows quarantine) of a
    partition, from its decoded tables (read from the lake unless given); `created`: the
    chain's creation events up to the partition (`discover_children`)."""
    if decoded is None:
        decoded = {name: lake.read(name, part) for name in DECODED_TABLES}
    tables = canonical_tables(decoded, registry, created=created)
    for name, table in tables.items():
        lake.write(name, part, table)
    return tables


@dataclass
class WindowResult:
    part: PartitionFile
    logs: int
    decoded: int
    quarantined: int
    ignored: int
    seconds: float


@dataclass
class IndexSummary:
    chain_id: int
    first_block: int
    last_block: int
    safe_head: int
    windows: list[WindowResult] = field(default_factory=list)
    skipped: int = 0  # windows already complete in the lake
    reindexed_after_reorg: int = 0  # partitions a reorg invalidated, re-indexed in this run
    removed_after_reorg: int = 0  # ... outside this run's range (above its last block): deleted
    refetched: int = 0  # complete partitions read again: fetched for another registry or decoder
    rederived: int = 0  # ... derived again from their raw logs: derived under another registry
    # complete partitions outside this run's windows that are refetched or rederived when a run
    # covers them: until then they lack what this registry and decoder would give
    outdated_elsewhere: list[PartitionFile] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def logs(self) -> int:
        return sum(w.logs for w in self.windows)

    @property
    def blocks(self) -> int:
        return sum(w.part.stop - w.part.start for w in self.windows)


def index_range(client: RpcClient, lake: Lake, registry: Registry, *, first: int | None = None,
                last: int | None = None, width: int = 1_000, confirmations: int = 0,
                reorg_window: int = 128, chunk_blocks: int = 2_000, max_in_flight: int = 4,
                on_window: Callable[[WindowResult], None] | None = None,
                on_plan: Callable[[list[PartitionFile]], None] | None = None) -> IndexSummary:
    """Index blocks first..last (default: the registry's deployment block to the safe head).

    Stored partitions that a reorg invalidated are re-indexed first (a reorg deeper than
    `reorg_window` raises DeepReorgError and changes nothing); windows already complete are
    skipped, so a rerun after a crash only does what is missing, unless they were read for
    another registry or an older decoder (`fetched_for`): those are read again; or derived under
    another registry (`derived_for`): those are derived again from their raw logs. Stored
    partitions outside the range that are out of date are only counted
    (`IndexSummary.outdated_elsewhere`).
    """
    began = time.monotonic()
    chain_id = registry.chain_id
    reported = chain_id_of(client)
    if reported != chain_id:
        raise ValueError(f"the endpoint serves chain {reported}, the registry describes "
                         f"{registry.network} (chain {chain_id})")
    safe = safe_head(client, confirmations)
    first = registry.deployed_at_block if first is None else first
    last = safe if last is None else min(last, safe)
    complete = complete_partitions(lake, chain_id)
    stored = StoredWindows(lake, ALL_TABLES, chain_id, width)
    # what a reorg invalidated goes now, inside this run's range or not: its blocks are gone
    stale = drop_invalidated(client, lake, chain_id, width, reorg_window, complete=complete,
                             stored=stored)
    done = {part for part, _ in complete if stored.has(BLOCKS, part)}  # those not dropped

    def complete_in(window: int) -> list[PartitionFile]:  # by window: no scan of the lake
        return [p for p in stored.in_window(BLOCKS, window) if p in done]

    plan = list(dict.fromkeys(grown_to_stored(p, complete_in(window_of(p, width)))
                              for p in plan_windows(chain_id, first, last, width)))
    planned = {window_of(p, width) for p in plan}
    for window in sorted(planned):
        tidy_window(lake, stored, window, complete_in(window), DERIVED_TABLES, done)
    again = sum(window_of(p, width) in planned for p in stale)
    summary = IndexSummary(chain_id, first, last, safe, reindexed_after_reorg=again,
                           removed_after_reorg=len(stale) - again)
    # children up to the lake's top too: the digests of stored partitions above `last` need them
    created = discover_children(client, registry, max([last, *(p.stop - 1 for p in done)]),
                                chunk_blocks=chunk_blocks, max_in_flight=max_in_flight)
    wanted = fetched_for(registry, created, {*plan, *done})
    derived = derived_for(registry)
    refetch = {p for p, meta in complete if p in done and meta.get(FETCHED_FOR) != wanted[p]}
    rederive = {p for p in done - refetch if stored.has(QUARANTINE, p)
                and lake.metadata(QUARANTINE, p).get(DERIVED_FOR) != derived}
    refetch_here, rederive_here = refetch & set(plan), rederive & set(plan)
    redo = refetch_here | rederive_here  # complete, but their derived tables are out of date
    summary.outdated_elsewhere = sorted(p for p in refetch | rederive
                                        if window_of(p, width) not in planned)
    todo = [p for p in plan if p in redo
            or not (p in done and all(stored.has(t, p) for t in DERIVED_TABLES))]
    summary.skipped = len(plan) - len(todo)
    summary.refetched, summary.rederived = len(refetch_here), len(rederive_here)
    if on_plan is not None:
        on_plan(todo)
    if todo:  # the aggregators behind proxy feeds log the answers: read those too
        registry = resolve_feeds(client, registry, last)
    addresses = sorted({*contract_addresses(registry), *child_addresses(created)})
    topic0s = list(TOPIC0S)

    def read(part: PartitionFile) -> PartitionRead | None:
        if part in done and part not in refetch_here:  # a crash came before decoding finished
            return None
        return read_partition(client, part, addresses, topic0s, chunk_blocks=chunk_blocks,
                              max_in_flight=max_in_flight)

    # While a partition is decoded and written, the next ones are read: the node is never idle
    # waiting for us, and at most READ_AHEAD + 1 partitions are held in memory.
    with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="prefetch") as reader:
        upcoming = iter(todo)
        ahead = deque(reader.submit(read, part)
                      for part in itertools.islice(upcoming, READ_AHEAD))
        try:
            for part in todo:
                t0 = time.monotonic()
                fetched = ahead.popleft().result()
                ahead.extend(reader.submit(read, nxt) for nxt in itertools.islice(upcoming, 1))
                if part in redo:
                    # its derived tables describe the old read or registry: gone first, so a
                    # crash before all are written again cannot let the old pass for the new
                    for table in DERIVED_TABLES:
                        lake.delete(table, part)
                        stored.discard(table, part)
                if fetched is not None:  # tidy_window cleared any earlier version's files
                    logs = write_partition(lake, fetched, {FETCHED_FOR: wanted[part]}).logs
                else:
                    logs = lake.read(RAW_LOGS, part).num_rows
                decoded = decode_partition(lake, registry, part, fetched, derived=derived)
                canonical_partition(lake, registry, part, decoded.tables, created=created)
                state_partition(client, lake, registry, part, decoded.tables,
                                None if fetched is None else fetched.headers)
                stored.add(ALL_TABLES, part)
                supersede(lake, ALL_TABLES, part, width, stored)
                result = WindowResult(part, logs, decoded.decoded_rows,
                                      decoded.quarantine.num_rows, decoded.ignored_rows,
                                      time.monotonic() - t0)
                summary.windows.append(result)
                if on_window is not None:
                    on_window(result)
        finally:
            for future in ahead:  # a failure above: do not start reading what won't be written
                future.cancel()
    summary.seconds = time.monotonic() - began
    return summary


def read_table(lake: Lake, table: str, chain_id: int) -> pa.Table | None:
    """All partitions of a table, in block order (None when the lake has none)."""
    parts = lake.partitions(table, chain_id)
    if not parts:
        return None
    return pa.concat_tables([lake.read(table, p) for p in parts])
