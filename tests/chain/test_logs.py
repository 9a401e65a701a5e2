"""Log and header reading: provider limit messages, range splitting, the reply-to-Arrow
conversion and its checks, and chunked concurrent eth_getLogs on a devnet history, clean and
through a proxy that injects transport faults and plays providers' range caps."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.chain.logs import (
    ChainMoved,
    LimitHint,
    MalformedReply,
    RangeLimitError,
    chain_id_of,
    get_headers,
    get_logs,
    head_of,
    headers_to_table,
    logs_to_table,
    parse_limit_error,
    parse_logs_reply,
    safe_head,
    split_range,
)
from contagion.chain.rpc import RetryPolicy, RpcClient, RpcError
from contagion.lake import BLOCKS_SCHEMA, RAW_LOGS_SCHEMA

if TYPE_CHECKING:  # pytest imports this folder's modules top-level; mypy sees the package
    from tests.chain.faultproxy import (
        TRANSFER,
        Fault,
        FaultProxy,
        History,
        LimitStyle,
        LogLimit,
        devnet_history,
    )
else:
    from faultproxy import (
        TRANSFER,
        Fault,
        FaultProxy,
        History,
        LimitStyle,
        LogLimit,
        devnet_history,
    )

CHAIN = 31337

# -- limit errors ------------------------------------------------------------------------------

LIMIT_MESSAGES: list[tuple[int, str, Any, LimitHint | None]] = [
    (-32005, "query returned more than 10000 results. Try with this block range "
             "[0x1E8480, 0x1E8C4F].", None, LimitHint(suggested=(0x1E8480, 0x1E8C4F))),
    (-32602, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
             "block range and no limit on the response size, or you can request any block "
             "range with a cap of 10K logs in the response. Based on your parameters, this "
             "block range should work: [0x1, 0x2]", None, LimitHint(suggested=(1, 2))),
    (-32005, "query returned more than 10000 results", {"from": "0x10", "to": "0x1f"},
     LimitHint(suggested=(16, 31))),
    (-32000, "exceed maximum block range: 5000", None, LimitHint(width=5000)),
    (-32614, "eth_getLogs is limited to a 10,000 range", None, LimitHint(width=10000)),
    (-32600, "Log response size exceeded. You can make eth_getLogs requests with up to a 2K "
             "block range", None, LimitHint(width=2000)),
    (-32000, "block range is too wide", None, LimitHint()),
    (-32062, "Block range is too large", None, LimitHint()),
    (-32005, "limit exceeded", None, LimitHint()),
    (-32005, "daily request count exceeded, request rate limited", None, None),
    (-32000, "execution reverted", None, None),
    (-32602, "invalid argument 0: hex string without 0x prefix", None, None),
]


@pytest.mark.parametrize(("code", "message", "data", "expected"), LIMIT_MESSAGES)
def test_limit_messages_are_recognised(code: int, message: str, data: Any,
                                       expected: LimitHint | None) -> None:
    assert parse_limit_error(code, message, data) == expected


def test_split_follows_the_hint_and_always_shrinks() -> None:
    assert split_range(100, 199, LimitHint(suggested=(100, 149))) == [(100, 149), (150, 199)]
    # a suggestion not starting at the range is taken as a width
    assert split_range(100, 199, LimitHint(suggested=(0, 39))) == [(100, 139), (140, 179),
                                                                   (180, 199)]
    assert split_range(0, 9, LimitHint(width=4)) == [(0, 3), (4, 7), (8, 9)]
    assert split_range(0, 9, LimitHint(width=50)) == [(0, 4), (5, 9)]  # no help: halve
    assert split_range(0, 9, LimitHint()) == [(0, 4), (5, 9)]
    assert split_range(7, 8, LimitHint(suggested=(7, 100))) == [(7, 7), (8, 8)]
    with pytest.raises(RangeLimitError, match="single block 7"):
        split_range(7, 7, LimitHint(suggested=(7, 7)))


class ScriptedClient(RpcClient):
    """eth_getLogs answered by a function of (from, to); counts the calls."""

    def __init__(self, answer: Any) -> None:
        super().__init__("http://unused.invalid")
        self.answer = answer
        self.calls: list[tuple[int, int]] = []

    def call(self, method: str, params: Sequence[Any] = (), *,
             loads: Callable[[bytes], Any] = json.loads) -> Any:
        assert method == "eth_getLogs"
        lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.calls.append((lo, hi))
        return self.answer(lo, hi)


def test_a_block_that_never_fits_raises() -> None:
    def too_big(lo: int, hi: int) -> Any:
        raise RpcError("eth_getLogs", -32005, "query returned more than 10000 results")

    client = ScriptedClient(too_big)
    with pytest.raises(RangeLimitError, match=r"single block .*more than 10000 results"):
        get_logs(client, 0, 15, None, None, chain_id=CHAIN, chunk_blocks=16, max_in_flight=1)
    # halving: 16, 8, 4, 2, 1 blocks, then stop
    assert [hi - lo + 1 for lo, hi in client.calls] == [16, 8, 4, 2, 1]


def test_other_rpc_errors_raise_at_once() -> None:
    def broken(lo: int, hi: int) -> Any:
        raise RpcError("eth_getLogs", -32602, "invalid argument 0")

    client = ScriptedClient(broken)
    with pytest.raises(RpcError, match="invalid argument"):
        get_logs(client, 0, 99, None, None, chain_id=CHAIN, chunk_blocks=100)
    assert len(client.calls) == 1


class AnswersWith(RpcClient):
    """Answers every call with one value, as an odd endpoint might."""

    def __init__(self, answer: Any) -> None:
        super().__init__("http://odd.invalid:8545")
        self.answer = answer

    def call(self, method: str, params: Sequence[Any] = (), *,
             loads: Callable[[bytes], Any] = json.loads) -> Any:
        return self.answer


@pytest.mark.parametrize("answer", ["mainnet", "0x", "0xzz", "-0x1", "", None, 1, 1.5,
                                    ["0x1"], {"chainId": "0x1"}])
def test_a_chain_id_or_head_that_is_not_a_hex_quantity_names_the_endpoint_and_answer(
        answer: Any) -> None:
    for method, read in (("eth_chainId", chain_id_of), ("eth_blockNumber", head_of),
                         ("eth_blockNumber", lambda client: safe_head(client, 0))):
        with pytest.raises(MalformedReply) as refused:
            read(AnswersWith(answer))
        assert str(refused.value) == (f"http://odd.invalid:8545 answered {method} with "
                                      f"{answer!r}, not a hex quantity")
        assert read(AnswersWith("0x7a69")) == 31337


def fake_log(block: int, index: int, topics: int = 3, data: str = "0x") -> dict[str, Any]:
    return {"address": "0x" + f"{block:02x}" * 20,
            "topics": ["0x" + f"{block + k:064x}" for k in range(topics)], "data": data,
            "blockNumber": hex(block), "blockHash": "0x" + f"{block:064x}",
            "transactionHash": "0x" + f"{index:064x}", "transactionIndex": hex(index),
            "logIndex": hex(index), "removed": False}


def test_a_removed_log_rereads_the_chunk() -> None:
    reads = {"n": 0}

    def flaky(lo: int, hi: int) -> Any:
        reads["n"] += 1
        log = fake_log(lo, 0)
        return [{**log, "removed": reads["n"] == 1}]

    client = ScriptedClient(flaky)
    table = get_logs(client, 5, 5, None, None, chain_id=CHAIN)
    assert table.num_rows == 1 and client.calls == [(5, 5), (5, 5)]

    always = ScriptedClient(lambda lo, hi: [{**fake_log(lo, 0), "removed": True}])
    with pytest.raises(ChainMoved, match="removed"):
        get_logs(always, 5, 5, None, None, chain_id=CHAIN, reorg_retries=2)
    assert len(always.calls) == 3


def test_conversion_keeps_every_value() -> None:
    logs = [fake_log(9, 0, 0, "0x"), fake_log(9, 1, 4, "0x" + "ab" * 70), fake_log(10, 0, 1)]
    table = logs_to_table(logs, CHAIN)
    assert table.schema == RAW_LOGS_SCHEMA
    rows = table.to_pylist()
    for log, row in zip(logs, rows, strict=True):
        topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
        assert row == {
            "chain_id": CHAIN, "block_number": int(log["blockNumber"], 16),
            "block_hash": bytes.fromhex(log["blockHash"][2:]),
            "transaction_hash": bytes.fromhex(log["transactionHash"][2:]),
            "transaction_index": int(log["transactionIndex"], 16),
            "log_index": int(log["logIndex"], 16),
            "address": bytes.fromhex(log["address"][2:]),
            **{f"topic{k}": topics[k] if k < len(topics) else None for k in range(4)},
            "data": bytes.fromhex(log["data"][2:])}
    assert logs_to_table([], CHAIN).equals(RAW_LOGS_SCHEMA.empty_table())


@pytest.mark.parametrize(("field", "value", "match"), [
    ("blockHash", "0x" + "ab" * 31, "blockHash #1"),
    ("blockHash", "ab" * 33, "blockHash #1"),
    ("address", "0x" + "zz" * 20, "address: a value holds"),
    ("address", "0x" + " a" * 20, "address: a value holds"),
    ("data", "0x123", "data #1"),
    ("data", "12", "data #1: '12' lacks the 0x prefix"),
    ("topics", ["0x" + "00" * 32] * 5, "5 topics"),
    ("topics", "0x00", "a list per log"),
    ("logIndex", "0x100000000", "exceeds 32 bits"),
    ("blockNumber", "-0x1", "not a hex quantity"),
    ("blockNumber", None, "not a hex quantity"),
    ("transactionHash", 7, "expected a hex string"),
])
def test_malformed_replies_are_refused(field: str, value: Any, match: str) -> None:
    logs = [fake_log(1, 0), {**fake_log(1, 1), field: value}]
    with pytest.raises(MalformedReply, match=match):
        logs_to_table(logs, CHAIN)


def test_missing_fields_are_refused() -> None:
    log = fake_log(1, 0)
    del log["data"]
    with pytest.raises(MalformedReply, match="lacks 'data'"):
        logs_to_table([log], CHAIN)
    with pytest.raises(MalformedReply, match="not an object"):
        logs_to_table(["0x00"], CHAIN)  # type: ignore[list-item]


# -- the Arrow fast path equals the general one -------------------------------------------------

def general_path(content: bytes) -> pa.Table | str:
    """What json.loads + logs_to_table make of a reply: the table, or the error it raises."""
    try:
        return logs_to_table(json.loads(content)["result"], CHAIN)
    except (MalformedReply, ChainMoved) as exc:
        return f"{type(exc).__name__}: {exc}"


def random_log(draw: st.DrawFn) -> dict[str, Any]:
    def hex_bytes(n: int) -> str:
        return "0x" + draw(st.binary(min_size=n, max_size=n)).hex()

    return {"address": hex_bytes(20),
            "topics": [hex_bytes(32) for _ in range(draw(st.integers(0, 4)))],
            "data": "0x" + draw(st.binary(max_size=200)).hex(),
            "blockNumber": hex(draw(st.integers(0, 2**64 - 1))),
            "blockHash": hex_bytes(32), "transactionHash": hex_bytes(32),
            "transactionIndex": hex(draw(st.integers(0, 2**32 - 1))),
            "logIndex": hex(draw(st.integers(0, 2**32 - 1))), "removed": False}


ODD_VALUES = st.sampled_from([
    None, 7, "", "0x", "0X1f", "0x1F", "0x0001", "0x" + "1" * 17, "0x" + "0" * 17 + "1",
    "0x100000000", "1f", "0xg1", "0x" + "ab" * 31, "0x" + "AB" * 32, "0x" + "ab" * 20,
    "0x" + "\u00e9" * 40, ["0x" + "00" * 32] * 5, [None], [], True, {"x": 1}])


@st.composite
def replies(draw: st.DrawFn) -> bytes:
    """An eth_getLogs reply body: valid logs, sometimes with one field made odd, dropped, or
    the log marked removed, in compact or indented JSON."""
    logs = [random_log(draw) for _ in range(draw(st.integers(0, 6)))]
    odd: bool = draw(st.booleans())
    if logs and odd:
        log = draw(st.sampled_from(logs))
        field = draw(st.sampled_from(sorted(log)))
        change = draw(st.sampled_from(["odd", "drop", "removed"]))
        if change == "drop":
            del log[field]
        elif change == "removed":
            log["removed"] = draw(st.sampled_from([True, None, "yes"]))
        else:
            log[field] = draw(ODD_VALUES)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": logs},
                      indent=draw(st.sampled_from([None, 1])))
    return body.replace("\\u00e9", "\u00e9").encode()  # a real JSON escape, not a backslash


@settings(max_examples=400, deadline=None)
@given(replies())
def test_the_arrow_path_agrees_with_the_general_path(content: bytes) -> None:
    parsed = parse_logs_reply(content, CHAIN)
    expected = general_path(content)
    if isinstance(parsed["result"], pa.Table):  # the fast path vouched for the reply
        assert isinstance(expected, pa.Table), expected
        assert parsed["result"].equals(expected)
    else:  # it left the reply to the general path, unchanged
        assert parsed == json.loads(content)


def test_the_arrow_path_takes_ordinary_replies_and_leaves_the_rest() -> None:
    logs = [fake_log(9, 0, 0, "0x"), fake_log(9, 1, 4, "0x" + "ab" * 70), fake_log(10, 0, 1)]
    ok = json.dumps({"jsonrpc": "2.0", "id": 1, "result": logs}).encode()
    assert parse_logs_reply(ok, CHAIN)["result"].equals(logs_to_table(logs, CHAIN))
    empty = b'{"jsonrpc":"2.0","id":1,"result":[]}'
    assert parse_logs_reply(empty, CHAIN)["result"].equals(RAW_LOGS_SCHEMA.empty_table())
    for other in (b'{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"too many"}}',
                  b'{"jsonrpc":"2.0","id":1,"result":null}',
                  json.dumps({"result": [{**logs[0], "removed": True}]}).encode()):
        assert parse_logs_reply(other, CHAIN) == json.loads(other)
    with pytest.raises(ValueError):  # what json.loads raises: the client's fault handling
        parse_logs_reply(ok[:-5], CHAIN)


def test_header_conversion() -> None:
    header = {"number": "0x5", "hash": "0x" + "11" * 32, "parentHash": "0x" + "22" * 32,
              "timestamp": "0x5fee6600", "miner": "0x" + "00" * 20}
    table = headers_to_table([header], CHAIN)
    assert table.schema == BLOCKS_SCHEMA
    assert table.to_pylist() == [{"chain_id": CHAIN, "block_number": 5,
                                  "block_hash": b"\x11" * 32, "parent_hash": b"\x22" * 32,
                                  "timestamp": 0x5FEE6600}]


# -- on a devnet -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    folder: Path = tmp_path_factory.mktemp("history")
    with devnet_history(folder) as h:
        yield h


def reference(history: History) -> pa.Table:
    """All the history's Transfer logs in one eth_getLogs, converted: the ground truth."""
    client = RpcClient(history.url)
    reply = client.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(history.head),
                                         "address": history.tokens, "topics": [[TRANSFER]]}])
    client.close()
    return logs_to_table(reply, CHAIN)


@pytest.mark.devnet
def test_chunked_reads_equal_one_read(history: History) -> None:
    expected = reference(history)
    assert expected.num_rows > 300
    blocks = expected["block_number"].to_pylist()
    assert len(set(blocks)) > 100 and blocks == sorted(blocks)
    client = RpcClient(history.url)
    table = get_logs(client, 0, history.head, history.tokens, [TRANSFER], chain_id=CHAIN,
                     chunk_blocks=7, max_in_flight=4)
    assert table.equals(expected)
    # ranges and filters: inclusive bounds, None = any, empty = nothing
    some = get_logs(client, history.first + 10, history.first + 20, history.tokens,
                    [TRANSFER], chain_id=CHAIN, chunk_blocks=3)
    assert some.equals(expected.filter(pc.and_(
        pc.greater_equal(expected["block_number"], history.first + 10),
        pc.less_equal(expected["block_number"], history.first + 20))))
    everything = get_logs(client, 0, history.head, None, None, chain_id=CHAIN)
    assert everything.num_rows > expected.num_rows  # approvals, feed rounds, …
    assert get_logs(client, 0, history.head, [], None, chain_id=CHAIN).num_rows == 0
    assert get_logs(client, 5, 4, None, None, chain_id=CHAIN).num_rows == 0
    client.close()


@pytest.mark.devnet
def test_headers_and_safe_head(history: History) -> None:
    client = RpcClient(history.url)
    numbers = [history.head, 3, history.first, 3]
    table = get_headers(client, numbers, CHAIN)
    assert table["block_number"].to_pylist() == sorted(set(numbers))
    for row in table.to_pylist():
        block = client.call("eth_getBlockByNumber", [hex(row["block_number"]), False])
        assert "0x" + row["block_hash"].hex() == block["hash"]
        assert "0x" + row["parent_hash"].hex() == block["parentHash"]
        assert row["timestamp"] == int(block["timestamp"], 16)
    assert safe_head(client, 5) == history.head - 5
    assert safe_head(client, history.head + 100) == 0
    with pytest.raises(Exception, match=f"no block {history.head + 1}"):
        get_headers(client, [history.head + 1], CHAIN)
    client.close()


LIMITS = [LogLimit("infura", max_results=25), LogLimit("alchemy", max_blocks=13),
          LogLimit("width", max_blocks=9), LogLimit("plain", max_blocks=6)]


@pytest.mark.devnet
@pytest.mark.parametrize("limit", LIMITS, ids=lambda limit: limit.style)
def test_faults_and_provider_caps_do_not_change_the_table(history: History,
                                                          limit: LogLimit) -> None:
    expected = reference(history)
    direct = RpcClient(history.url)
    headers = get_headers(direct, range(history.first, history.head + 1), CHAIN)
    direct.close()
    style: LimitStyle = limit.style
    with FaultProxy(history.url, limit=limit) as proxy:
        proxy.chaos(0.2, seed=len(style))
        # timeouts are scripted, not drawn: each costs the client's whole timeout
        proxy.push(Fault("delay", seconds=0.6), Fault("status", 429, retry_after="0"))
        client = RpcClient(proxy.url, timeout=0.4, max_batch=40,
                           retry=RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.01))
        table = get_logs(client, 0, history.head, history.tokens, [TRANSFER], chain_id=CHAIN,
                         chunk_blocks=60, max_in_flight=4)
        got_headers = get_headers(client, range(history.first, history.head + 1), CHAIN)
        client.close()
    assert table.equals(expected)
    assert got_headers.equals(headers)
    assert proxy.faults["limit"] > 0 and proxy.faults["delay"] == 1
    assert sum(proxy.faults.values()) - proxy.faults["limit"] > 10

