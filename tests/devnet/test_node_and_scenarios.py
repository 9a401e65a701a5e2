"""Node lifecycle, deployment + registry, scenario validation and determinism on a real node."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from contagion.chain.rpc import RpcClient
from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.node import NodeError, free_port, node_status, start_node, stop_node
from contagion.devnet.runner import run_scenario
from contagion.devnet.scenario import ScenarioError, load_scenario
from contagion.registry import load_registry

pytestmark = pytest.mark.devnet

SMALL = """
name: tiny
seed: {seed}
blocks: 30
accounts:
  loopers: {{count: 4}}
  borrowers: {{count: 4, collateral: [WETH, aWETH]}}
  basis_traders: {{count: 3}}
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


def _run(tmp_path: Path, seed: int) -> tuple[str, dict[str, object]]:
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
        client.close()
        assert result.manifest_path.exists()
        return str(head["hash"]), result.summary
    finally:
        stop_node(data)


def test_same_seed_same_chain(tmp_path: Path) -> None:
    hash_a, summary_a = _run(tmp_path / "a", 5)
    hash_b, summary_b = _run(tmp_path / "b", 5)
    assert hash_a == hash_b
    assert summary_a["transactions"] == summary_b["transactions"]
    hash_c, _ = _run(tmp_path / "c", 6)
    assert hash_c != hash_a
