"""A thin JSON-RPC client: single calls and batches over one keep-alive HTTP session.

web3.py is the right tool for ad-hoc reads; the devnet driver sends tens of thousands of
requests and needs JSON-RPC batches with per-item errors, which this gives without overhead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["RpcClient", "RpcError", "RpcItemError", "RpcUnavailable"]


class RpcError(RuntimeError):
    """The endpoint answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: JSON-RPC error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class RpcUnavailable(RuntimeError):
    """The endpoint could not be reached or did not answer in time."""


@dataclass(frozen=True)
class RpcItemError:
    """An error for one request inside a batch (the others may have succeeded)."""

    method: str
    code: int
    message: str
    data: Any = None

    def raise_(self) -> None:
        raise RpcError(self.method, self.code, self.message, self.data)


class RpcClient:
    def __init__(self, url: str, timeout: float = 60.0, max_batch: int = 500) -> None:
        self.url = url
        self.max_batch = max_batch
        self.timeout = timeout
        self._session = requests.Session()
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._session.close()

    def _post(self, payload: Any) -> Any:
        try:
            response = self._session.post(self.url, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RpcUnavailable(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code != 200:
            raise RpcUnavailable(f"{self.url} answered HTTP {response.status_code}: "
                                 f"{response.text[:200]}")
        return response.json()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                            "params": list(params)})
        if "error" in reply:
            err = reply["error"]
            raise RpcError(method, err.get("code", 0), err.get("message", ""), err.get("data"))
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
        first = next(self._ids)
        payload = [{"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
                   for i, (m, p) in enumerate(requests_)]
        self._ids = itertools.count(first + len(payload))
        replies = self._post(payload)
        if not isinstance(replies, list):  # some servers answer a whole batch with one error
            err = replies.get("error", {}) if isinstance(replies, dict) else {}
            raise RpcError("batch", err.get("code", 0), err.get("message", str(replies)))
        by_id = {r["id"]: r for r in replies}
        results: list[Any] = []
        for i, (method, _) in enumerate(requests_):
            reply = by_id.get(first + i)
            if reply is None:
                results.append(RpcItemError(method, 0, "no reply for this request"))
            elif "error" in reply:
                err = reply["error"]
                results.append(RpcItemError(method, err.get("code", 0), err.get("message", ""),
                                            err.get("data")))
            else:
                results.append(reply["result"])
        return results

    def batch_strict(self, requests_: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Like `batch`, but the first failed item raises."""
        results = self.batch(requests_)
        for r in results:
            if isinstance(r, RpcItemError):
                r.raise_()
        return results
