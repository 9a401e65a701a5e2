"""The RiskOracle on a real devnet: every forged, stale or out-of-bounds update reverts; accepted
ones freeze, halt and re-margin the lending venues that read it; the Python client signs what
the contract hashes and turns the recommendations mart into the right updates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from contagion.chain.rpc import RpcClient
from contagion.devnet.base import mint
from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.node import DEVNET_CHAIN_ID, free_port, start_node, stop_node
from contagion.devnet.risk_oracle import DEVNET_ORACLE_SIGNER, devnet_oracle_signer
from contagion.devnet.world import Ecosystem, ecosystem_from_registry
from contagion.feed.oracle import (
    ZERO_ADDRESS,
    CapExceeded,
    MarketState,
    OracleAction,
    OracleRejected,
    RiskUpdate,
    is_oracle_signer,
    read_market,
    read_params,
    recover_update_signer,
    risk_update_typed_data,
    sign_update,
    submit_update,
    update_digest,
    updates_from_recommendations,
)
from contagion.registry import Registry

pytestmark = pytest.mark.devnet

RELAYER = "0x00000000000000000000000000000000000e1a7e"  # anyone may relay
ALICE = "0x00000000000000000000000000000000000a11ce"  # WETH collateral, USDC debt at Aave
BOB = "0x0000000000000000000000000000000000000b0b"  # USDC liquidity, WETH debt at Aave
CAROL = "0x00000000000000000000000000000000000ca201"  # liquidator
E18, E8, E6 = 10**18, 10**8, 10**6
SNAPSHOT = bytes.fromhex("5a" * 32)
SIGNER = devnet_oracle_signer()
COOLDOWN = 1200


@dataclass
class Chain:
    client: RpcClient
    driver: DevnetDriver
    registry: Registry
    eco: Ecosystem
    oracle: str
    now: int  # time of the latest block

    def token(self, symbol: str) -> str:
        return self.registry.token(symbol).address

    def update(self, venue: str, asset: str, action: OracleAction, cut: int = 0, *,
               expiry: int | None = None, nonce: int | None = None) -> RiskUpdate:
        nonce = nonce or read_params(self.client, self.oracle).last_nonce + 1
        return RiskUpdate(venue, asset, action, cut, nonce,
                          self.now + 3600 if expiry is None else expiry, SNAPSHOT)

    def push(self, update: RiskUpdate, *, at: int | None = None,
             signer: LocalAccount = SIGNER, chain_id: int = DEVNET_CHAIN_ID,
             domain_contract: str | None = None,
             relayer: str | LocalAccount = RELAYER) -> dict[str, Any]:
        """Sign (in the given domain) and relay; mined at `at` (default: 12 s later)."""
        self.now = self.now + 12 if at is None else at
        signed = sign_update(signer, chain_id, domain_contract or self.oracle, update)
        return submit_update(self.client, self.oracle, relayer, signed, mine_at=self.now)

    def rejected(self, update: RiskUpdate, **kwargs: Any) -> str:
        with pytest.raises(OracleRejected) as info:
            self.push(update, **kwargs)
        return info.value.reason

    def mine(self) -> list[str]:
        """Mine what is queued: per transaction "ok" or its revert reason."""
        hashes = self.driver.flush()
        self.now += 12
        self.driver.mine(self.now)
        return ["ok" if r["status"] == "0x1" else self.driver.revert_reason(h)
                for h, r in zip(hashes, self.driver.receipts(hashes), strict=True)]


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    info = start_node(tmp_path / "node", free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        registry = deploy_ecosystem(info.url, tmp_path)
        assert registry.risk_oracle is not None
        driver = DevnetDriver(client)
        now = int(client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        yield Chain(client, driver, registry, ecosystem_from_registry(driver, registry),
                    registry.risk_oracle, now)
    finally:
        client.close()
        stop_node(tmp_path / "node")


@pytest.fixture
def aave_book(chain: Chain) -> Chain:
    """ALICE: 10 WETH collateral, 5,000 USDC debt; BOB: 100k USDC collateral, 1 WETH debt."""
    aave, world = chain.eco.aave, chain.eco.base
    mint(world, "WETH", ALICE, 20 * E18)
    mint(world, "USDC", BOB, 200_000 * E6)
    mint(world, "USDC", CAROL, 100_000 * E6)
    aave.supply(ALICE, "WETH", 10 * E18)
    aave.supply(BOB, "USDC", 100_000 * E6)
    chain.mine()
    aave.borrow(ALICE, "USDC", 5_000 * E6)
    aave.borrow(BOB, "WETH", E18)
    assert set(chain.mine()) == {"ok"}
    return chain


# -- deployment ----------------------------------------------------------------------------------
def test_deploy_wires_the_oracle_into_the_lending_venues(chain: Chain) -> None:
    params = read_params(chain.client, chain.oracle)
    assert (params.owner, params.paused, params.last_nonce) == (DEPLOYER, False, 0)
    # the policy's guardrails: max_threshold_cut 0.10, 4 windows of 25 blocks of 12 s
    assert (params.max_cut_step_bps, params.cooldown_seconds) == (1000, COOLDOWN)
    assert SIGNER.address == DEVNET_ORACLE_SIGNER
    assert is_oracle_signer(chain.client, chain.oracle, DEVNET_ORACLE_SIGNER)
    assert not is_oracle_signer(chain.client, chain.oracle, DEPLOYER)
    for contract in (chain.eco.aave.pool, chain.eco.comet.comet, chain.eco.morpho.morpho):
        assert contract.call("riskOracle") == chain.oracle.lower()
    # the oracle is the last deployment: the multicall (deployed in the base layer) and the
    # venues keep the addresses they had before
    assert chain.registry.multicall == "0x9A676e781A523b5d0C0e43731313A708CB607508"


# -- the typed data ------------------------------------------------------------------------------
@pytest.mark.parametrize("update", [
    RiskUpdate(DEPLOYER, ZERO_ADDRESS, "halt", 0, 1, 0, bytes(32)),
    RiskUpdate(RELAYER, ALICE, "raise_margin", 10_000, 2**256 - 1, 2**256 - 1, b"\xff" * 32),
    RiskUpdate(BOB, CAROL, "normal", 1, 7, 1_700_000_000, SNAPSHOT),
])
def test_python_digest_equals_the_contracts(chain: Chain, update: RiskUpdate) -> None:
    oracle = chain.driver.at("RiskOracle", chain.oracle)
    assert oracle.call("hashUpdate", update.as_struct()) == \
        update_digest(DEVNET_CHAIN_ID, chain.oracle, update)
    header = encode_typed_data(full_message=risk_update_typed_data(
        DEVNET_CHAIN_ID, chain.oracle, update)).header
    assert oracle.call("domainSeparator") == header
    signed = sign_update(SIGNER, DEVNET_CHAIN_ID, chain.oracle, update)
    assert recover_update_signer(DEVNET_CHAIN_ID, chain.oracle, signed) == SIGNER.address


def test_update_fields_are_checked_before_signing() -> None:
    good = RiskUpdate(ALICE, BOB, "freeze_market", 0, 1, 0, SNAPSHOT)
    with pytest.raises(ValueError, match="unknown oracle action"):
        replace(good, action="watch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin cut"):
        replace(good, margin_cut_bps=10_001)
    with pytest.raises(ValueError, match="nonce"):
        replace(good, nonce=0)
    with pytest.raises(ValueError, match="32 bytes"):
        replace(good, snapshot_hash=b"short")
    with pytest.raises(ValueError):
        replace(good, venue="0x1234")


# -- every attack reverts ------------------------------------------------------------------------
def test_signature_for_another_chain_or_contract_recovers_elsewhere(chain: Chain) -> None:
    pool, weth = chain.eco.aave.pool.address, chain.token("WETH")
    update = chain.update(pool, weth, "freeze_market")
    other_chain = sign_update(SIGNER, 1, chain.oracle, update)
    assert recover_update_signer(1, chain.oracle, other_chain) == SIGNER.address
    assert recover_update_signer(DEVNET_CHAIN_ID, chain.oracle, other_chain) != SIGNER.address
    assert chain.rejected(update, chain_id=1) == "unknown signer"
    assert chain.rejected(update, domain_contract=pool) == "unknown signer"
    chain.push(update)  # the same update, signed for this chain and this oracle
    assert read_market(chain.client, chain.oracle, pool, weth).frozen


def test_unknown_or_removed_signer_is_rejected(chain: Chain) -> None:
    pool, weth = chain.eco.aave.pool.address, chain.token("WETH")
    stranger: LocalAccount = Account.create()
    assert chain.rejected(chain.update(pool, weth, "freeze_market"),
                          signer=stranger) == "unknown signer"
    oracle = chain.driver.at("RiskOracle", chain.oracle)
    oracle.tx(BOB, "setSigner", stranger.address, True)  # only the owner manages signers
    oracle.tx(DEPLOYER, "setSigner", DEVNET_ORACLE_SIGNER, False)
    assert chain.mine() == ["only owner", "ok"]
    assert chain.rejected(chain.update(pool, weth, "freeze_market")) == "unknown signer"


def test_replayed_or_lower_nonce_is_rejected_even_relayed_blindly(chain: Chain) -> None:
    pool, weth, wbtc = chain.eco.aave.pool.address, chain.token("WETH"), chain.token("WBTC")
    first = chain.update(pool, weth, "freeze_market", nonce=5)
    relayer: LocalAccount = Account.create()  # signs its own transaction, holds no ether
    receipt = chain.push(first, relayer=relayer)
    assert receipt["from"] == relayer.address.lower() and receipt["status"] == "0x1"
    assert read_params(chain.client, chain.oracle).last_nonce == 5
    assert chain.rejected(first) == "nonce not above last"
    assert chain.rejected(chain.update(pool, wbtc, "freeze_market", nonce=4)) == \
        "nonce not above last"
    # a relayer that skips the simulation gets a reverted transaction on chain
    signed = sign_update(SIGNER, DEVNET_CHAIN_ID, chain.oracle, first)
    v, r, s = signed.vrs
    chain.driver.at("RiskOracle", chain.oracle).tx(RELAYER, "submit", first.as_struct(), v, r, s)
    assert chain.mine() == ["nonce not above last"]


def test_expired_update_is_rejected(chain: Chain) -> None:
    pool, weth = chain.eco.aave.pool.address, chain.token("WETH")
    deadline = chain.now + 100
    assert chain.rejected(chain.update(pool, weth, "freeze_market", expiry=deadline),
                          at=deadline + 1) == "update expired"
    chain.push(chain.update(pool, weth, "freeze_market", expiry=deadline + 2), at=deadline + 2)


def test_a_cut_step_above_the_cap_is_rejected(chain: Chain) -> None:
    pool, weth = chain.eco.aave.pool.address, chain.token("WETH")
    assert chain.rejected(chain.update(pool, weth, "raise_margin", 1001)) == "cut step above cap"
    chain.push(chain.update(pool, weth, "raise_margin", 1000))
    assert read_market(chain.client, chain.oracle, pool, weth).margin_cut_bps == 1000


def test_an_update_inside_the_cooldown_is_rejected(chain: Chain) -> None:
    pool, weth, wbtc = chain.eco.aave.pool.address, chain.token("WETH"), chain.token("WBTC")
    chain.push(chain.update(pool, weth, "raise_margin", 500))
    start = read_market(chain.client, chain.oracle, pool, weth).last_update
    assert start == chain.now
    chain.push(chain.update(pool, wbtc, "freeze_market"))  # another market is not cooling
    assert chain.rejected(chain.update(pool, weth, "freeze_market"),
                          at=start + COOLDOWN - 1) == "market cooling down"
    chain.push(chain.update(pool, weth, "freeze_market", 500), at=start + COOLDOWN)


def test_paused_oracle_rejects_updates(chain: Chain) -> None:
    pool, weth = chain.eco.aave.pool.address, chain.token("WETH")
    oracle = chain.driver.at("RiskOracle", chain.oracle)
    oracle.tx(RELAYER, "setPaused", True)
    oracle.tx(DEPLOYER, "setPaused", True)
    assert chain.mine() == ["only owner", "ok"]
    assert chain.rejected(chain.update(pool, weth, "freeze_market")) == "oracle paused"
    oracle.tx(DEPLOYER, "setPaused", False)
    assert chain.mine() == ["ok"]
    chain.push(chain.update(pool, weth, "freeze_market"))


def test_malformed_updates_are_rejected(chain: Chain) -> None:
    pool, weth = chain.eco.aave.pool.address, chain.token("WETH")
    assert chain.rejected(chain.update(pool, weth, "halt")) == \
        "halt is venue-wide: asset must be 0"
    assert chain.rejected(chain.update(pool, ZERO_ADDRESS, "freeze_market")) == \
        "action needs an asset"
    assert chain.rejected(chain.update(pool, ZERO_ADDRESS, "normal", 5)) == "no venue-wide cut"


# -- the pools obey ------------------------------------------------------------------------------
def test_freeze_market_stops_new_supply_and_borrow_not_exits(aave_book: Chain) -> None:
    chain, aave = aave_book, aave_book.eco.aave
    pool, weth = aave.pool.address, chain.token("WETH")
    chain.push(chain.update(pool, weth, "freeze_market"))
    assert aave.pool.call("riskOracle") == chain.oracle.lower()
    aave.supply(ALICE, "WETH", E18)  # approve, supply
    aave.borrow(BOB, "WETH", E18 // 10)
    assert chain.mine() == ["ok", "RESERVE_FROZEN", "RESERVE_FROZEN"]
    aave.repay(BOB, "WETH", E18 // 2)  # approve, repay
    aave.withdraw(ALICE, "WETH", E18)
    aave.borrow(ALICE, "USDC", 100 * E6)  # against frozen collateral: the freeze is on WETH
    aave.supply(BOB, "USDC", 1_000 * E6)  # approve, supply: another market
    assert chain.mine() == ["ok"] * 6
    assert aave.debt_balance(BOB, "WETH") == E18 // 2
    assert aave.atoken_balance(ALICE, "WETH") == 9 * E18


def test_halt_stops_the_whole_venue_and_normal_lifts_it(aave_book: Chain) -> None:
    chain, aave = aave_book, aave_book.eco.aave
    pool = aave.pool.address
    chain.push(chain.update(pool, ZERO_ADDRESS, "halt"))
    halted = read_market(chain.client, chain.oracle, pool, chain.token("USDC"))
    assert halted.halted and not halted.frozen and halted.blocked
    aave.supply(BOB, "USDC", 1_000 * E6)
    aave.borrow(ALICE, "USDC", 100 * E6)
    aave.supply(ALICE, "WETH", E18)
    assert chain.mine() == ["ok", "RESERVE_FROZEN", "RESERVE_FROZEN", "ok", "RESERVE_FROZEN"]
    aave.repay(ALICE, "USDC", 1_000 * E6)
    aave.withdraw(BOB, "USDC", 1_000 * E6)
    assert chain.mine() == ["ok"] * 3
    # only this venue: Comet's markets are open
    comet_weth = read_market(chain.client, chain.oracle, chain.eco.comet.comet.address,
                             chain.token("WETH"))
    assert not comet_weth.blocked
    lift = chain.update(pool, ZERO_ADDRESS, "normal")
    assert chain.rejected(lift) == "market cooling down"
    venue_wide = read_market(chain.client, chain.oracle, pool, ZERO_ADDRESS)
    assert venue_wide.frozen and venue_wide.margin_cut_bps == 0
    chain.push(lift, at=venue_wide.last_update + COOLDOWN)
    assert not read_market(chain.client, chain.oracle, pool, ZERO_ADDRESS).blocked
    aave.supply(BOB, "USDC", 1_000 * E6)
    assert chain.mine() == ["ok", "ok"]


def test_raise_margin_lowers_ltv_and_threshold_and_normal_lifts_it_within_the_cap(
        aave_book: Chain) -> None:
    chain, aave = aave_book, aave_book.eco.aave
    pool, weth = aave.pool.address, chain.token("WETH")
    collateral, debt, _, lt, ltv, hf = aave.account_data(ALICE)
    # 10 WETH at $2,000 against 5,000 USDC; WETH's LTV 80.50 %, threshold 83.00 %
    assert (collateral, debt, lt, ltv) == (20_000 * E8, 5_000 * E8, 8300, 8050)
    assert hf == 20_000 * 8300 * E18 // (5_000 * 10_000)

    def account() -> tuple[int, int, int, int]:
        _, _, available, lt, ltv, hf = aave.account_data(ALICE)
        return available, lt, ltv, hf

    chain.push(chain.update(pool, weth, "raise_margin", 500))
    assert account() == ((20_000 * 7550 // 10_000 - 5_000) * E8, 7800, 7550,
                         20_000 * 7800 * E18 // (5_000 * 10_000))
    start = chain.now
    chain.push(chain.update(pool, weth, "raise_margin", 1500), at=start + COOLDOWN)
    assert account()[1:3] == (6800, 6550)
    # BOB's USDC collateral is not cut
    assert aave.account_data(BOB)[3:5] == (7800, 7500)
    # lifting all at once is a 1500 bps step: above the cap
    assert chain.rejected(chain.update(pool, weth, "normal", 0),
                          at=start + 2 * COOLDOWN) == "cut step above cap"
    chain.push(chain.update(pool, weth, "normal", 500), at=start + 2 * COOLDOWN)
    assert account()[1:3] == (7800, 7550)
    chain.push(chain.update(pool, weth, "normal", 0), at=start + 3 * COOLDOWN)
    assert aave.account_data(ALICE) == (collateral, debt, (16_100 - 5_000) * E8, lt, ltv, hf)


def test_a_cut_saturates_at_zero_and_liquidation_stays_open(aave_book: Chain) -> None:
    chain, aave = aave_book, aave_book.eco.aave
    pool, weth = aave.pool.address, chain.token("WETH")
    oracle = chain.driver.at("RiskOracle", chain.oracle)
    oracle.tx(DEPLOYER, "setParams", 10_000, 0)
    assert chain.mine() == ["ok"]
    aave.liquidate(CAROL, ALICE, "WETH", "USDC", 1_000 * E6)
    assert chain.mine() == ["ok", "HEALTH_FACTOR_NOT_BELOW_THRESHOLD"]
    chain.push(chain.update(pool, weth, "raise_margin", 9000))  # above WETH's 8050 and 8300
    _, _, available, lt, ltv, hf = aave.account_data(ALICE)
    assert (available, lt, ltv, hf) == (0, 0, 0, 0)
    aave.borrow(ALICE, "USDC", E6)
    aave.liquidate(CAROL, ALICE, "WETH", "USDC", 1_000 * E6)  # approve, liquidationCall
    assert chain.mine() == ["LTV_VALIDATION_FAILED", "ok", "ok"]
    assert aave.debt_balance(ALICE, "USDC") < 5_000 * E6


def test_comet_and_morpho_obey_freezes_and_cuts(chain: Chain) -> None:
    comet, morpho, world = chain.eco.comet, chain.eco.morpho, chain.eco.base
    weth = chain.token("WETH")
    mint(world, "USDC", BOB, 200_000 * E6)
    mint(world, "WETH", ALICE, 10 * E18)
    mint(world, "USDC", CAROL, 10_000 * E6)
    world.tokens["USDC"].tx(BOB, "approve", comet.comet.address, 100_000 * E6)
    world.tokens["WETH"].tx(ALICE, "approve", comet.comet.address, 10 * E18)
    world.tokens["USDC"].tx(ALICE, "approve", comet.comet.address, 100 * E6)
    comet.supply(BOB, 100_000 * E6)
    comet.supply_collateral(ALICE, "WETH", E18)
    for account in (BOB, ALICE, CAROL):
        morpho.approve(account, "WETH/USDC")
    morpho.supply(BOB, "WETH/USDC", 100_000 * E6)
    morpho.supply_collateral(ALICE, "WETH/USDC", E18)
    assert set(chain.mine()) == {"ok"}
    comet.withdraw(ALICE, 1_600 * E6)  # borrow: 80 % of $2,000 (borrow CF 82.5 %)
    morpho.borrow(ALICE, "WETH/USDC", 1_650 * E6)  # 82.5 % (LLTV 86 %)
    assert set(chain.mine()) == {"ok"}

    comet_addr, morpho_addr = comet.comet.address, morpho.morpho.address
    chain.push(chain.update(comet_addr, weth, "freeze_market"))
    chain.push(chain.update(morpho_addr, weth, "freeze_market"))
    comet.supply_collateral(ALICE, "WETH", E18)
    comet.withdraw_collateral(ALICE, "WETH", E18 // 100)
    morpho.supply_collateral(ALICE, "WETH/USDC", E18)
    morpho.repay(ALICE, "WETH/USDC", 50 * E6)
    assert chain.mine() == ["Frozen", "ok", "market frozen", "ok"]

    chain.push(chain.update(comet_addr, ZERO_ADDRESS, "halt"))
    comet.withdraw(ALICE, 100 * E6)  # a new borrow
    comet.supply(ALICE, 10 * E6)  # repays: stays open
    assert chain.mine() == ["Frozen", "ok"]

    # margin: cuts on WETH make both borrowers liquidatable
    assert not comet.is_liquidatable(ALICE)
    morpho.liquidate(CAROL, "WETH/USDC", ALICE, seized_assets=E18 // 100)
    assert chain.mine() == ["position is healthy"]
    start = read_market(chain.client, chain.oracle, comet_addr, weth).last_update
    chain.push(chain.update(comet_addr, weth, "raise_margin", 1000), at=start + COOLDOWN)
    chain.push(chain.update(morpho_addr, weth, "raise_margin", 1000))
    # Comet: 1,590 USDC owed on 0.99 WETH ($1,980): liquidate CF 0.895 - 0.10 covers $1,574
    assert comet.is_liquidatable(ALICE)
    assert not comet.comet.call("isBorrowCollateralized", ALICE)
    # Morpho: 1,600 USDC owed on 1 WETH: LLTV 0.86 - 0.10 covers $1,520
    morpho.liquidate(CAROL, "WETH/USDC", ALICE, seized_assets=E18 // 100)
    assert chain.mine() == ["ok"]


# -- from the recommendations mart ---------------------------------------------------------------
def _row(venue: str, asset: str | None, action: str, **params: float) -> dict[str, Any]:
    return {"snapshot_block": 120, "venue": venue, "asset": asset and asset.lower(),
            "action": action, "params": json.dumps(params)}


def test_updates_from_recommendations_reach_the_chain_once(chain: Chain) -> None:
    weth, usdc = chain.token("WETH"), chain.token("USDC")
    pool, comet = chain.eco.aave.pool.address, chain.eco.comet.comet.address
    morpho = chain.eco.morpho.morpho.address
    rows = [_row("morpho_blue", None, "halt"),
            _row("aave_v3", None, "watch"),
            _row("compound_v3_usdc", weth, "freeze_market"),
            _row("aave_v3", weth, "raise_margin", threshold_cut=0.05),
            _row("aave_v3", usdc, "freeze_market")]
    params = read_params(chain.client, chain.oracle)

    def plan(rows: list[dict[str, Any]], first_nonce: int) -> list[RiskUpdate]:
        return updates_from_recommendations(
            rows, chain.registry, chain_state=partial(read_market, chain.client, chain.oracle),
            max_cut_step_bps=params.max_cut_step_bps, expiry=chain.now + 600,
            snapshot_hash=SNAPSHOT, first_nonce=first_nonce)

    updates = plan(rows, params.last_nonce + 1)
    # in (venue id, asset) order; Comet lists aWETH as collateral, which the mart names by the
    # asset it is priced as
    at_aave: list[tuple[str, str, OracleAction, int]] = [
        (pool, usdc, "freeze_market", 0), (pool, weth, "raise_margin", 500)]
    wanted: list[tuple[str, str, OracleAction, int]] = [
        *sorted(at_aave, key=lambda u: u[1].lower()),
        (comet, weth, "freeze_market", 0), (comet, chain.token("aWETH"), "freeze_market", 0),
        (morpho, ZERO_ADDRESS, "halt", 0)]
    assert updates == [RiskUpdate(*u, nonce, chain.now + 600, SNAPSHOT)
                       for nonce, u in enumerate(wanted, start=1)]
    for update in updates:
        chain.push(update)
    assert read_market(chain.client, chain.oracle, pool, weth).margin_cut_bps == 500
    assert read_market(chain.client, chain.oracle, morpho, weth).blocked
    assert plan(rows, 6) == []  # the chain already holds all of it

    # a freeze on a re-margined market keeps its cut
    assert plan([_row("aave_v3", weth, "freeze_market")], 6) == [
        RiskUpdate(pool, weth, "freeze_market", 500, 6, chain.now + 600, SNAPSHOT)]
    # a smaller cut than the chain's is already satisfied; a bigger step than the cap is not
    assert plan([_row("aave_v3", weth, "raise_margin", threshold_cut=0.03)], 6) == []
    with pytest.raises(CapExceeded, match="cap of 1000 bps"):
        plan([_row("aave_v3", weth, "raise_margin", threshold_cut=0.16)], 6)

    # lifts: the halt (asset null), the cut (by at most the cap), the freeze; a market the
    # oracle holds nothing for is left alone
    chain.now += COOLDOWN  # the markets' cooldown since their last update
    lifted = plan([_row("morpho_blue", None, "normal"), _row("aave_v3", weth, "normal"),
                   _row("aave_v3", usdc, "normal"),
                   _row("aave_v3", chain.token("WBTC"), "normal")], 6)
    assert [(u.venue, u.asset, u.action, u.margin_cut_bps) for u in lifted] == [
        *sorted([(pool, usdc, "normal", 0), (pool, weth, "normal", 0)],
                key=lambda u: u[1].lower()),
        (morpho, ZERO_ADDRESS, "normal", 0)]
    for update in lifted:
        chain.push(update)
    assert not read_market(chain.client, chain.oracle, morpho, weth).blocked
    assert read_market(chain.client, chain.oracle, pool, weth).margin_cut_bps == 0
    assert not read_market(chain.client, chain.oracle, pool, usdc).frozen
    assert plan([_row("aave_v3", weth, "normal")], 9) == []  # nothing left to lift
    # a cut deeper than the cap comes down one capped step per lift
    step = updates_from_recommendations(
        [_row("aave_v3", weth, "normal")], chain.registry,
        chain_state=lambda venue, asset: MarketState(False, False, 1500, 0),
        max_cut_step_bps=1000, expiry=chain.now, snapshot_hash=SNAPSHOT, first_nonce=9)
    assert [(u.action, u.margin_cut_bps) for u in step] == [("normal", 500)]


def test_bad_recommendation_rows_are_errors(chain: Chain) -> None:
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([_row("aave_v3", None, "halt") | {"snapshot_block": 1}, _row("gmx_v1", None, "halt")],
         "one snapshot"),
        ([_row("aave_v3", "0x" + "12" * 20, "freeze_market")], "not a token"),
        ([_row("aave_v3", None, "freeze_market")], "not a token"),
        ([_row("aave_v3", "0x" + "12" * 20, "halt")], "venue-wide"),
        ([_row("aave_v3", None, "lift")], "not a recommendation action"),
        ([_row("nowhere", None, "halt")], "no venue 'nowhere'"),
        ([_row("aave_v3", chain.token("WETH"), "raise_margin")], "threshold_cut"),
    ]
    for rows, message in cases:
        with pytest.raises((ValueError, KeyError), match=message):
            updates_from_recommendations(
                rows, chain.registry,
                chain_state=partial(read_market, chain.client, chain.oracle),
                max_cut_step_bps=1000, expiry=chain.now, snapshot_hash=SNAPSHOT, first_nonce=1)
