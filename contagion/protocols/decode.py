"""Vectorized ABI decoding: raw logs in, one table per event out (Dune-style `<protocol>__<event>`).

Work is done on whole columns: logs are grouped by (topic0, topic count), every parameter of a
group is sliced out of a (rows × 32) byte matrix and converted with numpy/pyarrow, so the cost
per log is a few vector operations, never a Python call.

Representation of values (docs/lake.md):
- `address`, `bytesN` and the hashes: their bytes (`fixed_size_binary(20)`, `(N)`, `(32)`), as
  in `raw_logs`, cryo and Dune; `'0x' || lower(hex(x))` in SQL shows them as text.
- `bool`: boolean.
- `uintN`/`intN` up to 64 bits: the Arrow integer of that width (uint8 … int64).
- wider integers (uint96 … uint256, int256): exact decimal text ("-123"), lossless over the
  whole range; cast in SQL (`::HUGEINT`, `::DECIMAL(38,0)`) or with Python's `int`.

What cannot be decoded goes to `quarantine` with a reason: an unknown topic0 at a registered
contract, a known topic0 with the wrong number of topics, data of the wrong length, a word
outside its type's range (an address with high bits set, a bool of 2, a uint8 of 256). Logs that
are none of ours (unknown topic0 at an unregistered contract) are counted as ignored. Every input
row lands in exactly one of decoded, quarantined or ignored, and `DecodeResult.check` says so.
Only static parameter types occur in the events we decode; a spec with a dynamic one is refused
when the catalog is built.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from contagion.chain.logs import hash_matrix, single_array
from contagion.lake import QUARANTINE_SCHEMA
from contagion.protocols import ALL_EVENTS
from contagion.protocols.spec import EventParam, EventSpec
from contagion.registry import Registry

__all__ = [
    "BASE_FIELDS",
    "Catalog",
    "DecodeResult",
    "EventLayout",
    "decimal_text",
    "decode_logs",
    "hex_text",
    "registered_contracts",
    "snake_case",
]

BASE_FIELDS = (
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_time", pa.timestamp("s", tz="UTC")),
    pa.field("transaction_hash", pa.binary(32), nullable=False),
    pa.field("log_index", pa.uint32(), nullable=False),
    pa.field("contract_address", pa.binary(20), nullable=False),
)
_BASE_NAMES = {f.name for f in BASE_FIELDS}
_INT = re.compile(r"^(u?)int(\d+)$")
_BYTES = re.compile(r"^bytes(\d+)$")
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
# byte -> its two hex digits, as one uint16 laid out in memory in reading order
_HEX_PAIRS = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), np.uint16)
_TEN38 = 10**38
_SLICE_ROWS = 32_768
_FIXED_BASE = ("chain_id", "block_number", "transaction_hash", "log_index", "address")


def snake_case(name: str) -> str:
    """`onBehalfOf` → `on_behalf_of`, `AccountOwner` → `account_owner`, `amount0In` →
    `amount0_in`."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name).lower().strip("_")


# ---------------------------------------------------------------- column conversions

def _string_array(offsets: np.ndarray, chars: np.ndarray, rows: int) -> pa.StringArray:
    """A utf8 array from int64 offsets and bytes (32-bit offsets whenever they fit)."""
    if offsets[-1] < 2**31 - 1:
        return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(
            offsets.astype(np.int32)), pa.py_buffer(chars)])
    return pa.Array.from_buffers(pa.large_string(), rows,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def hex_text(matrix: np.ndarray) -> pa.StringArray:
    """Rows of bytes (rows × width uint8) → lowercase `0x…` strings, in one pass."""
    rows, width = matrix.shape
    out = np.empty((rows, 1 + width), np.uint16)  # two ASCII characters per byte
    out[:, 0] = _HEX_PAIRS[0]  # "0x": the pair table's first entry is "00"; patched below
    out[:, 1:] = _HEX_PAIRS[matrix]
    chars = out.view(np.uint8)
    chars[:, 1] = ord("x")
    offsets = np.arange(rows + 1, dtype=np.int64) * (2 + 2 * width)
    return _string_array(offsets, chars, rows)


def fixed_binary(matrix: np.ndarray) -> pa.FixedSizeBinaryArray:
    """Rows of bytes (rows × width uint8) → a `fixed_size_binary(width)` column."""
    rows, width = matrix.shape
    return pa.Array.from_buffers(pa.binary(width), rows,
                                 [None, pa.py_buffer(_contiguous(matrix))])


def _contiguous(matrix: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a (rows × width) byte slice, moving each row as one item."""
    rows, width = matrix.shape
    if matrix.flags.c_contiguous or width == 0 or matrix.strides[1] != 1:
        return np.ascontiguousarray(matrix)
    items = matrix.view(np.dtype((np.void, width)))
    return np.ascontiguousarray(items).view(np.uint8).reshape(rows, width)


def _any_nonzero(cols: np.ndarray) -> np.ndarray:
    """Per row: does this (rows × k) byte slice hold a non-zero byte? Column by column, in the
    widest words that fit (an address's 12-byte head: 8 + 4): numpy reduces a short axis
    slowly, and each column is a pass over the rows."""
    rows, k = cols.shape
    out = np.zeros(rows, bool)
    done = 0
    for size, word in ((8, np.uint64), (4, np.uint32), (2, np.uint16), (1, np.uint8)):
        whole = (k - done) // size * size
        if whole:
            wide = cols[:, done:done + whole].view(word)
            for j in range(wide.shape[1]):
                out |= wide[:, j] != 0
            done += whole
    return out


def _binary_hex(array: pa.Array) -> pa.StringArray:
    """Variable-length binary → `0x…` hex text (nulls stay null)."""
    array = array.cast(pa.large_binary())
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[array.offset:array.offset + len(array) + 1]
    flat = (np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None
            else np.empty(0, np.uint8))
    text = np.empty(2 * len(flat), np.uint8)
    text[0::2], text[1::2] = _HEX_DIGITS[flat >> 4], _HEX_DIGITS[flat & 15]
    hexed = pa.Array.from_buffers(pa.large_string(), len(array),
                                  [array.buffers()[0], pa.py_buffer((offsets - offsets[0]) * 2),
                                   pa.py_buffer(text)], offset=0)
    return pc.binary_join_element_wise("0x", hexed.cast(pa.string()), "")


def _limbs64(words: np.ndarray) -> np.ndarray:
    """(rows × 32) big-endian words → (rows × 4) uint64 limbs, most significant first."""
    return _contiguous(words).view(">u8").astype(np.uint64)


def decimal_text(words: np.ndarray, signed: bool) -> pa.StringArray:
    """Exact base-10 text of 256-bit words (two's complement when `signed`)."""
    return decimal_texts([(words, signed)])[0]


def decimal_texts(columns: Sequence[tuple[np.ndarray, bool]]) -> list[pa.StringArray]:
    """`decimal_text` of several columns of equal length, formatted in one Polars query (which
    spreads the columns over its threads)."""
    hi0, lo0 = divmod(_TEN38, 2**64)
    lows, fixes = [], []
    for words, signed in columns:
        negative = (words[:, 0] >= 0x80) if signed else None
        if negative is not None and negative.any():
            words = _magnitude(words, negative)
        else:
            negative = None
        # Below 10**38 a decimal128 holds the value: its storage is the little-endian low
        # 128 bits. Larger values are formatted apart; their slot here is zero.
        big_endian = _contiguous(words[:, 16:]).view(">u8")
        low = np.empty((len(words), 2), "<u8")  # (low 64 bits, high 64 bits)
        low[:, 0], low[:, 1] = big_endian[:, 1], big_endian[:, 0]
        big = _any_nonzero(words[:, :16]) | (low[:, 1] > hi0) | (
            (low[:, 1] == hi0) & (low[:, 0] >= lo0))
        big_rows = np.nonzero(big)[0]
        low[big_rows] = 0
        lows.append(low)
        fixes.append((big_rows, _long_decimal_text(_limbs64(words[big_rows]))
                      if len(big_rows) else None, negative))
    texts = _decimal128_texts(lows)
    out = []
    for text, (big_rows, long_text, negative) in zip(texts, fixes, strict=True):
        if long_text is not None:
            inside = np.zeros(len(text), bool)
            inside[big_rows] = True
            where = np.zeros(len(text), np.int64)
            where[big_rows] = np.arange(len(big_rows))
            text = pc.if_else(pa.array(inside), long_text.take(pa.array(where)), text)
        if negative is not None:
            text = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""),
                              text)
        out.append(text)
    return out


def _magnitude(words: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """|value| of the negative rows' two's-complement words: invert and add one, carrying."""
    limbs = _limbs64(words[negative])
    limbs = ~limbs
    carry = np.ones(len(limbs), bool)
    for j in range(3, -1, -1):
        limbs[:, j] += carry
        carry &= limbs[:, j] == 0
    out = words.copy()
    out[negative] = limbs.astype(">u8").view(np.uint8).reshape(-1, 32)
    return out


def _decimal128_texts(lows: Sequence[np.ndarray]) -> list[pa.StringArray]:
    """Columns of little-endian 128-bit integers below 10**38 → decimal text. Polars formats
    decimals several times faster than Arrow's cast; a lazy query also releases the GIL, so
    the threads of `decode_logs` format side by side."""
    if not lows:
        return []
    frame = pl.LazyFrame({
        f"v{i}": pa.Array.from_buffers(pa.decimal128(38, 0), len(low), [None, pa.py_buffer(low)])
        for i, low in enumerate(lows)}).select(pl.all().cast(pl.String)).collect()
    return [series.to_arrow().cast(pa.string()) for series in frame.get_columns()]


def _long_decimal_text(limbs: np.ndarray) -> pa.StringArray:
    """Schoolbook division by 10**9 over 32-bit limbs: nine rounds cover 2**256 (78 digits)."""
    rows = len(limbs)
    l32 = np.empty((rows, 8), np.uint64)
    l32[:, 0::2], l32[:, 1::2] = limbs >> np.uint64(32), limbs & np.uint64(0xFFFFFFFF)
    billion = np.uint64(10**9)
    digits = np.empty((rows, 81), np.uint8)
    for chunk in range(9):
        remainder = np.zeros(rows, np.uint64)
        for j in range(8):
            current = (remainder << np.uint64(32)) | l32[:, j]
            l32[:, j] = current // billion
            remainder = current - l32[:, j] * billion
        for d in range(9):
            digits[:, 80 - 9 * chunk - d] = (remainder % np.uint64(10)).astype(np.uint8)
            remainder //= np.uint64(10)
    nonzero = digits != 0
    start = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), 80)
    keep = np.arange(81) >= start[:, None]
    ascii_ = (digits + ord("0"))[keep]
    offsets = np.concatenate([[0], np.cumsum(81 - start)]).astype(np.int64)
    return _string_array(offsets, ascii_, rows)


def _arrow_type(abi_type: str) -> pa.DataType:
    if abi_type == "address":
        return pa.binary(20)
    if (m := _BYTES.match(abi_type)) is not None:
        return pa.binary(int(m.group(1)))
    if abi_type == "bool":
        return pa.bool_()
    m = _INT.match(abi_type)
    if m is None:
        raise ValueError(f"type {abi_type!r} is not a static elementary ABI type")
    bits = int(m.group(2))
    if bits > 64:
        return pa.string()
    width = next(w for w in (8, 16, 32, 64) if bits <= w)
    return getattr(pa, f"{'u' if m.group(1) else ''}int{width}")()


def decode_word(abi_type: str, words: np.ndarray) -> tuple[pa.Array | None, Any]:
    """One ABI word per row → (Arrow column, rows whose word is outside the type's range).
    A wide integer's column is None: its decimal text is made by `decimal_texts`, for all the
    wide columns of a slice in one query."""
    if abi_type == "address":
        return fixed_binary(words[:, 12:]), _any_nonzero(words[:, :12])
    if abi_type == "bool":
        return pa.array(words[:, 31] == 1), _any_nonzero(words[:, :31]) | (words[:, 31] > 1)
    m = _BYTES.match(abi_type)
    if m is not None:
        size = int(m.group(1))
        return fixed_binary(words[:, :size]), _any_nonzero(words[:, size:])
    bad = _int_out_of_range(abi_type, words)
    target = _arrow_type(abi_type)
    if target == pa.string():
        return None, bad
    unsigned = abi_type.startswith("u")
    tail = np.ascontiguousarray(words[:, 24:]).view(">u8" if unsigned else ">i8").ravel()
    return pa.array(tail.astype(target.to_pandas_dtype()), target), bad


def _int_out_of_range(abi_type: str, words: np.ndarray) -> Any:
    """Rows whose word does not hold a value of this integer type."""
    m = _INT.match(abi_type)
    if m is None:
        raise ValueError(f"cannot decode ABI type {abi_type!r}")
    nbytes = int(m.group(2)) // 8
    head = words[:, :32 - nbytes]
    if m.group(1):
        return _any_nonzero(head)
    # the bytes above a signed value must repeat its sign bit
    fill = np.where(words[:, 32 - nbytes] >= 0x80, 0xFF, 0).astype(np.uint8)
    return (head != fill[:, None]).any(axis=1)


# ---------------------------------------------------------------- layouts and the catalog

@dataclass(frozen=True)
class Slot:
    """Where a decoded column comes from: topic 1–3, or a 32-byte word of the data."""

    name: str
    abi_type: str
    topic: int | None
    word: int | None


@dataclass(frozen=True)
class EventLayout:
    spec: EventSpec
    table: str
    slots: tuple[Slot, ...]
    data_words: int
    schema: pa.Schema

    @classmethod
    def of(cls, spec: EventSpec) -> EventLayout:
        slots: list[Slot] = []
        topic, word = 1, 0

        def flat(param: EventParam, prefix: str) -> Iterable[tuple[str, str]]:
            name = prefix + snake_case(param.name or f"arg{len(slots)}")
            if param.components:
                for member in param.components:
                    yield from flat(member, name + "_")
            else:
                yield name, param.type

        for param in spec.params:
            if param.indexed:
                if param.components:
                    raise ValueError(f"{spec.declaration}: an indexed tuple is only its hash")
                slots.append(Slot(snake_case(param.name), param.type, topic, None))
                topic += 1
                continue
            for name, abi_type in flat(param, ""):
                _arrow_type(abi_type)  # refuses dynamic types
                slots.append(Slot(name, abi_type, None, word))
                word += 1
        names = [s.name for s in slots]
        clash = sorted(set(names) & _BASE_NAMES | {n for n in names if names.count(n) > 1})
        if clash:
            raise ValueError(f"{spec.declaration}: parameter names clash: {clash}")
        schema = pa.schema([*BASE_FIELDS,
                            *(pa.field(s.name, _arrow_type(s.abi_type)) for s in slots)])
        return cls(spec, f"{spec.protocol}__{snake_case(spec.name)}", tuple(slots), word, schema)


@dataclass(frozen=True)
class Catalog:
    """Layouts by (topic0, topic count); the first layout of a key is its default."""

    layouts: tuple[EventLayout, ...]
    by_key: dict[tuple[bytes, int], tuple[EventLayout, ...]]
    topic0s: tuple[bytes, ...]

    @classmethod
    def of(cls, specs: Sequence[EventSpec] = ALL_EVENTS) -> Catalog:
        layouts = tuple(EventLayout.of(s) for s in specs)
        tables = [lay.table for lay in layouts]
        dupes = sorted({t for t in tables if tables.count(t) > 1})
        if dupes:
            raise ValueError(f"two specs map to the same table: {dupes}")
        by_key: dict[tuple[bytes, int], tuple[EventLayout, ...]] = {}
        for lay in layouts:
            key = (bytes.fromhex(lay.spec.topic0[2:]), lay.spec.topic_count)
            by_key[key] = (*by_key.get(key, ()), lay)
        return cls(layouts, by_key, tuple(dict.fromkeys(k[0] for k in by_key)))

    def layout(self, table: str) -> EventLayout:
        for lay in self.layouts:
            if lay.table == table:
                return lay
        raise KeyError(f"no decoded table {table!r}")


CATALOG = Catalog.of()


# ---------------------------------------------------------------- decoding

@dataclass
class DecodeResult:
    input_rows: int
    tables: dict[str, pa.Table]  # every catalog table, empty ones included
    quarantine: pa.Table
    ignored: dict[str, int] = field(default_factory=dict)  # reason → rows

    @property
    def decoded_rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())

    @property
    def ignored_rows(self) -> int:
        return sum(self.ignored.values())

    @property
    def reconciles(self) -> bool:
        """Every input row is decoded, quarantined or ignored: exactly once."""
        quarantined = int(self.quarantine.num_rows)
        return self.decoded_rows + quarantined + self.ignored_rows == self.input_rows

    def check(self) -> None:
        if not self.reconciles:
            raise AssertionError(f"decoded {self.decoded_rows} + quarantined "
                                 f"{self.quarantine.num_rows} + ignored {self.ignored_rows}, "
                                 f"but the input held {self.input_rows} logs")


class _Rows:
    """The `data` column of the input logs, gathered by row number with one memcpy per row:
    numpy moves a `void` item much faster than Arrow takes a binary value."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        array = single_array(column).cast(pa.binary())  # 32-bit offsets: a partition fits
        self.flat = _bytes(array.buffers()[2])
        offsets = (np.frombuffer(array.buffers()[1], np.int32) if len(array)
                   else np.zeros(1, np.int32))
        self.offsets: np.ndarray = offsets[array.offset:array.offset + len(array) + 1]

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        """The byte lengths of these rows' values."""
        lengths: np.ndarray = self.offsets[rows + 1] - self.offsets[rows]
        return lengths

    def take(self, rows: np.ndarray, width: int) -> np.ndarray:
        """(rows × width) bytes: the first `width` of each row's value (the caller has checked
        that they are that long)."""
        if width == 0 or len(rows) == 0:
            return np.zeros((len(rows), width), np.uint8)
        items = np.ndarray((len(self.flat) - width + 1,), np.dtype((np.void, width)),
                           self.flat.data, strides=(1,))
        taken: np.ndarray = items[self.offsets[rows]]
        return taken.view(np.uint8).reshape(-1, width)


def _bytes(buffer: pa.Buffer | None) -> np.ndarray:
    return np.zeros(0, np.uint8) if buffer is None else np.frombuffer(buffer, np.uint8)


def _valid(column: pa.ChunkedArray) -> np.ndarray:
    """Per row: is the value present? Read off the validity bitmap (a few times faster than
    Arrow's `is_valid().to_numpy()`)."""
    array = single_array(column)
    if array.buffers()[0] is None:
        return np.ones(len(array), bool)
    bits = np.unpackbits(_bytes(array.buffers()[0]), count=array.offset + len(array),
                         bitorder="little")
    return bits[array.offset:].view(bool)


class _BlockTimes:
    def __init__(self, blocks: pa.Table | None) -> None:
        if blocks is None or blocks.num_rows == 0:
            self.numbers = np.zeros(0, np.uint64)
            self.times = np.zeros(0, np.int64)
            return
        numbers = blocks["block_number"].to_numpy()
        order = np.argsort(numbers, kind="stable")
        self.numbers = numbers[order]
        self.times = blocks["timestamp"].to_numpy().astype(np.int64)[order]

    def at(self, block_numbers: np.ndarray) -> pa.Array:
        pos = np.searchsorted(self.numbers, block_numbers)
        pos_c = np.minimum(pos, max(len(self.numbers) - 1, 0))
        found = (pos < len(self.numbers)) & (self.numbers[pos_c] == block_numbers
                                             if len(self.numbers) else False)
        values = self.times[pos_c] if len(self.numbers) else np.zeros(len(block_numbers), np.int64)
        return pa.array(values, pa.timestamp("s", tz="UTC"), mask=~np.asarray(found, bool))


class _Quarantine:
    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.reasons: list[pa.Array] = []
        self.events: list[pa.Array] = []
        self._lock = threading.Lock()  # layouts are decoded on several threads

    def add(self, rows: np.ndarray, reason: str | pa.Array, event: str | None = None) -> None:
        if len(rows) == 0:
            return
        reasons = (reason if isinstance(reason, pa.Array)
                   else pa.array([reason] * len(rows), pa.string()))
        with self._lock:
            self.rows.append(rows)
            self.reasons.append(reasons)
            self.events.append(pa.array([event] * len(rows), pa.string()))

    def table(self, logs: pa.Table) -> pa.Table:
        if not self.rows:
            return QUARANTINE_SCHEMA.empty_table()
        rows = np.concatenate(self.rows)
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        pick = pa.array(rows)
        sub = logs.take(pick)
        columns = {
            "chain_id": sub["chain_id"],
            "block_number": sub["block_number"],
            "transaction_hash": hex_text(hash_matrix(sub["transaction_hash"])),
            "log_index": sub["log_index"],
            "contract_address": hex_text(hash_matrix(sub["address"])),
            "topic0": pc.if_else(sub["topic0"].combine_chunks().is_valid(),
                                 hex_text(hash_matrix(sub["topic0"])),
                                 pa.scalar(None, pa.string())),
            "event": pa.concat_arrays(self.events).take(pa.array(order)),
            "reason": pa.concat_arrays(self.reasons).take(pa.array(order)),
        }
        for i in range(1, 4):
            column = sub[f"topic{i}"].combine_chunks()
            columns[f"topic{i}"] = pc.if_else(column.is_valid(), hex_text(hash_matrix(column)),
                                              pa.scalar(None, pa.string()))
        columns["data"] = _binary_hex(sub["data"].combine_chunks())
        return pa.table(columns).select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)


def registered_contracts(registry: Registry | None) -> tuple[set[bytes], dict[str, set[bytes]]]:
    """Every address the registry lists, and the venue contracts of each protocol."""
    if registry is None:
        return set(), {}
    everything: set[bytes] = set()
    by_protocol: dict[str, set[bytes]] = {}
    for venue in registry.venues:
        for address in venue.contracts.values():
            raw = bytes.fromhex(address[2:])
            everything.add(raw)
            by_protocol.setdefault(venue.protocol, set()).add(raw)
    everything |= {bytes.fromhex(t.address[2:]) for t in registry.tokens}
    everything |= {bytes.fromhex(a[2:]) for f in registry.feeds for a, _, _ in f.emitters()}
    if registry.risk_oracle is not None:  # what the venues were told is part of the record
        everything.add(bytes.fromhex(registry.risk_oracle[2:]))
    return everything, by_protocol


def _is_in(values: pa.ChunkedArray | pa.Array, members: Iterable[bytes], width: int) -> np.ndarray:
    member_array = pa.array(sorted(members), pa.binary(width))
    if len(member_array) == 0:
        return np.zeros(len(values), bool)
    return np.asarray(pc.is_in(values, value_set=member_array).to_numpy(zero_copy_only=False),
                      bool)


def decode_logs(logs: pa.Table, *, blocks: pa.Table | None = None,
                registry: Registry | None = None, catalog: Catalog = CATALOG,
                threads: int | None = None) -> DecodeResult:
    """Decode a `raw_logs` table (any order; output keeps it) into the catalog's event tables.

    `blocks` (the lake's `blocks` table) supplies `block_time`; without it the column is null.
    `registry` marks whose contracts are ours (for quarantining unknown events) and lets a
    protocol claim the logs its own contracts emit under a shared signature. Event tables are
    decoded on `threads` threads (default: one per CPU); numpy and Arrow release the GIL.
    """
    n = logs.num_rows
    quarantine = _Quarantine()
    ignored: dict[str, int] = {}
    present = [_valid(logs[f"topic{i}"]) for i in range(4)]
    topic_count = np.sum(present, axis=0, dtype=np.int16)
    # topics are contiguous when none is present after an absent one
    contiguous = ~((present[1] & ~present[0]) | (present[2] & ~present[1])
                   | (present[3] & ~present[2]))
    registered, by_protocol = registered_contracts(registry)
    is_registered = _is_in(logs["address"], registered, 20)

    known = pa.array(catalog.topic0s, pa.binary(32))
    key = pc.fill_null(pc.index_in(logs["topic0"], value_set=known), -1).to_numpy().astype(np.int16)

    broken = np.nonzero(~contiguous)[0]
    quarantine.add(broken, "topics are not contiguous (a null topic before a non-null one)")
    unknown = (key < 0) & contiguous
    quarantine.add(np.nonzero(unknown & is_registered)[0],
                   "unknown topic0 at a registered contract")
    if (count := int((unknown & ~is_registered).sum())):
        ignored["not a known event, unregistered contract"] = count

    # One stable sort by (topic0, topic count) puts each group's rows together, in input order.
    # (Arrow sorts integers of a small range by counting, a few times faster than numpy)
    group = np.where(contiguous & (key >= 0), key * 5 + topic_count, np.int16(-1))
    order = pc.sort_indices(pa.array(group)).to_numpy().view(np.int64)
    ordered = group[order]
    starts = np.flatnonzero(np.diff(ordered, prepend=np.int16(-2)) != 0)
    chosen: dict[str, np.ndarray] = {}  # a layout's rows, in input order (it has one group)
    for lo, hi in zip(starts, np.append(starts[1:], n)[:len(starts)], strict=True):
        value = int(ordered[lo])
        if value < 0:
            continue
        topic0, count, rows = catalog.topic0s[value // 5], value % 5, order[lo:hi]
        candidates = catalog.by_key.get((topic0, count))
        if candidates is None:
            expected = {c: lays[0] for (t0, c), lays in catalog.by_key.items() if t0 == topic0}
            quarantine.add(rows, f"wrong topic count: {count} topics, expected " + " or ".join(
                f"{c} ({lay.table})" for c, lay in sorted(expected.items())),
                expected[min(expected)].spec.name)
            continue
        left = np.ones(len(rows), bool)
        for lay in candidates[1:]:  # a protocol claims its own contracts' logs
            if not (members := by_protocol.get(lay.spec.protocol)):
                continue
            mine = _is_in(logs["address"].take(pa.array(rows)), members, 20) & left
            chosen[lay.table] = rows[mine]
            left &= ~mine
        chosen[candidates[0].table] = rows[left]

    fixed = logs.select([*_FIXED_BASE, "topic1", "topic2", "topic3"]).combine_chunks()
    source = _Source(fixed, _Rows(logs["data"]), _BlockTimes(blocks))
    # Work in slices of rows small enough for the temporaries to stay in cache; the slices of
    # all layouts are spread over the threads.
    jobs = [(lay, chosen[lay.table][lo:lo + _SLICE_ROWS]) for lay in catalog.layouts
            if lay.table in chosen for lo in range(0, len(chosen[lay.table]), _SLICE_ROWS)]

    def decode(job: tuple[EventLayout, np.ndarray]) -> pa.Table:
        return _decode_layout(*job, source, quarantine)

    threads = threads or os.cpu_count() or 1
    if threads == 1:
        pieces = [decode(job) for job in jobs]
    else:
        # the costliest jobs first, so that the threads run out of work together rather than
        # one finishing a big job alone; the decimal text of wide integers dominates the cost
        def cost(j: int) -> int:
            lay, rows = jobs[j]
            wide = sum(bool(_arrow_type(s.abi_type) == pa.string()) for s in lay.slots)
            return len(rows) * (1 + wide)

        first = sorted(range(len(jobs)), key=cost, reverse=True)
        with ThreadPoolExecutor(threads) as pool:
            finished = dict(zip(first, pool.map(decode, [jobs[j] for j in first]), strict=True))
        pieces = [finished[j] for j in range(len(jobs))]
    done: dict[str, list[pa.Table]] = {}
    for (lay, _), piece in zip(jobs, pieces, strict=True):
        done.setdefault(lay.table, []).append(piece)
    # an absent event's table has no chunks: `empty_table` would allocate buffers for each
    # column of each of them, a measurable share of a call
    tables = {lay.table: pa.concat_tables(done[lay.table]) if lay.table in done
              else pa.Table.from_batches([], lay.schema) for lay in catalog.layouts}
    result = DecodeResult(n, tables, quarantine.table(logs), ignored)
    result.check()
    return result


@dataclass(frozen=True)
class _Source:
    """The input logs' columns: Arrow takes the fixed-size ones (without holding the GIL)."""

    fixed: pa.Table
    data: _Rows
    times: _BlockTimes


def _decode_layout(lay: EventLayout, rows: np.ndarray, source: _Source,
                   quarantine: _Quarantine) -> pa.Table:
    lengths = source.data.lengths(rows)
    expected = 32 * lay.data_words
    wrong = lengths != expected
    if wrong.any():
        reasons = pa.array([f"data is {length} bytes, expected {expected}"
                            for length in np.unique(lengths[wrong])])
        which = np.searchsorted(np.unique(lengths[wrong]), lengths[wrong])
        quarantine.add(rows[wrong], reasons.take(pa.array(which)), lay.spec.name)
        rows = rows[~wrong]
        if not len(rows):
            return lay.schema.empty_table()
    data = source.data.take(rows, expected)
    topics = sorted({f"topic{s.topic}" for s in lay.slots if s.topic is not None})
    fixed = source.fixed.select([*_FIXED_BASE, *topics]).take(pa.array(rows))
    columns: list[pa.Array | None] = []
    wide: list[tuple[int, np.ndarray, bool]] = []
    bad = np.zeros(len(rows), bool)
    first_bad = np.full(len(rows), -1)
    for i, slot in enumerate(lay.slots):
        start = 32 * (slot.word or 0)
        words = (hash_matrix(fixed[f"topic{slot.topic}"]) if slot.topic is not None
                 else data[:, start:start + 32])
        column, out_of_range = decode_word(slot.abi_type, words)
        if column is None:  # a wide integer: formatted below, all in one query
            wide.append((i, words, slot.abi_type.startswith("int")))
        first_bad[out_of_range & ~bad] = i
        bad |= out_of_range
        columns.append(column)
    texts = decimal_texts([(words, signed) for _, words, signed in wide])
    for (i, _, _), text in zip(wide, texts, strict=True):
        columns[i] = text
    decoded = [c for c in columns if c is not None]
    assert len(decoded) == len(columns)
    if bad.any():
        names = pa.array([f"value out of range for {s.name} ({s.abi_type})" for s in lay.slots])
        quarantine.add(rows[bad], names.take(pa.array(first_bad[bad])), lay.spec.name)
        keep = pa.array(~bad)
        decoded = [c.filter(keep) for c in decoded]
        fixed = fixed.filter(keep)
    base = [fixed["chain_id"], fixed["block_number"],
            source.times.at(fixed["block_number"].to_numpy()), fixed["transaction_hash"],
            fixed["log_index"], fixed["address"]]
    return pa.Table.from_arrays([*base, *decoded], schema=lay.schema)
