"""Compile the devnet's Vyper contracts from source, caching artifacts by content hash.

The cache key covers the compiler version and every source in the contracts folder (contracts
may import shared interfaces), so an edit anywhere recompiles and nothing stale is deployed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["CONTRACTS_DIR", "CompiledContract", "compile_contract"]

CONTRACTS_DIR = Path(__file__).parent / "contracts"


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code


def _cache_dir() -> Path:
    root = os.environ.get("CONTAGION_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "contagion")
    return Path(root) / "vyper"


@cache
def _sources_digest() -> str:
    import vyper

    digest = hashlib.sha256(vyper.__version__.encode())
    for path in sorted(CONTRACTS_DIR.glob("*.vy*")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


@cache
def compile_contract(name: str) -> CompiledContract:
    """Compile contracts/<name>.vy (or load it from the cache)."""
    source_path = CONTRACTS_DIR / f"{name}.vy"
    if not source_path.exists():
        raise FileNotFoundError(f"no contract source {source_path}")
    cached = _cache_dir() / f"{name}-{_sources_digest()}.json"
    if cached.exists():
        data = json.loads(cached.read_text())
        return CompiledContract(name, data["abi"], data["bytecode"])
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    out = vyper.compile_from_file_input(
        FilesystemInputBundle([CONTRACTS_DIR]).load_file(source_path),
        output_formats=["abi", "bytecode"],
        input_bundle=FilesystemInputBundle([CONTRACTS_DIR]),
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"abi": out["abi"], "bytecode": out["bytecode"]}))
    tmp.replace(cached)
    return CompiledContract(name, out["abi"], out["bytecode"])
