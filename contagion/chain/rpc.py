"""A thin JSON-RPC client: single calls and batches over keep-alive HTTP sessions.

web3.py is the right tool for ad-hoc reads; the devnet driver sends tens of thousands of
requests and needs JSON-RPC batches with per-item errors, which this gives without overhead.

Transport faults (HTTP 429/408/5xx, timeouts, dropped connections, truncated or invalid JSON
bodies) are retried with exponential backoff and jitter, honouring `Retry-After`. A JSON-RPC
error reply is an answer, not a fault: it is never retried here. Requests that change state
(`eth_send*`, `evm_*`, `anvil_*`, …) are replayed only after faults that prove the node never
processed them (refused connection, 429), so a lost reply cannot mine a block twice.

One client may be shared by threads: at most `max_in_flight` requests are on the wire at once,
and each in-flight request has a `requests.Session` of its own from a small pool.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "RetryPolicy",
    "RpcClient",
    "RpcError",
    "RpcItemError",
    "RpcUnavailable",
    "StatePruned",
    "retry_after_seconds",
    "rpc_error",
]

log = logging.getLogger(__name__)


class RpcError(RuntimeError):
    """The endpoint answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: JSON-RPC error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class StatePruned(RpcError):
    """The endpoint no longer keeps what was asked: the state at an old block (a full node
    keeps the last 128 blocks' state), or old history. Reading past blocks (Chainlink phases,
    Compound v3 state, the truth check) needs an archive node."""

    def __str__(self) -> str:
        return (f"{super().__str__()} (the endpoint has pruned this block's state or history: "
                "reading past blocks needs an archive node)")


# How nodes say they pruned something: geth and its forks ("missing trie node …",
# "historical state … is not available", "required historical state unavailable"), reth
# ("State at block #N is pruned", "pruned history unavailable"), OpenEthereum ("… running
# with state pruning"), hosted endpoints without archive access ("… archive …").
_PRUNED = re.compile(r"missing trie node|historical state|is pruned|pruned history|"
                     r"state pruning|archive", re.IGNORECASE)


def rpc_error(method: str, code: int, message: str, data: Any = None) -> RpcError:
    """The error an endpoint's JSON-RPC error reply stands for: StatePruned where it says it
    has pruned what was asked, RpcError otherwise."""
    pruned = _PRUNED.search(message) and not message.startswith("execution reverted")
    kind = StatePruned if pruned else RpcError
    return kind(method, code, message, data)


class RpcUnavailable(RuntimeError):
    """The endpoint could not be reached or did not answer usably, after any retries."""


@dataclass(frozen=True)
class RpcItemError:
    """An error for one request inside a batch (the others may have succeeded)."""

    method: str
    code: int
    message: str
    data: Any = None

    def raise_(self) -> None:
        raise rpc_error(self.method, self.code, self.message, self.data)


@dataclass(frozen=True)
class RetryPolicy:
    """How transport faults are retried.

    max_attempts counts every try, the first included (1 = no retry). The n-th retry waits
    a random time in [d/2, d] with d = min(max_delay, base_delay * 2**(n-1)) ("equal jitter":
    clients that failed together do not retry together), or exactly what `Retry-After` asks,
    unless that exceeds max_retry_after: then waiting is pointless (a quota reset) and the
    request fails at once.
    """

    max_attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 20.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay or self.max_retry_after < 0:
            raise ValueError(f"need 0 <= base_delay <= max_delay and max_retry_after >= 0: "
                             f"{self}")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry - 1, 60))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)

# Methods whose replay changes the outcome (a second evm_mine mines a second block).
_WRITE_PREFIXES = ("eth_send", "evm_", "anvil_", "hardhat_", "miner_")
_JSON_HEADERS = {"Content-Type": "application/json"}


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A `Retry-After` header as seconds from `now` (Unix time): delta-seconds or an HTTP date.

    None when absent or unreadable; a date in the past means "now" (0).
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; parsedate leaves "-0000" naive
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class _Fault:
    """Why one HTTP attempt gave no usable reply."""

    what: str
    retryable: bool
    unsent: bool = False  # the server certainly did not process the request
    retry_after: float | None = None


class RpcClient:
    def __init__(self, url: str, timeout: float = 60.0, max_batch: int = 500, *,
                 retry: RetryPolicy = DEFAULT_RETRY, max_in_flight: int = 8,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """`sleep` is injectable so tests can observe backoff without waiting for it."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.url = url
        self.max_batch = max_batch
        self.timeout = timeout
        self.retry = retry
        self.max_in_flight = max_in_flight
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_in_flight)
        # Idle sessions. A session (its connection pool and cookie jar) is not meant to be
        # used by two threads at once; a pool rather than one per thread, because callers run
        # short-lived thread pools and per-thread sessions would leak their sockets.
        self._idle: deque[requests.Session] = deque()
        self._ids = itertools.count(1)  # next() on a count is atomic in CPython
        self._rng = random.Random()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    # -- transport -----------------------------------------------------------------------------
    def _attempt(self, body: bytes, loads: Callable[[bytes], Any]) -> tuple[Any, _Fault | None]:
        with self._slots:
            try:
                session = self._idle.pop()
            except IndexError:
                session = requests.Session()
            try:
                response = session.post(self.url, data=body, headers=_JSON_HEADERS,
                                        timeout=self.timeout)
                content = response.content  # read the body while holding the slot
            except requests.ConnectTimeout:
                return None, _Fault(f"no connection within {self.timeout}s", True, unsent=True)
            except requests.Timeout:
                return None, _Fault(f"no reply within {self.timeout}s", True)
            except requests.ConnectionError as exc:
                reason = getattr(exc.args[0] if exc.args else None, "reason", None)
                return None, _Fault(f"connection failed: {exc}", True,
                                    unsent=isinstance(reason, NewConnectionError))
            except requests.RequestException as exc:  # e.g. a body cut short mid-transfer
                return None, _Fault(f"broken reply: {exc}", True)
            finally:
                self._idle.append(session)
        status = response.status_code
        if status == 200 or (400 <= status < 500 and status not in (408, 429)):
            try:
                reply = loads(content)
            except ValueError as exc:
                if status != 200:  # a plain-text 4xx (bad URL, bad key): not transient
                    return None, _Fault(f"HTTP {status}: {content[:200]!r}", False)
                return None, _Fault(f"invalid JSON in the reply ({exc}): {content[:120]!r}",
                                    True)
            if status == 200 or _looks_like_jsonrpc(reply):
                return reply, None  # some providers send JSON-RPC errors with a 4xx status
            return None, _Fault(f"HTTP {status}: {content[:200]!r}", False)
        wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        return None, _Fault(f"HTTP {status}: {content[:200]!r}", status in (408, 429)
                            or status >= 500, unsent=status == 429, retry_after=wait)

    def _post(self, payload: Any, writes: bool,
              loads: Callable[[bytes], Any] = json.loads) -> Any:
        body = json.dumps(payload, separators=(",", ":")).encode()
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            reply, fault = self._attempt(body, loads)
            if fault is None:
                return reply
            if not fault.retryable:
                raise RpcUnavailable(f"{self.url}: {fault.what}")
            if writes and not fault.unsent:
                raise RpcUnavailable(f"{self.url}: {fault.what} (not retried: the request "
                                     "changes state and may have been processed)")
            if attempt == policy.max_attempts:
                raise RpcUnavailable(f"{self.url} unavailable after {attempt} attempt(s); "
                                     f"last fault: {fault.what}")
            if fault.retry_after is not None:
                if fault.retry_after > policy.max_retry_after:
                    raise RpcUnavailable(f"{self.url}: {fault.what}; it asks to retry after "
                                         f"{fault.retry_after:.0f}s, more than the "
                                         f"{policy.max_retry_after:.0f}s this client waits")
                delay = fault.retry_after
            else:
                delay = policy.backoff(attempt, self._rng)
            log.debug("%s: %s; retry %d in %.2fs", self.url, fault.what, attempt, delay)
            self._sleep(delay)

    # -- JSON-RPC --------------------------------------------------------------------------------
    def call(self, method: str, params: Sequence[Any] = (), *,
             loads: Callable[[bytes], Any] = json.loads) -> Any:
        """The result of one request. `loads` parses the reply body (a caller with a faster
        parser for a large result passes it; it must return what json.loads would for anything
        but that result, and raise ValueError where json.loads would)."""
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                            "params": list(params)}, method.startswith(_WRITE_PREFIXES), loads)
        if isinstance(reply, dict) and "error" in reply:
            err = reply["error"] if isinstance(reply["error"], dict) else {}
            raise rpc_error(method, err.get("code", 0), err.get("message", str(reply["error"])),
                            err.get("data"))
        if not isinstance(reply, dict) or "result" not in reply:
            raise RpcUnavailable(f"{self.url}: {method} reply is not JSON-RPC: "
                                 f"{str(reply)[:200]}")
        return reply["result"]

    def batch(self, requests_: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send many requests in one HTTP round trip; results keep the input order.

        An item that failed comes back as an `RpcItemError` instead of raising, so the caller
        decides which failures matter (a reverted liquidation attempt is routine).
        """
        if not requests_:
            return []
        if len(requests_) > self.max_batch:  # servers cap batch sizes; split, keep the order
            out: list[Any] = []
            for start in range(0, len(requests_), self.max_batch):
                out.extend(self.batch(requests_[start:start + self.max_batch]))
            return out
        ids = [next(self._ids) for _ in requests_]  # unique even when threads interleave
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                   for i, (m, p) in zip(ids, requests_, strict=True)]
        replies = self._post(payload, any(m.startswith(_WRITE_PREFIXES) for m, _ in requests_))
        if not isinstance(replies, list):  # some servers answer a whole batch with one error
            err = replies.get("error", {}) if isinstance(replies, dict) else {}
            raise rpc_error("batch", err.get("code", 0), err.get("message", str(replies)))
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        results: list[Any] = []
        for i, (method, _) in zip(ids, requests_, strict=True):
            reply = by_id.get(i)
            if reply is None:
                results.append(RpcItemError(method, 0, "no reply for this request"))
            elif "error" in reply:
                err = reply["error"] if isinstance(reply["error"], dict) else {}
                results.append(RpcItemError(method, err.get("code", 0), err.get("message", ""),
                                            err.get("data")))
            else:
                results.append(reply.get("result"))
        return results

    def batch_strict(self, requests_: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Like `batch`, but the first failed item raises."""
        results = self.batch(requests_)
        for r in results:
            if isinstance(r, RpcItemError):
                r.raise_()
        return results


def _looks_like_jsonrpc(reply: Any) -> bool:
    if isinstance(reply, list):
        return all(isinstance(r, dict) and "jsonrpc" in r for r in reply)
    return isinstance(reply, dict) and "jsonrpc" in reply and ("error" in reply
                                                              or "result" in reply)
