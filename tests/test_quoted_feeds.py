"""A price feed quoted in another token (Chainlink's STETH / ETH), read from a devnet node end
to end: the lake keeps its answers in the quote, and the warehouse values the token at the
answer times the quote token's USD price as of the snapshot, exactly."""

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
from contagion.registry import USD, Feed, Registry, Token
from contagion.warehouse import build_database

pytestmark = pytest.mark.devnet

WAD = 10**18


def test_steth_is_priced_by_steth_eth_times_eth_usd(tmp_path: Path) -> None:
    data = tmp_path / "node"
    info = start_node(data, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        driver = DevnetDriver(client)
        ts = int(client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        eth_usd = driver.deploy("ChainlinkAggregator", 8, "ETH / USD", 2000 * 10**8)
        steth_eth = driver.deploy("ChainlinkAggregator", 18, "STETH / ETH", WAD)
        _, ts = driver.mine_all(ts + 12)
        steth_eth.tx(DEPLOYER, "transmit", 993_400_000_000_000_001)  # a discount, to the wei
        _, ts = driver.mine_all(ts + 12)
        eth_usd.tx(DEPLOYER, "transmit", 1_987_654_321_00)
        _, ts = driver.mine_all(ts + 12)
        for _ in range(2):
            _, ts = driver.mine_all(ts + 12)
        weth, steth = named_address("quoted/weth"), named_address("quoted/steth")
        registry = Registry(
            network="quoted", chain_id=info.chain_id, deployed_at_block=0,
            tokens=[Token(symbol="WETH", address=weth, decimals=18),
                    Token(symbol="stETH", address=steth, decimals=18, kind="lst")],
            feeds=[Feed(id="ETH/USD", address=eth_usd.address, decimals=8, base="WETH"),
                   Feed(id="STETH/ETH", address=steth_eth.address, decimals=18,
                        base="stETH", quote="WETH")],
            venues=[])
        lake = Lake(str(tmp_path / "lake"))
        index_range(client, lake, registry, width=4)
        last = int(client.call("eth_blockNumber", []), 16)
    finally:
        client.close()
        stop_node(data)

    prices = read_table(lake, "prices", registry.chain_id)
    assert prices is not None
    rows = {(r["source"], int(r["answer_raw"])): r for r in prices.to_pylist()}
    in_eth = rows["STETH/ETH", 993_400_000_000_000_001]
    assert in_eth["quote"] == weth.lower() and in_eth["price_usd"] is None
    assert in_eth["price"] == pytest.approx(0.9934)
    in_usd = rows["ETH/USD", 1_987_654_321_00]
    assert in_usd["quote"] == USD and in_usd["price_usd"] == in_usd["price"] == 1987.654321

    db = tmp_path / "contagion.duckdb"
    build_database(db, lake, registry, snapshots=[last])
    with duckdb.connect(str(db), read_only=True) as con:
        got = dict(con.execute(
            "select token, (feed_id, price_usd, answer_raw, answer_decimals) "
            "from int_oracle_prices where snapshot_block = ?", [last]).fetchall())
    feed_id, price_usd, answer, decimals = got[steth.lower()]
    assert feed_id == "STETH/ETH × ETH/USD"
    exact = Fraction(993_400_000_000_000_001 * 1_987_654_321_00, 10**26)
    assert Fraction(int(answer), 10**decimals) == exact
    assert price_usd == pytest.approx(float(exact), rel=1e-15)
