"""Shared fixtures. A devnet node is a real anvil process, started and stopped per test (or per
module) and tied to this process, so a crashed run leaves no node behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contagion.chain.rpc import RpcClient
from contagion.devnet.base import BaseWorld, deploy_base
from contagion.devnet.driver import DevnetDriver
from contagion.devnet.node import GENESIS_TIMESTAMP, free_port, start_node, stop_node

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture
def real_data() -> Path:
    if not SHARED_REAL.is_dir():
        pytest.skip(f"real mainnet data not found at {SHARED_REAL} (shared/ sits beside the repo)")
    return SHARED_REAL


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[DevnetDriver]:
    """A fresh anvil node with nothing deployed; the driver sends and mines."""
    info = start_node(tmp_path / "node", free_port(), attached=True)
    client = RpcClient(info.url)
    client.call("evm_setAutomine", [False])
    try:
        yield DevnetDriver(client)
    finally:
        client.close()
        stop_node(tmp_path / "node")


@pytest.fixture
def base(devnet: DevnetDriver) -> tuple[DevnetDriver, BaseWorld, int]:
    """Tokens, feeds, AMM pairs and multicall deployed; returns (driver, world, timestamp)."""
    world, timestamp = deploy_base(devnet, GENESIS_TIMESTAMP + 12)
    return devnet, world, timestamp
