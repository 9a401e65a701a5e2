"""The on-chain RiskOracle's client: signed updates, their submission, and what the oracle holds.

`RiskUpdate` mirrors the contract's struct (contagion/devnet/contracts/RiskOracle.vy) field for
field, and is signed as EIP-712 typed data in the domain of contagion.feed.domain: one chain id,
one oracle contract. Anyone may relay a signed update; the contract checks the signer, nonce,
expiry, cap, cooldown and pause. `updates_from_recommendations` turns one snapshot of
`fct_freeze_recommendations` into the updates that bring the chain to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal, cast, get_args

from eth_abi import decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from contagion.chain.logs import rpc_quantity
from contagion.chain.rpc import RpcClient, RpcError
from contagion.devnet.abi import ContractAbi
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import traced_revert_reason
from contagion.feed.domain import EIP712_DOMAIN_TYPE, eip712_domain
from contagion.registry import Registry, Token, Venue

__all__ = [
    "ACTION_CODES",
    "RISK_UPDATE_TYPE",
    "ZERO_ADDRESS",
    "CapExceeded",
    "MarketState",
    "OracleAction",
    "OracleParams",
    "OracleRejected",
    "RiskUpdate",
    "SignedUpdate",
    "is_oracle_signer",
    "read_market",
    "read_params",
    "recover_update_signer",
    "risk_update_typed_data",
    "sign_update",
    "submit_update",
    "update_digest",
    "updates_from_recommendations",
]

OracleAction = Literal["normal", "raise_margin", "freeze_market", "halt"]
ACTION_CODES: Final[dict[str, int]] = {
    name: code for code, name in enumerate(get_args(OracleAction))}
ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
MAX_BPS = 10_000
# The struct as RiskOracle.vy hashes it; the order of the fields is part of the type.
RISK_UPDATE_TYPE: Final = [
    {"name": "venue", "type": "address"},
    {"name": "asset", "type": "address"},
    {"name": "action", "type": "uint8"},
    {"name": "marginCutBps", "type": "uint16"},
    {"name": "nonce", "type": "uint256"},
    {"name": "expiry", "type": "uint256"},
    {"name": "snapshotHash", "type": "bytes32"},
]
_ERROR_SELECTOR = keccak(text="Error(string)")[:4]


@dataclass(frozen=True)
class RiskUpdate:
    """One signed instruction to the oracle for the market (venue, asset); asset ZERO_ADDRESS
    is the whole venue (halt, or normal to lift a halt). Every update sets the market's margin
    cut to `margin_cut_bps`."""

    venue: str
    asset: str
    action: OracleAction
    margin_cut_bps: int
    nonce: int
    expiry: int  # Unix seconds of chain time; the oracle rejects the update after it
    snapshot_hash: bytes  # 32 bytes: the snapshot block's hash the update answers

    def __post_init__(self) -> None:
        object.__setattr__(self, "venue", to_checksum_address(self.venue))
        object.__setattr__(self, "asset", to_checksum_address(self.asset))
        if self.action not in ACTION_CODES:
            raise ValueError(f"unknown oracle action {self.action!r}; one of "
                             f"{', '.join(ACTION_CODES)}")
        if not 0 <= self.margin_cut_bps <= MAX_BPS:
            raise ValueError(f"margin cut must be 0..{MAX_BPS} bps, got {self.margin_cut_bps}")
        if not 0 < self.nonce < 2**256 or not 0 <= self.expiry < 2**256:
            raise ValueError(f"nonce must be a positive uint256 and expiry a uint256, got "
                             f"{self.nonce} and {self.expiry}")
        if len(self.snapshot_hash) != 32:
            raise ValueError(f"snapshot hash must be 32 bytes, got {len(self.snapshot_hash)}")

    @property
    def code(self) -> int:
        return ACTION_CODES[self.action]

    def as_struct(self) -> tuple[str, str, int, int, int, int, bytes]:
        """The struct as the ABI encodes it (a tuple in field order)."""
        return (self.venue, self.asset, self.code, self.margin_cut_bps, self.nonce, self.expiry,
                self.snapshot_hash)


@dataclass(frozen=True)
class SignedUpdate:
    update: RiskUpdate
    signature: bytes  # 65 bytes: r ‖ s ‖ v

    @property
    def vrs(self) -> tuple[int, bytes, bytes]:
        return self.signature[64], self.signature[:32], self.signature[32:64]


def risk_update_typed_data(chain_id: int, oracle_address: str, update: RiskUpdate
                           ) -> dict[str, Any]:
    """The full EIP-712 message (types, primary type, domain, message) for an update to one
    oracle on one chain."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "RiskUpdate": RISK_UPDATE_TYPE},
        "primaryType": "RiskUpdate",
        "domain": eip712_domain(chain_id, oracle_address),
        "message": {"venue": update.venue, "asset": update.asset, "action": update.code,
                    "marginCutBps": update.margin_cut_bps, "nonce": update.nonce,
                    "expiry": update.expiry, "snapshotHash": update.snapshot_hash},
    }


def update_digest(chain_id: int, oracle_address: str, update: RiskUpdate) -> bytes:
    """The 32-byte EIP-712 digest that is signed (the contract's hashUpdate)."""
    message = encode_typed_data(full_message=risk_update_typed_data(chain_id, oracle_address,
                                                                    update))
    return keccak(b"\x19" + message.version + message.header + message.body)


def sign_update(account: LocalAccount, chain_id: int, oracle: str, update: RiskUpdate
                ) -> SignedUpdate:
    signed = account.sign_message(encode_typed_data(
        full_message=risk_update_typed_data(chain_id, oracle, update)))
    return SignedUpdate(update, bytes(signed.signature))


def recover_update_signer(chain_id: int, oracle: str, signed: SignedUpdate) -> str:
    """Who signed the update, as the oracle at (chain_id, oracle) would recover it: a signature
    made for another chain or contract recovers to some other address."""
    return str(Account.recover_message(
        encode_typed_data(full_message=risk_update_typed_data(chain_id, oracle, signed.update)),
        signature=signed.signature))


# -- on chain ------------------------------------------------------------------------------------
class OracleRejected(RuntimeError):
    """The oracle refused an update; `reason` is its revert reason."""

    def __init__(self, update: RiskUpdate, reason: str) -> None:
        super().__init__(f"the RiskOracle rejected {update.action} of {update.asset} at "
                         f"{update.venue} (nonce {update.nonce}): {reason}")
        self.update = update
        self.reason = reason


@cache
def _abi() -> ContractAbi:
    return ContractAbi(compile_contract("RiskOracle").abi)


def _revert_reason(exc: RpcError) -> str:
    """The reason string of an Error(string) revert in a JSON-RPC error, else its message."""
    data = exc.data if isinstance(exc.data, str) else ""
    raw = bytes.fromhex(data.removeprefix("0x")) if data.startswith("0x") else b""
    if raw[:4] == _ERROR_SELECTOR:
        return str(decode(["string"], raw[4:])[0])
    return exc.message


def _calls(client: RpcClient, oracle: str, calls: list[tuple[str, tuple[Any, ...]]]
           ) -> list[tuple[Any, ...]]:
    abi = _abi()
    raw = client.batch_strict([("eth_call", [{"to": oracle, "data": abi.encode_call(fn, *a)},
                                             "latest"]) for fn, a in calls])
    return [abi.decode_result(fn, len(a), r) for (fn, a), r in zip(calls, raw, strict=True)]


def submit_update(client: RpcClient, oracle: str, sender: str | LocalAccount,
                  signed: SignedUpdate, *, mine_at: int | None = None,
                  timeout: float = 60.0) -> dict[str, Any]:
    """Relay a signed update; returns the mined receipt.

    `sender` pays the gas: an address the node sends for (anvil's accounts, or any address on
    the devnet, which impersonates), or a local account that signs the transaction itself.
    The update is simulated first, so a rejection raises OracleRejected with the contract's
    reason before anything is sent. `mine_at`: on a devnet that does not mine by itself, mine
    the next block at this time (the simulation runs at it too, and the node keeps that time
    for its next block even when the update is rejected); otherwise wait for a receipt.
    """
    data = _abi().encode_call("submit", signed.update.as_struct(), *signed.vrs)
    frm = sender if isinstance(sender, str) else str(sender.address)
    if mine_at is not None:
        client.call("evm_setNextBlockTimestamp", [mine_at])
    try:
        gas = int(client.call("eth_estimateGas", [{"from": frm, "to": oracle, "data": data},
                                                  "pending"]), 16)
    except RpcError as exc:
        raise OracleRejected(signed.update, _revert_reason(exc)) from None
    asked: list[tuple[str, list[Any]]] = [("eth_getTransactionCount", [frm, "pending"]),
                                          ("eth_gasPrice", []), ("eth_chainId", [])]
    nonce, price, chain = (rpc_quantity(client, method, answer) for (method, _), answer
                           in zip(asked, client.batch_strict(asked), strict=True))
    # a quarter above the estimate: the estimate is the least that succeeds, with no margin
    tx: dict[str, Any] = {"to": to_checksum_address(oracle), "data": data,
                          "gas": gas * 5 // 4, "gasPrice": price, "nonce": nonce,
                          "chainId": chain, "value": 0}
    if isinstance(sender, str):
        tx_hash = str(client.call("eth_sendTransaction", [
            {"from": frm, **{k: hex(x) if isinstance(x, int) else x for k, x in tx.items()}}]))
    else:
        raw = sender.sign_transaction(tx).raw_transaction
        tx_hash = str(client.call("eth_sendRawTransaction", ["0x" + bytes(raw).hex()]))
    if mine_at is not None:
        client.call("evm_mine")
    deadline = time.monotonic() + timeout
    while (receipt := client.call("eth_getTransactionReceipt", [tx_hash])) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"update transaction {tx_hash} not mined within {timeout}s")
        time.sleep(0.25)
    if receipt.get("status") != "0x1":  # the state moved between simulation and inclusion
        raise OracleRejected(signed.update, traced_revert_reason(client, tx_hash))
    return dict(receipt)


@dataclass(frozen=True)
class MarketState:
    """What the oracle holds for a market (venue, asset)."""

    frozen: bool  # the market's own freeze (for asset 0: the venue's halt)
    halted: bool  # the venue's halt, which blocks every asset there
    margin_cut_bps: int
    last_update: int  # block time of the last accepted update, 0 if none

    @property
    def blocked(self) -> bool:
        """What the pool sees (isFrozen): no new supply or borrow."""
        return self.frozen or self.halted


@dataclass(frozen=True)
class OracleParams:
    owner: str
    paused: bool
    last_nonce: int
    max_cut_step_bps: int
    cooldown_seconds: int


def read_market(client: RpcClient, oracle: str, venue: str, asset: str) -> MarketState:
    own, venue_wide = _calls(client, oracle, [("market", (venue, asset)),
                                              ("market", (venue, ZERO_ADDRESS))])
    (frozen, cut, last), (halted, _, _) = own[0], venue_wide[0]
    return MarketState(bool(frozen), bool(halted), int(cut), int(last))


def read_params(client: RpcClient, oracle: str) -> OracleParams:
    out = _calls(client, oracle, [(fn, ()) for fn in (
        "owner", "paused", "lastNonce", "maxCutStepBps", "cooldownSeconds")])
    owner, paused, nonce, step, cooldown = (o[0] for o in out)
    return OracleParams(to_checksum_address(owner), bool(paused), int(nonce), int(step),
                        int(cooldown))


def is_oracle_signer(client: RpcClient, oracle: str, signer: str) -> bool:
    return bool(_calls(client, oracle, [("isSigner", (signer,))])[0][0])


# -- from recommendations ------------------------------------------------------------------------
class CapExceeded(ValueError):
    """A recommendation would move a market's cut by more than the oracle's cap in one update."""


def _threshold_cut_bps(params: str | Mapping[str, Any] | None) -> int:
    decoded = json.loads(params) if isinstance(params, str) else params
    cut = decoded.get("threshold_cut") if isinstance(decoded, Mapping) else None
    if not isinstance(cut, int | float) or not 0 < cut <= 1:
        raise ValueError(f"raise_margin needs params.threshold_cut in (0, 1], got {params!r}")
    return round(cut * MAX_BPS)


def _acted_tokens(registry: Registry, venue: Venue, token: Token) -> list[str]:
    """The token and the aTokens on it that the venue lists: the mart names a claim by the asset
    it is priced as (aWETH collateral at Comet is a WETH position), the oracle by its address."""
    listed = {s for m in venue.markets for s in (*m.collateral, m.loan) if s}
    return [token.address] + [t.address for t in registry.tokens if t.kind == "atoken"
                              and t.underlying == token.symbol and t.symbol in listed]


def updates_from_recommendations(
        rows: Iterable[Mapping[str, Any]], registry: Registry, *,
        chain_state: Callable[[str, str], MarketState], max_cut_step_bps: int, expiry: int,
        snapshot_hash: bytes, first_nonce: int) -> list[RiskUpdate]:
    """The updates that bring the oracle to one snapshot's `fct_freeze_recommendations` rows.

    The venue is its main contract in the registry (the first of its contracts); the asset is
    the row's token and the aTokens on it the venue lists (0 for a halt).
    `chain_state(venue, asset)` is what the oracle holds now (e.g.
    `functools.partial(read_market, client, oracle)`). Skipped: watch rows (never on chain), and
    markets already where the row asks: frozen, halted, or a cut at least the recommended one
    (raise_margin never loosens a cut; lifting one is an explicit `normal`), or for `normal`
    neither frozen nor cut. A freeze carries the market's current cut; a `normal` lifts the
    freeze (or, asset null, the halt) and brings the cut down by at most `max_cut_step_bps`,
    so a deep cut comes off over several snapshots while the calm lasts. A raise_margin cut
    that would move by more than `max_cut_step_bps` raises CapExceeded rather than being split:
    the oracle's per-market cooldown would reject a second step of the same snapshot anyway,
    and a recommendation beyond the cap means the policy and the oracle disagree, which a
    person should settle. Nonces run from `first_nonce` in (venue, asset) order.
    """
    rows = list(rows)
    snapshots = {r["snapshot_block"] for r in rows}
    if len(snapshots) > 1:
        raise ValueError(f"rows of one snapshot expected, got blocks {sorted(snapshots)}")
    by_address = {t.address.lower(): t for t in registry.tokens}
    updates: list[RiskUpdate] = []
    seen: set[tuple[str, str]] = set()
    for row in sorted(rows, key=lambda r: (r["venue"], r["asset"] or "")):
        action = row["action"]
        if action == "watch":
            continue
        if action not in ("normal", "raise_margin", "freeze_market", "halt"):
            raise ValueError(f"row for {row['venue']}: {action!r} is not a recommendation "
                             "action (normal, watch, raise_margin, freeze_market, halt)")
        venue_cfg = registry.venue(row["venue"])
        if not venue_cfg.contracts:
            raise ValueError(f"venue {row['venue']!r} has no contract in the registry")
        venue = to_checksum_address(venue_cfg.main_contract)
        if action == "halt" or (action == "normal" and row["asset"] is None):
            if row["asset"] is not None:
                raise ValueError(f"a halt of {row['venue']} is venue-wide, got asset "
                                 f"{row['asset']}")
            assets = [ZERO_ADDRESS]
        else:
            token = by_address.get(str(row["asset"]).lower())
            if token is None:
                raise ValueError(f"row for {row['venue']}: asset {row['asset']!r} is not a "
                                 f"token of the {registry.network} registry")
            assets = _acted_tokens(registry, venue_cfg, token)
        for asset in map(to_checksum_address, assets):
            if (venue, asset) in seen:
                raise ValueError(f"two recommendations for {row['venue']} / {asset}")
            seen.add((venue, asset))
            state = chain_state(venue, asset)
            if action == "raise_margin":
                cut = _threshold_cut_bps(row["params"])
                if state.margin_cut_bps >= cut:
                    continue
                if cut - state.margin_cut_bps > max_cut_step_bps:
                    raise CapExceeded(
                        f"{row['venue']} / {asset}: a cut from {state.margin_cut_bps} to {cut} "
                        f"bps moves more than the oracle's cap of {max_cut_step_bps} bps")
            elif action == "normal":
                if not state.frozen and state.margin_cut_bps == 0:
                    continue
                cut = max(state.margin_cut_bps - max_cut_step_bps, 0)
            elif state.frozen:  # freeze_market, or halt on the venue-wide market
                continue
            else:
                cut = state.margin_cut_bps
            updates.append(RiskUpdate(venue, asset, cast(OracleAction, action), cut,
                                      first_nonce + len(updates), expiry, snapshot_hash))
    return updates
