"""Indexing: one block-range partition of raw logs and block headers into the lake, and the
reorg check that says which partitions no longer describe the chain.

A partition [start, stop) is two files, `raw_logs` and `blocks`, written in that order; the
`blocks` file is the completion marker. Re-indexing deletes the marker first, so at no moment
does a complete-looking pair mix two versions. Both files carry the same key-value metadata:

- `first_block`, `first_parent_hash`: block `start` and the hash of its parent (start - 1);
- `last_block`, `last_block_hash`: block `stop - 1` and its hash.

A block hash commits to every block below it, so these two hashes are enough to tell whether
a stored partition is still on the chain, and whether neighbouring partitions join up.

`blocks` holds the headers of every block with a log in the partition plus both boundary
blocks (start and stop - 1), even without logs. So for `raw_logs`, partitions [a, m) and
[m, b) concatenate to exactly [a, b); for `blocks`, the union of their rows per block number
agrees with [a, b) but also holds the boundary headers m - 1 and m.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from contagion.chain.logs import (
    DEFAULT_CHUNK_BLOCKS,
    DEFAULT_IN_FLIGHT,
    ChainMoved,
    block_hashes,
    get_headers,
    get_logs,
    hash_matrix,
    head_of,
)
from contagion.chain.rpc import RpcClient, RpcError
from contagion.lake import Lake, PartitionFile

__all__ = [
    "BLOCKS",
    "RAW_LOGS",
    "DeepReorgError",
    "PartitionRead",
    "PartitionStats",
    "StoredPartition",
    "check_reorgs",
    "complete_partitions",
    "index_partition",
    "indexed_partitions",
    "read_partition",
    "write_partition",
]

RAW_LOGS = "raw_logs"  # table names in the lake
BLOCKS = "blocks"


class DeepReorgError(RuntimeError):
    """The chain differs from the lake deeper below the head than the reorg window allows.

    Nothing is re-indexed automatically: either the window is too small for this chain, or the
    endpoint serves another chain or fork; a person should look."""

    def __init__(self, block: int, stored: str, current: str | None, head: int,
                 window: int) -> None:
        now = current if current is not None else "no such block"
        super().__init__(
            f"block {block} in the lake has hash {stored} but the chain now has {now}: a reorg "
            f"{head - block} blocks below the head ({head}), deeper than the reorg window of "
            f"{window} blocks. Nothing was changed; check the endpoint, or widen the window "
            "and re-index from this block.")
        self.block = block
        self.stored_hash = stored
        self.chain_hash = current
        self.head = head
        self.window = window


@dataclass(frozen=True)
class PartitionStats:
    part: PartitionFile
    logs: int
    headers: int
    last_block_hash: str
    attempts: int  # 1 unless the chain moved while the partition was read
    seconds: float


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _read_consistent(client: RpcClient, part: PartitionFile,
                     addresses: Sequence[str] | None, topic0s: Sequence[str] | None,
                     chunk_blocks: int, max_in_flight: int) -> tuple[pa.Table, pa.Table]:
    """Logs and headers of one partition that provably come from one version of the chain.

    The last block's hash is read before and after the logs: equal, the chain below it did not
    change in between (its hash commits to all of it). Every log's block hash must also equal
    its header's, which catches a node that answered a chunk from a fork it later dropped.
    """
    last = part.stop - 1
    before = get_headers(client, [last], part.chain_id)["block_hash"][0].as_py()
    try:
        logs = get_logs(client, part.start, last, addresses, topic0s, chain_id=part.chain_id,
                        chunk_blocks=chunk_blocks, max_in_flight=max_in_flight)
    except RpcError as exc:  # a node refuses blocks it lost to a reorg that shortened it
        if block_hashes(client, [last])[0] != _hex(before):
            raise ChainMoved(f"block {last} changed while partition {part} was read "
                             f"({exc.message})") from exc
        raise
    numbers = logs["block_number"].to_numpy()
    headers = get_headers(client, [part.start, last, *np.unique(numbers).tolist()],
                          part.chain_id, max_in_flight=max_in_flight)
    header_numbers = headers["block_number"].to_numpy()
    header_hashes = hash_matrix(headers["block_hash"])
    if header_hashes[-1].tobytes() != before:
        raise ChainMoved(f"block {last} changed hash while partition {part} was read")
    if len(numbers):
        rows = np.searchsorted(header_numbers, numbers)
        differ = (hash_matrix(logs["block_hash"]) != header_hashes[rows]).any(axis=1)
        if differ.any():
            block = int(numbers[int(np.argmax(differ))])
            raise ChainMoved(f"logs of block {block} carry another hash than its header: the "
                             f"chain reorganised while partition {part} was read")
    return logs, headers


@dataclass(frozen=True)
class PartitionRead:
    """One partition's logs and headers as read from one version of the chain, not yet stored."""

    part: PartitionFile
    logs: pa.Table
    headers: pa.Table
    attempts: int  # 1 unless the chain moved while the partition was read
    seconds: float


def read_partition(client: RpcClient, part: PartitionFile, addresses: Sequence[str] | None,
                   topic0s: Sequence[str] | None, *, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
                   max_in_flight: int = DEFAULT_IN_FLIGHT, attempts: int = 3) -> PartitionRead:
    """Read blocks [part.start, part.stop); the caller keeps part.stop - 1 at or below the safe
    head. A reorg while reading restarts the read, up to `attempts` times, then ChainMoved is
    raised."""
    if part.stop <= part.start:
        raise ValueError(f"partition {part} holds no block")
    began = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            logs, headers = _read_consistent(client, part, addresses, topic0s, chunk_blocks,
                                             max_in_flight)
            break
        except ChainMoved:
            if attempt == attempts:
                raise
    return PartitionRead(part, logs, headers, attempt, time.monotonic() - began)


def write_partition(lake: Lake, read: PartitionRead,
                    extra: Mapping[str, str] | None = None) -> PartitionStats:
    """Write a read partition's `raw_logs` and `blocks` files, replacing any earlier version;
    `extra`: more metadata for both (`fetched_for`, see indexing)."""
    part, logs, headers = read.part, read.logs, read.headers
    began = time.monotonic()
    parent = headers["parent_hash"][0].as_py()  # rows are sorted: start first, stop - 1 last
    last = headers["block_hash"][headers.num_rows - 1].as_py()
    metadata = {**(extra or {}), "first_block": str(part.start),
                "first_parent_hash": _hex(parent), "last_block": str(part.stop - 1),
                "last_block_hash": _hex(last)}
    lake.delete(BLOCKS, part)  # not complete from here until the new marker lands
    lake.write(RAW_LOGS, part, logs, metadata)
    lake.write(BLOCKS, part, headers, metadata)
    return PartitionStats(part, logs.num_rows, headers.num_rows, metadata["last_block_hash"],
                          read.attempts, read.seconds + time.monotonic() - began)


def index_partition(client: RpcClient, lake: Lake, chain_id: int, part: PartitionFile,
                    addresses: Sequence[str] | None, topic0s: Sequence[str] | None, *,
                    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
                    max_in_flight: int = DEFAULT_IN_FLIGHT, attempts: int = 3,
                    extra: Mapping[str, str] | None = None) -> PartitionStats:
    """Read blocks [part.start, part.stop) and write their `raw_logs` and `blocks` files
    (`read_partition`, then `write_partition` with `extra` metadata): if the read fails
    nothing is written."""
    if part.chain_id != chain_id:
        raise ValueError(f"partition {part} is not of chain {chain_id}")
    return write_partition(lake, read_partition(client, part, addresses, topic0s,
                                                chunk_blocks=chunk_blocks,
                                                max_in_flight=max_in_flight, attempts=attempts),
                           extra)


StoredPartition = tuple[PartitionFile, dict[str, str]]  # a complete partition, its metadata


def complete_partitions(lake: Lake, chain_id: int) -> list[StoredPartition]:
    """The complete partitions of a chain with their metadata, in block order: both files
    present and read from the same chain (same last block hash in both)."""
    out = []
    logs = set(lake.partitions(RAW_LOGS, chain_id))
    for part in lake.partitions(BLOCKS, chain_id):
        if part not in logs:
            continue
        meta = lake.metadata(BLOCKS, part)
        if meta.get("last_block_hash") == lake.metadata(RAW_LOGS, part).get("last_block_hash"):
            out.append((part, meta))
    return out


def indexed_partitions(lake: Lake, chain_id: int) -> list[PartitionFile]:
    """The complete partitions of a chain, in block order (`complete_partitions`). Anything
    else is to be indexed (again)."""
    return [part for part, _ in complete_partitions(lake, chain_id)]


def _joined(below: StoredPartition, above: StoredPartition) -> bool:
    """`above` starts where `below` stops and its first block's parent is `below`'s last."""
    return (below[0].stop == above[0].start
            and below[1]["last_block_hash"] == above[1]["first_parent_hash"])


def check_reorgs(client: RpcClient, lake: Lake, chain_id: int, reorg_window: int, *,
                 complete: Sequence[StoredPartition] | None = None) -> list[PartitionFile]:
    """The complete partitions to re-index because the chain changed under them: the first
    whose last block hash differs from the chain's (or whose first block's parent is not the
    previous partition's last block), and every later one. Empty when all still hold.
    `complete` is `complete_partitions(lake, chain_id)` when the caller has it already.

    A block hash commits to every block below it, so a partition whose last block still holds
    vouches for the stored partitions joined to it below. The chain is asked for the top of
    each joined stretch (one call for a lake without gaps), and a binary search finds the first
    partition that moved in a stretch whose top moved: a handful of calls however large the
    lake, where asking for every partition's hash on every run would grow with it.

    Raises DeepReorgError instead when the lowest stored block found to differ lies more than
    `reorg_window` blocks below the head. The fork point may be lower still, in a stretch
    without logs, where the lake keeps no header to compare.
    """
    parts = list(complete_partitions(lake, chain_id) if complete is None else complete)
    if not parts:
        return []
    starts = [0] + [i for i in range(1, len(parts)) if not _joined(parts[i - 1], parts[i])]
    # adjacent but not joined: that partition and every later one are to be re-read
    unlinked = next((i for i in starts[1:] if parts[i - 1][0].stop == parts[i][0].start),
                    len(parts))
    stretches = [(s, e) for s, e in zip(starts, [*starts[1:], len(parts)], strict=True)
                 if s <= unlinked]

    def holds(i: int, current: str | None) -> bool:
        return current == parts[i][1]["last_block_hash"]

    tops = block_hashes(client, [parts[e - 1][0].stop - 1 for _, e in stretches])
    for (lo, hi), top in zip(stretches, tops, strict=True):
        hi -= 1
        if holds(hi, top):
            continue
        while lo < hi:  # parts[hi] moved; the first that moved is in [lo, hi]
            mid = (lo + hi) // 2
            if holds(mid, block_hashes(client, [parts[mid][0].stop - 1])[0]):
                lo = mid + 1
            else:
                hi = mid
        if lo <= unlinked:
            _refuse_deep(client, lake, parts[lo][0], reorg_window)
            return [p for p, _ in parts[lo:]]
        break
    return [p for p, _ in parts[unlinked:]]


def _refuse_deep(client: RpcClient, lake: Lake, part: PartitionFile, reorg_window: int
                 ) -> None:
    """Raise DeepReorgError if the lowest stored block of `part` that the chain no longer has
    lies deeper than the window."""
    head = head_of(client)
    stored = lake.read(BLOCKS, part)
    numbers = stored["block_number"].to_pylist()
    hashes = [_hex(h) for h in stored["block_hash"].to_pylist()]
    current = block_hashes(client, numbers)
    for number, mine, theirs in zip(numbers, hashes, current, strict=True):
        if mine != theirs:
            if head - number > reorg_window:
                raise DeepReorgError(number, mine, theirs, head, reorg_window)
            return
