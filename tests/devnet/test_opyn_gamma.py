from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import decode

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.devnet.venues.opyn_gamma import OptionsVenue, deploy_opyn_gamma
from contagion.protocols import erc20, opyn_gamma
from contagion.protocols.spec import EventSpec

pytestmark = pytest.mark.devnet

WRITER = "0x000000000000000000000000000000000000a001"
BUYER = "0x000000000000000000000000000000000000b001"
RECEIVER = "0x000000000000000000000000000000000000c001"
MAX = 2**256 - 1
USD = 10**8  # USD values and oToken amounts have 8 decimals
USDC = 10**6
DAY = 86_400


@dataclass
class Env:
    driver: DevnetDriver
    world: BaseWorld
    ts: int
    opts: OptionsVenue
    ausdc: Contract
    call: Contract  # WETH 2200 call
    put: Contract  # WETH 1800 put
    expiry: int

    def mine(self, dt: int = 12) -> list[str]:
        """Mine everything queued; returns the transaction hashes (all must succeed)."""
        hashes = self.driver.flush()
        self.ts += dt
        self.driver.mine(self.ts)
        self.driver.require_success(hashes)
        return hashes

    def mine_reverted(self, dt: int = 12) -> None:
        """Mine the queue, which must be exactly one transaction, and require that it reverted."""
        hashes = self.driver.flush()
        assert len(hashes) == 1
        self.ts += dt
        self.driver.mine(self.ts)
        assert self.driver.receipts(hashes)[0]["status"] == "0x0"

    def set_spot(self, usd: float) -> None:
        self.world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(usd))

    def usdc(self, account: str) -> int:
        return int(self.world.tokens["USDC"].call("balanceOf", account))


@pytest.fixture
def env(base: tuple[DevnetDriver, BaseWorld, int]) -> Env:
    driver, world, ts = base
    ausdc = driver.deploy("ERC20", "Aave Ethereum USDC", "aEthUSDC", 6, label="aUSDC")
    usdc, weth = world.tokens["USDC"], world.tokens["WETH"]
    opts = deploy_opyn_gamma(
        driver,
        world,
        {
            "USDC": (usdc.address, world.feeds["USDC"].address, 6, 0),
            "aUSDC": (ausdc.address, world.feeds["USDC"].address, 6, 200),
            "WETH": (weth.address, world.feeds["WETH"].address, 18, 1_000),
        },
    )
    expiry = ts + 30 * DAY
    call = opts.create_series(False, 2200 * USD, expiry)
    put = opts.create_series(True, 1800 * USD, expiry)
    for account in (WRITER, BUYER):
        mint(world, "USDC", account, 100_000 * USDC)
        usdc.tx(account, "approve", opts.venue.address, MAX)
    ausdc.tx(DEPLOYER, "mint", WRITER, 10_000 * USDC)
    ausdc.tx(WRITER, "approve", opts.venue.address, MAX)
    mint(world, "WETH", WRITER, 10 * 10**18)
    weth.tx(WRITER, "approve", opts.venue.address, MAX)
    _, ts = driver.mine_all(ts + 12)
    return Env(driver, world, ts, opts, ausdc, call, put, expiry)


def logs(env: Env, hashes: list[str], spec: EventSpec) -> list[dict[str, Any]]:
    """Decode every log of `spec` in the given transactions, by parameter name."""
    out = []
    for receipt in env.driver.receipts(hashes):
        for log in receipt["logs"]:
            if log["topics"][0] != spec.topic0:
                continue
            assert len(log["topics"]) == spec.topic_count
            topics = iter(log["topics"][1:])
            data = iter(
                decode(
                    [p.type for p in spec.params if not p.indexed], bytes.fromhex(log["data"][2:])
                )
            )
            row: dict[str, Any] = {"address": log["address"]}
            for p in spec.params:
                row[p.name] = (
                    decode([p.type], bytes.fromhex(next(topics)[2:]))[0]
                    if p.indexed
                    else next(data)
                )
            out.append(row)
    return out


def sell_calls(env: Env, collateral: int, amount: int, asset: str = "USDC") -> tuple[int, str]:
    """WRITER opens a vault, deposits, quotes the 2200 call at 50 USDC and BUYER lifts it."""
    token = env.ausdc if asset == "aUSDC" else env.world.tokens[asset]
    vault = env.opts.open_vault(WRITER, token.address)
    env.opts.deposit(WRITER, vault, collateral)
    env.opts.quote(WRITER, vault, env.call.address, 50 * USDC, 65 * 10**6, 20 * USD)
    env.opts.buy(BUYER, WRITER, vault, env.call.address, amount, MAX)
    return vault, env.mine()[-1]


def test_series_is_an_8_decimal_erc20_created_with_opyn_event(env: Env) -> None:
    call, put, opts = env.call, env.put, env.opts
    assert call.call("decimals") == 8 and put.call("decimals") == 8
    assert call.call("totalSupply") == 0
    assert call.call("symbol") == f"oWETHUSDC-{env.expiry}-2200C"
    assert put.call("controller") == opts.venue.address.lower()
    assert opts.venue.call("series_of", call.address) == (False, 2200 * USD, env.expiry)
    assert opts.venue.call("series_of", put.address) == (True, 1800 * USD, env.expiry)
    usdc, weth = env.world.tokens["USDC"].address, env.world.tokens["WETH"].address
    usdc, weth = usdc.lower(), weth.lower()
    assert put.call("getOtokenDetails") == (usdc, weth, usdc, 1800 * USD, env.expiry, True)

    created = []
    for block in range(1, int(env.driver.client.call("eth_blockNumber"), 16) + 1):
        hashes = env.driver.client.call("eth_getBlockByNumber", [hex(block), False])
        created += logs(env, hashes["transactions"], opyn_gamma.OTOKEN_CREATED)
    assert [(c["tokenAddress"].lower(), c["isPut"], c["strikePrice"]) for c in created] == [
        (call.address.lower(), False, 2200 * USD),
        (put.address.lower(), True, 1800 * USD),
    ]
    assert created[0]["underlying"].lower() == weth.lower()
    assert created[0]["strike"].lower() == usdc.lower()
    assert created[0]["creator"].lower() == DEPLOYER.lower()
    assert created[0]["expiry"] == env.expiry

    # The template cannot be initialised, a series cannot be re-initialised, only the venue
    # mints, only the owner creates series, and a series cannot be created twice.
    env.opts.otoken_impl.tx(BUYER, "initialize", BUYER, weth, usdc, usdc, 1, env.expiry, False)
    env.mine_reverted()
    call.tx(BUYER, "initialize", BUYER, weth, usdc, usdc, 1, env.expiry, False)
    env.mine_reverted()
    call.tx(DEPLOYER, "mintOtoken", BUYER, 1)
    env.mine_reverted()
    opts.venue.tx(BUYER, "create_series", False, 3000 * USD, env.expiry)
    env.mine_reverted()
    opts.venue.tx(DEPLOYER, "create_series", False, 2200 * USD, env.expiry)
    env.mine_reverted()


def test_quoted_trade_margin_withdraw_and_burn(env: Env) -> None:
    opts, call = env.opts, env.call
    writer0, buyer0 = env.usdc(WRITER), env.usdc(BUYER)
    vault, buy_hash = sell_calls(env, 3300 * USDC, 10 * USD)
    assert vault == 1 and opts.vault_count(WRITER) == 1

    assert env.usdc(BUYER) == buyer0 - 500 * USDC
    assert env.usdc(WRITER) == writer0 - 3300 * USDC + 500 * USDC
    assert call.call("balanceOf", BUYER) == 10 * USD
    assert call.call("totalSupply") == 10 * USD
    assert opts.vault(WRITER, vault)[1:] == (3300 * USDC, False)
    assert opts.shorts(WRITER, vault) == {call.address: 10 * USD}
    assert opts.venue.call("quote_of", WRITER, vault, call.address) == (
        50 * USDC,
        65 * 10**6,
        10 * USD,
    )
    # spot 2000, OTM call: 15% of spot per option.
    assert opts.margin_requirement(WRITER, vault) == 10 * 300 * USD
    assert opts.collateral_value(WRITER, vault) == 3300 * USD

    [traded] = logs(env, [buy_hash], opyn_gamma.OPTION_TRADED)
    assert traded["otoken"].lower() == call.address.lower()
    assert traded["buyer"].lower() == BUYER and traded["seller"].lower() == WRITER
    assert (traded["vaultId"], traded["isPut"], traded["strikePrice"], traded["expiry"]) == (
        vault,
        False,
        2200 * USD,
        env.expiry,
    )
    assert (traded["amount"], traded["premium"], traded["impliedVol"]) == (
        10 * USD,
        500 * USDC,
        65 * 10**6,
    )
    [minted] = logs(env, [buy_hash], opyn_gamma.SHORT_OTOKEN_MINTED)
    assert minted["AccountOwner"].lower() == WRITER and minted["to"].lower() == BUYER
    assert (minted["vaultId"], minted["amount"]) == (vault, 10 * USD)

    # Two more options would need 3600 USD of margin against 3300: refused, nothing moves.
    opts.buy(BUYER, WRITER, vault, call.address, 2 * USD, MAX)
    env.mine_reverted()
    # A premium above the buyer's limit is refused too.
    opts.buy(BUYER, WRITER, vault, call.address, USD, 50 * USDC - 1)
    env.mine_reverted()
    assert call.call("totalSupply") == 10 * USD and env.usdc(BUYER) == buyer0 - 500 * USDC

    # Healthy vault: not liquidatable, and a liquidation attempt reverts.
    assert not opts.is_liquidatable(WRITER, vault)
    opts.liquidate(BUYER, WRITER, vault, call.address, USD, RECEIVER)
    env.mine_reverted()

    # Withdraw down to the requirement, not a unit below.
    opts.withdraw(WRITER, vault, 300 * USDC + 1)
    env.mine_reverted()
    opts.withdraw(WRITER, vault, 300 * USDC)
    [withdrawn] = logs(env, env.mine(), opyn_gamma.COLLATERAL_ASSET_WITHDRAWED)
    assert withdrawn["amount"] == 300 * USDC and withdrawn["to"].lower() == WRITER
    assert opts.collateral_value(WRITER, vault) == opts.margin_requirement(WRITER, vault)

    # The writer buys back 4 options from the buyer and burns them against the short.
    call.tx(BUYER, "transfer", WRITER, 4 * USD)
    opts.burn_short(WRITER, vault, call.address, 4 * USD)
    [burned] = logs(env, env.mine(), opyn_gamma.SHORT_OTOKEN_BURNED)
    assert (burned["amount"], burned["from"].lower()) == (4 * USD, WRITER)
    assert opts.shorts(WRITER, vault) == {call.address: 6 * USD}
    assert call.call("totalSupply") == 6 * USD
    assert opts.margin_requirement(WRITER, vault) == 6 * 300 * USD


def test_liquidation_after_rally_pays_intrinsic_plus_penalty(env: Env) -> None:
    opts, call = env.opts, env.call
    vault, _ = sell_calls(env, 3300 * USDC, 10 * USD)
    env.set_spot(2400)
    env.mine()
    # intrinsic 200 + 15% * 2400 = 560 per option
    assert opts.margin_requirement(WRITER, vault) == 5600 * USD
    assert opts.is_liquidatable(WRITER, vault)

    opts.liquidate(BUYER, WRITER, vault, call.address, 4 * USD, RECEIVER)
    [liq] = logs(env, env.mine(), opyn_gamma.VAULT_LIQUIDATED)
    # auction price: intrinsic 200 + 5% * 2400 = 320 USD per option; 4 options = 1280 USDC
    assert liq["auctionPrice"] == 320 * USD and liq["auctionStartingRound"] == 0
    assert (liq["collateralPayout"], liq["debtAmount"], liq["vaultId"]) == (
        1280 * USDC,
        4 * USD,
        vault,
    )
    assert liq["liquidator"].lower() == BUYER and liq["receiver"].lower() == RECEIVER
    assert liq["vaultOwner"].lower() == WRITER
    assert env.usdc(RECEIVER) == 1280 * USDC
    assert opts.vault(WRITER, vault)[1] == 2020 * USDC
    assert opts.shorts(WRITER, vault) == {call.address: 6 * USD}
    assert call.call("balanceOf", BUYER) == 6 * USD and call.call("totalSupply") == 6 * USD
    assert opts.bad_debt_usd() == 0
    assert opts.is_liquidatable(WRITER, vault)  # 2020 < 6 * 560


def test_bad_debt_when_collateral_is_exhausted(env: Env) -> None:
    opts, call = env.opts, env.call
    vault, _ = sell_calls(env, 3300 * USDC, 10 * USD)
    env.set_spot(4000)
    env.mine()
    # min(full 4000, intrinsic 1800 + 600) = 2400 per option
    assert opts.margin_requirement(WRITER, vault) == 24_000 * USD
    opts.liquidate(BUYER, WRITER, vault, call.address, USD, RECEIVER)  # 2000 USDC
    opts.liquidate(BUYER, WRITER, vault, call.address, 2 * USD, RECEIVER)  # capped at 1300
    hashes = env.mine()
    payouts = [x["collateralPayout"] for x in logs(env, hashes, opyn_gamma.VAULT_LIQUIDATED)]
    assert payouts == [2000 * USDC, 1300 * USDC]
    assert env.usdc(RECEIVER) == 3300 * USDC
    assert opts.vault(WRITER, vault)[1] == 0
    assert opts.shorts(WRITER, vault) == {call.address: 7 * USD}
    [bad] = logs(env, hashes, opyn_gamma.VAULT_BAD_DEBT)
    assert (bad["vaultOwner"].lower(), bad["vaultId"]) == (WRITER, vault)
    assert bad["shortfallUsd"] == 7 * 2400 * USD == opts.bad_debt_usd()
    # Nothing left to seize: further liquidations revert and bad debt is not counted twice.
    opts.liquidate(BUYER, WRITER, vault, call.address, USD, RECEIVER)
    env.mine_reverted()
    assert opts.bad_debt_usd() == 7 * 2400 * USD


def test_settlement_and_redeem_after_expiry(env: Env) -> None:
    opts, call, put = env.opts, env.call, env.put
    usdc = env.world.tokens["USDC"].address
    writer0, buyer0 = env.usdc(WRITER), env.usdc(BUYER)
    # One vault short two series: its margin is the sum over both.
    vault, _ = sell_calls(env, 5000 * USDC, 10 * USD)
    opts.quote(WRITER, vault, put.address, 20 * USDC, 70 * 10**6, 5 * USD)
    opts.buy(BUYER, WRITER, vault, put.address, 5 * USD, 100 * USDC)
    env.mine()
    premiums = 500 * USDC + 100 * USDC
    assert opts.margin_requirement(WRITER, vault) == (10 + 5) * 300 * USD

    # Before expiry nothing settles.
    opts.settle_vault(WRITER, vault)
    env.mine_reverted()
    # Expired (the next block is one block after expiry): no withdrawing from a vault with an
    # expired short even though the margin would allow it, no more quoting or buying.
    env.ts = env.expiry
    opts.withdraw(WRITER, vault, USDC)
    env.mine_reverted()
    assert opts.collateral_value(WRITER, vault) - opts.margin_requirement(WRITER, vault) > USD
    opts.quote(WRITER, vault, call.address, 50 * USDC, 65 * 10**6, 20 * USD)
    env.mine_reverted()
    opts.buy(BUYER, WRITER, vault, call.address, USD, MAX)
    env.mine_reverted()
    env.set_spot(2300)
    env.mine()
    # Holders cannot redeem before the vaults have funded the settlement pool.
    opts.redeem(BUYER, call.address, 10 * USD)
    env.mine_reverted()

    opts.settle_vault(WRITER, vault)
    settled = logs(env, env.mine(), opyn_gamma.VAULT_SETTLED)
    # The calls owe 10 * (2300 - 2200) = 1000 USDC; the puts expired worthless. One event per
    # short series, the collateral returned (5000 - 1000) on the last.
    assert [
        (s["oTokenAddress"].lower(), s["payout"], s["vaultId"], s["vaultType"]) for s in settled
    ] == [(call.address.lower(), 0, vault, 1), (put.address.lower(), 4000 * USDC, vault, 1)]
    assert opts.venue.call("expiry_price", call.address) == 2300 * USD
    assert opts.venue.call("settlement_pool", call.address, usdc) == 1000 * USDC
    assert opts.venue.call("settlement_pool", put.address, usdc) == 0
    assert env.usdc(WRITER) == writer0 + premiums - 1000 * USDC
    assert opts.vault(WRITER, vault)[1:] == (0, True)
    assert opts.shorts(WRITER, vault) == {call.address: 0, put.address: 0}

    # The price is frozen at settlement: a later move does not change payouts.
    env.set_spot(2500)
    opts.redeem(BUYER, call.address, 4 * USD)
    opts.redeem(BUYER, call.address, 6 * USD)
    opts.redeem(BUYER, put.address, 5 * USD)
    redeems = logs(env, env.mine(), opyn_gamma.REDEEM)
    assert [(r["otokenBurned"], r["payout"]) for r in redeems] == [
        (4 * USD, 400 * USDC),
        (6 * USD, 600 * USDC),
        (5 * USD, 0),
    ]
    assert all(
        r["collateralAsset"].lower() == env.world.tokens["USDC"].address.lower() for r in redeems
    )
    assert env.usdc(BUYER) == buyer0 - premiums + 1000 * USDC
    assert call.call("totalSupply") == 0 and put.call("totalSupply") == 0
    assert opts.venue.call("settlement_pool", call.address, usdc) == 0
    # A settled vault cannot settle again.
    opts.settle_vault(WRITER, vault)
    env.mine_reverted()


def test_settlement_shortfall_is_bad_debt(env: Env) -> None:
    opts, call = env.opts, env.call
    vault, _ = sell_calls(env, 3300 * USDC, 10 * USD)
    env.ts = env.expiry
    env.set_spot(2600)  # the vault owes 10 * 400 = 4000 USDC against 3300
    env.mine()
    opts.settle_vault(WRITER, vault)
    hashes = env.mine()
    [bad] = logs(env, hashes, opyn_gamma.VAULT_BAD_DEBT)
    assert bad["shortfallUsd"] == 700 * USD == opts.bad_debt_usd()
    [settled] = logs(env, hashes, opyn_gamma.VAULT_SETTLED)
    assert settled["payout"] == 0
    # The pool holds 3300 USDC: a 4000 USDC redemption is refused, 8 options (3200) are paid.
    opts.redeem(BUYER, call.address, 10 * USD)
    env.mine_reverted()
    opts.redeem(BUYER, call.address, 8 * USD)
    [redeemed] = logs(env, env.mine(), opyn_gamma.REDEEM)
    assert (redeemed["otokenBurned"], redeemed["payout"]) == (8 * USD, 3200 * USDC)


def test_ausdc_and_weth_collateral(env: Env) -> None:
    opts, call = env.opts, env.call
    vault = opts.open_vault(WRITER, env.ausdc.address)
    opts.deposit(WRITER, vault, 3000 * USDC)
    weth_vault = opts.open_vault(WRITER, env.world.tokens["WETH"].address)
    opts.deposit(WRITER, weth_vault, 10**18)
    hashes = env.mine()
    deposits = logs(env, hashes, opyn_gamma.COLLATERAL_ASSET_DEPOSITED)
    assert [d["asset"].lower() for d in deposits] == [
        env.ausdc.address.lower(),
        env.world.tokens["WETH"].address.lower(),
    ]
    opened = logs(env, hashes, opyn_gamma.VAULT_OPENED)
    assert [(o["vaultId"], o["vaultType"]) for o in opened] == [(1, 1), (2, 1)]
    # aUSDC at the USDC feed less 2%; WETH at 2000 less 10%.
    assert opts.collateral_value(WRITER, vault) == 2940 * USD
    assert opts.collateral_value(WRITER, weth_vault) == 1800 * USD

    opts.quote(WRITER, vault, call.address, 50 * USDC, 65 * 10**6, 20 * USD)
    env.mine()
    opts.buy(BUYER, WRITER, vault, call.address, 10 * USD, MAX)  # needs 3000 > 2940
    env.mine_reverted()
    opts.buy(BUYER, WRITER, vault, call.address, 9 * USD, MAX)  # needs 2700
    env.mine()
    assert opts.vault(WRITER, vault) == (env.ausdc.address, 3000 * USDC, False)
    assert opts.shorts(WRITER, vault) == {call.address: 9 * USD}
    assert env.ausdc.call("balanceOf", opts.venue.address) == 3000 * USDC
    assert not opts.is_liquidatable(WRITER, vault)


def test_event_topics_match_specs() -> None:
    # keyed by topic count too: ERC-721's Transfer shares ERC-20's topic0
    specs = {(s.topic0, s.topic_count): s for s in (*opyn_gamma.EVENTS, *erc20.EVENTS)}
    for spec in opyn_gamma.EVENTS:
        if spec.real:
            assert spec.topic0 == spec.topic0_onchain, spec.declaration
        else:
            assert spec.note and spec.topic0 == spec.topic0_onchain
    for name in ("OptionsVenue", "OToken"):
        events = [e for e in compile_contract(name).abi if e["type"] == "event"]
        assert events
        for entry in events:
            topics = 1 + sum(bool(i["indexed"]) for i in entry["inputs"])
            spec = specs[(event_topic0(entry), topics)]
            assert spec.name == entry["name"]
            assert [p.indexed for p in spec.params] == [p["indexed"] for p in entry["inputs"]]
            if name == "OptionsVenue":
                assert spec.protocol == opyn_gamma.PROTOCOL
    venue_events = {e["name"] for e in compile_contract("OptionsVenue").abi if e["type"] == "event"}
    assert venue_events == {s.name for s in opyn_gamma.EVENTS}
