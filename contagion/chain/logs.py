"""Logs and block headers from JSON-RPC into Arrow tables in the lake's schemas.

`get_logs` reads a block range as concurrent `eth_getLogs` chunks. Providers cap a query by
block span or by result size and say so in a JSON-RPC error; such a chunk is split (at the
range or width the message suggests, else in half) and the pieces are fetched in its place.

Converting the reply is the hot path of indexing (mainnet lending history is hundreds of
millions of logs), so each column is decoded in one pass over joined hex strings into Arrow
buffers, never one Python object per field; the shape of every value is still checked.
"""

from __future__ import annotations

import binascii
import functools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from contagion.chain.rpc import RpcClient, RpcError
from contagion.lake import BLOCKS_SCHEMA, RAW_LOGS_SCHEMA

__all__ = [
    "ChainMoved",
    "ChainReadError",
    "LimitHint",
    "MalformedReply",
    "RangeLimitError",
    "block_hashes",
    "chain_id_of",
    "get_headers",
    "get_logs",
    "hash_matrix",
    "head_of",
    "headers_to_table",
    "logs_to_table",
    "parse_limit_error",
    "parse_logs_reply",
    "rpc_quantity",
    "safe_head",
    "single_array",
    "split_range",
]

DEFAULT_CHUNK_BLOCKS = 2_000
DEFAULT_IN_FLIGHT = 4


class ChainReadError(RuntimeError):
    """Reading the chain gave no usable answer."""


class MalformedReply(ChainReadError):
    """A reply that does not have the shape the JSON-RPC spec gives it."""


class ChainMoved(ChainReadError):
    """The chain reorganised while it was being read (a log marked `removed`, or blocks whose
    hashes disagree between replies). Retryable: read the range again."""


class RangeLimitError(ChainReadError):
    """The provider refuses even a one-block query: no split can satisfy it."""


# -- provider limit errors ---------------------------------------------------------------------

@dataclass(frozen=True)
class LimitHint:
    """What a provider's limit error suggests: a range that works, or a maximum span in blocks
    (both None: it only said "too much", so halve)."""

    suggested: tuple[int, int] | None = None
    width: int | None = None


_LIMIT = re.compile("|".join([
    r"query returned more than [\d,]+ results",              # Infura, geth-style
    r"log response size exceeded",                           # Alchemy
    r"response size (?:exceeded|is larger|too large|should not)",
    r"(?:block )?range (?:is )?too (?:wide|large|big|long)",   # Ankr, others
    r"exceed(?:s|ed)? (?:the )?max(?:imum)? (?:block )?range",
    r"max(?:imum)? block range",
    r"limited to a [\d,]+\s*k? (?:block )?range",            # QuickNode
    r"block range (?:limit|exceeded|too)",
    r"exceeds? max(?:imum)? results",
    r"too many (?:results|logs|blocks)",
    r"more than [\d,]+ (?:results|logs)",
]), re.IGNORECASE)
_RATE_LIMIT = re.compile(r"rate limit|too many requests|request rate|requests per|"
                         r"daily request|request count|capacity", re.IGNORECASE)
_RANGE = re.compile(r"\[\s*(0x[0-9a-f]+|\d+)\s*,\s*(0x[0-9a-f]+|\d+)\s*\]", re.IGNORECASE)
_WIDTH = [re.compile(p, re.IGNORECASE) for p in (
    r"max(?:imum)? block range(?: is| of|:)?\s*([\d,]+)\s*(k)?",
    r"limited to a ([\d,]+)\s*(k)? (?:block )?range",
    r"up to a ([\d,]+)\s*(k)? block range",
    r"range (?:is )?too (?:wide|large|big|long)\D{0,20}?([\d,]+)\s*(k)? blocks?",
)]
LIMIT_CODE = -32005  # "limit exceeded" (EIP-1474); Infura also uses it for rate limits


def parse_limit_error(code: int, message: str, data: Any = None) -> LimitHint | None:
    """A hint when the JSON-RPC error is a provider's range or result-size limit, else None.

    A rate limit is not a range limit (a smaller range would not help), so it is None too.
    """
    text = message if not isinstance(data, str) else f"{message} {data}"
    if not _LIMIT.search(text) and not (code == LIMIT_CODE and not _RATE_LIMIT.search(text)):
        return None
    if isinstance(data, dict) and "from" in data and "to" in data:  # Infura puts it in data
        try:
            return LimitHint(suggested=(int(str(data["from"]), 0), int(str(data["to"]), 0)))
        except ValueError:
            pass
    found = _RANGE.search(text)
    if found:
        return LimitHint(suggested=(int(found[1], 0), int(found[2], 0)))
    for pattern in _WIDTH:
        found = pattern.search(text)
        if found:
            width = int(found[1].replace(",", "")) * (1000 if found[2] else 1)
            if width > 0:
                return LimitHint(width=width)
    return LimitHint()


def split_range(lo: int, hi: int, hint: LimitHint) -> list[tuple[int, int]]:
    """Pieces of the inclusive range [lo, hi] that a provider limit asks for, in order.

    Every piece is strictly smaller than the range, so repeated splitting ends; a one-block
    range cannot be split and raises.
    """
    if hi <= lo:
        raise RangeLimitError(f"eth_getLogs for the single block {lo} still exceeds the "
                              "provider's limit; no smaller query exists (narrow the address "
                              "or topic filter, or use a provider without this cap)")
    width = hint.width
    if hint.suggested is not None:
        a, b = hint.suggested
        if a == lo and lo <= b < hi:
            return [(lo, b), (b + 1, hi)]
        width = b - a + 1 if b >= a else None
    if width is None or width < 1 or width > hi - lo:
        mid = (lo + hi) // 2
        return [(lo, mid), (mid + 1, hi)]
    return [(s, min(s + width - 1, hi)) for s in range(lo, hi + 1, width)]


# -- hex columns -------------------------------------------------------------------------------

def _lengths(values: Sequence[Any], field: str) -> npt.NDArray[np.int64]:
    """The lengths of values that must all be strings."""
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    except TypeError:
        bad = next(v for v in values if not isinstance(v, str))
        raise MalformedReply(f"{field}: expected a hex string, got {bad!r}") from None
    return lengths


def _unhex(values: Sequence[Any], field: str, width: int | None
           ) -> tuple[bytes, npt.NDArray[np.int64]]:
    """Decode `0x…` strings in one pass: the concatenated bytes and each value's byte length.

    A fixed `width` (bytes) is enforced per value; otherwise any whole number of bytes.
    """
    lengths = _lengths(values, field)
    _check_lengths(lengths, field, width, values.__getitem__)
    try:
        chars = np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8)
    except TypeError:  # a list or the like, of the right length
        raise MalformedReply(f"{field}: expected hex strings") from None
    except UnicodeEncodeError:
        raise MalformedReply(f"{field}: non-ASCII characters in hex values") from None
    return _unhex_chars(chars, lengths, field, width, values.__getitem__)


def _check_lengths(lengths: npt.NDArray[np.int64], field: str, width: int | None,
                   value: Callable[[int], Any]) -> None:
    bad = (lengths != 2 + 2 * width) if width is not None else ((lengths < 2) | (lengths % 2 == 1))
    if len(lengths) and bad.any():
        i = int(np.argmax(bad))
        size = f"{width} bytes" if width is not None else "whole bytes"
        raise MalformedReply(f"{field} #{i}: {value(i)!r} is not 0x-prefixed hex of {size}")


def _unhex_chars(chars: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64], field: str,
                 width: int | None, value: Callable[[int], Any]
                 ) -> tuple[bytes, npt.NDArray[np.int64]]:
    """`_unhex` on the values' characters laid end to end (lengths already checked)."""
    n = len(lengths)
    if width is not None:  # every value has the same length: one row each
        rows = chars.reshape(n, 2 + 2 * width)
        prefixed = (rows[:, 0] == ord("0")) & (rows[:, 1] == ord("x"))
        digits = rows[:, 2:]
    else:
        prefixed, digits = _split_prefixes(chars, lengths)
    if n and not prefixed.all():
        i = int(np.argmin(prefixed))
        raise MalformedReply(f"{field} #{i}: {value(i)!r} lacks the 0x prefix")
    try:
        raw = binascii.unhexlify(digits.tobytes())  # strict: hex digits only
    except binascii.Error:
        raise MalformedReply(f"{field}: a value holds characters other than hex digits"
                             ) from None
    return raw, (lengths - 2) // 2


def _split_prefixes(chars: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]
                    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """Values of any length laid end to end: whether each starts with `0x`, and the characters
    after those two of every value."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    prefixed = (chars[starts] == ord("0")) & (chars[starts + 1] == ord("x"))
    keep = np.ones(len(chars), dtype=bool)
    keep[starts] = False
    keep[starts + 1] = False
    return prefixed, chars[keep]


def _fixed_array(raw: bytes, n: int, width: int) -> pa.Array:
    return pa.Array.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])


def _binary_array(raw: bytes, sizes: npt.NDArray[np.int64]) -> pa.Array:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    # built with 64-bit offsets, cast to the schema's 32-bit ones: Arrow checks the overflow
    big = pa.Array.from_buffers(pa.large_binary(), len(sizes),
                                [None, pa.py_buffer(offsets), pa.py_buffer(raw)])
    return big.cast(pa.binary())


def _fixed(values: Sequence[Any], field: str, width: int) -> pa.Array:
    raw, _ = _unhex(values, field, width)
    return _fixed_array(raw, len(values), width)


def _variable(values: Sequence[Any], field: str) -> pa.Array:
    return _binary_array(*_unhex(values, field, None))


def _quantities(values: Sequence[Any], field: str, bits: int = 64) -> pa.Array:
    try:
        ints = np.fromiter(map(int, values, repeat(16)), dtype=np.uint64, count=len(values))
    except (TypeError, ValueError, OverflowError):
        bad = next((v for v in values if not _is_quantity(v, bits)), None)
        raise MalformedReply(f"{field}: {bad!r} is not a hex quantity") from None
    if bits < 64 and len(ints) and int(ints.max()) >= 1 << bits:
        raise MalformedReply(f"{field}: {hex(int(ints.max()))} exceeds {bits} bits")
    return pa.array(ints.astype(f"uint{bits}", copy=False))


def _is_quantity(value: Any, bits: int) -> bool:
    try:
        return isinstance(value, str) and 0 <= int(value, 16) < 1 << bits
    except ValueError:
        return False


def _columns(rows: Sequence[dict[str, Any]], keys: tuple[str, ...], what: str
             ) -> list[list[Any]]:
    """One list per key of the reply objects' values (map + itemgetter: no Python loop)."""
    try:
        return [list(map(itemgetter(key), rows)) for key in keys]
    except (KeyError, TypeError) as exc:
        raise MalformedReply(f"{what}: a reply object lacks {exc} or is not an object") from None


def _topics(topic_lists: Sequence[Any], n: int) -> list[pa.Array]:
    """topic0..topic3 columns, null where a log has fewer topics."""
    if not all(map(isinstance, topic_lists, repeat(list))):
        raise MalformedReply("topics: expected a list per log")
    counts = np.fromiter(map(len, topic_lists), dtype=np.int64, count=n)
    return _topic_columns(counts, _unhex(list(chain.from_iterable(topic_lists)), "topics", 32)[0])


def _topic_columns(counts: npt.NDArray[np.int64], raw: bytes) -> list[pa.Array]:
    """topic0..topic3 from each log's topic count and all topics' 32 bytes end to end."""
    n = len(counts)
    if n and int(counts.max()) > 4:
        raise MalformedReply(f"topics: a log has {int(counts.max())} topics, at most 4 exist")
    matrix = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32)
    first = np.zeros(n, dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    out = []
    for k in range(4):
        present = counts > k
        if present.all():
            column = matrix[first + k]
            validity = None
        else:
            column = np.zeros((n, 32), dtype=np.uint8)
            column[present] = matrix[first[present] + k]
            validity = pa.py_buffer(np.packbits(present, bitorder="little"))
        out.append(pa.Array.from_buffers(pa.binary(32), n, [validity, pa.py_buffer(column)],
                                         null_count=n - int(present.sum())))
    return out


_LOG_KEYS = ("blockNumber", "blockHash", "transactionHash", "transactionIndex", "logIndex",
             "address", "topics", "data")


def logs_to_table(logs: Sequence[dict[str, Any]], chain_id: int) -> pa.Table:
    """`eth_getLogs` result objects as a `RAW_LOGS_SCHEMA` table, in reply order.

    Raises MalformedReply on a value of the wrong shape, ChainMoved on a `removed` log (the
    node switched forks while answering; the range must be read again).
    """
    try:
        removed = any(map(dict.get, logs, repeat("removed")))
    except TypeError:
        raise MalformedReply("eth_getLogs: a log in the reply is not an object") from None
    if removed:
        raise ChainMoved("a log in the reply is marked removed: the chain reorganised during "
                         "the query")
    n = len(logs)
    number, block_hash, tx_hash, tx_index, log_index, address, topics, data = \
        _columns(logs, _LOG_KEYS, "eth_getLogs")
    return pa.Table.from_arrays([
        pa.array(np.full(n, chain_id, dtype=np.uint64)),
        _quantities(number, "blockNumber"),
        _fixed(block_hash, "blockHash", 32),
        _fixed(tx_hash, "transactionHash", 32),
        _quantities(tx_index, "transactionIndex", 32),
        _quantities(log_index, "logIndex", 32),
        _fixed(address, "address", 20),
        *_topics(topics, n),
        _variable(data, "data"),
    ], schema=RAW_LOGS_SCHEMA)


_HEADER_KEYS = ("number", "hash", "parentHash", "timestamp")


def headers_to_table(headers: Sequence[dict[str, Any]], chain_id: int) -> pa.Table:
    """`eth_getBlockByNumber` results as a `BLOCKS_SCHEMA` table, in reply order."""
    number, block_hash, parent, timestamp = _columns(headers, _HEADER_KEYS, "block header")
    return pa.Table.from_arrays([
        pa.array(np.full(len(headers), chain_id, dtype=np.uint64)),
        _quantities(number, "number"),
        _fixed(block_hash, "hash", 32),
        _fixed(parent, "parentHash", 32),
        _quantities(timestamp, "timestamp"),
    ], schema=BLOCKS_SCHEMA)


# -- the fast path: a whole eth_getLogs reply parsed by Arrow ---------------------------------
# json.loads makes a Python object of every field of every log and holds the GIL while it does;
# Arrow's JSON reader parses the reply straight into columns, in C++, without the GIL. Anything
# it cannot vouch for (an error reply, a missing or null field, an odd shape) goes back to the
# general path above, which decides and explains: both paths accept exactly the same replies.

_TEXT = pa.string()
_REPLY_SCHEMA = pa.schema([
    ("result", pa.list_(pa.struct([
        ("blockNumber", _TEXT), ("blockHash", _TEXT), ("transactionHash", _TEXT),
        ("transactionIndex", _TEXT), ("logIndex", _TEXT), ("address", _TEXT),
        ("topics", pa.list_(_TEXT)), ("data", _TEXT), ("removed", pa.bool_())]))),
    ("error", pa.null()),  # any error value fails the parse: the general path reads it
])
_NIBBLE = np.full(256, 16, dtype=np.uint64)
_NIBBLE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint64)
_NIBBLE[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint64)


class _NotVouched(Exception):
    """The fast path leaves this reply to the general one."""


def _offsets(array: pa.Array) -> npt.NDArray[np.int32]:
    """The 32-bit offsets of a string or list array without nulls."""
    if array.null_count:
        raise _NotVouched
    return np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1,
                         offset=4 * array.offset)


def _text(array: pa.Array) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """A string array without nulls as (its UTF-8 bytes end to end, each value's length)."""
    offsets = _offsets(array)
    data = array.buffers()[2]
    chars = (np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None
             else np.zeros(0, dtype=np.uint8))
    return chars, np.diff(offsets).astype(np.int64)


def _arrow_hex(array: pa.Array, field: str, width: int | None) -> tuple[bytes,
                                                                        npt.NDArray[np.int64]]:
    chars, lengths = _text(array)
    _check_lengths(lengths, field, width, lambda i: array[i].as_py())
    return _unhex_chars(chars, lengths, field, width, lambda i: array[i].as_py())


def _arrow_quantities(array: pa.Array, bits: int = 64) -> pa.Array:
    """`0x` + 1 to 16 hex digits per value, as unsigned integers, vectorized; the general path
    (Python's int) handles whatever else a node may send."""
    chars, lengths = _text(array)
    n = len(lengths)
    digits = lengths - 2
    if n and ((digits < 1) | (digits > 16)).any():
        raise _NotVouched
    prefixed, hex_digits = _split_prefixes(chars, lengths)
    if n and not prefixed.all():
        raise _NotVouched
    nibbles = _NIBBLE[hex_digits]
    if (nibbles > 15).any():
        raise _NotVouched
    row = np.repeat(np.arange(n), digits)  # right-align each value's digits in 16 columns
    first_digit = np.zeros(n, dtype=np.int64)
    np.cumsum(digits[:-1], out=first_digit[1:])
    column = 16 - digits[row] + (np.arange(len(nibbles)) - first_digit[row])
    matrix = np.zeros((n, 16), dtype=np.uint64)
    matrix[row, column] = nibbles
    values = np.zeros(n, dtype=np.uint64)
    for k in range(16):
        values = (values << np.uint64(4)) | matrix[:, k]
    if bits < 64 and n and int(values.max()) >= 1 << bits:
        raise _NotVouched
    return pa.array(values.astype(f"uint{bits}", copy=False))


def _arrow_logs_table(logs: pa.StructArray, chain_id: int) -> pa.Table:
    """The RAW_LOGS table of an Arrow-parsed reply: the same table `logs_to_table` makes."""
    n = len(logs)
    if logs.null_count:
        raise _NotVouched
    fields = dict(zip((f.name for f in logs.type), logs.flatten(), strict=True))
    removed = fields["removed"]
    if n and pc.any(removed).as_py():
        raise _NotVouched  # the general path raises ChainMoved
    topics = fields["topics"]
    counts = np.diff(_offsets(topics)).astype(np.int64)
    topic_bytes, _ = _arrow_hex(topics.flatten(), "topics", 32)

    def fixed(name: str, width: int) -> pa.Array:
        return _fixed_array(_arrow_hex(fields[name], name, width)[0], n, width)

    return pa.Table.from_arrays([
        pa.array(np.full(n, chain_id, dtype=np.uint64)),
        _arrow_quantities(fields["blockNumber"]),
        fixed("blockHash", 32),
        fixed("transactionHash", 32),
        _arrow_quantities(fields["transactionIndex"], 32),
        _arrow_quantities(fields["logIndex"], 32),
        fixed("address", 20),
        *_topic_columns(counts, topic_bytes),
        _binary_array(*_arrow_hex(fields["data"], "data", None)),
    ], schema=RAW_LOGS_SCHEMA)


def parse_logs_reply(content: bytes, chain_id: int) -> Any:
    """An `eth_getLogs` reply body as `{"result": <RAW_LOGS table>}` when Arrow parses it and
    vouches for every value; otherwise as `json.loads` gives it, for `logs_to_table` to check."""
    try:
        parsed = pajson.read_json(
            pa.BufferReader(content),
            read_options=pajson.ReadOptions(block_size=len(content) + 1, use_threads=False),
            parse_options=pajson.ParseOptions(explicit_schema=_REPLY_SCHEMA,
                                              unexpected_field_behavior="ignore",
                                              newlines_in_values=True))
        result = parsed["result"]
        if parsed.num_rows != 1 or result.null_count:
            raise _NotVouched
        return {"result": _arrow_logs_table(result.chunk(0).flatten(), chain_id)}
    except (_NotVouched, MalformedReply, pa.ArrowException):
        return json.loads(content)


# -- reading -----------------------------------------------------------------------------------

def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The column as one Arrow array; its own chunk when it has one (`combine_chunks` copies
    even then)."""
    if isinstance(column, pa.Array):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def hash_matrix(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.uint8]:
    """A fixed-size binary column as an (n, width) byte matrix, without copying when it is one
    chunk. A null slot reads as whatever bytes Arrow keeps there: mask it by validity."""
    array = single_array(column)
    width = array.type.byte_width
    buffer = array.buffers()[1]
    if len(array) == 0 or buffer is None:
        return np.zeros((len(array), width), dtype=np.uint8)
    data = np.frombuffer(buffer, dtype=np.uint8)
    start = array.offset * width
    return data[start:start + len(array) * width].reshape(len(array), width)


def _check_chunk(table: pa.Table, lo: int, hi: int) -> None:
    """A chunk's logs lie in [lo, hi] and agree on each block's hash."""
    if table.num_rows == 0:
        return
    numbers = table["block_number"].to_numpy()
    low, high = int(numbers.min()), int(numbers.max())
    if low < lo or high > hi:
        raise MalformedReply(f"eth_getLogs [{lo}, {hi}] returned a log of block "
                             f"{low if low < lo else high}")
    order = np.argsort(numbers, kind="stable")
    same_block = numbers[order][1:] == numbers[order][:-1]
    hashes = hash_matrix(table["block_hash"])[order]
    if (same_block & (hashes[1:] != hashes[:-1]).any(axis=1)).any():
        raise ChainMoved(f"eth_getLogs [{lo}, {hi}]: logs of one block carry different block "
                         "hashes: the chain reorganised during the query")


def _fetch_chunk(client: RpcClient, chain_id: int, base: dict[str, Any], lo: int, hi: int
                 ) -> pa.Table:
    result = client.call("eth_getLogs", [{**base, "fromBlock": hex(lo), "toBlock": hex(hi)}],
                         loads=functools.partial(parse_logs_reply, chain_id=chain_id))
    if isinstance(result, pa.Table):
        table = result
    elif isinstance(result, list):
        table = logs_to_table(result, chain_id)
    else:
        raise MalformedReply(f"eth_getLogs [{lo}, {hi}] returned {str(result)[:100]}, not a list")
    _check_chunk(table, lo, hi)
    return table


def _chunks(lo: int, hi: int, width: int) -> Iterable[tuple[int, int]]:
    return ((s, min(s + width - 1, hi)) for s in range(lo, hi + 1, width))


def get_logs(client: RpcClient, from_block: int, to_block: int,
             addresses: Sequence[str] | None, topic0s: Sequence[str] | None, *,
             chain_id: int, chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
             max_in_flight: int = DEFAULT_IN_FLIGHT, reorg_retries: int = 3) -> pa.Table:
    """The logs of blocks from_block..to_block (inclusive, as in eth_getLogs) emitted by any of
    `addresses` with any of `topic0s` as first topic, sorted by (block_number, log_index).

    None means no filter on that field; an empty sequence matches nothing. Chunks of
    `chunk_blocks` blocks run `max_in_flight` at a time; a chunk the provider finds too large
    is split as its error message suggests; a chunk read across a reorg is read again, up to
    `reorg_retries` times.
    """
    if chunk_blocks < 1 or max_in_flight < 1:
        raise ValueError("chunk_blocks and max_in_flight must be at least 1")
    if to_block < from_block or (addresses is not None and len(addresses) == 0) \
            or (topic0s is not None and len(topic0s) == 0):
        return RAW_LOGS_SCHEMA.empty_table()
    base: dict[str, Any] = {}
    if addresses is not None:
        base["address"] = [a.lower() for a in addresses]
    if topic0s is not None:
        base["topics"] = [[t.lower() for t in topic0s]]
    todo: deque[tuple[int, int]] = deque(_chunks(from_block, to_block, chunk_blocks))
    reread: dict[tuple[int, int], int] = {}
    tables: list[pa.Table] = []
    with ThreadPoolExecutor(max_in_flight, thread_name_prefix="getLogs") as pool:
        running: dict[Future[pa.Table], tuple[int, int]] = {}
        while todo or running:
            while todo and len(running) < max_in_flight:
                span = todo.popleft()
                running[pool.submit(_fetch_chunk, client, chain_id, base, *span)] = span
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                lo, hi = running.pop(future)
                try:
                    tables.append(future.result())
                except RpcError as exc:
                    hint = parse_limit_error(exc.code, exc.message, exc.data)
                    if hint is None:
                        raise
                    try:
                        pieces = split_range(lo, hi, hint)
                    except RangeLimitError as narrow:
                        raise RangeLimitError(f"{narrow} (provider said: {exc.message})"
                                              ) from exc
                    if hint.width is not None:  # a span cap holds for the queued chunks too
                        todo = deque(chain.from_iterable(
                            _chunks(a, b, hint.width) for a, b in todo))
                    todo.extendleft(reversed(pieces))
                except ChainMoved:
                    reread[lo, hi] = reread.get((lo, hi), 0) + 1
                    if reread[lo, hi] > reorg_retries:
                        raise
                    todo.appendleft((lo, hi))
    if not tables:
        return RAW_LOGS_SCHEMA.empty_table()
    table = pa.concat_tables(tables).sort_by([("block_number", "ascending"),
                                              ("log_index", "ascending")])
    numbers = table["block_number"].to_numpy()
    indexes = table["log_index"].to_numpy()
    duplicate = (numbers[1:] == numbers[:-1]) & (indexes[1:] == indexes[:-1])
    if duplicate.any():
        i = int(np.argmax(duplicate))
        raise MalformedReply(f"eth_getLogs returned log {int(indexes[i])} of block "
                             f"{int(numbers[i])} twice")
    return table.combine_chunks()


def _batches(client: RpcClient, requests: list[tuple[str, list[Any]]], max_in_flight: int
             ) -> list[Any]:
    """batch_strict over client-sized batches, `max_in_flight` at a time, results in order."""
    size = client.max_batch
    if any(int(params[0], 16) < 0 for _, params in requests):
        raise ValueError("block numbers must be >= 0")
    groups = [requests[i:i + size] for i in range(0, len(requests), size)]
    if len(groups) <= 1:
        return client.batch_strict(requests)
    with ThreadPoolExecutor(min(max_in_flight, len(groups))) as pool:
        return list(chain.from_iterable(pool.map(client.batch_strict, groups)))


def get_headers(client: RpcClient, block_numbers: Iterable[int], chain_id: int, *,
                max_in_flight: int = DEFAULT_IN_FLIGHT) -> pa.Table:
    """Headers (number, hash, parent hash, timestamp) of the given blocks, one row per distinct
    number, sorted. A block the node does not have (above its head) raises ChainReadError."""
    numbers = sorted(set(block_numbers))
    replies = _batches(client, [("eth_getBlockByNumber", [hex(n), False]) for n in numbers],
                       max_in_flight)
    missing = [n for n, r in zip(numbers, replies, strict=True) if r is None]
    if missing:
        raise ChainReadError(f"the node has no block {missing[0]} (its head is below it?)"
                             + (f", nor {len(missing) - 1} more" if len(missing) > 1 else ""))
    table = headers_to_table(replies, chain_id)
    got = table["block_number"].to_numpy()
    if not np.array_equal(got, np.asarray(numbers, dtype=np.uint64)):
        i = int(np.argmax(got != np.asarray(numbers, dtype=np.uint64)))
        raise MalformedReply(f"asked for block {numbers[i]}, got a header of block {int(got[i])}")
    return table


def block_hashes(client: RpcClient, block_numbers: Sequence[int], *,
                 max_in_flight: int = DEFAULT_IN_FLIGHT) -> list[str | None]:
    """The chain's current hash (lowercase 0x hex) of each block, None where it has none."""
    replies = _batches(client, [("eth_getBlockByNumber", [hex(n), False])
                                for n in block_numbers], max_in_flight)
    out: list[str | None] = []
    for n, reply in zip(block_numbers, replies, strict=True):
        if reply is None:
            out.append(None)
        elif not isinstance(reply, dict) or not isinstance(reply.get("hash"), str):
            raise MalformedReply(f"block {n}: header without a hash: {str(reply)[:100]}")
        else:
            out.append(reply["hash"].lower())
    return out


def rpc_quantity(client: RpcClient, method: str, answer: Any) -> int:
    """`client`'s `answer` to `method` as the quantity (hex string) it must be; anything else
    raises MalformedReply naming the endpoint and the answer (`int(answer, 16)` would say
    "invalid literal" or "can't convert non-string" and name neither)."""
    if not _is_quantity(answer, 256):
        raise MalformedReply(f"{client.url} answered {method} with {repr(answer)[:100]}, not "
                             "a hex quantity")
    return int(answer, 16)


def chain_id_of(client: RpcClient) -> int:
    """The chain id the endpoint serves (eth_chainId)."""
    return rpc_quantity(client, "eth_chainId", client.call("eth_chainId"))


def head_of(client: RpcClient) -> int:
    """The endpoint's latest block number (eth_blockNumber)."""
    return rpc_quantity(client, "eth_blockNumber", client.call("eth_blockNumber"))


def safe_head(client: RpcClient, confirmations: int) -> int:
    """The newest block with at least `confirmations` blocks on top of it (never below 0)."""
    if confirmations < 0:
        raise ValueError(f"confirmations must be >= 0, got {confirmations}")
    return max(0, head_of(client) - confirmations)
