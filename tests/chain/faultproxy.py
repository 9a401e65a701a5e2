"""Test support for the chain readers: a fault-injecting JSON-RPC proxy in front of a real node,
and a devnet history of ERC-20 transfers to read through it.

The proxy forwards each HTTP request to the node, unless a fault is scripted for it (one per
request, first in first out) or drawn by its seeded chaos mode. It can also play a provider
that caps `eth_getLogs` by block span or by result count, in the words real providers use.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import requests

from contagion.chain.rpc import RpcClient
from contagion.devnet.base import BaseWorld, deploy_base, mint
from contagion.devnet.driver import DevnetDriver
from contagion.devnet.node import GENESIS_TIMESTAMP, free_port, start_node, stop_node

FaultKind = Literal["status", "delay", "drop", "truncate", "cut", "rpc_error"]
LimitStyle = Literal["infura", "alchemy", "width", "plain"]


@dataclass(frozen=True)
class Fault:
    """What the proxy does to one HTTP request.

    status: answer `status` (with `retry_after` as the Retry-After header, if given) unforwarded;
    delay: wait `seconds`, then forward (the client has given up by then);
    drop: forward, then close the connection without an answer;
    truncate: forward, answer 200 with the first half of the body (invalid JSON);
    cut: forward, announce the whole body but send half of it and close;
    rpc_error: answer a JSON-RPC error reply without forwarding.
    """

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0


CHAOS: tuple[Fault, ...] = (
    Fault("status", 429), Fault("status", 429, retry_after="0"), Fault("status", 500),
    Fault("status", 502), Fault("status", 503), Fault("drop"), Fault("truncate"), Fault("cut"))


@dataclass(frozen=True)
class LogLimit:
    """A provider's eth_getLogs cap: at most `max_blocks` blocks or `max_results` logs a query.

    Styles: infura (-32005, "query returned more than N results" and a range to try),
    alchemy ("Log response size exceeded … this block range should work: [a, b]"),
    width ("exceed maximum block range: N"), plain ("block range is too wide": no hint).
    """

    style: LimitStyle
    max_blocks: int | None = None
    max_results: int | None = None


class FaultProxy:
    def __init__(self, upstream: str, *, limit: LogLimit | None = None,
                 latency: float = 0.0, pruned_below: int | None = None) -> None:
        self.upstream = upstream
        self.limit = limit
        # play a full node: eth_call at a block number below this answers as geth does
        self.pruned_below = pruned_below
        self.latency = latency  # added to every forwarded request, to make overlap visible
        self.script: deque[Fault] = deque()
        self.chaos_rate = 0.0
        self._rng = random.Random(0)
        self.methods: Counter[str] = Counter()  # JSON-RPC methods received, batch items too
        self.http_requests = 0
        self.faults: Counter[str] = Counter()  # injected, by kind (and "limit")
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint

            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def push(self, *faults: Fault) -> None:
        """Script faults for the next requests, in order."""
        with self._lock:
            self.script.extend(faults)

    def chaos(self, rate: float, seed: int) -> None:
        """From now on, a request without a scripted fault gets a random one with `rate`."""
        with self._lock:
            self.chaos_rate, self._rng = rate, random.Random(seed)

    # -- serving -------------------------------------------------------------------------------
    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self.script:
                return self.script.popleft()
            if self.chaos_rate and self._rng.random() < self.chaos_rate:
                return self._rng.choice(CHAOS)
            return None

    def _forward(self, body: bytes) -> bytes:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        if self.latency:
            time.sleep(self.latency)
        reply = session.post(self.upstream, data=body,
                             headers={"Content-Type": "application/json"}, timeout=60)
        return reply.content

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        body = http.rfile.read(int(http.headers.get("Content-Length", "0")))
        payload = json.loads(body)
        items = payload if isinstance(payload, list) else [payload]
        with self._lock:
            self.http_requests += 1
            self.methods.update(str(item.get("method")) for item in items)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._next_fault()
            if fault is not None:
                with self._lock:
                    self.faults[fault.kind] += 1
            self._serve(http, body, payload, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a delay fault): nothing to answer
        finally:
            with self._lock:
                self.in_flight -= 1

    def _serve(self, http: BaseHTTPRequestHandler, body: bytes, payload: Any,
               fault: Fault | None) -> None:
        if fault is not None and fault.kind == "status":
            _send(http, fault.status, b"injected fault",
                  {"Retry-After": fault.retry_after} if fault.retry_after is not None else {})
            return
        if fault is not None and fault.kind == "rpc_error":
            _send(http, 200, _error(payload, -32000, "injected JSON-RPC error"))
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        reply = self._limited(payload, body)
        if fault is None or fault.kind == "delay":
            _send(http, 200, reply)
        elif fault.kind == "drop":
            http.close_connection = True
        elif fault.kind == "truncate":
            _send(http, 200, reply[:len(reply) // 2])
        elif fault.kind == "cut":
            http.send_response(200)
            http.send_header("Content-Type", "application/json")
            http.send_header("Content-Length", str(len(reply)))
            http.end_headers()
            http.wfile.write(reply[:len(reply) // 2])
            http.wfile.flush()
            http.close_connection = True

    def _pruned(self, item: Any) -> bool:
        if self.pruned_below is None or item.get("method") != "eth_call":
            return False
        block = item["params"][1] if len(item["params"]) > 1 else "latest"
        return isinstance(block, str) and block.startswith("0x") and \
            int(block, 16) < self.pruned_below

    def _limited(self, payload: Any, body: bytes) -> bytes:
        """Forward, playing the provider's eth_getLogs cap on single getLogs calls, and a full
        node's pruned state (`pruned_below`) on eth_calls, batched or not."""
        items = payload if isinstance(payload, list) else [payload]
        pruned = [self._pruned(item) for item in items]
        if any(pruned):
            kept = [item for item, gone in zip(items, pruned, strict=True) if not gone]
            replies = json.loads(self._forward(json.dumps(kept).encode())) if kept else []
            by_id = {r.get("id"): r for r in replies}
            answers = [json.loads(_error(item, -32000, f"missing trie node {'ab' * 32} (path )"))
                       if gone else by_id[item.get("id")]
                       for item, gone in zip(items, pruned, strict=True)]
            return json.dumps(answers if isinstance(payload, list) else answers[0]).encode()
        limit = self.limit
        if limit is None or not isinstance(payload, dict) or payload["method"] != "eth_getLogs":
            return self._forward(body)
        query = payload["params"][0]
        lo, hi = int(query["fromBlock"], 16), int(query["toBlock"], 16)
        if limit.max_blocks is not None and hi - lo + 1 > limit.max_blocks:
            with self._lock:
                self.faults["limit"] += 1
            return _error(payload, *_limit_error(limit, lo, lo + limit.max_blocks - 1))
        reply = self._forward(body)
        logs = json.loads(reply).get("result") or []
        if limit.max_results is not None and len(logs) > limit.max_results:
            with self._lock:
                self.faults["limit"] += 1
            # the widest range from lo whose logs fit, as Infura computes it
            blocks = sorted(int(log["blockNumber"], 16) for log in logs)
            fits = blocks[limit.max_results] - 1
            return _error(payload, *_limit_error(limit, lo, max(lo, fits)))
        return reply


def _limit_error(limit: LogLimit, lo: int, hi: int) -> tuple[int, str]:
    cap = limit.max_results or 10000
    if limit.style == "infura":
        return -32005, (f"query returned more than {cap} results. Try with this block range "
                        f"[{hex(lo).upper().replace('0X', '0x')}, "
                        f"{hex(hi).upper().replace('0X', '0x')}].")
    if limit.style == "alchemy":
        return -32602, ("Log response size exceeded. You can make eth_getLogs requests with up "
                        "to a 2K block range and no limit on the response size, or you can "
                        "request any block range with a cap of 10K logs in the response. Based "
                        f"on your parameters, this block range should work: [{hex(lo)}, "
                        f"{hex(hi)}]")
    if limit.style == "width":
        return -32000, f"exceed maximum block range: {limit.max_blocks}"
    return -32005, "block range is too wide"


def _error(payload: Any, code: int, message: str) -> bytes:
    ident = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(payload, list):
        return json.dumps([{"jsonrpc": "2.0", "id": p.get("id"),
                            "error": {"code": code, "message": message}}
                           for p in payload]).encode()
    return json.dumps({"jsonrpc": "2.0", "id": ident,
                       "error": {"code": code, "message": message}}).encode()


def _send(http: BaseHTTPRequestHandler, status: int, body: bytes,
          headers: dict[str, str] | None = None) -> None:
    http.send_response(status)
    http.send_header("Content-Type", "application/json")
    http.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        http.send_header(key, value)
    http.end_headers()
    http.wfile.write(body)
    http.wfile.flush()


# -- a devnet history to read ----------------------------------------------------------------

HOLDERS = [f"0x{i:040x}" for i in range(0xA000, 0xA006)]
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@dataclass
class History:
    """A node with the base world and a few hundred ERC-20 transfers over ~150 blocks."""

    url: str
    driver: DevnetDriver
    world: BaseWorld
    first: int  # the first block of the transfers
    head: int
    timestamp: int

    @property
    def tokens(self) -> list[str]:
        return [c.address for c in self.world.tokens.values()]


def add_transfers(history: History, blocks: int, seed: int, per_block: int = 4) -> None:
    """Mine `blocks` blocks of random transfers among the holders (some blocks empty)."""
    rng = random.Random(seed)
    symbols = ["WETH", "USDC", "WBTC", "GOV"]
    driver = history.driver
    for _ in range(blocks):
        for _ in range(rng.choice([0, per_block // 2, per_block, per_block * 2])):
            sender, receiver = rng.sample(HOLDERS, 2)
            history.world.tokens[rng.choice(symbols)].tx(sender, "transfer", receiver,
                                                         rng.randint(1, 10**6))
        driver.flush()
        history.timestamp += 12
        history.head = driver.mine(history.timestamp)


@contextmanager
def devnet_history(folder: Path, blocks: int = 150, seed: int = 1) -> Iterator[History]:
    """Start a node, deploy the base world, fund the holders and mine the transfers."""
    info = start_node(folder, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        client.call("evm_setAutomine", [False])
        driver = DevnetDriver(client)
        world, timestamp = deploy_base(driver, GENESIS_TIMESTAMP + 12)
        for holder in HOLDERS:
            for symbol in ("WETH", "USDC", "WBTC", "GOV"):
                mint(world, symbol, holder, 10**30)
        head, timestamp = driver.mine_all(timestamp + 12)
        history = History(info.url, driver, world, head + 1, head, timestamp)
        add_transfers(history, blocks, seed)
        yield history
    finally:
        client.close()
        stop_node(folder)
