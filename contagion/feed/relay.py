"""Put a signed feed document's actions on chain: each becomes a RiskOracle update, signed in
the same domain, and is relayed; what the oracle's guardrails reject is reported, not retried."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from contagion.chain.rpc import RpcClient
from contagion.devnet.risk_oracle import SECONDS_PER_BLOCK
from contagion.feed.document import SignedFeed, verify_feed
from contagion.feed.oracle import (
    OracleRejected,
    RiskUpdate,
    read_market,
    read_params,
    sign_update,
    submit_update,
    updates_from_recommendations,
)
from contagion.registry import Registry

__all__ = ["Relayed", "UnverifiedFeed", "relay_feed"]


class UnverifiedFeed(ValueError):
    """The document does not verify for this relay; nothing was sent."""


@dataclass(frozen=True)
class Relayed:
    update: RiskUpdate
    tx_hash: str | None  # None: rejected
    reason: str | None = None  # the oracle's revert reason when rejected

    @property
    def accepted(self) -> bool:
        return self.tx_hash is not None


def relay_feed(client: RpcClient, registry: Registry, feed: SignedFeed, signer: LocalAccount
               ) -> list[Relayed]:
    """Relay the document's actions (not `watch`) that the oracle does not already hold, signed
    by `signer` (who also pays the gas). The devnet mines on request: there each update is
    mined in its own block, one devnet block time after the head.

    The document must verify first, as a consumer would verify it (`verify_feed`): signed by
    `signer` itself, in the domain of this chain and oracle, unchanged since, and valid at the
    head's time. Otherwise the relay's key would put an edited or expired file's actions on
    chain under its own signature. Whether every venue commits to its positions is the
    consumer's question, not the relay's."""
    if registry.risk_oracle is None or registry.chain_id != feed.chain_id:
        raise ValueError("the registry names no risk oracle for this document's chain")
    oracle = registry.risk_oracle
    head = client.call("eth_getBlockByNumber", ["latest", False])
    _, findings = verify_feed(feed.model_dump(mode="json"), chain_id=registry.chain_id,
                              oracle=oracle, signers=[signer.address],
                              now=int(head["timestamp"], 16))
    failed = [f"{f.name}: {f.detail}" for f in findings if not f.passed and f.name != "commitment"]
    if failed:
        raise UnverifiedFeed(f"feed #{feed.nonce} does not verify, nothing relayed: "
                             + "; ".join(failed))
    rows: list[dict[str, Any]] = [
        {"snapshot_block": feed.snapshot_block, "venue": v.venue, "asset": a.asset,
         "action": a.action, "params": a.params} for v in feed.venues for a in v.actions]
    params = read_params(client, oracle)
    updates = updates_from_recommendations(
        rows, registry, chain_state=functools.partial(read_market, client, oracle),
        max_cut_step_bps=params.max_cut_step_bps, expiry=feed.valid_until,
        snapshot_hash=bytes.fromhex(feed.snapshot_block_hash[2:]),
        first_nonce=params.last_nonce + 1)
    block_seconds = SECONDS_PER_BLOCK if registry.network == "devnet" else None
    relayed: list[Relayed] = []
    nonce = params.last_nonce
    for update in updates:
        # a rejected update leaves its nonce unused: the next one takes it
        update = dataclasses.replace(update, nonce=nonce + 1)
        mine_at = None
        if block_seconds is not None:
            head = client.call("eth_getBlockByNumber", ["latest", False])
            mine_at = int(head["timestamp"], 16) + block_seconds
        signed = sign_update(signer, registry.chain_id, oracle, update)
        try:
            receipt = submit_update(client, oracle, signer, signed, mine_at=mine_at)
        except OracleRejected as exc:
            relayed.append(Relayed(update, None, exc.reason))
            continue
        nonce = update.nonce
        relayed.append(Relayed(update, str(receipt["transactionHash"])))
    return relayed
