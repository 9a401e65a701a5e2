"""A signed feed document's actions relayed to the devnet's RiskOracle, and the pool obeying."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contagion.chain.rpc import RpcClient
from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.devnet.risk_oracle import devnet_oracle_signer
from contagion.feed.document import FeedBody, SignedFeed, sign_feed
from contagion.feed.oracle import read_market
from contagion.feed.relay import UnverifiedFeed, relay_feed
from contagion.registry import Registry

pytestmark = pytest.mark.devnet


def _feed(registry: Registry, client: RpcClient, actions: list[dict[str, object]],
          nonce: int, *, signer: LocalAccount | None = None, age: int = 0) -> SignedFeed:
    """A document for the head's snapshot, signed `age` seconds ago (valid for an hour)."""
    head = client.call("eth_getBlockByNumber", ["latest", False])
    now = int(head["timestamp"], 16) - age
    steth = registry.token("stETH").address
    venues = [{"venue": v.id, "address": v.main_contract, "kind": v.kind,
               "score": 9.0, "level": "red", "insolvency_probability": None,
               "actions": [{**a, "asset": steth, "symbol": "stETH", "rule": "test",
                            "loss_before_usd": 2e6, "loss_after_usd": 1e6,
                            "coordinated_with": []} for a in actions] if v.id == "aave_v3"
               else [], "commitment": None} for v in registry.venues]
    body = FeedBody.model_validate({
        "format": "contagion-risk-feed/1",
        "methodology": {"version": "1.0", "policy_version": 1, "amber_score": 4.0,
                        "red_score": 8.0, "insolvency_horizon_days": 1.0,
                        "insolvency_paths": 1000, "reference": "docs/feed.md"},
        "network": registry.network, "chain_id": registry.chain_id,
        "oracle": registry.risk_oracle, "snapshot_block": int(head["number"], 16),
        "snapshot_block_hash": head["hash"], "snapshot_time": int(head["timestamp"], 16),
        "generated_at": now, "valid_until": now + 3600, "nonce": nonce,
        "ecosystem": {"score": 9.0, "level": "red", "driver": "aave_v3"}, "venues": venues})
    return sign_feed(body, signer or devnet_oracle_signer())


def _with_action(feed: SignedFeed, venue: str, action: dict[str, object]) -> SignedFeed:
    """The document with one more action at a venue, added after it was signed."""
    data = feed.model_dump()
    [state] = [v for v in data["venues"] if v["venue"] == venue]
    state["actions"].append({**state["actions"][0], **action})
    return SignedFeed.model_validate(data)


def test_a_feed_is_relayed_once_and_the_pool_obeys(tmp_path: Path) -> None:
    info = start_node(tmp_path / "node", free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        registry = deploy_ecosystem(info.url, tmp_path)
        assert registry.risk_oracle is not None
        aave = registry.venue("aave_v3")
        pool, steth = aave.main_contract, registry.token("stETH").address
        signer = devnet_oracle_signer()
        cut = _feed(registry, client, [{"action": "raise_margin",
                                        "params": {"threshold_cut": 0.05}}], 1)
        # what does not verify for the relay's own key is refused whole, and nothing is sent:
        # an action added after signing, another signer's document, an expired one
        refused = {
            "content_hash": _with_action(cut, "aave_v3", {"action": "freeze_market",
                                                          "params": {}}),
            "signer_allowed": _feed(registry, client, [{"action": "freeze_market",
                                                        "params": {}}], 1,
                                    signer=Account.create()),
            "expiry": _feed(registry, client, [{"action": "freeze_market", "params": {}}], 1,
                            age=7200)}
        for finding, feed in refused.items():
            with pytest.raises(UnverifiedFeed, match=f"{finding}: "):
                relay_feed(client, registry, feed, signer)
        assert read_market(client, registry.risk_oracle, pool, steth).margin_cut_bps == 0
        assert not read_market(client, registry.risk_oracle, pool, steth).blocked
        relayed = relay_feed(client, registry, cut, signer)
        assert [(r.update.action, r.accepted) for r in relayed] == [("raise_margin", True)]
        state = read_market(client, registry.risk_oracle, pool, steth)
        assert state.margin_cut_bps == 500 and not state.blocked
        # the oracle already holds it: nothing is sent again
        assert relay_feed(client, registry, cut, signer) == []
        # a freeze of the same market right after: the oracle's cooldown rejects it
        freeze = _feed(registry, client, [{"action": "freeze_market", "params": {}}], 2)
        rejected = relay_feed(client, registry, freeze, signer)
        assert [(r.accepted, r.reason) for r in rejected] == [(False, "market cooling down")]
        assert not read_market(client, registry.risk_oracle, pool, steth).blocked
        # after the cooldown it goes through, and the pool takes no new stETH
        head = client.call("eth_getBlockByNumber", ["latest", False])
        client.call("evm_mine", [int(head["timestamp"], 16) + 6 * 3600])
        later = _feed(registry, client, [{"action": "freeze_market", "params": {}}], 3)
        accepted = relay_feed(client, registry, later, signer)
        assert [r.accepted for r in accepted] == [True]
        assert read_market(client, registry.risk_oracle, pool, steth).blocked
    finally:
        client.close()
        stop_node(tmp_path / "node")
