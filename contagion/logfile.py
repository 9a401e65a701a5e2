"""Raw logs from a file: what `contagion decode` reads.

Accepted shapes:
- JSON-RPC `eth_getLogs` JSON: an array of log objects, or a whole reply `{"result": [...]}`;
- JSON lines in ethereum-etl's export shape (`block_number`, `log_index`, …, integers);
- Parquet in the `raw_logs` schema (the lake's own files).
Block timestamps, when the file carries them (`blockTimestamp`, `block_timestamp`), come back as
a small (block_number, timestamp) table so decoded rows get their `block_time`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from contagion.chain.logs import MalformedReply, logs_to_table
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
    text = path.read_text()
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
    return [_as_rpc(r) for r in records]


def _timestamps(records: list[dict[str, Any]]) -> pa.Table | None:
    seen: dict[int, int] = {}
    for r in records:
        stamp = r.get("blockTimestamp")
        if stamp is not None:
            seen[int(r["blockNumber"], 16)] = int(stamp, 16) if isinstance(stamp, str) else stamp
    if not seen:
        return None
    return pa.table({"block_number": pa.array(list(seen), pa.uint64()),
                     "timestamp": pa.array(list(seen.values()), pa.uint64())})


def read_log_file(path: Path, chain_id: int | None) -> tuple[pa.Table, pa.Table | None]:
    """(raw_logs, block timestamps or None). JSON carries no chain id: pass it."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        if not table.schema.equals(RAW_LOGS_SCHEMA, check_metadata=False):
            raise LogFileError(f"{path}: Parquet schema is not raw_logs:\n{table.schema}")
        return table, None
    if chain_id is None:
        raise LogFileError(f"{path}: JSON logs do not say their chain; pass --chain-id "
                           "(or --registry, whose chain id is used)")
    records = _records(path)
    try:
        return logs_to_table(records, chain_id), _timestamps(records)
    except MalformedReply as exc:
        raise LogFileError(f"{path}: {exc}") from None
