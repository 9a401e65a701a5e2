"""State reads at index time (contagion.states): Comet's indexes, rates and principals as the
chain holds them at the end of every block in which a Comet logged, and at each partition's
last block, bound to the block's hash."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from conftest import named_address

from contagion.chain.logs import get_headers
from contagion.chain.multicall import aggregate3_at
from contagion.chain.rpc import RetryPolicy, RpcClient, RpcError
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.indexing import index_range, read_table
from contagion.lake import Lake, PartitionFile
from contagion.protocols import compound_v3
from contagion.protocols.compound_v3 import InterestRates
from contagion.registry import Registry
from contagion.states import STATE_TABLES, comets, read_states

if TYPE_CHECKING:  # pytest imports test folders' modules top-level; mypy sees the package
    from tests.chain.faultproxy import CHAOS, FaultProxy
else:
    from chain.faultproxy import CHAOS, FaultProxy

pytestmark = pytest.mark.devnet

WAD, DAY = 10**18, 86_400
VENUE = "compound_v3_usdc"
RATES = InterestRates.per_year(9 * 10**17, 5 * 10**16, 2 * WAD, 0,
                               9 * 10**17, 6 * 10**16, 3 * WAD, 15 * 10**15)
LENDER, BORROWER = named_address("states/lender"), named_address("states/borrower")
FRIEND = named_address("states/friend")


@dataclass
class Indexed:
    client: RpcClient
    registry: Registry
    lake: Lake


def _activity(driver: DevnetDriver, registry: Registry) -> None:
    """Rates, a supply, a borrow, transferAsset of base into debt, and days of interest."""
    comet = driver.at("Comet", registry.venue(VENUE).main_contract)
    usdc, weth = (driver.at("ERC20", registry.token(s).address) for s in ("USDC", "WETH"))
    ts = int(driver.client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) + 12
    comet.tx(DEPLOYER, "setRates", *RATES)
    usdc.tx(DEPLOYER, "mint", LENDER, 500_000 * 10**6)
    weth.tx(DEPLOYER, "mint", BORROWER, 100 * WAD)
    usdc.tx(LENDER, "approve", comet.address, 2**256 - 1)
    weth.tx(BORROWER, "approve", comet.address, 2**256 - 1)
    comet.tx(LENDER, "supply", usdc.address, 500_000 * 10**6)
    comet.tx(BORROWER, "supply", weth.address, 100 * WAD)
    _, ts = driver.mine_all(ts)
    comet.tx(BORROWER, "withdraw", usdc.address, 100_000 * 10**6)
    _, ts = driver.mine_all(ts + 3 * DAY)
    comet.tx(LENDER, "transferAsset", FRIEND, usdc.address, 1_000 * 10**6)
    comet.tx(BORROWER, "transferAsset", FRIEND, usdc.address, 2_000 * 10**6)  # more debt
    _, ts = driver.mine_all(ts + 5 * DAY)
    for _ in range(12):  # blocks without Comet logs, so a partition ends on a quiet block
        usdc.tx(DEPLOYER, "mint", DEPLOYER, 1)
        _, ts = driver.mine_all(ts + DAY)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexed]:
    from contagion.devnet.deploy import deploy_ecosystem

    data = tmp_path_factory.mktemp("states") / "data"
    info = start_node(data, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        registry = deploy_ecosystem(info.url, data)
        _activity(DevnetDriver(client), registry)
        lake = Lake(str(data / "lake"))
        index_range(client, lake, registry, width=10)
        yield Indexed(client, registry, lake)
    finally:
        client.close()
        stop_node(data)


def _frame(lake: Lake, table: str, chain_id: int) -> pl.DataFrame:
    stored = read_table(lake, table, chain_id)
    assert stored is not None, f"no {table} in the lake"
    frame = pl.from_arrow(stored)
    assert isinstance(frame, pl.DataFrame)
    return frame


def test_states_are_read_where_comet_logged_and_at_partition_ends(indexed: Indexed) -> None:
    chain_id = indexed.registry.chain_id
    states = _frame(indexed.lake, compound_v3.STATES, chain_id)
    assert states["unread_reason"].null_count() == states.height
    comet = indexed.registry.venue(VENUE).main_contract.lower()
    assert set(states["contract_address"]) == set(comets(indexed.registry)) >= {comet}
    logged = _frame(indexed.lake, "raw_logs", chain_id).filter(
        pl.col("address").bin.encode("hex") == comet[2:])["block_number"]
    ends = [p.stop - 1 for p in indexed.lake.partitions("blocks", chain_id)]
    mine = states.filter(pl.col("contract_address") == comet)
    assert sorted(mine["block_number"]) == sorted({*logged, *ends})


def test_states_equal_the_contract_at_each_read_block(indexed: Indexed) -> None:
    driver = DevnetDriver(indexed.client)
    comet = driver.at("Comet", indexed.registry.venue(VENUE).main_contract)
    states = _frame(indexed.lake, compound_v3.STATES, indexed.registry.chain_id).filter(
        pl.col("contract_address") == comet.address.lower())
    moved = 0
    for row in states.iter_rows(named=True):
        block = row["block_number"]
        totals = comet.call("totalsBasic", block=block)
        assert [row["base_supply_index"], row["base_borrow_index"], row["total_supply_base"],
                row["total_borrow_base"], row["last_accrual_time"]] == [
            totals[0], totals[1], totals[4], totals[5], totals[6]]
        rates = [comet.call(g, block=block) for g in compound_v3.RATE_GETTERS]
        assert [row[f] for f in InterestRates._fields] == rates
        moved += totals[1] > compound_v3.BASE_INDEX_SCALE
    assert moved > 0, "interest never moved the borrow index: the test shows nothing"


def test_principals_are_read_for_each_account_a_base_event_names(indexed: Indexed) -> None:
    driver = DevnetDriver(indexed.client)
    comet = driver.at("Comet", indexed.registry.venue(VENUE).main_contract)
    principals = _frame(indexed.lake, compound_v3.PRINCIPALS, indexed.registry.chain_id).filter(
        pl.col("contract_address") == comet.address.lower())
    assert principals["unread_reason"].null_count() == principals.height
    for row in principals.iter_rows(named=True):
        assert row["principal"] == comet.call("userBasic", row["account"],
                                              block=row["block_number"])[0]
    named = set(principals["account"])
    assert {LENDER.lower(), BORROWER.lower(), FRIEND.lower()} <= named
    lent = principals.filter(pl.col("account") == LENDER.lower()).sort("block_number")
    assert 0 < lent["principal"][-1] < lent["principal"][0]  # the supply, then a transfer out
    # transferAsset from a borrowing account logs only the receiver's Transfer (Comet's own
    # gap, docs/canonical.md): the borrower's principal is read at its withdraw alone
    borrowed = principals.filter(pl.col("account") == BORROWER.lower())
    assert borrowed.height == 1 and borrowed["principal"][0] < 0


def test_a_read_names_its_block_by_hash_and_a_dropped_block_fails(indexed: Indexed) -> None:
    multicall = indexed.registry.multicall
    assert multicall is not None
    calls = compound_v3.state_calls(indexed.registry.venue(VENUE).main_contract)
    with pytest.raises(RpcError):
        aggregate3_at(indexed.client, multicall, [("0x" + "ab" * 32, calls)])


def test_faults_on_the_wire_do_not_change_the_state_tables(indexed: Indexed,
                                                           tmp_path: Path) -> None:
    """429s, 5xx, dropped, cut and truncated replies, at random while indexing and scripted
    at a partition's state reads: the same state tables."""
    chain_id = indexed.registry.chain_id
    with FaultProxy(indexed.client.url) as proxy:
        client = RpcClient(proxy.url, timeout=2.0, retry=RetryPolicy(
            max_attempts=20, base_delay=0.001, max_delay=0.01))
        proxy.chaos(0.4, seed=3)
        lake = Lake(str(tmp_path / "lake"))
        index_range(client, lake, indexed.registry, width=10)
        proxy.chaos(0.0, seed=0)
        part = max(indexed.lake.partitions(compound_v3.STATES, chain_id),
                   key=lambda p: indexed.lake.read(compound_v3.PRINCIPALS, p).num_rows)
        decoded = {name: indexed.lake.read(name, part) for name in compound_v3.READ_FROM}
        proxy.push(*CHAOS)
        again = read_states(client, indexed.registry, part, decoded,
                            indexed.lake.read("blocks", part))
        client.close()
    assert sum(proxy.faults.values()) >= len(CHAOS) + 3
    for table in STATE_TABLES:
        stored = indexed.lake.read(table, part)  # Parquet keeps seconds as milliseconds
        assert again[table].cast(stored.schema).equals(stored)
        assert lake.partitions(table, chain_id) == indexed.lake.partitions(table, chain_id)
        for each in lake.partitions(table, chain_id):
            assert lake.read(table, each).equals(indexed.lake.read(table, each)), each


def test_a_partition_before_a_comet_or_the_multicall_existed(indexed: Indexed) -> None:
    """A partition that ends before the Comet was deployed gets no state row (nothing to read,
    no false unread_reason); one before the multicall contract existed is a clear error."""
    client, registry = indexed.client, indexed.registry
    assert registry.multicall is not None
    comet = registry.venue(VENUE).main_contract

    def has_code(address: str, block: int) -> bool:
        return client.call("eth_getCode", [address, hex(block)]) not in ("0x", "")

    early = next(b for b in range(1, 500)
                 if has_code(registry.multicall, b) and not has_code(comet, b))
    for block, error in ((early, None), (0, r"no multicall contract .* at block .* \(or the "
                                            r"endpoint answers 0x for state it has pruned")):
        part = PartitionFile(registry.chain_id, block, block + 1)
        headers = get_headers(client, [block], registry.chain_id)
        if error is None:
            tables = read_states(client, registry, part, {}, headers)
            assert all(t.num_rows == 0 for t in tables.values())
        else:
            with pytest.raises(ValueError, match=error):
                read_states(client, registry, part, {}, headers)


def test_the_reconcile_check_names_a_principal_no_event_showed(indexed: Indexed,
                                                              tmp_path: Path) -> None:
    """The borrower's transferAsset deepened its debt without an event naming it, so its read
    principal is stale: Σ of the read debt principals falls short of totalBorrowBase by exactly
    what the chain says it owes beyond the read, and the warn check names the Comet. Supply adds
    up (the receiver's Transfer named it)."""
    from contagion.warehouse import build_database, connect_readonly, load_checks, run_checks

    db = tmp_path / "contagion.duckdb"
    build_database(db, indexed.lake, indexed.registry)
    check = [c for c in load_checks() if c.name == "compound_principals_reconcile"]
    with connect_readonly(db) as con:
        (result,) = run_checks(con, check)
    assert result.check.severity == "warn" and result.failing_rows == 1
    (row,) = result.sample
    comet = DevnetDriver(indexed.client).at("Comet", indexed.registry.venue(VENUE).main_contract)
    block = int(str(row["state_block"]))
    read = _frame(indexed.lake, compound_v3.PRINCIPALS, indexed.registry.chain_id).filter(
        (pl.col("account") == BORROWER.lower()) & (pl.col("block_number") <= block))
    stale = read.sort("block_number")["principal"][-1]
    now = comet.call("userBasic", BORROWER, block=block)[0]
    assert now < stale < 0
    assert (row["venue"], row["reason"]) == (VENUE, "the principals read do not add up to "
                                                    "the totals")
    assert row["supply_principals"] == row["total_supply_base"]
    assert int(str(row["total_borrow_base"])) - int(str(row["borrow_principals"])) == stale - now


def test_a_lake_indexed_before_the_state_reads_gets_them_on_the_next_run(
        indexed: Indexed, tmp_path: Path) -> None:
    """A partition without its state files is not complete: the next `contagion index` run
    reads them, and the lake equals one indexed with them from the start."""
    chain_id = indexed.registry.chain_id
    old = tmp_path / "lake"
    shutil.copytree(indexed.lake.root, old)
    for table in STATE_TABLES:
        shutil.rmtree(old / table)
    lake = Lake(str(old))
    summary = index_range(indexed.client, lake, indexed.registry, width=10)
    assert summary.skipped == 0 and summary.windows
    for table in STATE_TABLES:
        assert lake.partitions(table, chain_id) == indexed.lake.partitions(table, chain_id)
        for part in lake.partitions(table, chain_id):
            assert lake.read(table, part).equals(indexed.lake.read(table, part)), part
