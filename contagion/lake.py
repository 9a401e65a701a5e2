"""The Parquet lake: table schemas, partition paths and atomic writes.

Every table is declared here once and imported wherever it is read or written. The lake root is
a path or a URL (`file:///…`, `s3://…`): all I/O goes through `pyarrow.fs`, so the same code
writes a local folder here and an object store in production.

Layout: `<root>/<table>/chain_id=<id>/<start:012d>-<stop:012d>.parquet`, one file per chain and
half-open block range [start, stop). A file appears only complete: it is written under a
temporary name in the same folder and renamed into place (a rename is atomic on a local file
system; an object store's put is atomic by itself).

Column representation (docs/lake.md says the same for readers):
- `raw_logs` and `blocks` follow cryo: hashes and addresses are fixed-size binary.
- Decoded and canonical tables hold addresses and hashes as lowercase `0x` hex text, one form
  everywhere, so an analyst can write `where account = '0xabc…'`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = [
    "BLOCKS_SCHEMA",
    "QUARANTINE_SCHEMA",
    "RAW_LOGS_SCHEMA",
    "Lake",
    "PartitionFile",
    "write_parquet",
]

HASH = pa.binary(32)
ADDRESS = pa.binary(20)

RAW_LOGS_SCHEMA = pa.schema([
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_hash", HASH, nullable=False),
    pa.field("transaction_hash", HASH, nullable=False),
    pa.field("transaction_index", pa.uint32(), nullable=False),
    pa.field("log_index", pa.uint32(), nullable=False),
    pa.field("address", ADDRESS, nullable=False),
    pa.field("topic0", HASH),
    pa.field("topic1", HASH),
    pa.field("topic2", HASH),
    pa.field("topic3", HASH),
    pa.field("data", pa.binary(), nullable=False),
])

BLOCKS_SCHEMA = pa.schema([
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_hash", HASH, nullable=False),
    pa.field("parent_hash", HASH, nullable=False),
    pa.field("timestamp", pa.uint64(), nullable=False),
])

# A log the decoder could not turn into a row, with the reason and the raw log kept whole.
QUARANTINE_SCHEMA = pa.schema([
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("transaction_hash", pa.string(), nullable=False),
    pa.field("log_index", pa.uint32(), nullable=False),
    pa.field("contract_address", pa.string(), nullable=False),
    pa.field("topic0", pa.string()),
    pa.field("event", pa.string()),  # the spec it was meant for, when topic0 is known
    pa.field("reason", pa.string(), nullable=False),
    pa.field("topic1", pa.string()),
    pa.field("topic2", pa.string()),
    pa.field("topic3", pa.string()),
    pa.field("data", pa.string(), nullable=False),
])


def write_parquet(data: pa.Table, path: str, fs: pafs.FileSystem | None = None,
                  metadata: dict[str, str] | None = None) -> None:
    """Write a Parquet file so that it appears complete or not at all: a temporary name in the
    same folder, then a rename (a crash leaves only a hidden `.…tmp` that readers skip)."""
    fs = fs or pafs.LocalFileSystem()
    folder, name = path.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    if metadata:
        merged = {**(data.schema.metadata or {}),
                  **{k.encode(): v.encode() for k, v in metadata.items()}}
        data = data.replace_schema_metadata(merged)
    try:
        with fs.open_output_stream(tmp) as sink:
            if data.num_rows:
                pq.write_table(data, sink, compression="zstd")
            else:  # most tables of most partitions: the same bytes every time
                sink.write(_empty_parquet(data.schema))
        fs.move(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise


@functools.lru_cache(maxsize=256)
def _empty_parquet(schema: pa.Schema) -> bytes:
    """The Parquet file of a table without rows (its schema, metadata included)."""
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink, compression="zstd")
    return bytes(sink.getvalue())


@dataclass(frozen=True, order=True)
class PartitionFile:
    """One file of a table: a chain and the half-open block range [start, stop) it covers."""

    chain_id: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.start:012d}-{self.stop:012d}.parquet"

    @classmethod
    def parse(cls, chain_id: int, name: str) -> PartitionFile | None:
        stem = name.removesuffix(".parquet")
        parts = stem.split("-")
        if not name.endswith(".parquet") or len(parts) != 2 or not all(p.isdigit() for p in parts):
            return None  # temporary files and strangers are not partitions
        return cls(chain_id, int(parts[0]), int(parts[1]))


def _footer_metadata(path: str, fs: pafs.FileSystem) -> dict[str, str]:
    meta = pq.read_schema(path, filesystem=fs).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"ARROW")}


@functools.lru_cache(maxsize=1 << 16)
def _local_metadata(path: str, inode: int, size: int, mtime_ns: int
                    ) -> tuple[tuple[str, str], ...]:
    return tuple(_footer_metadata(path, pafs.LocalFileSystem()).items())


class Lake:
    """A lake root (path or URL) and the tables under it."""

    def __init__(self, root: str | Path) -> None:
        root_text = str(root)
        if "://" in root_text:
            self.fs, base = pafs.FileSystem.from_uri(root_text)
        else:
            self.fs, base = pafs.LocalFileSystem(), str(Path(root_text).absolute())
        self.root = base.rstrip("/")

    def folder(self, table: str, chain_id: int) -> str:
        return f"{self.root}/{table}/chain_id={chain_id}"

    def path(self, table: str, part: PartitionFile) -> str:
        return f"{self.folder(table, part.chain_id)}/{part.name}"

    def partitions(self, table: str, chain_id: int) -> list[PartitionFile]:
        """The complete files of a table, in block order."""
        folder = self.folder(table, chain_id)
        if isinstance(self.fs, pafs.LocalFileSystem):  # names only: no stat per file
            try:
                with os.scandir(folder) as entries:
                    names = [e.name for e in entries if e.is_file()]
            except (FileNotFoundError, NotADirectoryError):
                names = []
        else:
            selector = pafs.FileSelector(folder, allow_not_found=True)
            names = [info.base_name for info in self.fs.get_file_info(selector) if info.is_file]
        found = (PartitionFile.parse(chain_id, name) for name in names)
        # one chain: (start, stop) orders them, and tuples compare faster than the dataclass
        return sorted((p for p in found if p is not None), key=lambda p: (p.start, p.stop))

    def write(self, table: str, part: PartitionFile, data: pa.Table,
              metadata: dict[str, str] | None = None) -> str:
        """Write one partition file atomically; an existing file for the range is replaced."""
        final = self.path(table, part)
        write_parquet(data, final, self.fs, metadata)
        return final

    def delete(self, table: str, part: PartitionFile) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(table, part))

    def read(self, table: str, part: PartitionFile, columns: list[str] | None = None
             ) -> pa.Table:
        return pq.read_table(self.path(table, part), columns=columns, filesystem=self.fs)

    def metadata(self, table: str, part: PartitionFile) -> dict[str, str]:
        """A partition file's key-value metadata (its footer). On a local disk each version of
        a file (inode, size, modification time: a rewrite is a new file renamed into place) is
        read once per process, so the long-lived sensor's reorg check re-reads only what
        changed."""
        path = self.path(table, part)
        if isinstance(self.fs, pafs.LocalFileSystem):
            st = os.stat(path)
            return dict(_local_metadata(path, st.st_ino, st.st_size, st.st_mtime_ns))
        return _footer_metadata(path, self.fs)

    def read_range(self, table: str, chain_id: int, start: int, stop: int) -> pa.Table | None:
        """All rows of the files that overlap [start, stop), clipped to it; None if no file."""
        tables = []
        for part in self.partitions(table, chain_id):
            if part.stop <= start or part.start >= stop:
                continue
            tables.append(self.read(table, part))
        if not tables:
            return None
        whole = pa.concat_tables(tables)
        keep = pc.and_(pc.greater_equal(whole["block_number"], pa.scalar(start, pa.uint64())),
                       pc.less(whole["block_number"], pa.scalar(stop, pa.uint64())))
        return whole.filter(keep)
