"""Feeds behind proxies (contagion.protocols.chainlink.resolve_feeds): registries list a
Chainlink feed's EACAggregatorProxy, which logs nothing; the aggregators of its phases log the
answers, and only while the proxy serves them do they count as the feed's prices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from conftest import named_address

from contagion.chain.rpc import RpcClient
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.indexing import index_range, read_table
from contagion.lake import Lake
from contagion.protocols.canonical import canonical_tables
from contagion.protocols.chainlink import resolve_feeds
from contagion.protocols.decode import decode_logs
from contagion.registry import Feed, FeedPhase, Registry, Token

if TYPE_CHECKING:  # pytest puts this folder on the path; mypy sees the package
    from tests.chain.faultproxy import FaultProxy
else:
    from chain.faultproxy import FaultProxy

pytestmark = pytest.mark.devnet

USD = 10**8  # the feeds' 8 decimals


@dataclass
class Proxied:
    client: RpcClient
    registry: Registry
    aggregators: tuple[str, str]  # the ETH proxy's phases 1 and 2
    first_block: int  # where the proxy was deployed
    switch_block: int  # where phase 2 began
    expected: dict[str, list[int]]  # feed id -> the answers the proxy served, in order


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    data = tmp_path_factory.mktemp("proxies")
    info = start_node(data, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        driver = DevnetDriver(client)
        ts = int(client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        multicall = driver.deploy("Multicall")
        first = driver.deploy("ChainlinkAggregator", 8, "ETH / USD", 2000 * USD)
        second = driver.deploy("ChainlinkAggregator", 8, "ETH / USD", 2050 * USD)  # not yet
        btc = driver.deploy("ChainlinkAggregator", 8, "BTC / USD", 30_000 * USD)
        _, ts = driver.mine_all(ts + 12)  # the aggregators' first answers precede the proxy
        proxy = driver.deploy("AggregatorProxy", first.address)
        _, ts = driver.mine_all(ts + 12)
        deployed = _mined_in(driver)
        first.tx(DEPLOYER, "transmit", 2001 * USD)
        second.tx(DEPLOYER, "transmit", 2060 * USD)  # a new aggregator runs before the switch
        _, ts = driver.mine_all(ts + 12)
        proxy.tx(DEPLOYER, "confirmAggregator", second.address)
        _, ts = driver.mine_all(ts + 12)
        switch = _mined_in(driver)
        first.tx(DEPLOYER, "transmit", 1999 * USD)  # and the old one may run on after it
        second.tx(DEPLOYER, "transmit", 2070 * USD)
        btc.tx(DEPLOYER, "transmit", 30_100 * USD)
        _, ts = driver.mine_all(ts + 12)
        for _ in range(3):  # quiet blocks, so the last partition ends after the answers
            _, ts = driver.mine_all(ts + 12)
        assert proxy.call("latestRoundData")[1] == 2070 * USD
        registry = Registry(
            network="proxies", chain_id=info.chain_id, deployed_at_block=0,
            tokens=[Token(symbol="WETH", address=named_address("proxies/weth"), decimals=18),
                    Token(symbol="WBTC", address=named_address("proxies/wbtc"), decimals=8)],
            feeds=[Feed(id="ETH/USD", address=proxy.address, decimals=8, base="WETH"),
                   Feed(id="BTC/USD", address=btc.address, decimals=8, base="WBTC")],
            venues=[], multicall=multicall.address)
        yield Proxied(client, registry, (first.address.lower(), second.address.lower()),
                      deployed, switch, {"ETH/USD": [2001, 2070],
                                         "BTC/USD": [30_000, 30_100]})
    finally:
        client.close()
        stop_node(data)


def _mined_in(driver: DevnetDriver) -> int:
    """The block of the one transaction the last `mine_all` sent."""
    (tx_hash,) = driver.labels
    return int(driver.receipts([tx_hash])[0]["blockNumber"], 16)


def _prices(table: pa.Table | None) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for row in [] if table is None else table.to_pylist():
        out.setdefault(row["source"], []).append((int(row["answer_raw"]) // USD, row["feed"]))
    return out


def test_a_proxy_feed_is_read_through_each_phase_while_it_was_served(
        proxied: Proxied, tmp_path: Path) -> None:
    registry = proxied.registry
    resolved = resolve_feeds(proxied.client, registry, proxied.switch_block + 4)
    eth, btc = resolved.feeds
    assert eth.aggregators == [FeedPhase(aggregator=proxied.aggregators[0],
                                         from_block=proxied.first_block),
                               FeedPhase(aggregator=proxied.aggregators[1],
                                         from_block=proxied.switch_block)]
    assert btc == registry.feeds[1]  # an aggregator itself: as listed
    # before the switch, the proxy had one phase
    before = resolve_feeds(proxied.client, registry, proxied.switch_block - 1)
    assert before.feeds[0].aggregators == eth.aggregators[:1]

    lake = Lake(str(tmp_path / "lake"))
    index_range(proxied.client, lake, registry, width=4)
    stored = _prices(read_table(lake, "prices", registry.chain_id))
    feed_of = {f.id: f.address.lower() for f in registry.feeds}
    assert stored == {fid: [(answer, feed_of[fid]) for answer in answers]
                      for fid, answers in proxied.expected.items()}

    # `contagion decode` reads nothing from the chain: the phases listed in the registry serve
    raw = read_table(lake, "raw_logs", registry.chain_id)
    blocks = read_table(lake, "blocks", registry.chain_id)
    assert raw is not None
    decoded = decode_logs(raw, blocks=blocks, registry=resolved)
    assert _prices(canonical_tables(decoded.tables, resolved)["prices"]) == stored


def test_without_a_multicall_a_proxy_feed_stays_as_listed(proxied: Proxied,
                                                          tmp_path: Path
                                                          ) -> None:
    bare = proxied.registry.model_copy(update={"multicall": None})
    assert resolve_feeds(proxied.client, bare, proxied.switch_block + 4) == bare
    lake = Lake(str(tmp_path / "lake"))
    index_range(proxied.client, lake, bare, width=4)
    stored = _prices(read_table(lake, "prices", bare.chain_id))
    assert set(stored) == {"BTC/USD"}  # the proxy logs nothing of its own


def test_a_registry_feed_with_the_wrong_decimals_stops_the_index(proxied: Proxied,
                                                                  tmp_path: Path) -> None:
    """A feed's decimals scale every price: a registry saying 18 for an 8-decimal feed (the
    proxy answers its aggregator's) would make ETH worth $0.0000002. The index stops before it
    writes anything, naming the feed and both numbers."""
    eth, btc = proxied.registry.feeds
    wrong = proxied.registry.model_copy(update={"feeds": [
        eth.model_copy(update={"decimals": 18}), btc]})
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(ValueError) as exc:
        index_range(proxied.client, lake, wrong, width=4)
    assert "feeds[ETH/USD]" in str(exc.value) and "says 18 decimals" in str(exc.value)
    assert "decimals() is 8" in str(exc.value) and "BTC/USD" not in str(exc.value)
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))


def test_a_node_without_old_state_stops_the_index_naming_the_remedy(proxied: Proxied,
                                                                      tmp_path: Path) -> None:
    """resolve_feeds finds where each phase began by reading phaseId() at past blocks. A full
    node has pruned those blocks' state and answers as geth does ("missing trie node"):
    `contagion index` stops in one line that says the node pruned the state and an archive
    node is needed (it used to pass the node's words on, asking if the endpoint was up), and
    writes nothing."""
    from typer.testing import CliRunner

    from contagion.cli import app
    from contagion.registry import save_registry

    head = int(proxied.client.call("eth_blockNumber"), 16)
    save_registry(proxied.registry, tmp_path / "registry.yaml")
    with FaultProxy(proxied.client.url, pruned_below=head) as node:
        result = CliRunner().invoke(app, [
            "index", "--rpc", node.url, "--registry", str(tmp_path / "registry.yaml"),
            "--lake", str(tmp_path / "lake"), "--confirmations", "0"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"error: indexing from {node.url} stopped: eth_call: JSON-RPC error -32000: " \
           "missing trie node" in text, text
    assert "the endpoint has pruned this block's state or history: reading past blocks needs " \
           "an archive node" in text and "point --rpc at an archive node" in text, text
    assert "Traceback" not in text and "up and answering" not in text
    assert not any((tmp_path / "lake").rglob("*.parquet"))


def test_phases_must_start_in_order() -> None:
    phases = [FeedPhase(aggregator=named_address("proxies/a"), from_block=10),
              FeedPhase(aggregator=named_address("proxies/b"), from_block=10)]
    with pytest.raises(ValueError, match=r"feeds\[ETH/USD\].aggregators: each phase starts"):
        Feed(id="ETH/USD", address=named_address("proxies/p"), decimals=8, base="WETH",
             aggregators=phases)


def test_dagster_reads_a_proxy_feed_as_the_cli_does(proxied: Proxied, tmp_path: Path) -> None:
    import dagster as dg

    from contagion.chain.logs import safe_head
    from contagion.indexing import window_keys
    from contagion.registry import save_registry
    from dagster_project.assets import BLOCK_RANGES, INDEXING_ASSETS
    from dagster_project.definitions import registry as registry_asset
    from dagster_project.resources import ChainResource, LakeResource

    save_registry(proxied.registry, tmp_path / "registry.yaml")
    chain = ChainResource(rpc_url=proxied.client.url, registry=str(tmp_path / "registry.yaml"),
                          confirmations=0, partition_width=4)
    keys = window_keys(0, safe_head(proxied.client, 0), 4)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BLOCK_RANGES, keys)
    run = dg.materialize([registry_asset, *INDEXING_ASSETS], instance=instance,
                         resources={"chain": chain,
                                    "lake": LakeResource(root=str(tmp_path / "dagster"))},
                         selection=INDEXING_ASSETS,
                         tags={"dagster/asset_partition_range_start": keys[0],
                               "dagster/asset_partition_range_end": keys[-1]})
    assert run.success and all(c.passed for c in run.get_asset_check_evaluations())
    cli = Lake(str(tmp_path / "cli"))
    index_range(proxied.client, cli, proxied.registry, width=4)
    chain_id = proxied.registry.chain_id
    ours = read_table(Lake(str(tmp_path / "dagster")), "prices", chain_id)
    assert ours is not None and ours.equals(read_table(cli, "prices", chain_id))
    assert len(_prices(ours)["ETH/USD"]) == len(proxied.expected["ETH/USD"])
