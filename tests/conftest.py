"""Shared fixtures. A devnet node is a real anvil process, started and stopped per test (or per
module) and tied to this process, so a crashed run leaves no node behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contagion.chain.rpc import RpcClient
from contagion.devnet.base import BaseWorld, deploy_base
from contagion.devnet.driver import Contract, DevnetDriver
from contagion.devnet.node import GENESIS_TIMESTAMP, free_port, start_node, stop_node
from contagion.indexing import index_range, read_table
from contagion.lake import Lake
from contagion.registry import Registry
from contagion.warehouse import build_database, connect_readonly

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
# anvil's well-known default-mnemonic account #1: a public devnet test key, never a real one
FEED_TEST_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


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


# -- a devnet crisis, indexed and built into the analysts' database (shared by the SQL tests)

SCENARIO = """
name: warehouse
seed: 11
blocks: 30
accounts:
  loopers: {count: 4}
  borrowers: {count: 6, collateral: [WETH, aWETH, stETH]}
  basis_traders: {count: 3, capital_usd: [10000, 30000]}
  option_writers: {count: 3, collateral: [WETH, USDC]}
  option_buyers: {count: 2}
  liquidity_providers: {count: 2}
  liquidators: {count: 1}
  arbitrageurs: {count: 1}
prices:
  ETH: {gbm: {start: 2000, vol: 0.8}}
  BTC: {gbm: {start: 30000, vol: 0.5}}
  USDC: {gbm: {start: 1.0}}
shocks:
  - {type: price_drop, asset: ETH, pct: 50, start_block: 10, blocks: 4}
activity: 0.3
"""


@dataclass
class World:
    client: RpcClient
    registry: Registry
    lake: Lake
    db: Path
    data: Path
    head: int

    def snapshots(self) -> list[int]:
        return [b for (b,) in self.sql("select snapshot_block from ref_snapshots order by 1")]

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with connect_readonly(self.db) as con:
            return con.execute(query, params or []).fetchall()


class Views:
    """Calls contracts' views at one block (with state overrides, e.g. feeds, when given)."""

    def __init__(self, client: RpcClient, block: int,
                 overrides: dict[str, Any] | None = None) -> None:
        self.client, self.block, self.overrides = client, block, overrides or {}

    def __call__(self, contract: Contract, fn: str, *args: Any) -> Any:
        raw = self.client.call("eth_call", [{"to": contract.address,
                                             "data": contract.data(fn, *args)},
                                            hex(self.block), self.overrides])
        out = contract.abi.decode_result(fn, len(args), raw)
        return out[0] if len(out) == 1 else out


def named_address(name: str) -> str:
    """A test account's address, the same in every run: keccak("contagion/tests/" + name)."""
    from eth_utils import keccak, to_checksum_address

    return to_checksum_address(keccak(text=f"contagion/tests/{name}")[12:])


def _calls(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every call of a callTracer trace, depth first, in execution order."""
    for child in node.get("calls") or []:
        yield child
        yield from _calls(child)


def trace_calls(client: RpcClient, tx: str) -> list[dict[str, Any]]:
    """The calls a transaction made (anvil's callTracer), depth first, in execution order."""
    return list(_calls(client.call("debug_traceTransaction", [tx, {"tracer": "callTracer"}])))


def aave_health_from_trace(world: World, row: dict[str, Any]) -> int:
    """The health factor a devnet liquidationCall computed (WAD), from what its first account
    pass read: for each listed reserve in order, the aToken's scaled balance (read only when it
    counts as collateral), the debt token's, the price (read only when either is not zero) and,
    for collateral, the RiskOracle's margin cut. The scaled balances are worth their indexes
    brought forward to the liquidation block's time from the state stored before the block: an
    earlier transaction of the same block stores those same indexes (no time passes between)."""
    from eth_abi import decode as abi_decode

    from contagion.protocols.aave_v3 import normalized_income, normalized_variable_debt, ray_mul

    wad = 10**18
    driver = DevnetDriver(world.client)
    pool = driver.at("AavePool", world.registry.venue("aave_v3").contracts["pool"])
    block = int(row["block_number"]) - 1
    now = int(world.client.call("eth_getBlockByNumber", [hex(block + 1), False])["timestamp"], 16)
    # after a reserve's price the pool asks the RiskOracle for its margin cut (collateral only)
    oracle = (world.registry.risk_oracle or "").lower()
    calls = iter(trace_calls(world.client, row["transaction_hash"]))
    collateral = weighted = debt = 0
    for reserve in pool.call("getReservesList", block=block):
        a_token, debt_token, feed, unit, _, threshold, _, _ = pool.call("reserves", reserve,
                                                                        block=block)
        income_index, income_rate, debt_index, debt_rate, updated, *_ = (
            int(x) for x in pool.call("reserveState", reserve, block=block))
        call, held = next(calls), 0
        if call["to"].lower() == a_token.lower():
            held = ray_mul(int(call["output"], 16),
                           normalized_income(income_index, income_rate, now - updated))
            call = next(calls)
        assert call["to"].lower() == debt_token.lower()
        owed = ray_mul(int(call["output"], 16),
                       normalized_variable_debt(debt_index, debt_rate, now - updated))
        if held or owed:
            call = next(calls)
            assert call["to"].lower() == feed.lower()
            price = abi_decode(["uint80", "int256", "uint256", "uint256", "uint80"],
                               bytes.fromhex(call["output"][2:]))[1]
            worth, cut = held * price // unit, 0
            if held and oracle:
                call = next(calls)
                assert call["to"].lower() == oracle
                cut = int(call["output"], 16)
            collateral = collateral + worth
            weighted += worth * (threshold - min(cut, threshold))
            debt += owed * price // unit
    average = weighted // collateral
    return ((collateral * average + 5_000) // 10_000 * wad + debt // 2) // debt


@contextmanager
def scenario_world(data: Path, scenario: str, *,
                   after_scenario: Callable[[DevnetDriver, Registry], None] | None = None,
                   extra_snapshots: Sequence[int] = (),
                   snapshot_every_header: bool = False) -> Iterator[World]:
    """A fresh devnet in `data` with the ecosystem deployed and `scenario` (YAML text) played,
    then `after_scenario` (more transactions), indexed in 10-block partitions and built; with
    `snapshot_every_header`, a snapshot at every block the lake has a header of (each step's
    state, not only the partitions' ends)."""
    from contagion.devnet.deploy import deploy_ecosystem
    from contagion.devnet.runner import run_scenario
    from contagion.devnet.scenario import load_scenario

    info = start_node(data, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        registry = deploy_ecosystem(info.url, data)
        scenario_file = data / "scenario.yaml"
        scenario_file.write_text(scenario)
        spec, path = load_scenario(scenario_file)
        run_scenario(spec, path, info.url, data)
        if after_scenario is not None:
            after_scenario(DevnetDriver(client), registry)
        lake = Lake(str(data / "lake"))
        summary = index_range(client, lake, registry, width=10)
        if snapshot_every_header and (headers := read_table(lake, "blocks",
                                                            registry.chain_id)) is not None:
            extra_snapshots = [*extra_snapshots, *set(headers["block_number"].to_pylist())]
        db = data / "contagion.duckdb"
        build_database(db, lake, registry, extra_snapshots=extra_snapshots)
        yield World(client, registry, lake, db, data, summary.last_block)
    finally:
        client.close()
        stop_node(data)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # and a snapshot before anything happened
    with scenario_world(tmp_path_factory.mktemp("warehouse") / "data", SCENARIO,
                        extra_snapshots=[0]) as built:
        yield built


def mine_receipts(driver: DevnetDriver, ts: int) -> tuple[list[dict[str, Any]], int]:
    """Mine the queue like `mine_all`, 12 s on, but hand back the receipts (all must succeed)."""
    hashes = driver.flush()
    ts += 12
    driver.mine(ts)
    receipts = driver.receipts(hashes)
    assert all(r is not None and r["status"] == "0x1" for r in receipts), receipts
    return receipts, ts


def contract_events(receipts: list[dict[str, Any]], contract: str, events: Sequence[Any]
                    ) -> list[tuple[Any, ...]]:
    """A contract's logs in the receipts, decoded by its protocol's event specs (`EVENTS`):
    (name, *indexed addresses, *uint data words)."""
    by_topic = {s.topic0: s for s in events}
    out: list[tuple[Any, ...]] = []
    for receipt in receipts:
        for log in receipt["logs"]:
            if log["address"].lower() != contract.lower():
                continue
            s = by_topic[log["topics"][0]]
            topics = iter(log["topics"][1:])
            data = bytes.fromhex(log["data"][2:])
            words = iter(int.from_bytes(data[i:i + 32], "big") for i in range(0, len(data), 32))
            out.append((s.name, *("0x" + next(topics)[-40:] if p.indexed else next(words)
                                  for p in s.params)))
    return out
