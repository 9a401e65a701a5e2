"""Node lifecycle, deployment + registry, scenario validation and determinism on a real node."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from contagion.chain.rpc import RpcClient
from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.node import NodeError, free_port, node_status, start_node, stop_node
from contagion.devnet.runner import RunResult, run_scenario
from contagion.devnet.scenario import ScenarioError, load_scenario, real_data_dir
from contagion.registry import Registry, load_registry

pytestmark = pytest.mark.devnet
REAL_DATA = real_data_dir()

SMALL = """
name: tiny
seed: {seed}
blocks: 30
accounts:
  loopers: {{count: 4}}
  borrowers: {{count: 4, collateral: [WETH, aWETH]}}
  basis_traders: {{count: 3, capital_usd: [10000, 30000]}}
  option_writers: {{count: 2}}
  option_buyers: {{count: 2}}
  liquidity_providers: {{count: 2}}
  liquidators: {{count: 1}}
  arbitrageurs: {{count: 1}}
prices:
  ETH: {{gbm: {{start: 2000, vol: 0.8}}}}
  BTC: {{gbm: {{start: 30000, vol: 0.5}}}}
  USDC: {{gbm: {{start: 1.0}}}}
shocks:
  - {{type: price_drop, asset: ETH, pct: 30, start_block: 10, blocks: 5}}
activity: 0.2
"""


def test_node_lifecycle_and_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    info = start_node(tmp_path, port, attached=True)
    try:
        assert node_status(tmp_path)["running"] is True
        with pytest.raises(NodeError, match="already running"):
            start_node(tmp_path, port, attached=True)
        with pytest.raises(NodeError, match="already in use"):
            start_node(tmp_path / "other", port, attached=True)
    finally:
        assert stop_node(tmp_path) is True
    assert node_status(tmp_path)["running"] is False
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(info.pid, 0)
    assert stop_node(tmp_path) is False


def test_port_held_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(NodeError, match="pass --port"):
            start_node(tmp_path, sock.getsockname()[1], attached=True)


def test_missing_anvil_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contagion.devnet.node as node

    monkeypatch.setenv("CONTAGION_ANVIL", "")
    monkeypatch.setattr(node, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NodeError, match="make setup"):
        node.find_anvil()


def test_invalid_scenario_names_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.format(seed=1).replace("pct: 30", "pct: 130"))
    with pytest.raises(ScenarioError, match=r"shocks\.0\.price_drop\.pct"):
        load_scenario(bad)
    bad.write_text(SMALL.format(seed=1).replace("blocks: 30", "blockz: 30"))
    with pytest.raises(ScenarioError, match="blockz"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="bundled"):
        load_scenario("no-such-scenario")


def test_bundled_scenarios_validate() -> None:
    for name in ("calm", "lst-depeg-cascade", "vol-spike-crash", "oracle-drift",
                 "replay-steth-june-2022", "replay-usdc-march-2023"):
        spec, _ = load_scenario(name)
        assert spec.name == name
    crisis, _ = load_scenario("lst-depeg-cascade")
    assert crisis.accounts.total >= 200 and crisis.blocks >= 2000


def _run(tmp_path: Path, seed: int) -> tuple[str, RunResult]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    scenario_file = tmp_path / f"tiny-{seed}.yaml"
    scenario_file.write_text(SMALL.format(seed=seed))
    data = tmp_path / f"data-{seed}-{free_port()}"
    info = start_node(data, free_port(), attached=True)
    try:
        registry = deploy_ecosystem(info.url, data)
        assert load_registry(data / "registry.yaml") == registry
        spec, path = load_scenario(scenario_file)
        result = run_scenario(spec, path, info.url, data)
        client = RpcClient(info.url)
        head = client.call("eth_getBlockByNumber", ["latest", False])
        _check_injection_on_chain(client, registry, result)
        client.close()
        return str(head["hash"]), result
    finally:
        stop_node(data)


def _check_injection_on_chain(client: RpcClient, registry: Registry, result: RunResult) -> None:
    """The manifest puts the ETH drop at the block where the chain's ETH feed starts falling:
    the feed is flat-ish before it and 30 % lower five blocks later."""
    manifest = json.loads(result.manifest_path.read_text())
    summary = result.summary
    assert manifest["blocks"] == [summary.first_block, summary.last_block]
    assert summary.last_block - summary.first_block + 1 == summary.blocks == 30
    [drop] = [i for i in manifest["injections"] if i["kind"] == "price_drop"]
    assert drop["block"] == summary.first_block + 10
    feed = next(f for f in registry.feeds if f.kind == "price" and f.base == "WETH")

    def eth_usd(block: int) -> float:
        reply = client.call("eth_call", [{"to": feed.address, "data": "0xfeaf968c"}, hex(block)])
        return float(int(reply[66:130], 16) / 10**feed.decimals)

    before, after = eth_usd(drop["block"] - 1), eth_usd(drop["block"] + 5)
    assert after / before == pytest.approx(0.7, abs=0.05)


def test_same_seed_same_chain(tmp_path: Path) -> None:
    hash_a, run_a = _run(tmp_path / "a", 5)
    hash_b, run_b = _run(tmp_path / "b", 5)
    assert hash_a == hash_b
    assert run_a.summary.transactions == run_b.summary.transactions
    assert run_a.summary.venues == run_b.summary.venues
    hash_c, _ = _run(tmp_path / "c", 6)
    assert hash_c != hash_a


@pytest.mark.slow
def test_default_crisis_is_big_and_harmful(tmp_path: Path) -> None:
    """The default crisis: at least 20,000 transactions in the scenario's own blocks, with
    liquidations at every venue and bad debt recorded on chain. Its three-minute budget is a
    speed target, measured by `make bench` (bench/scenario.py)."""
    info = start_node(tmp_path, free_port(), attached=True)
    try:
        deploy_ecosystem(info.url, tmp_path)
        spec, path = load_scenario("lst-depeg-cascade")
        summary = run_scenario(spec, path, info.url, tmp_path).summary
    finally:
        stop_node(tmp_path)
    print(summary)
    assert summary.accounts >= 200 and summary.blocks >= 2000
    assert summary.transactions - summary.setup_transactions >= 20_000
    assert all(v.liquidations > 0 for v in summary.venues.values()), summary.venues
    assert sum(v.bad_debt_events for v in summary.venues.values()) > 0


@pytest.mark.parametrize("name", ["calm", "lst-depeg-cascade", "vol-spike-crash", "oracle-drift",
                                  "replay-steth-june-2022", "replay-usdc-march-2023"])
def test_bundled_scenario_opens_every_position(tmp_path: Path, name: str) -> None:
    """Setup requires every funding and opening transaction to succeed, so this fails if a
    bundled scenario asks for more than its liquidity carries."""
    spec, path = load_scenario(name)
    if "real:" in path.read_text() and not REAL_DATA.is_dir():
        pytest.skip(f"{name} replays real prices from {REAL_DATA}, which is absent")
    info = start_node(tmp_path, free_port(), attached=True)
    try:
        deploy_ecosystem(info.url, tmp_path)
        summary = run_scenario(spec.model_copy(update={"blocks": 3, "shocks": []}), path,
                               info.url, tmp_path).summary
    finally:
        stop_node(tmp_path)
    assert summary.accounts == spec.accounts.total
    assert summary.setup_transactions > 10 * summary.accounts
