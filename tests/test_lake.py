"""Lake writes: an empty table is written from cached bytes, identical to pyarrow's own."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
