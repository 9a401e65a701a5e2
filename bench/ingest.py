"""Ingestion throughput and peak memory: `contagion`'s indexer against cryo (Paradigm's extractor,
a bench-only dependency) reading the same logs from the same local node, in the same run.

A fresh anvil node gets a bench-only contract (bench/contracts/LogBurst.vy) that emits ERC-20
Transfer logs in bulk: BLOCKS blocks of LOGS_PER_BLOCK logs each. Both tools collect every log of
that contract over the range into Parquet, with the same blocks per eth_getLogs request and the
same number of requests in flight; the best of REPEAT runs counts. Ours does more than cryo in
that time: it also fetches block headers, decodes the events and derives the canonical tables.
Target: >= 2x cryo's logs/s. The rate at which the node serves the replies (bytes only, no
parsing) is measured too: it bounds every collector, cryo included.

Peak memory: the indexer runs in a child process over half the range and over all of it; the
peak resident set should not grow with the range (partitions are streamed to the lake, never all
held at once). cryo's peak over the whole range is printed beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from contagion.chain.rpc import RpcClient
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.indexing import index_range
from contagion.lake import Lake
from contagion.registry import Registry, Token

BLOCKS = 1_000
LOGS_PER_BLOCK = 400
WIDTH = 100  # blocks per partition
CHUNK = 50  # blocks per eth_getLogs request, both tools (20k logs: a typical provider cap)
IN_FLIGHT = 4  # requests in flight, both tools
REPEAT = 3
CONTRACT = Path(__file__).parent / "contracts" / "LogBurst.vy"


def build_chain(data_dir: Path) -> tuple[str, Registry, int, int]:
    """Start a node and fill BLOCKS blocks with LOGS_PER_BLOCK logs each; returns (url, registry,
    first, last): `first` holds the deployment, first + 1 … last = first + BLOCKS the logs."""
    info = start_node(data_dir, port=free_port(), attached=True)
    client = RpcClient(info.url)
    client.call("evm_setAutomine", [False])  # one burst per mined block, no empty ones between
    driver = DevnetDriver(client)
    burst = driver.deploy_file(CONTRACT, gas=3_000_000)
    driver.flush()
    timestamp = int(client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    first = driver.mine(timestamp + 12)
    for block in range(BLOCKS):
        burst.tx(DEPLOYER, "burst", LOGS_PER_BLOCK, block * LOGS_PER_BLOCK, gas=4_000_000)
        driver.flush()
        last = driver.mine(timestamp + 24 + 12 * block)
    registry = Registry(network="bench", chain_id=info.chain_id, deployed_at_block=first,
                        tokens=[Token(symbol="BURST", address=burst.address, decimals=18)],
                        venues=[])
    return info.url, registry, first, last


def ours(url: str, registry: Registry, first: int, last: int, out: Path) -> int:
    # the client bounds the requests on the wire, as cryo's max_concurrent_requests does
    summary = index_range(RpcClient(url, max_in_flight=IN_FLIGHT), Lake(str(out)), registry,
                          first=first, last=last, width=WIDTH, chunk_blocks=CHUNK,
                          max_in_flight=IN_FLIGHT)
    return summary.logs


def cryo_run(url: str, registry: Registry, first: int, last: int, out: Path) -> int:
    import cryo

    out.mkdir(parents=True, exist_ok=True)
    cryo.freeze("logs", rpc=url, blocks=[f"{first}:{last + 1}"],  # cryo's end is exclusive
                contract=[registry.tokens[0].address], output_dir=str(out), chunk_size=CHUNK,
                inner_request_size=CHUNK, max_concurrent_requests=IN_FLIGHT, no_verbose=True)
    return sum(pq.read_metadata(f).num_rows for f in out.glob("*.parquet"))


def node_floor(url: str, registry: Registry, first: int, last: int) -> float:
    """logs/s at which the node serves the same eth_getLogs replies to a client that only reads
    the bytes: no collector reading from this node can go faster."""
    import requests

    def fetch(lo: int) -> int:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{
            "fromBlock": hex(lo), "toBlock": hex(min(lo + CHUNK - 1, last)),
            "address": [registry.tokens[0].address]}]}
        return len(requests.post(url, json=body, timeout=60).content)

    times = []
    for _ in range(REPEAT):
        began = time.perf_counter()
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            list(pool.map(fetch, range(first, last + 1, CHUNK)))
        times.append(time.perf_counter() - began)
    return BLOCKS * LOGS_PER_BLOCK / min(times)


_CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
from ingest import {fn}
from contagion.registry import parse_registry
registry = parse_registry(json.loads({registry!r}))
began = time.perf_counter()
rows = {fn}({url!r}, registry, {first}, {last}, Path({out!r}))
seconds = time.perf_counter() - began
# VmHWM: this process's peak resident set (ru_maxrss would include the parent's, kept over exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({{"rows": rows, "seconds": seconds, "peak_mib": peak / 1024}}))
"""


def run_child(fn: str, url: str, registry: Registry, first: int, last: int,
              out: Path) -> dict[str, float]:
    """One tool over [first, last] in a fresh process: rows, seconds (of the collection alone,
    not the interpreter's start) and peak resident set in MiB. cryo's console report is
    swallowed."""
    code = _CHILD.format(bench=str(Path(__file__).parent), fn=fn,
                         registry=registry.model_dump_json(), url=url, first=first, last=last,
                         out=str(out))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{fn} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def best(fn: str, url: str, registry: Registry, first: int, last: int, scratch: Path,
         expected: int) -> dict[str, float]:
    """The fastest of REPEAT runs, with the highest peak memory of them."""
    runs = [run_child(fn, url, registry, first, last, scratch / f"{fn}-{i}")
            for i in range(REPEAT)]
    for run in runs:
        if run["rows"] != expected:
            raise SystemExit(f"{fn} collected {run['rows']} logs, expected {expected}")
    return {"seconds": min(r["seconds"] for r in runs), "rows": expected,
            "peak_mib": max(r["peak_mib"] for r in runs)}


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="contagion-bench-"))
    try:
        began = time.perf_counter()
        url, registry, first, last = build_chain(scratch / "node")
        assert last == first + BLOCKS, (first, last)
        print(f"chain: {BLOCKS:,} blocks × {LOGS_PER_BLOCK} logs = {BLOCKS * LOGS_PER_BLOCK:,} "
              f"logs, built in {time.perf_counter() - began:.0f} s")
        total = BLOCKS * LOGS_PER_BLOCK
        theirs = best("cryo_run", url, registry, first, last, scratch, total)
        full = best("ours", url, registry, first, last, scratch, total)
        half_logs = LOGS_PER_BLOCK * (BLOCKS // 2)
        half = best("ours", url, registry, first, first + BLOCKS // 2, scratch, half_logs)
        ours_rate, cryo_rate = total / full["seconds"], total / theirs["seconds"]
        floor = node_floor(url, registry, first, last)
        print(f"ingest: contagion {ours_rate:,.0f} logs/s (raw logs + headers + decoded + "
              f"canonical tables) · cryo {cryo_rate:,.0f} logs/s (raw logs); best of {REPEAT}, "
              f"{CHUNK} blocks per request, {IN_FLIGHT} in flight")
        print(f"ingest ratio vs cryo: {ours_rate / cryo_rate:.2f}x (target >= 2x) · the node "
              f"itself serves these replies at {floor:,.0f} logs/s (bytes read, nothing parsed):"
              f" cryo runs at {cryo_rate / floor:.0%} of it, we at {ours_rate / floor:.0%}")
        print(f"peak memory: contagion {half['peak_mib']:,.0f} MiB indexing {half_logs:,} logs, "
              f"{full['peak_mib']:,.0f} MiB indexing {total:,} · cryo {theirs['peak_mib']:,.0f}"
              f" MiB for {total:,}")
        print(f"memory ratio whole/half range: {full['peak_mib'] / half['peak_mib']:.2f} "
              "(streaming by partition: ~1, where holding everything would double it)")
    finally:
        stop_node(scratch / "node")
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
