"""The RPC client's retry policy against a fault-injecting proxy in front of a real node: every
transport fault is retried and then succeeds, Retry-After is honoured (observed through an
injected sleep, never the wall clock), JSON-RPC errors and ambiguous faults on state-changing
calls are not retried, and the number of requests in flight stays bounded."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contagion.chain.rpc import (
    RetryPolicy,
    RpcClient,
    RpcError,
    RpcUnavailable,
    StatePruned,
    retry_after_seconds,
    rpc_error,
)
from contagion.devnet.node import free_port, start_node, stop_node

if TYPE_CHECKING:  # pytest imports this folder's modules top-level; mypy sees the package
    from tests.chain.faultproxy import Fault, FaultProxy
else:
    from faultproxy import Fault, FaultProxy

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)


def test_retry_after_header_forms() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds("3", now) == 3.0
    assert retry_after_seconds(" 1.5 ", now) == 1.5
    assert retry_after_seconds(email.utils.formatdate(now + 7, usegmt=True), now) == 7.0
    assert retry_after_seconds(email.utils.formatdate(now - 60, usegmt=True), now) == 0.0
    assert retry_after_seconds("-4", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0)
    rng = random.Random(1)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        waits = [policy.backoff(retry, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=2.0, max_delay=1.0)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("node")
    info = start_node(folder, free_port(), attached=True)
    try:
        yield info.url
    finally:
        stop_node(folder)


@pytest.fixture
def proxy(node: str) -> Iterator[FaultProxy]:
    p = FaultProxy(node)
    try:
        yield p
    finally:
        p.close()


class Sleeps:
    """An injected sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(proxy: FaultProxy, sleeps: Sleeps | None = None) -> RpcClient:
    # a timeout well above a loaded machine's round trip, so only the injected delay times out
    return RpcClient(proxy.url, timeout=1.5, retry=FAST, sleep=sleeps or Sleeps())


FAULTS = [Fault("status", 429), Fault("status", 500), Fault("status", 502),
          Fault("status", 503), Fault("status", 504), Fault("delay", seconds=2.0),
          Fault("drop"), Fault("truncate"), Fault("cut")]


@pytest.mark.devnet
@pytest.mark.parametrize("fault", FAULTS,
                         ids=lambda f: str(f.status) if f.kind == "status" else f.kind)
def test_transport_faults_are_retried(proxy: FaultProxy, fault: Fault) -> None:
    sleeps = Sleeps()
    client = client_for(proxy, sleeps)
    proxy.push(fault, fault)
    assert client.call("eth_chainId") == "0x7a69"
    assert proxy.http_requests == 3
    assert len(sleeps.waits) == 2 and sleeps.waits[0] <= sleeps.waits[1]
    # a batch rides the same retries
    proxy.push(fault)
    assert client.batch_strict([("eth_chainId", []), ("net_version", [])]) == ["0x7a69",
                                                                                "31337"]
    client.close()


@pytest.mark.devnet
def test_retry_after_is_honoured(proxy: FaultProxy) -> None:
    sleeps = Sleeps()
    client = client_for(proxy, sleeps)
    proxy.push(Fault("status", 429, retry_after="3"), Fault("status", 503, retry_after="0.25"))
    assert client.call("eth_chainId") == "0x7a69"
    assert sleeps.waits == [3.0, 0.25]

    sleeps.waits.clear()
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    proxy.push(Fault("status", 503, retry_after=when))
    client.call("eth_chainId")
    assert len(sleeps.waits) == 1 and 3.0 < sleeps.waits[0] <= 5.0  # HTTP dates are whole s

    proxy.push(Fault("status", 429, retry_after="3600"))  # a quota reset: fail, do not stall
    before = proxy.http_requests
    with pytest.raises(RpcUnavailable, match="retry after 3600s"):
        client.call("eth_chainId")
    assert proxy.http_requests == before + 1


@pytest.mark.devnet
def test_exhausted_retries_name_the_url_and_last_fault(proxy: FaultProxy) -> None:
    client = client_for(proxy)
    proxy.push(*[Fault("status", 502)] * FAST.max_attempts)
    with pytest.raises(RpcUnavailable) as err:
        client.call("eth_chainId")
    assert proxy.url in str(err.value) and "4 attempt(s)" in str(err.value)
    assert "HTTP 502" in str(err.value)
    assert proxy.http_requests == FAST.max_attempts


@pytest.mark.devnet
def test_jsonrpc_errors_are_not_retried(proxy: FaultProxy) -> None:
    sleeps = Sleeps()
    client = client_for(proxy, sleeps)
    proxy.push(Fault("rpc_error"))
    with pytest.raises(RpcError, match="injected JSON-RPC error"):
        client.call("eth_chainId")
    with pytest.raises(RpcError):  # the node's own error: an unknown method
        client.call("eth_noSuchMethod")
    assert proxy.http_requests == 2 and sleeps.waits == []


@pytest.mark.devnet
def test_state_changing_calls_are_replayed_only_when_unsent(proxy: FaultProxy) -> None:
    client = client_for(proxy)
    direct = RpcClient(proxy.upstream)
    start = int(direct.call("eth_blockNumber"), 16)
    proxy.push(Fault("status", 429))  # refused before processing: safe to send again
    client.call("evm_mine")
    assert int(direct.call("eth_blockNumber"), 16) == start + 1
    proxy.push(Fault("drop"))  # mined, then the reply was lost: a replay would mine twice
    with pytest.raises(RpcUnavailable, match="may have been processed"):
        client.call("evm_mine")
    assert int(direct.call("eth_blockNumber"), 16) == start + 2
    proxy.push(Fault("truncate"))
    with pytest.raises(RpcUnavailable, match="may have been processed"):
        client.batch([("eth_blockNumber", []), ("evm_mine", [])])
    assert int(direct.call("eth_blockNumber"), 16) == start + 3
    direct.close()


@pytest.mark.devnet
def test_requests_in_flight_are_bounded(node: str) -> None:
    slow = FaultProxy(node, latency=0.03)
    client = RpcClient(slow.url, retry=FAST, max_in_flight=3)
    errors: list[BaseException] = []
    numbers: list[int] = []

    def work(i: int) -> None:
        try:
            # batches from many threads at once: each reply matches its own request
            heads = client.batch_strict([("eth_getBlockByNumber", [hex(0), False]),
                                         ("eth_chainId", [])])
            assert heads[1] == "0x7a69"
            numbers.append(int(heads[0]["number"], 16) + i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    slow.close()
    assert not errors
    assert sorted(numbers) == list(range(24))
    assert slow.max_in_flight == 3


@pytest.mark.parametrize("message", [
    "missing trie node 60bb94a56bc9305766a3adf8605816333ec946f1c452c2913f8ba6a8cefff1c8 (path )",
    "historical state not available in path scheme yet",
    "required historical state unavailable (reexec=128)",
    "State at block #11052984 is pruned",
    "pruned history unavailable",
    "This request is not supported because your node is running with state pruning. Run with "
    "--pruning=archive.",
])
def test_a_pruned_node_is_named_as_such(message: str) -> None:
    """What geth, reth and OpenEthereum answer for state they no longer keep (words from their
    issue trackers) becomes StatePruned, whose message says an archive node is needed; other
    errors, a revert among them, stay plain RpcErrors."""
    error = rpc_error("eth_call", -32000, message)
    assert isinstance(error, StatePruned)
    assert str(error).endswith("reading past blocks needs an archive node)")
    assert message in str(error)


@pytest.mark.parametrize("message", ["execution reverted: market archived", "header not found",
                                     "invalid argument 0: hex string without 0x prefix"])
def test_other_errors_are_not_taken_for_pruning(message: str) -> None:
    error = rpc_error("eth_call", -32000, message)
    assert type(error) is RpcError
