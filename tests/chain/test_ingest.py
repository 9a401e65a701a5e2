"""Indexing partitions into the lake on a devnet: files and their metadata, determinism and
concatenation, reorgs (detected, refused when too deep, re-indexed to match a fresh index),
the chain moving while a partition is read, and a process killed in the middle of a write.

Run as a script, this file is the child process of the crash test (see `_child`).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contagion.chain.logs import block_hashes
from contagion.chain.rpc import RpcClient, RpcUnavailable
from contagion.indexing import index_range
from contagion.ingest import (
    DeepReorgError,
    check_reorgs,
    complete_partitions,
    index_partition,
    indexed_partitions,
)
from contagion.lake import BLOCKS_SCHEMA, RAW_LOGS_SCHEMA, Lake, PartitionFile
from contagion.registry import Registry, Token

if TYPE_CHECKING:  # pytest imports this folder's modules top-level; mypy sees the package
    from tests.chain.faultproxy import TRANSFER, History, add_transfers, devnet_history
else:
    from faultproxy import TRANSFER, History, add_transfers, devnet_history

CHAIN = 31337
TABLES = ("raw_logs", "blocks")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    folder: Path = tmp_path_factory.mktemp("history")
    with devnet_history(folder, blocks=120) as h:
        yield h


def index(history: History, lake: Lake, part: PartitionFile,
          client: RpcClient | None = None) -> int:
    own = client is None
    client = client or RpcClient(history.url)
    stats = index_partition(client, lake, CHAIN, part, history.tokens, [TRANSFER],
                            chunk_blocks=16, max_in_flight=3)
    if own:
        client.close()
    return stats.attempts


def partitions(start: int, stop: int, width: int) -> list[PartitionFile]:
    return [PartitionFile(CHAIN, s, min(s + width, stop)) for s in range(start, stop, width)]


def rows(table: pa.Table) -> set[tuple[Any, ...]]:
    return set(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))


def same_lakes(a: Lake, b: Lake) -> None:
    assert indexed_partitions(a, CHAIN) == indexed_partitions(b, CHAIN)
    for part in indexed_partitions(a, CHAIN):
        for table in TABLES:
            assert a.read(table, part).equals(b.read(table, part)), (table, part)
            assert a.metadata(table, part) == b.metadata(table, part)


@pytest.mark.devnet
def test_partitions_are_deterministic_and_concatenate(history: History,
                                                      tmp_path: Path) -> None:
    client = RpcClient(history.url)
    start, stop = 1, history.head + 1  # from the deployments on
    mid = history.first + 50
    whole, split = Lake(tmp_path / "whole"), Lake(tmp_path / "split")
    index(history, whole, PartitionFile(CHAIN, start, stop))
    for part in (PartitionFile(CHAIN, start, mid), PartitionFile(CHAIN, mid, stop)):
        index(history, split, part)

    # both files, with the boundary hashes as the chain has them
    part = PartitionFile(CHAIN, start, stop)
    assert indexed_partitions(whole, CHAIN) == [part]
    meta = whole.metadata("raw_logs", part)
    assert meta == whole.metadata("blocks", part)
    first_parent, last = block_hashes(client, [start - 1, stop - 1])
    assert meta == {"first_block": str(start), "first_parent_hash": first_parent,
                    "last_block": str(stop - 1), "last_block_hash": last}
    logs = whole.read("raw_logs", part)
    assert logs.schema.equals(RAW_LOGS_SCHEMA) and logs.num_rows > 300
    blocks = whole.read("blocks", part)
    assert blocks.schema.equals(BLOCKS_SCHEMA)
    with_logs = set(logs["block_number"].to_pylist())
    assert set(blocks["block_number"].to_pylist()) == with_logs | {start, stop - 1}

    # raw_logs: [a, m) + [m, b) == [a, b) exactly
    halves = [split.read("raw_logs", p) for p in indexed_partitions(split, CHAIN)]
    assert pa.concat_tables(halves).equals(logs)
    # blocks: per block number the rows agree; the split adds the boundary headers m-1 and m
    split_blocks = rows(pa.concat_tables([split.read("blocks", p)
                                          for p in indexed_partitions(split, CHAIN)]))
    assert rows(blocks) <= split_blocks
    assert {r[1] for r in split_blocks - rows(blocks)} <= {mid - 1, mid}
    assert len({r[1] for r in split_blocks}) == len(split_blocks)  # one row per number

    # re-materializing gives the same rows and metadata
    again = Lake(tmp_path / "again")
    index(history, again, part)
    same_lakes(whole, again)
    index(history, whole, part)  # over an existing partition
    same_lakes(whole, again)

    # a stretch without logs still has both files, with its boundary header(s)
    quiet = PartitionFile(CHAIN, 0, 1)
    index(history, whole, quiet)
    assert whole.read("raw_logs", quiet).num_rows == 0
    assert whole.read("blocks", quiet)["block_number"].to_pylist() == [0]
    assert whole.metadata("blocks", quiet)["first_parent_hash"] == "0x" + "00" * 32
    client.close()


def fork(history: History, snapshot: str, snapshot_head: int, snapshot_time: int,
         blocks: int, seed: int) -> None:
    """Revert the node to `snapshot` and mine a different continuation (other transfers, other
    timestamps), which replaces every block after the snapshot."""
    client = history.driver.client
    assert client.call("evm_revert", [snapshot]) is True
    assert int(client.call("eth_blockNumber"), 16) == snapshot_head
    history.driver.nonces.clear()
    history.head, history.timestamp = snapshot_head, snapshot_time + 5
    add_transfers(history, blocks, seed)


def mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.devnet
def test_reorgs_are_found_refused_when_deep_and_reindexed(tmp_path: Path) -> None:
    with devnet_history(tmp_path / "node", blocks=30, seed=4) as history:
        client = RpcClient(history.url)
        snapshot = str(client.call("evm_snapshot"))
        fork_head, fork_time = history.head, history.timestamp
        add_transfers(history, 30, seed=5)
        safe = history.head - 2
        parts = partitions(history.first, safe + 1, 10)
        lake = Lake(tmp_path / "lake")
        for part in parts:
            index(history, lake, part)
        assert check_reorgs(client, lake, CHAIN, reorg_window=10) == []

        fork(history, snapshot, fork_head, fork_time, blocks=40, seed=6)
        moved = [p for p in parts if p.stop - 1 > fork_head]
        assert moved == parts[3:]
        before = mtimes(tmp_path / "lake")
        with pytest.raises(DeepReorgError) as deep:
            check_reorgs(client, lake, CHAIN, reorg_window=20)
        err = deep.value
        assert err.block == fork_head + 1 and err.head == history.head and err.window == 20
        assert err.chain_hash == block_hashes(client, [fork_head + 1])[0] != err.stored_hash
        assert f"block {fork_head + 1}" in str(err) and err.stored_hash in str(err)
        assert mtimes(tmp_path / "lake") == before  # nothing written

        assert check_reorgs(client, lake, CHAIN, reorg_window=100) == moved
        for part in moved:
            index(history, lake, part)
        assert check_reorgs(client, lake, CHAIN, reorg_window=100) == []
        fresh = Lake(tmp_path / "fresh")
        for part in parts:
            index(history, fresh, part)
        same_lakes(lake, fresh)

        # a partition no longer joined to its predecessor is re-indexed with what follows
        tampered = parts[1]
        table = lake.read("blocks", tampered)
        meta = {**lake.metadata("blocks", tampered), "first_parent_hash": "0x" + "00" * 32}
        lake.write("blocks", tampered, table, meta)
        lake.write("raw_logs", tampered, lake.read("raw_logs", tampered), meta)
        assert check_reorgs(client, lake, CHAIN, reorg_window=100) == parts[1:]
        client.close()


class CountsHeaders(RpcClient):
    """Counts the block headers asked for, alone or in batches."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.headers = 0

    def call(self, method: str, params: Sequence[Any] = (), **kwargs: Any) -> Any:
        self.headers += method == "eth_getBlockByNumber"
        return super().call(method, params, **kwargs)

    def batch(self, requests_: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        if len(requests_) <= self.max_batch:  # a longer one comes back here in pieces
            self.headers += sum(m == "eth_getBlockByNumber" for m, _ in requests_)
        return super().batch(requests_)


def stale_by_scanning(client: RpcClient, lake: Lake) -> list[PartitionFile]:
    """What check_reorgs answers, the slow way: every partition's hash, in order."""
    parts = complete_partitions(lake, CHAIN)
    now = block_hashes(client, [part.stop - 1 for part, _ in parts])
    for i, ((part, meta), current) in enumerate(zip(parts, now, strict=True)):
        below = parts[i - 1] if i else None
        unlinked = (below is not None and below[0].stop == part.start
                    and below[1]["last_block_hash"] != meta["first_parent_hash"])
        if current != meta["last_block_hash"] or unlinked:
            return [p for p, _ in parts[i:]]
    return []


@pytest.mark.devnet
def test_the_reorg_check_asks_for_a_few_headers_however_many_partitions(tmp_path: Path) -> None:
    """A partition whose last block still holds vouches for those joined below it: a lake of
    30 partitions costs one header when nothing moved, and a binary search when something did,
    with the same answer as asking for every partition's hash."""
    with devnet_history(tmp_path / "node", blocks=20, seed=8) as history:
        client = CountsHeaders(history.url)
        snapshot = str(client.call("evm_snapshot"))
        fork_head, fork_time = history.head, history.timestamp
        add_transfers(history, 40, seed=9)
        parts = partitions(history.first, history.head + 1, 2)
        lake = Lake(tmp_path / "lake")
        for part in parts:
            index(history, lake, part)
        assert len(parts) == 30

        client.headers = 0
        assert check_reorgs(client, lake, CHAIN, reorg_window=1000) == []
        assert client.headers == 1

        gap = parts[12]  # two joined stretches: the top of each is asked for, in one batch
        lake.delete("blocks", gap)
        client.headers = 0
        assert check_reorgs(client, lake, CHAIN, reorg_window=1000) == []
        assert client.headers == 2

        fork(history, snapshot, fork_head, fork_time, blocks=40, seed=10)
        expected = stale_by_scanning(client, lake)
        assert expected == [p for p in parts if p.stop - 1 > fork_head and p != gap]
        assert len(expected) == 19
        client.headers = 0
        assert check_reorgs(client, lake, CHAIN, reorg_window=1000) == expected
        # two tops, a binary search over 17 partitions, the first moved one's two headers
        assert client.headers <= 2 + 5 + 2 < len(parts)
        client.close()


class ForkAfterFirstRead(RpcClient):
    """Runs `action` (a reorg) right after the first eth_getLogs reply, once."""

    def __init__(self, url: str, action: Callable[[], None]) -> None:
        super().__init__(url)
        self.action: Callable[[], None] | None = action

    def call(self, method: str, params: Sequence[Any] = (), *,
             loads: Callable[[bytes], Any] = json.loads) -> Any:
        result = super().call(method, params, loads=loads)
        if method == "eth_getLogs" and self.action is not None:
            action, self.action = self.action, None
            action()
        return result


@pytest.mark.devnet
def test_a_reorg_while_reading_restarts_the_read(tmp_path: Path) -> None:
    with devnet_history(tmp_path / "node", blocks=10, seed=7) as history:
        snapshot = str(history.driver.client.call("evm_snapshot"))
        fork_head, fork_time = history.head, history.timestamp
        add_transfers(history, 10, seed=8)
        part = PartitionFile(CHAIN, history.first, history.head + 1)
        lake, fresh = Lake(tmp_path / "lake"), Lake(tmp_path / "fresh")
        reorging = ForkAfterFirstRead(
            history.url, lambda: fork(history, snapshot, fork_head, fork_time, 10, seed=9))
        assert index(history, lake, part, reorging) == 2
        reorging.close()
        assert index(history, fresh, part) == 1
        same_lakes(lake, fresh)


# -- a process killed while writing ----------------------------------------------------------

def _child() -> None:
    """Index one partition, but stall half-way through writing `stall` (a table name) and say
    so on stdout, so the parent can kill it there."""
    url, root, start, stop, stall, tokens = sys.argv[1:7]
    schema = RAW_LOGS_SCHEMA if stall == "raw_logs" else BLOCKS_SCHEMA
    write_table = pq.write_table

    def stalling(table: pa.Table, where: Any, **options: Any) -> None:
        if table.schema.equals(schema, check_metadata=False):
            whole = io.BytesIO()
            write_table(table, whole, **options)
            where.write(whole.getvalue()[:len(whole.getvalue()) // 2])
            where.flush()
            print("stalled", flush=True)
            time.sleep(120)
        write_table(table, where, **options)

    pq.write_table = stalling
    index_partition(RpcClient(url), Lake(root), CHAIN,
                    PartitionFile(CHAIN, int(start), int(stop)), tokens.split(","), [TRANSFER])


@pytest.mark.devnet
@pytest.mark.parametrize("stall", TABLES)
def test_a_kill_mid_write_leaves_no_partial_partition(history: History, tmp_path: Path,
                                                      stall: str) -> None:
    part = PartitionFile(CHAIN, history.first, history.head + 1)
    clean, lake = Lake(tmp_path / "clean"), Lake(tmp_path / "lake")
    index(history, clean, part)
    if stall == "raw_logs":  # re-indexing a complete partition: its old files are there
        index(history, lake, part)
    child = subprocess.Popen(
        [sys.executable, __file__, history.url, str(tmp_path / "lake"), str(part.start),
         str(part.stop), stall, ",".join(history.tokens)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "stalled\n", child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    folder = tmp_path / "lake" / stall / f"chain_id={CHAIN}"
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert len(hidden) == 1 and hidden[0].endswith(".tmp") and part.name in hidden[0]
    # never complete, never a torn file under a partition's name
    assert indexed_partitions(lake, CHAIN) == []
    assert lake.partitions("blocks", CHAIN) == []
    if stall == "raw_logs":  # the previous version, whole, awaiting its rewrite
        assert lake.read("raw_logs", part).equals(clean.read("raw_logs", part))
    else:  # the new raw_logs file landed; the missing marker says the partition is not done
        assert lake.partitions("raw_logs", CHAIN) == [part]

    index(history, lake, part)  # the rerun completes
    same_lakes(lake, clean)


if __name__ == "__main__":
    _child()


LAKE_TABLES = ("raw_logs", "blocks", "erc20__transfer", "quarantine", "flows", "prices")


def same_tables(lake: Lake, clean: Lake) -> None:
    """Every table holds the same partition files with the same rows in both lakes."""
    for table in LAKE_TABLES:
        parts = clean.partitions(table, CHAIN)
        assert lake.partitions(table, CHAIN) == parts, table
        for part in parts:
            assert lake.read(table, part).equals(clean.read(table, part)), (table, part)


def history_registry(history: History) -> Registry:
    """A registry of the history's tokens (no venues), for index_range."""
    return Registry(network="history", chain_id=CHAIN, deployed_at_block=history.first,
                    tokens=[Token(symbol=s, address=c.address, decimals=18)
                            for s, c in history.world.tokens.items()], venues=[])


class LosesTheNodeAt(RpcClient):
    """eth_getLogs fails for blocks from `block` on, as a node gone away would."""

    def __init__(self, url: str, block: int) -> None:
        super().__init__(url)
        self.block = block

    def call(self, method: str, params: Sequence[Any] = (), *,
             loads: Callable[[bytes], Any] = json.loads) -> Any:
        if method == "eth_getLogs" and int(params[0]["toBlock"], 16) >= self.block:
            raise RpcUnavailable(f"{self.url}: connection refused")
        return super().call(method, params, loads=loads)


@pytest.mark.devnet
def test_a_read_failing_ahead_keeps_what_was_indexed_and_the_rerun_matches(
        history: History, tmp_path: Path) -> None:
    """index_range reads the next partition while it writes the current one: a failure there
    surfaces after the current partition is complete, and nothing of the failed one is
    written. The rerun does only what is missing and equals an uninterrupted index."""
    registry = history_registry(history)
    width = 16
    failing_at = history.first + 3 * width + 5  # inside the fourth window
    lake, clean = Lake(tmp_path / "lake"), Lake(tmp_path / "clean")
    broken = LosesTheNodeAt(history.url, failing_at)
    with pytest.raises(RpcUnavailable):
        index_range(broken, lake, registry, last=history.head, width=width,
                    chunk_blocks=8, max_in_flight=3)
    broken.close()
    kept = indexed_partitions(lake, CHAIN)
    assert kept and all(p.stop <= failing_at for p in kept)
    assert kept[-1].stop > failing_at - width  # only the window holding the failure is missing
    assert lake.partitions("flows", CHAIN) == kept  # each one decoded and mapped in full

    client = RpcClient(history.url)
    rerun = index_range(client, lake, registry, last=history.head, width=width,
                        chunk_blocks=8, max_in_flight=3)
    assert rerun.skipped == len(kept)
    index_range(client, clean, registry, last=history.head, width=width, chunk_blocks=8)
    client.close()
    for table in ("raw_logs", "blocks", "erc20__transfer", "quarantine", "flows"):
        parts = clean.partitions(table, CHAIN)
        assert lake.partitions(table, CHAIN) == parts and len(parts) > len(kept)
        for part in parts:
            assert lake.read(table, part).equals(clean.read(table, part)), (table, part)


@pytest.mark.devnet
def test_partitions_read_for_another_registry_are_read_again(history: History,
                                                             tmp_path: Path) -> None:
    """A complete partition keeps what its eth_getLogs asked for (`fetched_for`). A token added
    to the registry (or an event to the decoder) has logs the stored files lack: a rerun reads
    those partitions again, instead of skipping them with the logs missing, and then equals a
    fresh index; the rerun after that skips them all."""
    full = history_registry(history)
    fewer = full.model_copy(update={"tokens": full.tokens[1:]})
    width = 32
    lake, clean = Lake(tmp_path / "lake"), Lake(tmp_path / "clean")
    client = RpcClient(history.url)
    first = index_range(client, lake, fewer, last=history.head, width=width)
    again = index_range(client, lake, full, last=history.head, width=width)
    assert (again.refetched, again.skipped) == (len(first.windows), 0)
    assert len(again.windows) == len(first.windows)
    index_range(client, clean, full, last=history.head, width=width)
    third = index_range(client, lake, full, last=history.head, width=width)
    client.close()
    assert (third.refetched, third.skipped, third.windows) == (0, len(first.windows), [])
    missing = full.tokens[0].address.lower()
    same_tables(lake, clean)
    transfers = pa.concat_tables(lake.read("erc20__transfer", part)
                                 for part in lake.partitions("erc20__transfer", CHAIN))
    assert any("0x" + bytes(a).hex() == missing
               for a in transfers["contract_address"].to_pylist())


class CountingClient(RpcClient):
    """Counts the calls of each JSON-RPC method."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls: dict[str, int] = {}

    def call(self, method: str, params: Sequence[Any] = (), *,
             loads: Callable[[bytes], Any] = json.loads) -> Any:
        self.calls[method] = self.calls.get(method, 0) + 1
        return super().call(method, params, loads=loads)


@pytest.mark.devnet
def test_partitions_derived_under_another_registry_are_derived_again(
        history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry also says how logs become rows (here a token's decimals, which scale its
    flows' amounts) without changing what eth_getLogs asks for. A partition decoded under
    another registry (`derived_for`) is derived again from its stored raw logs, with no
    eth_getLogs, and then equals a fresh index. A crash after its quarantine file is written
    again but before its flows are must not let the old flows pass for new."""
    full = history_registry(history)
    wrong = full.model_copy(update={"tokens": [
        full.tokens[0].model_copy(update={"decimals": 6}), *full.tokens[1:]]})
    width = 32
    lake, clean = Lake(tmp_path / "lake"), Lake(tmp_path / "clean")
    client = CountingClient(history.url)
    first = index_range(client, lake, wrong, last=history.head, width=width)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed after the decoding")

    monkeypatch.setattr("contagion.indexing.canonical_partition", crash)
    with pytest.raises(RuntimeError, match="killed"):
        index_range(client, lake, full, last=history.head, width=width)
    monkeypatch.undo()
    client.calls.clear()
    again = index_range(client, lake, full, last=history.head, width=width)
    assert "eth_getLogs" not in client.calls, client.calls
    assert (again.rederived, again.refetched) == (len(first.windows) - 1, 0)
    assert len(again.windows) == len(first.windows)  # the crashed one: incomplete, redone
    index_range(client, clean, full, last=history.head, width=width)
    third = index_range(client, lake, full, last=history.head, width=width)
    client.close()
    assert (third.rederived, third.skipped, third.windows) == (0, len(first.windows), [])
    same_tables(lake, clean)


@pytest.mark.devnet
def test_out_of_date_partitions_outside_the_range_are_counted(history: History,
                                                              tmp_path: Path) -> None:
    """A run leaves the partitions outside its range alone, but says which are out of date:
    read for another registry (a token fewer) or derived under one (other decimals)."""
    full = history_registry(history)
    width = 32
    for name, other in (
            ("fewer", full.model_copy(update={"tokens": full.tokens[1:]})),
            ("decimals", full.model_copy(update={"tokens": [
                full.tokens[0].model_copy(update={"decimals": 6}), *full.tokens[1:]]}))):
        lake = Lake(tmp_path / name)
        client = RpcClient(history.url)
        before = index_range(client, lake, other, last=history.head, width=width)
        middle = before.windows[1].part
        now = index_range(client, lake, full, first=middle.start, last=middle.stop - 1,
                          width=width)
        client.close()
        assert [w.part for w in now.windows] == [middle], name
        assert now.outdated_elsewhere == [w.part for w in before.windows
                                          if w.part != middle], name


class CountingLake(Lake):
    """Counts folder listings."""

    listings = 0

    def partitions(self, table: str, chain_id: int) -> list[PartitionFile]:
        self.listings += 1
        return super().partitions(table, chain_id)


@pytest.mark.devnet
def test_a_run_lists_each_folder_once_however_many_partitions(history: History,
                                                              tmp_path: Path) -> None:
    """Listing the lake's folders for every partition made a run quadratic in the lake's size;
    a run lists each table's folder a fixed number of times, and a rerun likewise."""
    registry = history_registry(history)
    client = RpcClient(history.url)
    runs = {}
    for width in (64, 8):
        lake = CountingLake(tmp_path / f"width-{width}")
        first = index_range(client, lake, registry, last=history.head, width=width)
        listed = lake.listings
        again = index_range(client, lake, registry, last=history.head, width=width)
        assert again.skipped == len(first.windows) and not again.windows
        runs[width] = (len(first.windows), listed, lake.listings - listed)
    client.close()
    assert runs[8][0] >= 4 * runs[64][0]  # many more partitions, the same listings
    assert runs[8][1:] == runs[64][1:]


def test_contagion_index_reports_an_endpoint_that_is_down_or_not_json_rpc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No traceback: one clear line, exit 1, for an endpoint that refuses connections or that
    answers HTTP without JSON-RPC; and a negative count is refused before anything runs."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from typer.testing import CliRunner

    import contagion.chain.rpc as rpc
    from contagion.cli import app
    from contagion.devnet.node import free_port

    class NoWait(RpcClient):  # the retries, without their backoff
        def __init__(self, url: str, **kwargs: Any) -> None:
            super().__init__(url, **kwargs, sleep=lambda _: None)

    monkeypatch.setattr(rpc, "RpcClient", NoWait)

    class NotRpc(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b'{"hello": "this is a web page, not a node"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), NotRpc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        lake = tmp_path / "lake"
        for url in (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{server.server_port}"):
            result = CliRunner().invoke(app, ["index", "--rpc", url, "--registry", "ethereum",
                                              "--lake", str(lake)])
            assert result.exit_code == 1, result.output
            assert isinstance(result.exception, SystemExit), result.exception
            text = " ".join(result.output.split())
            assert f"error: indexing from {url} stopped" in text and "JSON-RPC" in text, text
            assert "Traceback" not in text
    finally:
        server.shutdown()
        server.server_close()
    for option in ("--confirmations", "--width", "--reorg-window", "--max-in-flight",
                   "--chunk-blocks", "--from-block", "--to-block"):
        refused = CliRunner().invoke(app, ["index", "--rpc", "http://127.0.0.1:1", "--registry",
                                           "ethereum", "--lake", str(tmp_path / "lake"),
                                           option, "-5"])
        assert refused.exit_code == 2 and option in refused.output, (option, refused.output)
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))


def test_contagion_index_reports_a_chain_id_that_is_not_a_hex_quantity(tmp_path: Path) -> None:
    """An endpoint that answers eth_chainId with something else than a hex quantity: one line
    naming the endpoint and its answer, exit 1 (it was `invalid literal for int() with base 16`,
    or a TypeError's traceback for a number)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from typer.testing import CliRunner

    from contagion.cli import app

    answer: list[Any] = []

    class OddChainId(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            body = json.dumps({"jsonrpc": "2.0", "id": asked["id"], "result": answer[-1]})
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), OddChainId)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        for odd in ("mainnet", 1, None):
            answer.append(odd)
            result = CliRunner().invoke(app, ["index", "--rpc", url, "--registry", "ethereum",
                                              "--lake", str(tmp_path / "lake")])
            assert result.exit_code == 1, result.output
            assert isinstance(result.exception, SystemExit), result.exception
            text = " ".join(result.output.split())
            assert (f"error: indexing from {url} stopped: {url} answered eth_chainId with "
                    f"{odd!r}, not a hex quantity") in text, text
            assert "Traceback" not in text
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.devnet
def test_a_reorg_to_a_shorter_chain_removes_what_is_gone_even_after_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a reorg that leaves the chain below the lake's top, the partitions of blocks that
    no longer exist go (they used to stay, counted as re-indexed every run, and their flows
    reached the warehouse), the rest is re-indexed, and a run that crashes right after writing
    a re-indexed partition's raw files leaves nothing of the old fork behind: the rerun equals a
    fresh index of the chain as it now is."""
    import shutil

    import contagion.indexing as indexing

    with devnet_history(tmp_path / "node", blocks=6, seed=8) as history:
        registry = history_registry(history)
        client = RpcClient(history.url)
        snapshot = str(client.call("evm_snapshot"))
        fork_head, fork_time = history.head, history.timestamp
        add_transfers(history, 40, seed=9)
        lake = Lake(tmp_path / "lake")
        index_range(client, lake, registry, width=10)
        shutil.copytree(tmp_path / "lake", tmp_path / "crashed")
        tops = [p.stop for p in lake.partitions("flows", CHAIN)]

        fork(history, snapshot, fork_head, fork_time, blocks=12, seed=10)  # 40 blocks -> 12
        assert history.head < max(tops) - 10
        summary = index_range(client, lake, registry, width=10, reorg_window=1_000)
        assert summary.removed_after_reorg >= 2 and summary.reindexed_after_reorg >= 1
        fresh = Lake(tmp_path / "fresh")
        index_range(client, fresh, registry, width=10)
        same_tables(lake, fresh)
        assert max(p.stop for p in lake.partitions("flows", CHAIN)) == history.head + 1
        again = index_range(client, lake, registry, width=10, reorg_window=1_000)
        assert (again.reindexed_after_reorg, again.removed_after_reorg, again.windows) == \
            (0, 0, [])

        crashed = Lake(tmp_path / "crashed")

        def fails(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("killed after writing the raw files")

        with monkeypatch.context() as patch:
            patch.setattr(indexing, "decode_partition", fails)
            with pytest.raises(RuntimeError, match="killed"):
                index_range(client, crashed, registry, width=10, reorg_window=1_000)
        index_range(client, crashed, registry, width=10, reorg_window=1_000)
        same_tables(crashed, fresh)
        client.close()


@pytest.mark.devnet
def test_a_reorg_to_a_shorter_chain_removes_what_is_gone_through_dagster_too(
        tmp_path: Path) -> None:
    """The Dagster path after a reorg to a shorter chain: the run deletes every table's files
    above the new head (they used to stay, their flows read by the warehouse, and the coverage
    check failed), the sensor removes the partition keys above it, and the lake equals a fresh
    `contagion index` of the chain as it now is. Also when the new head ends a stored window
    that still holds: the sensor then asks for that window only for the deletion."""
    import dagster as dg

    from contagion.indexing import (
        CANONICAL_TABLES,
        DECODED_TABLES,
        QUARANTINE,
        window_key,
        window_keys,
    )
    from contagion.registry import save_registry
    from contagion.states import STATE_TABLES
    from dagster_project.assets import (
        BLOCK_RANGES,
        INDEXING_ASSETS,
    )
    from dagster_project.definitions import registry as registry_asset
    from dagster_project.resources import ChainResource, LakeResource
    from dagster_project.sensors import block_range_sensor

    tables = ("raw_logs", "blocks", *DECODED_TABLES, QUARANTINE, *CANONICAL_TABLES,
              *STATE_TABLES)
    with devnet_history(tmp_path / "node", blocks=6, seed=8) as history:
        registry = history_registry(history)
        save_registry(registry, tmp_path / "registry.yaml")
        client = RpcClient(history.url)
        chain = ChainResource(rpc_url=history.url, registry=str(tmp_path / "registry.yaml"),
                              confirmations=0, partition_width=10, reorg_window=1_000)
        resources = {"chain": chain, "lake": LakeResource(root=str(tmp_path / "lake"))}
        instance = dg.DagsterInstance.ephemeral()
        lake = Lake(tmp_path / "lake")

        def tick() -> list[str]:
            """A sensor tick: its partition keys added and deleted, its runs materialized."""
            result = block_range_sensor(dg.build_sensor_context(instance=instance,
                                                                resources=resources))
            assert isinstance(result, dg.SensorResult)
            for change in result.dynamic_partitions_requests or []:
                keys = list(change.partition_keys or [])
                if isinstance(change, dg.AddDynamicPartitionsRequest):
                    instance.add_dynamic_partitions(BLOCK_RANGES, keys)
                else:
                    for key in keys:
                        instance.delete_dynamic_partition(BLOCK_RANGES, key)
            asked = [str(r.partition_key) for r in result.run_requests or []]
            for key in asked:
                run = dg.materialize([registry_asset, *INDEXING_ASSETS], partition_key=key,
                                     instance=instance, resources=resources,
                                     selection=INDEXING_ASSETS)
                assert run.success
                assert all(c.passed for c in run.get_asset_check_evaluations()), key
            return asked

        def same_as_a_fresh_index(name: str) -> None:
            for table in tables:
                above = [p for p in lake.partitions(table, CHAIN) if p.stop > history.head + 1]
                assert not above, (table, above)
            assert sorted(instance.get_dynamic_partitions(BLOCK_RANGES)) == window_keys(
                history.first, history.head, 10)
            fresh = Lake(tmp_path / name)
            index_range(client, fresh, registry, width=10)
            for table in tables:
                assert lake.partitions(table, CHAIN) == fresh.partitions(table, CHAIN), table
            same_tables(lake, fresh)
            assert tick() == []  # nothing left to do

        snapshot = str(client.call("evm_snapshot"))
        fork_head, fork_time = history.head, history.timestamp
        add_transfers(history, 40, seed=9)
        assert tick()
        top = max(p.stop for p in lake.partitions("flows", CHAIN))
        fork(history, snapshot, fork_head, fork_time, blocks=12, seed=10)  # 40 blocks -> 12
        assert history.head < top - 10  # whole windows above the new head
        assert tick()
        same_as_a_fresh_index("fresh")

        # back to a head that ends a window, stored whole before the chain went on
        add_transfers(history, 9 - history.head % 10 + 10, seed=11)
        snapshot = str(client.call("evm_snapshot"))
        fork_head, fork_time = history.head, history.timestamp
        assert tick()
        add_transfers(history, 15, seed=12)
        assert tick()
        fork(history, snapshot, fork_head, fork_time, blocks=0, seed=13)
        assert tick() == [window_key(fork_head - 9, fork_head + 1)]
        same_as_a_fresh_index("fresh_again")
        client.close()


@pytest.mark.devnet
def test_indexing_part_of_a_stored_window_keeps_the_rest_of_it(history: History,
                                                               tmp_path: Path) -> None:
    """A run over a few blocks inside a window the lake holds used to replace the window's
    file with one of just those blocks, losing the rest; it now finds them indexed. A run that
    reaches past a window indexed while it was open grows the window's file over both ranges.
    Either way the lake equals one indexed in a single run."""
    registry = history_registry(history)
    client = RpcClient(history.url)
    width, first = 32, history.first
    lake, clean = Lake(tmp_path / "lake"), Lake(tmp_path / "clean")
    index_range(client, clean, registry, last=first + 90, width=width)

    index_range(client, lake, registry, last=first + 40, width=width)  # the second window open
    grown = index_range(client, lake, registry, first=first + 50, last=first + 55, width=width)
    (window,) = grown.windows
    assert window.part.start <= first + 40 < first + 55 < window.part.stop
    index_range(client, lake, registry, last=first + 90, width=width)
    same_tables(lake, clean)
    before = mtimes(tmp_path / "lake")
    inside = index_range(client, lake, registry, first=first + 40, last=first + 45, width=width)
    to_middle = index_range(client, lake, registry, last=first + 45, width=width)
    assert inside.windows == to_middle.windows == [] and inside.skipped == 1
    assert mtimes(tmp_path / "lake") == before
    same_tables(lake, clean)
    client.close()


@pytest.mark.devnet
def test_a_window_left_twice_by_an_interrupted_run_is_read_once(history: History,
                                                                tmp_path: Path) -> None:
    """A run stopped between writing a grown window and superseding the file it grew from left
    both complete; every later run skipped the window, and the warehouse read its blocks
    twice. The next run keeps the wider one and deletes the narrower, and a half-written
    partition's files nothing complete covers go too."""
    import shutil

    registry = history_registry(history)
    client = RpcClient(history.url)
    width, first = 32, history.first
    lake, clean = Lake(tmp_path / "lake"), Lake(tmp_path / "clean")
    index_range(client, clean, registry, last=first + 90, width=width)
    index_range(client, lake, registry, last=first + 40, width=width)
    saved = tmp_path / "saved"
    shutil.copytree(tmp_path / "lake", saved)
    index_range(client, lake, registry, last=first + 90, width=width)
    for path in saved.rglob("*.parquet"):  # the narrower files back beside the grown ones
        target = tmp_path / "lake" / path.relative_to(saved)
        if not target.exists():
            shutil.copy2(path, target)
    assert len(lake.partitions("flows", CHAIN)) > len(clean.partitions("flows", CHAIN))
    # and a raw file of a partition whose write was cut short, in the last window
    top = clean.partitions("raw_logs", CHAIN)[-1]
    half = PartitionFile(CHAIN, top.start, top.stop - 1)
    lake.write("raw_logs", half, clean.read("raw_logs", top))
    rerun = index_range(client, lake, registry, last=first + 90, width=width)
    assert rerun.windows == []
    same_tables(lake, clean)
    client.close()
