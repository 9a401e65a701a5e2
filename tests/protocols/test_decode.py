"""The vectorized decoder against eth-abi (property-based, edge values included), its quarantine
rules, and the accounting that every input log is decoded, quarantined or ignored exactly once."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contagion.lake import RAW_LOGS_SCHEMA
from contagion.protocols.decode import CATALOG, EventLayout, decimal_text, decode_logs
from contagion.registry import load_registry

LAYOUTS = CATALOG.layouts
# Without a registry, a shared signature decodes as its default (first) layout.
DEFAULT_LAYOUTS = [lays[0] for lays in CATALOG.by_key.values()]
INT = re.compile(r"^(u?)int(\d+)$")


def raw_logs(logs: Sequence[tuple[bytes, Sequence[bytes], bytes]], chain_id: int = 1) -> pa.Table:
    """A raw_logs table from (address, topics, data); block n holds log n."""
    n = len(logs)
    topics = [[t[i] if i < len(t) else None for _, t, _ in logs] for i in range(4)]
    return pa.table({
        "chain_id": pa.array([chain_id] * n, pa.uint64()),
        "block_number": pa.array(range(100, 100 + n), pa.uint64()),
        "block_hash": pa.array([bytes([7]) * 32] * n, pa.binary(32)),
        "transaction_hash": pa.array([i.to_bytes(32, "big") for i in range(n)], pa.binary(32)),
        "transaction_index": pa.array([0] * n, pa.uint32()),
        "log_index": pa.array(range(n), pa.uint32()),
        "address": pa.array([a for a, _, _ in logs], pa.binary(20)),
        **{f"topic{i}": pa.array(topics[i], pa.binary(32)) for i in range(4)},
        "data": pa.array([d for _, _, d in logs], pa.binary()),
    }, schema=RAW_LOGS_SCHEMA)


def value_strategy(abi_type: str) -> st.SearchStrategy[Any]:
    if abi_type == "address":
        return st.binary(min_size=20, max_size=20) | st.sampled_from([b"\0" * 20, b"\xff" * 20])
    if abi_type == "bool":
        return st.booleans()
    if abi_type.startswith("bytes"):
        size = int(abi_type[5:])
        return st.binary(min_size=size, max_size=size)
    m = INT.match(abi_type)
    assert m is not None
    bits = int(m.group(2))
    lo, hi = (0, 2**bits - 1) if m.group(1) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    edges = [lo, hi, 0, 1, -1, 10**38 - 1, 10**38, -(10**38) + 1, -(10**38), 2**64, 2**127]
    return st.sampled_from([e for e in edges if lo <= e <= hi]) | st.integers(lo, hi)


def as_column(abi_type: str, value: Any) -> Any:
    """eth-abi's Python value in the decoder's column representation."""
    if abi_type == "address":
        return bytes.fromhex(value[2:]) if isinstance(value, str) else value
    m = INT.match(abi_type)
    if m is not None and int(m.group(2)) > 64:
        return str(value)
    return value


def encode_log(lay: EventLayout, values: Sequence[Any]) -> tuple[bytes, list[bytes], bytes]:
    topics = [bytes.fromhex(lay.spec.topic0[2:])]
    data_types, data_values = [], []
    for slot, value in zip(lay.slots, values, strict=True):
        if slot.topic is not None:
            topics.append(abi_encode([slot.abi_type], [value]))
        else:
            data_types.append(slot.abi_type)
            data_values.append(value)
    return b"\x11" * 20, topics, abi_encode(data_types, data_values)


def reference_row(lay: EventLayout, log: tuple[bytes, list[bytes], bytes]) -> dict[str, Any]:
    """eth-abi's decoding of one log, in our column representation."""
    _, topics, data = log
    data_slots = [s for s in lay.slots if s.topic is None]
    values = dict(zip([s.name for s in data_slots],
                      abi_decode([s.abi_type for s in data_slots], data), strict=True))
    for slot in lay.slots:
        if slot.topic is not None:
            values[slot.name] = abi_decode([slot.abi_type], topics[slot.topic])[0]
    return {s.name: as_column(s.abi_type, values[s.name]) for s in lay.slots}


@st.composite
def logs_of_many_events(draw: st.DrawFn) -> list[tuple[EventLayout, list[Any]]]:
    picks = draw(st.lists(st.sampled_from(DEFAULT_LAYOUTS), min_size=1, max_size=12))
    return [(lay, [draw(value_strategy(s.abi_type)) for s in lay.slots]) for lay in picks]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs_of_many_events())
def test_decoder_equals_eth_abi(events: list[tuple[EventLayout, list[Any]]]) -> None:
    encoded = [encode_log(lay, values) for lay, values in events]
    result = decode_logs(raw_logs(encoded))
    assert result.quarantine.num_rows == 0
    assert result.decoded_rows == len(events)
    rows_by_table: dict[str, list[dict[str, Any]]] = {
        name: table.to_pylist() for name, table in result.tables.items()}
    seen: dict[str, int] = {}
    for (lay, _), log in zip(events, encoded, strict=True):
        i = seen.get(lay.table, 0)
        seen[lay.table] = i + 1
        got = rows_by_table[lay.table][i]
        assert {k: got[k] for k in reference_row(lay, log)} == reference_row(lay, log)


def _corruptible(lay: EventLayout) -> list[int]:
    return [i for i, s in enumerate(lay.slots) if s.abi_type not in ("uint256", "int256",
                                                                      "bytes32")]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([lay for lay in DEFAULT_LAYOUTS if _corruptible(lay)]), st.data())
def test_out_of_range_words_are_quarantined_like_eth_abi_refuses_them(
        lay: EventLayout, data: st.DataObject) -> None:
    values = [data.draw(value_strategy(s.abi_type)) for s in lay.slots]
    address, topics, payload = encode_log(lay, values)
    i = data.draw(st.sampled_from(_corruptible(lay)))
    slot = lay.slots[i]
    bad_word = b"\x01" + b"\0" * 30 + b"\x02"  # high bits set and, for a bool, a 2
    if slot.topic is not None:
        topics[slot.topic] = bad_word
    else:
        assert slot.word is not None
        payload = payload[:32 * slot.word] + bad_word + payload[32 * slot.word + 32:]
    with pytest.raises(Exception):  # noqa: B017 - eth-abi's strict decoder refuses it too
        reference_row(lay, (address, topics, payload))
    result = decode_logs(raw_logs([(address, topics, payload)]))
    assert result.decoded_rows == 0
    reasons = result.quarantine["reason"].to_pylist()
    assert reasons == [f"value out of range for {slot.name} ({slot.abi_type})"]


def test_quarantine_reasons_and_accounting() -> None:
    registry = load_registry("ethereum")
    pool = bytes.fromhex(registry.venue("aave_v3_core").contracts["pool"][2:]) \
        if any(v.id == "aave_v3_core" for v in registry.venues) else None
    if pool is None:
        pool = bytes.fromhex(registry.venues[0].contracts[next(iter(
            registry.venues[0].contracts))][2:])
    transfer = CATALOG.layout("erc20__transfer")
    _, topics, data = encode_log(transfer, [b"\1" * 20, b"\2" * 20, 5])
    stranger = b"\x33" * 20
    logs = [
        (stranger, topics, data),                      # decodes
        (stranger, topics, data[:31]),                 # short data
        (stranger, topics, data + b"\0" * 32),         # long data
        (stranger, topics[:2], data),                  # wrong topic count
        (stranger, [b"\x99" * 32], b""),               # unknown event, not ours: ignored
        (pool, [b"\x99" * 32], b""),                   # unknown event at a registered contract
        (stranger, [], b"\1"),                         # anonymous log, not ours: ignored
        (pool, [], b""),                               # anonymous log at a registered contract
    ]
    table = raw_logs(logs)
    # a null topic1 before a non-null topic2 is malformed
    broken = raw_logs([(stranger, [topics[0], topics[1], topics[2]], data)])
    broken = broken.set_column(8, "topic1", pa.array([None], pa.binary(32)))
    result = decode_logs(pa.concat_tables([table, broken]), registry=registry)
    assert result.tables["erc20__transfer"].num_rows == 1
    assert result.ignored == {"not a known event, unregistered contract": 2}
    assert result.quarantine["reason"].to_pylist() == [
        "data is 31 bytes, expected 32",
        "data is 64 bytes, expected 32",
        "wrong topic count: 2 topics, expected 3 (erc20__transfer) or 4 (erc721__transfer)",
        "unknown topic0 at a registered contract",
        "unknown topic0 at a registered contract",
        "topics are not contiguous (a null topic before a non-null one)",
    ]
    q = result.quarantine.to_pylist()
    assert q[0]["data"] == "0x" + data[:31].hex() and q[0]["event"] == "Transfer"
    assert q[0]["topic1"] == "0x" + topics[1].hex() and q[0]["topic3"] is None
    assert result.decoded_rows + result.quarantine.num_rows + 2 == 9


def test_comet_claims_transfers_of_its_own_contract() -> None:
    registry = load_registry("ethereum")
    comet = next(v for v in registry.venues if v.protocol == "compound_v3")
    comet_address = bytes.fromhex(comet.main_contract[2:])
    _, topics, data = encode_log(CATALOG.layout("erc20__transfer"), [b"\1" * 20, b"\2" * 20, 5])
    logs = raw_logs([(comet_address, topics, data), (b"\x44" * 20, topics, data)])
    with_registry = decode_logs(logs, registry=registry)
    assert with_registry.tables["compound_v3__transfer"].num_rows == 1
    assert with_registry.tables["erc20__transfer"].num_rows == 1
    without = decode_logs(logs)
    assert without.tables["erc20__transfer"].num_rows == 2


@given(st.lists(st.integers(-(2**255), 2**255 - 1), min_size=1, max_size=50))
def test_decimal_text_is_exact_over_int256(values: list[int]) -> None:
    words = np.frombuffer(b"".join(v.to_bytes(32, "big", signed=True) for v in values),
                          np.uint8).reshape(-1, 32)
    assert decimal_text(words, signed=True).to_pylist() == [str(v) for v in values]


@given(st.lists(st.integers(0, 2**256 - 1), min_size=1, max_size=50))
def test_decimal_text_is_exact_over_uint256(values: list[int]) -> None:
    words = np.frombuffer(b"".join(v.to_bytes(32, "big") for v in values),
                          np.uint8).reshape(-1, 32)
    assert decimal_text(words, signed=False).to_pylist() == [str(v) for v in values]


def test_empty_input() -> None:
    result = decode_logs(RAW_LOGS_SCHEMA.empty_table())
    assert result.input_rows == 0 and result.decoded_rows == 0
    assert all(t.num_rows == 0 for t in result.tables.values())


def _random_value(abi_type: str, rng: random.Random) -> Any:
    if abi_type == "address":
        return rng.randbytes(20)
    if abi_type == "bool":
        return rng.random() < 0.5
    if abi_type.startswith("bytes"):
        return rng.randbytes(int(abi_type[5:]))
    m = INT.match(abi_type)
    assert m is not None
    bits = int(m.group(2))
    return rng.randrange(2**bits) if m.group(1) else rng.randrange(-(2 ** (bits - 1)),
                                                                   2 ** (bits - 1))


def _random_logs(tables: Sequence[str], count: int, *, seed: int, short_every: int
                 ) -> list[tuple[bytes, list[bytes], bytes]]:
    """`count` logs of the given event tables with random values; every `short_every`-th has its
    data cut one byte short (to be quarantined)."""
    rng = random.Random(seed)
    layouts = [CATALOG.layout(t) for t in tables]
    logs = []
    for i in range(count):
        lay = rng.choice(layouts)
        address, topics, data = encode_log(lay, [_random_value(s.abi_type, rng)
                                                 for s in lay.slots])
        if i % short_every == 0:
            data = data[:-1]  # quarantined: short data
        logs.append((address, topics, data))
    return logs


def test_slices_and_threads_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Event tables are decoded in slices of rows spread over threads; the output (order
    included) must be what one thread decoding whole tables gives."""
    import contagion.protocols.decode as decode_module

    table = raw_logs(_random_logs(("erc20__transfer", "aave_v3__supply", "uniswap_v2__sync",
                                   "morpho_blue__liquidate"), 300, seed=7, short_every=37))
    whole = decode_logs(table, threads=1)
    monkeypatch.setattr(decode_module, "_SLICE_ROWS", 7)
    sliced = decode_logs(table, threads=3)
    assert whole.quarantine.num_rows == len(range(0, 300, 37))
    assert sliced.quarantine.equals(whole.quarantine)
    for name, expected in whole.tables.items():
        assert sliced.tables[name].combine_chunks().equals(expected.combine_chunks()), name


def test_a_slice_or_chunks_decode_like_the_same_logs_built_afresh() -> None:
    """The decoder reads Arrow buffers directly (validity bitmaps, offsets): a slice of a
    table, or a table in several chunks, must decode as a fresh copy of its logs does."""
    logs = _random_logs(("erc20__transfer", "uniswap_v2__sync", "aave_v3__supply"), 150,
                        seed=11, short_every=11)
    table = raw_logs(logs)
    gap = pc.and_(pa.array([i % 13 == 0 for i in range(len(logs))]), table["topic2"].is_valid())
    table = table.set_column(table.schema.get_field_index("topic1"), "topic1", pc.if_else(
        gap, pa.scalar(None, pa.binary(32)), table["topic1"]))  # quarantined: a gap in topics
    part = table.slice(5, 120)
    chunks = pa.concat_tables([table.slice(5, 50), table.slice(55, 70)])
    for variant in (part, chunks):
        fresh = pa.Table.from_pylist(variant.to_pylist(), schema=RAW_LOGS_SCHEMA)
        expected, got = decode_logs(fresh), decode_logs(variant)
        assert expected.quarantine.num_rows > 0
        assert got.quarantine.equals(expected.quarantine)
        for name, want in expected.tables.items():
            assert got.tables[name].combine_chunks().equals(want.combine_chunks()), name


# -- `contagion decode`: bad files are refused with one clear line, and nothing is written -------


def _rpc_logs(count: int = 3) -> list[dict[str, Any]]:
    """ERC-20 transfers as `eth_getLogs` JSON objects; log k is in block 100 + k // 2."""
    lay = CATALOG.layout("erc20__transfer")
    logs = []
    for k in range(count):
        address, topics, data = encode_log(lay, [bytes([k + 1]) * 20, bytes([9]) * 20, k + 1])
        logs.append({"address": "0x" + address.hex(), "topics": ["0x" + t.hex() for t in topics],
                     "data": "0x" + data.hex(), "blockNumber": hex(100 + k // 2),
                     "blockHash": "0x" + "07" * 32,
                     "blockTimestamp": hex(1_700_000_000 + 12 * (k // 2)),
                     "transactionHash": "0x" + k.to_bytes(32, "big").hex(),
                     "transactionIndex": "0x0", "logIndex": hex(k % 2), "removed": False})
    return logs


def _decode_cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from contagion.cli import app

    return CliRunner().invoke(app, ["decode", *args], terminal_width=300)


def test_contagion_decode_writes_tables_and_refuses_a_used_folder(tmp_path: Any) -> None:
    import json

    import pyarrow.parquet as pq

    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps(_rpc_logs()))
    out = tmp_path / "out"
    done = _decode_cli([str(logs), "--out", str(out), "--chain-id", "1"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["erc20__transfer.parquet",
                                                     "quarantine.parquet"]
    assert pq.read_table(out / "erc20__transfer.parquet").num_rows == 3
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = _decode_cli([str(logs), "--out", str(out), "--chain-id", "1"])
    assert again.exit_code == 1 and "not empty" in again.output, again.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    into_file = _decode_cli([str(logs), "--out", str(a_file), "--chain-id", "1"])
    assert into_file.exit_code == 1 and "is a file" in into_file.output, into_file.output
    assert into_file.exception is None or isinstance(into_file.exception, SystemExit)
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize(("change", "message"), [
    (lambda logs: [*logs, dict(logs[0])], "of block 100 is in the file twice"),
    (lambda logs: [{**logs[0], "blockTimestamp": "zz"}, *logs[1:]], "timestamp 'zz'"),
    (lambda logs: [{**logs[0], "blockTimestamp": -5}, *logs[1:]], "timestamp -5"),
    (lambda logs: [{**logs[0], "blockTimestamp": 1.5}, *logs[1:]], "timestamp 1.5"),
    (lambda logs: [{**logs[0], "blockTimestamp": 2**64}, *logs[1:]], "timestamp"),
    (lambda logs: [logs[0], {**logs[1], "blockTimestamp": hex(5)}, *logs[2:]],
     "block 100 has two timestamps"),
    (lambda logs: [logs[0], {**logs[1], "removed": True}, *logs[2:]],
     "log #2 in the file (block 100, log index 1) is marked removed"),
])
def test_contagion_decode_refuses_a_bad_log_file(tmp_path: Any, change: Any, message: str
                                                 ) -> None:
    import json

    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps(change(_rpc_logs())))
    out = tmp_path / "out"
    refused = _decode_cli([str(logs), "--out", str(out), "--chain-id", "1"])
    assert refused.exit_code == 1, refused.output
    assert isinstance(refused.exception, SystemExit), refused.exception  # no traceback
    assert "error:" in refused.output and message in " ".join(refused.output.split())
    assert not out.exists()


def test_contagion_decode_refuses_a_bad_parquet_file(tmp_path: Any) -> None:
    import pyarrow.parquet as pq

    lay = CATALOG.layout("erc20__transfer")
    log = encode_log(lay, [b"\1" * 20, b"\2" * 20, 5])
    twice = pa.concat_tables([raw_logs([log]), raw_logs([log])])
    pq.write_table(twice, tmp_path / "twice.parquet")
    (tmp_path / "text.parquet").write_text("not parquet at all")
    for name, message in (("twice.parquet", "log 0 of block 100 is in the file twice"),
                          ("text.parquet", "not a readable Parquet file")):
        refused = _decode_cli([str(tmp_path / name), "--out", str(tmp_path / "out")])
        assert refused.exit_code == 1, refused.output
        assert isinstance(refused.exception, SystemExit), refused.exception
        assert message in " ".join(refused.output.split())
        assert not (tmp_path / "out").exists()
