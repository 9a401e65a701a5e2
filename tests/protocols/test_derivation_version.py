"""The code that turns raw logs into the lake's rows is pinned to DERIVATION_VERSION.

A stored partition is derived again only when its `derived_for` digest changes, and a change
to the mapping code that keeps every schema does not change it by itself. So the files of
`DERIVATION_CODE` are pinned here: any edit fails this test until someone decides whether old
partitions' rows could now come out different (then DERIVATION_VERSION goes up, and every lake
derives its partitions again from their raw logs) or not (a refactor, a comment: only the pin
moves)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from contagion import indexing
from contagion.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]

PINNED_VERSION = 1
PINNED_CODE = "b9565a53d1c93dc23c79d604f927130ace7763390ea2305fe6c1c9e4a0488164"


def code_digest() -> str:
    files = sorted({f for pattern in indexing.DERIVATION_CODE for f in ROOT.glob(pattern)})
    assert files, f"no file matches {indexing.DERIVATION_CODE} under {ROOT}"
    digest = hashlib.sha256()
    for f in files:
        text = f.read_bytes().replace(b"\r\n", b"\n")  # a Windows checkout is the same code
        digest.update(f"{f.relative_to(ROOT).as_posix()}\n{len(text)}\n".encode() + text)
    return digest.hexdigest()


def test_the_derivation_code_is_pinned_to_its_version() -> None:
    now = code_digest()
    assert (indexing.DERIVATION_VERSION, now) == (PINNED_VERSION, PINNED_CODE), (
        f"The code that turns logs into rows ({', '.join(indexing.DERIVATION_CODE)}) is not "
        "the code pinned to DERIVATION_VERSION. If a partition stored by the old code could "
        "now get other rows, raise DERIVATION_VERSION in contagion/indexing.py (every lake "
        "then derives its partitions again) and set PINNED_VERSION to it; either way set "
        f"PINNED_CODE in {Path(__file__).name} to {now!r}.")


def test_the_version_is_part_of_the_derivation_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = load_registry("ethereum")
    before = indexing.derived_for(registry)
    monkeypatch.setattr(indexing, "DERIVATION_VERSION", indexing.DERIVATION_VERSION + 1)
    assert indexing.derived_for(registry) != before
