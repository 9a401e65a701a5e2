"""wstETH priced by Lido's share rate, read from a devnet node end to end: a contract with
stETH's share accounting logs its oracle reports as Lido v2 and v3 do; the lake's prices are
the rate `getPooledEthByShares(10**18)` reads after each report, to the wei, and the
warehouse values wstETH at that rate times STETH / USD."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
from conftest import named_address

from contagion.chain.rpc import RpcClient
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.indexing import index_range, read_table
from contagion.lake import Lake
from contagion.registry import Feed, Registry, Token
from contagion.warehouse import build_database

pytestmark = pytest.mark.devnet

E18 = 10**18
CONTRACT = Path(__file__).parent / "contracts" / "StEthReports.vy"


def test_wsteth_is_priced_by_the_share_rate_of_each_report(tmp_path: Path) -> None:
    data = tmp_path / "node"
    info = start_node(data, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        client.call("evm_setAutomine", [False])  # each report in the block mine_all names
        driver = DevnetDriver(client)
        ts = int(client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        # mainnet's scale: ~9.4M ether over ~7.9M shares
        steth = driver.deploy_file(CONTRACT, 7_912_345 * E18 + 11, 9_412_345 * E18 + 7,
                                   label="stETH", gas=3_000_000)
        multicall = driver.deploy("Multicall")  # so resolve_feeds runs, and must skip stETH
        steth_usd = driver.deploy("ChainlinkAggregator", 8, "STETH / USD", 3_000 * 10**8)
        _, ts = driver.mine_all(ts + 12)
        reports = []
        steth.tx(DEPLOYER, "report", 9_413_001 * E18 + 123_456_789, 17 * E18 + 5, False)  # v2
        reports.append(driver.mine_all(ts + 12)[0])
        steth.tx(DEPLOYER, "submit", 32 * E18 + 1)
        steth.tx(DEPLOYER, "mint_external_shares", 250_000 * E18 + 3)  # a vault mints
        _, ts = driver.mine_all(ts + 24)
        steth.tx(DEPLOYER, "report", 9_414_002 * E18 + 987_654_321, 9 * E18, True)  # v3
        block, ts = driver.mine_all(ts + 12)
        reports.append(block)
        steth_usd.tx(DEPLOYER, "transmit", 2_987_654_321_00)
        _, ts = driver.mine_all(ts + 12)
        rates = [steth.call("getPooledEthByShares", E18, block=b) for b in reports]
        last = driver.mine_all(ts + 12)[0]
        wsteth = named_address("lido/wsteth")
        registry = Registry(
            network="lido", chain_id=info.chain_id, deployed_at_block=0,
            tokens=[Token(symbol="stETH", address=steth.address, decimals=18, kind="lst"),
                    Token(symbol="wstETH", address=wsteth, decimals=18, kind="lst",
                          underlying="stETH")],
            feeds=[Feed(id="STETH/USD", address=steth_usd.address, decimals=8, base="stETH"),
                   Feed(id="RATE", address=steth.address, decimals=18, protocol="lido",
                        base="wstETH", quote="stETH")],
            venues=[], multicall=multicall.address)
        lake = Lake(str(tmp_path / "lake"))
        index_range(client, lake, registry, width=4)
    finally:
        client.close()
        stop_node(data)

    prices = read_table(lake, "prices", registry.chain_id)
    assert prices is not None
    got = [(r["block_number"], int(r["answer_raw"]), r["quote"])
           for r in prices.to_pylist() if r["source"] == "RATE"]
    assert got == [(b, rate, steth.address.lower()) for b, rate in zip(reports, rates,
                                                                       strict=True)]
    assert rates[0] != rates[1]

    db = tmp_path / "contagion.duckdb"
    build_database(db, lake, registry, snapshots=[last])
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "select feed_id, answer_raw, answer_decimals from int_oracle_prices "
            "where snapshot_block = ? and token = ?", [last, wsteth.lower()]).fetchone()
    assert row is not None
    feed_id, answer, decimals = row
    assert feed_id == "RATE × STETH/USD"
    assert Fraction(int(answer), 10**decimals) == Fraction(rates[1] * 2_987_654_321_00, 10**26)
