"""Raw logs from a file: what `contagion decode` reads.

Accepted shapes:
- JSON-RPC `eth_getLogs` JSON: an array of log objects, or a whole reply `{"result": [...]}`;
- JSON lines in ethereum-etl's export shape (`block_number`, `log_index`, …, integers);
- Parquet in the `raw_logs` schema (the lake's own files).
Block timestamps, when the file carries them (`blockTimestamp`, `block_timestamp`), come back as
a small (block_number, timestamp) table so decoded rows get their `block_time`.

A file is refused, with a LogFileError naming what and where, when it holds the same log
(block, log index) twice, a log marked `removed` (reorged out of the chain), a timestamp that is
not a whole number of seconds in 0..2**64-1, or two different timestamps for one block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contagion.chain.logs import ChainReadError, logs_to_table
from contagion.lake import RAW_LOGS_SCHEMA

__all__ = ["LogFileError", "read_log_file"]

_ETL_KEYS = {"block_number": "blockNumber", "block_hash": "blockHash",
             "transaction_hash": "transactionHash", "transaction_index": "transactionIndex",
             "log_index": "logIndex"}
_QUANTITIES = ("blockNumber", "transactionIndex", "logIndex")


class LogFileError(ValueError):
    """The file is not one of the accepted shapes; the message says what was wrong where."""


def _as_rpc(obj: dict[str, Any]) -> dict[str, Any]:
    """An ethereum-etl log record in JSON-RPC shape (hex quantities, camelCase keys)."""
    out = {_ETL_KEYS.get(k, k): v for k, v in obj.items()}
    for key in _QUANTITIES:
        if isinstance(out.get(key), int):
            out[key] = hex(out[key])
    if "block_timestamp" in obj and "blockTimestamp" not in out:
        out["blockTimestamp"] = obj["block_timestamp"]
    return out


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise LogFileError(f"{path}: not JSON or JSON lines (not UTF-8 text); a raw_logs "
                           "Parquet file must be named *.parquet") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            records = json.loads(text)
        elif stripped.startswith("{") and "\n{" not in stripped.strip():
            whole = json.loads(text)
            records = whole["result"] if isinstance(whole, dict) and "result" in whole else [whole]
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise LogFileError(f"{path}: not JSON or JSON lines ({exc})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise LogFileError(f"{path}: expected log objects")
    if any(r.get("type", "log") != "log" for r in records):
        raise LogFileError(f"{path}: holds records that are not logs (ethereum-etl 'type')")
    for k, r in enumerate(records):
        if r.get("removed"):
            raise LogFileError(
                f"{path}: log #{k + 1} in the file (block "
                f"{_shown(r.get('blockNumber', r.get('block_number')))}, log index "
                f"{_shown(r.get('logIndex', r.get('log_index')))}) is marked removed: it "
                "was reorged out of the chain; take it out of the file (or export the logs "
                "again) and decode")
    return [_as_rpc(r) for r in records]


def _shown(value: Any) -> str:
    """A block number or log index as the file holds it, for a message."""
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return str(int(value, 16))
        except ValueError:
            pass
    return repr(value) if not isinstance(value, int) else str(value)


_MAX_UINT64 = 2**64 - 1


def _timestamp(stamp: Any, block: int, path: Path) -> int:
    """A block timestamp: an integer, or a hex (or decimal) string of one, in uint64 range."""
    value: int | None = None
    if isinstance(stamp, bool):
        value = None
    elif isinstance(stamp, int):
        value = stamp
    elif isinstance(stamp, str):
        text = stamp.strip()
        try:
            value = int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
        except ValueError:
            value = None
    if value is None or not 0 <= value <= _MAX_UINT64:
        raise LogFileError(f"{path}: block {block}: timestamp {stamp!r} is not a whole number "
                           "of seconds since 1970 (an integer or a 0x hex string, 0 or more)")
    return value


def _timestamps(records: list[dict[str, Any]], path: Path) -> pa.Table | None:
    seen: dict[int, int] = {}
    for r in records:
        stamp = r.get("blockTimestamp")
        if stamp is None:
            continue
        block = int(r["blockNumber"], 16)  # logs_to_table has checked it
        value = _timestamp(stamp, block, path)
        if seen.setdefault(block, value) != value:
            raise LogFileError(f"{path}: block {block} has two timestamps, {seen[block]} and "
                               f"{value}: the file mixes logs of different chains or forks")
    if not seen:
        return None
    return pa.table({"block_number": pa.array(list(seen), pa.uint64()),
                     "timestamp": pa.array(list(seen.values()), pa.uint64())})


def _refuse_duplicates(table: pa.Table, path: Path) -> None:
    """The same log twice would be decoded twice: refused, as eth_getLogs replies are."""
    if table.num_rows < 2:
        return
    keys = table.select(["block_number", "log_index"]).sort_by(
        [("block_number", "ascending"), ("log_index", "ascending")])
    numbers = keys["block_number"].to_numpy()
    indexes = keys["log_index"].to_numpy()
    duplicate = (numbers[1:] == numbers[:-1]) & (indexes[1:] == indexes[:-1])
    if duplicate.any():
        i = int(np.argmax(duplicate))
        count = int(duplicate.sum())
        raise LogFileError(f"{path}: log {int(indexes[i])} of block {int(numbers[i])} is in the "
                           f"file twice ({count} duplicate (block, log index) pair"
                           f"{'s' if count > 1 else ''} in all); each log must appear once")


def read_log_file(path: Path, chain_id: int | None) -> tuple[pa.Table, pa.Table | None]:
    """(raw_logs, block timestamps or None). JSON carries no chain id: pass it."""
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise LogFileError(f"{path}: not a readable Parquet file ({exc})") from None
        if not table.schema.equals(RAW_LOGS_SCHEMA, check_metadata=False):
            raise LogFileError(f"{path}: Parquet schema is not raw_logs:\n{table.schema}")
        _refuse_duplicates(table, path)
        return table, None
    if chain_id is None:
        raise LogFileError(f"{path}: JSON logs do not say their chain; pass --chain-id "
                           "(or --registry, whose chain id is used)")
    records = _records(path)
    try:
        table = logs_to_table(records, chain_id)
    except ChainReadError as exc:
        raise LogFileError(f"{path}: {exc}") from None
    _refuse_duplicates(table, path)
    return table, _timestamps(records, path)
