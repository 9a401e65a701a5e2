"""Lake writes: an empty table is written from cached bytes, identical to pyarrow's own."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from contagion.lake import QUARANTINE_SCHEMA, RAW_LOGS_SCHEMA, Lake, PartitionFile


def test_an_empty_partition_file_is_the_file_pyarrow_writes(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    part = PartitionFile(1, 0, 10)
    for schema, metadata in ((RAW_LOGS_SCHEMA, None), (QUARANTINE_SCHEMA, {"input_rows": "0"}),
                             (QUARANTINE_SCHEMA, {"input_rows": "7"})):
        path = Path(lake.write("t", part, schema.empty_table(), metadata))
        table = schema.empty_table()
        if metadata:
            table = table.replace_schema_metadata({k.encode(): v.encode()
                                                   for k, v in metadata.items()})
        pq.write_table(table, tmp_path / "direct.parquet", compression="zstd")
        assert path.read_bytes() == (tmp_path / "direct.parquet").read_bytes()
        assert lake.read("t", part).schema.equals(schema)
        assert lake.metadata("t", part) == (metadata or {})
    full = pa.table({"x": [1, 2]})
    lake.write("u", part, full)
    assert lake.read("u", part).equals(full)


def test_listing_a_local_folder_finds_what_pyarrows_listing_finds(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for start in (30, 0, 10, 100):
        lake.write("t", PartitionFile(1, start, start + 10), pa.table({"x": [start]}))
    folder = Path(lake.folder("t", 1))
    (folder / ".000000000040-000000000050.parquet.123.tmp").write_bytes(b"half")
    (folder / "notes.txt").write_text("a stranger")
    (folder / "000000000200-000000000210.parquet").mkdir()  # a folder, not a file
    generic = Lake(tmp_path / "lake")
    generic.fs = pafs.SubTreeFileSystem("", pafs.LocalFileSystem())  # not local: pyarrow lists
    expected = [PartitionFile(1, s, s + 10) for s in (0, 10, 30, 100)]
    assert lake.partitions("t", 1) == generic.partitions("t", 1) == expected
    assert lake.partitions("missing", 1) == generic.partitions("missing", 1) == []


def test_a_local_footer_is_read_once_per_version_of_the_file(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Asking twice for an unchanged file's metadata reads its footer once; a rewrite (a new
    file renamed into place) is read again, and a deleted file is an error, as pyarrow's."""
    import contagion.lake as lake_module

    reads: list[str] = []
    read_schema = pq.read_schema

    def counting(path: str, **kwargs: object) -> pa.Schema:
        reads.append(path)
        return read_schema(path, **kwargs)

    monkeypatch.setattr(lake_module.pq, "read_schema", counting)
    lake = Lake(tmp_path)
    part = PartitionFile(1, 0, 10)
    lake.write("blocks", part, RAW_LOGS_SCHEMA.empty_table(), {"last_block_hash": "0xaa"})
    assert lake.metadata("blocks", part) == {"last_block_hash": "0xaa"}
    assert lake.metadata("blocks", part) == {"last_block_hash": "0xaa"}
    assert len(reads) == 1
    lake.write("blocks", part, RAW_LOGS_SCHEMA.empty_table(), {"last_block_hash": "0xbb"})
    assert lake.metadata("blocks", part) == {"last_block_hash": "0xbb"}
    assert len(reads) == 2
    lake.metadata("blocks", part)["last_block_hash"] = "changed by a caller"
    assert lake.metadata("blocks", part) == {"last_block_hash": "0xbb"}
    lake.delete("blocks", part)
    with pytest.raises(FileNotFoundError):
        lake.metadata("blocks", part)
