"""The devnet Aave v3 pool: exact balances, account data, liquidations, deficits and events.

Expected numbers are worked out by hand from Aave's formulas (PercentageMath/WadRayMath, half-up
rounding), not by re-running the contract's arithmetic in Python; the bundled reserves have zero
rates, so indexes stay at RAY. Interest (test_interest_accrues_as_aave_v3) is checked against an
independent Python copy of Aave v3.3's ReserveLogic, MathUtils, rate strategy and scaled-balance
tokens, tracked alongside the chain."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.aave_v3 import (
    MAX_UINT256,
    AaveV3Venue,
    InterestRateData,
    deploy_aave_v3,
)
from contagion.protocols import aave_v3
from contagion.protocols.spec import EventSpec

ALICE = "0x00000000000000000000000000000000000a11ce"  # borrower
BOB = "0x0000000000000000000000000000000000000b0b"  # liquidity supplier
CAROL = "0x00000000000000000000000000000000000ca201"  # liquidator
DAVE = "0x000000000000000000000000000000000000da7e"  # aToken receiver
EVE = "0x0000000000000000000000000000000000000e7e"  # holds DAVE's aTokens by transferFrom

E18, E8, E6 = 10**18, 10**8, 10**6
RESERVES = {
    "WETH": (8000, 8250, 10500),
    "USDC": (7700, 8000, 10450),
    "WBTC": (7000, 7500, 10600),
    "GOV": (0, 0, 0),
}

Market = tuple[DevnetDriver, BaseWorld, AaveV3Venue, int]


@pytest.fixture
def market(base: tuple[DevnetDriver, BaseWorld, int]) -> Market:
    driver, world, ts = base
    venue = deploy_aave_v3(driver, world, RESERVES)
    # Bob provides USDC and WBTC liquidity to borrow.
    mint(world, "USDC", BOB, 1_000_000 * E6)
    mint(world, "WBTC", BOB, 10 * E8)
    venue.supply(BOB, "USDC", 1_000_000 * E6)
    venue.supply(BOB, "WBTC", 10 * E8)
    _, ts = driver.mine_all(ts + 12)
    return driver, world, venue, ts


# -- helpers ---------------------------------------------------------------------------------
def mine(driver: DevnetDriver, ts: int) -> tuple[int, list[dict[str, Any]]]:
    """Mine what is queued; returns the new time and the receipts (not asserting success)."""
    hashes = driver.flush()
    ts += 12
    driver.mine(ts)
    receipts = driver.receipts(hashes)
    assert all(r is not None for r in receipts)
    return ts, receipts


def mine_ok(driver: DevnetDriver, ts: int) -> tuple[int, list[dict[str, Any]]]:
    ts, receipts = mine(driver, ts)
    assert [r["status"] for r in receipts] == ["0x1"] * len(receipts)
    return ts, receipts


def assert_reverts(driver: DevnetDriver, ts: int) -> int:
    """The last queued transaction reverts (anything queued before it must succeed)."""
    ts, receipts = mine(driver, ts)
    assert [r["status"] for r in receipts] == ["0x1"] * (len(receipts) - 1) + ["0x0"]
    return ts


def events(
    receipts: list[dict[str, Any]], spec: EventSpec, emitter: str | None = None
) -> list[dict[str, Any]]:
    """Decode every log of `spec` in the receipts, from the topics and data as declared."""
    out = []
    for receipt in receipts:
        for log in receipt["logs"]:
            if log["topics"][0] != spec.topic0:
                continue
            if emitter is not None and log["address"].lower() != emitter.lower():
                continue
            topics = iter(log["topics"][1:])
            data = iter(
                decode(
                    [p.type for p in spec.params if not p.indexed], bytes.fromhex(log["data"][2:])
                )
            )
            row: dict[str, Any] = {}
            for p in spec.params:
                if p.indexed:
                    raw = bytes.fromhex(next(topics)[2:])
                    row[p.name] = decode([p.type], raw)[0]
                else:
                    row[p.name] = next(data)
            out.append(row)
    return out


def set_price(world: BaseWorld, symbol: str, usd: float) -> None:
    world.feeds[symbol].tx(DEPLOYER, "transmit", usd_feed_answer(usd))


def addr(a: str) -> str:
    return a.lower()


# -- tests -----------------------------------------------------------------------------------
def test_topic0_match_real_protocol() -> None:
    for spec in aave_v3.EVENTS + aave_v3.ATOKEN_EVENTS + aave_v3.DEBT_TOKEN_EVENTS:
        assert spec.real and spec.topic0 == spec.topic0_onchain, spec.declaration
    specs = {
        "AavePool": aave_v3.POOL_EVENTS,
        "AToken": aave_v3.ATOKEN_EVENTS,
        "VariableDebtToken": aave_v3.DEBT_TOKEN_EVENTS,
    }
    for name, declared in specs.items():
        abi_events = [e for e in compile_contract(name).abi if e["type"] == "event"]
        by_topic = {s.topic0: s for s in declared}
        # the devnet pool lends no flash loans
        not_emitted = {aave_v3.FLASH_LOAN.topic0}
        assert sorted(event_topic0(e) for e in abi_events) == sorted(set(by_topic)
                                                                      - not_emitted), name
        for entry in abi_events:
            spec = by_topic[event_topic0(entry)]
            # indexed flags and order must match too (topic0 alone does not cover them)
            assert [p["indexed"] for p in entry["inputs"]] == [p.indexed for p in spec.params]


def test_supply_borrow_repay_withdraw(market: Market) -> None:
    driver, world, venue, ts = market
    weth, usdc = world.tokens["WETH"], world.tokens["USDC"]
    a_weth, a_usdc = venue.atokens["WETH"], venue.atokens["USDC"]
    mint(world, "WETH", ALICE, 10 * E18)
    venue.supply(ALICE, "WETH", 10 * E18)
    ts, receipts = mine_ok(driver, ts)
    assert venue.atoken_balance(ALICE, "WETH") == 10 * E18
    assert weth.call("balanceOf", a_weth.address) == 10 * E18  # the aToken holds the underlying
    assert weth.call("balanceOf", ALICE) == 0
    assert events(receipts, aave_v3.SUPPLY) == [
        {
            "reserve": addr(weth.address),
            "user": addr(ALICE),
            "onBehalfOf": addr(ALICE),
            "amount": 10 * E18,
            "referralCode": 0,
        }
    ]
    assert events(receipts, aave_v3.COLLATERAL_ENABLED) == [
        {"reserve": addr(weth.address), "user": addr(ALICE)}
    ]
    assert events(receipts, aave_v3.TOKEN_MINT, a_weth.address) == [
        {
            "caller": addr(ALICE),
            "onBehalfOf": addr(ALICE),
            "value": 10 * E18,
            "balanceIncrease": 0,
            "index": 10**27,
        }
    ]
    # A second supply into a non-empty balance does not re-enable.
    mint(world, "WETH", ALICE, E18)
    venue.supply(ALICE, "WETH", E18)
    ts, receipts = mine_ok(driver, ts)
    assert events(receipts, aave_v3.COLLATERAL_ENABLED) == []
    venue.withdraw(ALICE, "WETH", E18)
    ts, _ = mine_ok(driver, ts)
    assert weth.call("balanceOf", ALICE) == E18  # the extra WETH is back in her wallet

    # Borrow: 10 WETH @ 2000 = $20,000 collateral, LTV 80% -> at most $16,000.
    venue.borrow(ALICE, "USDC", 16_000 * E6 + 1)
    ts = assert_reverts(driver, ts)
    venue.pool.tx(ALICE, "borrow", usdc.address, 1000 * E6, 1, 0, ALICE)  # stable: unsupported
    ts = assert_reverts(driver, ts)
    venue.pool.tx(ALICE, "borrow", usdc.address, 1000 * E6, 2, 0, BOB)  # no credit delegation
    ts = assert_reverts(driver, ts)
    venue.borrow(ALICE, "USDC", 10_000 * E6)
    ts, receipts = mine_ok(driver, ts)
    assert usdc.call("balanceOf", ALICE) == 10_000 * E6
    assert usdc.call("balanceOf", a_usdc.address) == 990_000 * E6
    assert venue.debt_balance(ALICE, "USDC") == 10_000 * E6
    assert events(receipts, aave_v3.BORROW) == [
        {
            "reserve": addr(usdc.address),
            "user": addr(ALICE),
            "onBehalfOf": addr(ALICE),
            "amount": 10_000 * E6,
            "interestRateMode": 2,
            "borrowRate": 0,
            "referralCode": 0,
        }
    ]
    assert events(receipts, aave_v3.TOKEN_MINT, venue.debt_tokens["USDC"].address) == [
        {
            "caller": addr(ALICE),
            "onBehalfOf": addr(ALICE),
            "value": 10_000 * E6,
            "balanceIncrease": 0,
            "index": 10**27,
        }
    ]
    # $20,000 collateral, $10,000 debt: available 20,000*0.8-10,000; HF 20,000*0.825/10,000.
    assert venue.account_data(ALICE) == (
        20_000 * E8,
        10_000 * E8,
        6_000 * E8,
        8250,
        8000,
        165 * E18 // 100,
    )
    # The debt token cannot move.
    venue.debt_tokens["USDC"].tx(ALICE, "transfer", BOB, 1)
    ts = assert_reverts(driver, ts)

    # Withdrawing 4 WETH leaves $12,000 * 0.825 = $9,900 < $10,000 debt: refused.
    venue.withdraw(ALICE, "WETH", 4 * E18)
    ts = assert_reverts(driver, ts)

    venue.repay(ALICE, "USDC", 4_000 * E6)
    ts, receipts = mine_ok(driver, ts)
    assert venue.debt_balance(ALICE, "USDC") == 6_000 * E6
    assert usdc.call("balanceOf", ALICE) == 6_000 * E6
    assert usdc.call("balanceOf", a_usdc.address) == 994_000 * E6
    assert events(receipts, aave_v3.REPAY) == [
        {
            "reserve": addr(usdc.address),
            "user": addr(ALICE),
            "repayer": addr(ALICE),
            "amount": 4_000 * E6,
            "useATokens": False,
        }
    ]
    # Now 4 WETH can go: $12,000 * 0.825 / $6,000 = 1.65.
    venue.withdraw(ALICE, "WETH", 4 * E18)
    ts, receipts = mine_ok(driver, ts)
    assert weth.call("balanceOf", ALICE) == 5 * E18
    assert events(receipts, aave_v3.WITHDRAW) == [
        {"reserve": addr(weth.address), "user": addr(ALICE), "to": addr(ALICE), "amount": 4 * E18}
    ]
    assert events(receipts, aave_v3.TOKEN_BURN, a_weth.address) == [
        {
            "from": addr(ALICE),
            "target": addr(ALICE),
            "value": 4 * E18,
            "balanceIncrease": 0,
            "index": 10**27,
        }
    ]

    # Repay all (max uint) then withdraw all (max uint): collateral disabled, position empty.
    venue.repay(ALICE, "USDC", MAX_UINT256)
    venue.withdraw(ALICE, "WETH", MAX_UINT256)
    ts, receipts = mine_ok(driver, ts)
    assert events(receipts, aave_v3.REPAY)[0]["amount"] == 6_000 * E6
    assert events(receipts, aave_v3.WITHDRAW)[0]["amount"] == 6 * E18
    assert events(receipts, aave_v3.COLLATERAL_DISABLED) == [
        {"reserve": addr(weth.address), "user": addr(ALICE)}
    ]
    assert (venue.debt_balance(ALICE, "USDC"), venue.atoken_balance(ALICE, "WETH")) == (0, 0)
    assert (usdc.call("balanceOf", ALICE), weth.call("balanceOf", ALICE)) == (0, 11 * E18)
    assert usdc.call("balanceOf", a_usdc.address) == 1_000_000 * E6
    assert venue.account_data(ALICE) == (0, 0, 0, 0, 0, MAX_UINT256)
    assert venue.pool.call("usingAsCollateral", ALICE, weth.address) is False


def test_account_data_worked_example(market: Market) -> None:
    driver, world, venue, ts = market
    mint(world, "WETH", ALICE, 10 * E18)
    mint(world, "WBTC", ALICE, 10**7)
    mint(world, "GOV", ALICE, 1000 * E18)
    venue.supply(ALICE, "WETH", 10 * E18)  # $20,000, LTV 80%, LT 82.5%
    venue.supply(ALICE, "WBTC", 10**7)  # 0.1 BTC = $3,000, LTV 70%, LT 75%
    venue.supply(ALICE, "GOV", 1000 * E18)  # LTV 0 / LT 0: never collateral
    venue.borrow(ALICE, "USDC", 10_000 * E6)
    ts, receipts = mine_ok(driver, ts)
    assert [e["reserve"] for e in events(receipts, aave_v3.COLLATERAL_ENABLED)] == [
        addr(world.tokens["WETH"].address),
        addr(world.tokens["WBTC"].address),
    ]
    # ltv = (20,000*8000 + 3,000*7000) / 23,000 = 7869.56 -> 7869
    # lt  = (20,000*8250 + 3,000*7500) / 23,000 = 8152.17 -> 8152
    # available = 23,000 * 0.7869 - 10,000 = 8,098.70; HF = 23,000 * 0.8152 / 10,000 = 1.87496
    assert venue.account_data(ALICE) == (
        23_000 * E8,
        10_000 * E8,
        809_870_000_000,
        8152,
        7869,
        1_874_960_000_000_000_000,
    )
    # GOV cannot be turned on as collateral (LTV 0).
    venue.set_collateral(ALICE, "GOV", True)
    ts = assert_reverts(driver, ts)
    # Switching WBTC off: $20,000 only -> 20,000*0.825/10,000 = 1.65, still healthy.
    venue.set_collateral(ALICE, "WBTC", False)
    ts, receipts = mine_ok(driver, ts)
    assert len(events(receipts, aave_v3.COLLATERAL_DISABLED)) == 1
    assert venue.account_data(ALICE) == (
        20_000 * E8,
        10_000 * E8,
        6_000 * E8,
        8250,
        8000,
        165 * E18 // 100,
    )
    # Setting a lower threshold on WETH is reflected at once: 20,000 * 0.5 / 10,000 = 1.0.
    venue.pool.tx(DEPLOYER, "set_reserve_risk", world.tokens["WETH"].address, 4000, 5000, 11000)
    ts, _ = mine_ok(driver, ts)
    assert venue.account_data(ALICE)[3:] == (5000, 4000, E18)


def _borrower(
    driver: DevnetDriver, world: BaseWorld, venue: AaveV3Venue, ts: int, usdc_debt: int
) -> int:
    mint(world, "WETH", ALICE, 10 * E18)
    venue.supply(ALICE, "WETH", 10 * E18)
    venue.borrow(ALICE, "USDC", usdc_debt)
    mint(world, "USDC", CAROL, 100_000 * E6)
    _, ts = driver.mine_all(ts + 12)
    return ts


def test_liquidation_half_close_factor(market: Market) -> None:
    driver, world, venue, ts = market
    weth, usdc = world.tokens["WETH"], world.tokens["USDC"]
    ts = _borrower(driver, world, venue, ts, 15_000 * E6)  # HF 16,500/15,000 = 1.1
    venue.liquidate(CAROL, ALICE, "WETH", "USDC", 1000 * E6)
    ts = assert_reverts(driver, ts)  # healthy: no liquidation

    set_price(world, "WETH", 1800)  # HF = 18,000*0.825/15,000 = 0.99 -> close factor 50%
    ts, _ = mine_ok(driver, ts)
    assert venue.account_data(ALICE)[5] == 99 * E18 // 100
    venue.liquidate(CAROL, ALICE, "WETH", "USDC", MAX_UINT256)
    ts, receipts = mine_ok(driver, ts)
    # 7,500 USDC covered; collateral = 7,500/1,800 WETH = 4.1666..e18 (floor), * 1.05 half-up.
    seized = 4_374_999_999_999_999_999
    assert events(receipts, aave_v3.LIQUIDATION_CALL) == [
        {
            "collateralAsset": addr(weth.address),
            "debtAsset": addr(usdc.address),
            "user": addr(ALICE),
            "debtToCover": 7_500 * E6,
            "liquidatedCollateralAmount": seized,
            "liquidator": addr(CAROL),
            "receiveAToken": False,
        }
    ]
    # The bonus: seized collateral is worth 5% more than the debt repaid (to rounding).
    assert seized * 1800 // E18 == 7_874 and seized * 1800 * 100 // E18 == 787_499
    assert venue.debt_balance(ALICE, "USDC") == 7_500 * E6
    assert venue.atoken_balance(ALICE, "WETH") == 10 * E18 - seized
    assert weth.call("balanceOf", CAROL) == seized  # receiveAToken=False: underlying
    assert weth.call("balanceOf", venue.atokens["WETH"].address) == 10 * E18 - seized
    assert usdc.call("balanceOf", CAROL) == 92_500 * E6
    assert usdc.call("balanceOf", venue.atokens["USDC"].address) == 992_500 * E6
    assert events(receipts, aave_v3.DEFICIT_CREATED) == []
    # collateral (10e18 - seized) * 1800 = $10,125.00; HF = 10,125*0.825/7,500 = 1.11375
    assert venue.account_data(ALICE)[0] == 1_012_500_000_000
    assert venue.account_data(ALICE)[5] == 1_113_750_000_000_000_000
    venue.liquidate(CAROL, ALICE, "WETH", "USDC", MAX_UINT256)
    ts = assert_reverts(driver, ts)  # healthy again


def test_liquidation_full_close_factor_receive_atoken(market: Market) -> None:
    driver, world, venue, ts = market
    weth, usdc = world.tokens["WETH"], world.tokens["USDC"]
    ts = _borrower(driver, world, venue, ts, 15_000 * E6)
    set_price(world, "WETH", 1700)  # HF = 17,000*0.825/15,000 = 0.935 < 0.95 -> 100%
    ts, _ = mine_ok(driver, ts)
    assert venue.account_data(ALICE)[5] == 935 * E18 // 1000
    venue.liquidate(CAROL, ALICE, "WETH", "USDC", MAX_UINT256, receive_atoken=True)
    ts, receipts = mine_ok(driver, ts)
    # All 15,000 USDC; collateral = 15,000/1,700 = 8.823529411764705882e18, * 1.05 half-up.
    seized = 9_264_705_882_352_941_176
    (call,) = events(receipts, aave_v3.LIQUIDATION_CALL)
    assert (call["debtToCover"], call["liquidatedCollateralAmount"]) == (15_000 * E6, seized)
    assert call["receiveAToken"] is True
    assert venue.debt_balance(ALICE, "USDC") == 0
    assert venue.atoken_balance(ALICE, "WETH") == 735_294_117_647_058_824
    assert venue.atoken_balance(CAROL, "WETH") == seized
    assert weth.call("balanceOf", CAROL) == 0
    assert weth.call("balanceOf", venue.atokens["WETH"].address) == 10 * E18  # nothing left
    assert usdc.call("balanceOf", venue.atokens["USDC"].address) == 1_000_000 * E6
    # The liquidator's aTokens arrive into an empty balance: collateral enabled for her.
    assert events(receipts, aave_v3.COLLATERAL_ENABLED) == [
        {"reserve": addr(weth.address), "user": addr(CAROL)}
    ]
    assert events(receipts, aave_v3.BALANCE_TRANSFER) == [
        {"from": addr(ALICE), "to": addr(CAROL), "value": seized, "index": 10**27}
    ]
    assert venue.account_data(CAROL)[0] == seized * 1700 * E8 // E18
    # Alice keeps 0.735294117647058824 WETH = $1,250 of collateral and no debt.
    assert venue.account_data(ALICE) == (1_250 * E8, 0, 1_000 * E8, 8250, 8000, MAX_UINT256)


def test_bad_debt_creates_deficit(market: Market) -> None:
    driver, world, venue, ts = market
    weth, usdc, wbtc = (world.tokens[s] for s in ("WETH", "USDC", "WBTC"))
    ts = _borrower(driver, world, venue, ts, 10_000 * E6)
    venue.borrow(ALICE, "WBTC", 2 * 10**7)  # 0.2 BTC = $6,000 -> $16,000 total, at the LTV
    set_price(world, "WETH", 1000)  # collateral $10,000; HF = 8,250/16,000 = 0.515625
    ts, _ = mine_ok(driver, ts)
    assert venue.account_data(ALICE)[5] == 515_625 * E18 // 10**6
    venue.liquidate(CAROL, ALICE, "WETH", "USDC", MAX_UINT256)
    ts, receipts = mine_ok(driver, ts)
    # 10,000 USDC would take 10.5 WETH; only 10 exist, so all 10 go and the debt covered is
    # 10,000 / 1.05 = 9,523.809524 USDC (half-up). The rest of every debt becomes deficit.
    covered = 9_523_809_524
    (call,) = events(receipts, aave_v3.LIQUIDATION_CALL)
    assert (call["debtToCover"], call["liquidatedCollateralAmount"]) == (covered, 10 * E18)
    assert events(receipts, aave_v3.DEFICIT_CREATED) == [
        {"user": addr(ALICE), "debtAsset": addr(usdc.address), "amountCreated": 476_190_476},
        {"user": addr(ALICE), "debtAsset": addr(wbtc.address), "amountCreated": 2 * 10**7},
    ]
    assert events(receipts, aave_v3.COLLATERAL_DISABLED) == [
        {"reserve": addr(weth.address), "user": addr(ALICE)}
    ]
    assert venue.deficit("USDC") == 476_190_476 and venue.deficit("WBTC") == 2 * 10**7
    assert venue.deficit("WETH") == 0
    assert venue.debt_balance(ALICE, "USDC") == 0 and venue.debt_balance(ALICE, "WBTC") == 0
    assert venue.debt_tokens["USDC"].call("totalSupply") == 0
    assert venue.atoken_balance(ALICE, "WETH") == 0
    assert weth.call("balanceOf", CAROL) == 10 * E18
    assert usdc.call("balanceOf", CAROL) == 100_000 * E6 - covered
    assert venue.account_data(ALICE) == (0, 0, 0, 0, 0, MAX_UINT256)


def test_atoken_transfer_checks_health(market: Market) -> None:
    driver, world, venue, ts = market
    weth = world.tokens["WETH"]
    a_weth = venue.atokens["WETH"]
    ts = _borrower(driver, world, venue, ts, 12_000 * E6)  # HF 16,500/12,000 = 1.375
    venue.transfer_atoken(ALICE, "WETH", DAVE, 3 * E18)  # 14,000*0.825/12,000 = 0.9625
    ts = assert_reverts(driver, ts)
    venue.transfer_atoken(ALICE, "WETH", DAVE, 2 * E18)  # 16,000*0.825/12,000 = 1.1
    ts, receipts = mine_ok(driver, ts)
    assert venue.atoken_balance(ALICE, "WETH") == 8 * E18
    assert venue.atoken_balance(DAVE, "WETH") == 2 * E18
    assert venue.account_data(ALICE)[5] == 11 * E18 // 10
    assert events(receipts, aave_v3.COLLATERAL_ENABLED) == [
        {"reserve": addr(weth.address), "user": addr(DAVE)}
    ]
    assert events(receipts, aave_v3.BALANCE_TRANSFER) == [
        {"from": addr(ALICE), "to": addr(DAVE), "value": 2 * E18, "index": 10**27}
    ]
    transfers = [e for e in events(receipts, aave_v3.ATOKEN_EVENTS[0], a_weth.address)]
    assert transfers == [{"from": addr(ALICE), "to": addr(DAVE), "value": 2 * E18}]
    assert venue.account_data(DAVE)[0] == 4_000 * E8

    # transferFrom works as for any ERC-20 (how other venues take aTokens as collateral);
    # moving the whole balance switches the sender's collateral flag off.
    a_weth.tx(DAVE, "approve", EVE, 2 * E18)
    a_weth.tx(EVE, "transferFrom", DAVE, EVE, 2 * E18)
    ts, receipts = mine_ok(driver, ts)
    assert venue.atoken_balance(EVE, "WETH") == 2 * E18
    assert events(receipts, aave_v3.COLLATERAL_DISABLED) == [
        {"reserve": addr(weth.address), "user": addr(DAVE)}
    ]
    assert events(receipts, aave_v3.COLLATERAL_ENABLED) == [
        {"reserve": addr(weth.address), "user": addr(EVE)}
    ]
    assert venue.account_data(DAVE)[0] == 0
    # Pool-only hooks cannot be called directly.
    a_weth.tx(EVE, "transferUnderlyingTo", EVE, 1)
    ts = assert_reverts(driver, ts)
    venue.pool.tx(EVE, "finalizeTransfer", weth.address, ALICE, EVE, 1, 1, 0)
    assert_reverts(driver, ts)


# -- interest: an independent copy of Aave v3.3's math ---------------------------------------
RAY, YEAR, ZERO = 10**27, 365 * 86400, "0x" + "00" * 20


def ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


def ray_div(a: int, b: int) -> int:
    return (a * RAY + b // 2) // b


def percent_mul(x: int, bps: int) -> int:
    return (x * bps + 5000) // 10000


def percent_div(x: int, bps: int) -> int:
    return (x * 10000 + bps // 2) // bps


def linear_interest(rate: int, seconds: int) -> int:
    """MathUtils.calculateLinearInterest."""
    return RAY + rate * seconds // YEAR


def compounded_interest(rate: int, seconds: int) -> int:
    """MathUtils.calculateCompoundedInterest: three terms of the binomial expansion."""
    if seconds == 0:
        return RAY
    minus_one, minus_two = seconds - 1, max(seconds - 2, 0)
    power_two = ray_mul(rate, rate) // (YEAR * YEAR)
    power_three = ray_mul(power_two, rate) // YEAR
    return (RAY + rate * seconds // YEAR + seconds * minus_one * power_two // 2
            + seconds * minus_one * minus_two * power_three // 6)


Ev = tuple[str, str, dict[str, Any]]  # (emitter label, event name, fields)


class ScaledToken:
    """ScaledBalanceTokenBase: scaled balances and each holder's index at their last change."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.scaled: dict[str, int] = {}
        self.prev: dict[str, int] = {}
        self.supply = 0

    def _accrue(self, user: str, index: int) -> int:
        scaled = self.scaled.get(user, 0)
        increase = ray_mul(scaled, index) - ray_mul(scaled, self.prev.get(user, 0))
        self.prev[user] = index
        return increase

    def mint(self, caller: str, user: str, amount: int, index: int) -> list[Ev]:
        scaled = ray_div(amount, index)
        assert scaled != 0
        increase = self._accrue(user, index)
        self.scaled[user] = self.scaled.get(user, 0) + scaled
        self.supply += scaled
        return [(self.label, "Transfer", {"from": ZERO, "to": user, "value": amount + increase}),
                (self.label, "Mint", {"caller": caller, "onBehalfOf": user,
                                      "value": amount + increase, "balanceIncrease": increase,
                                      "index": index})]

    def burn(self, user: str, target: str, amount: int, index: int) -> list[Ev]:
        scaled = ray_div(amount, index)
        assert scaled != 0
        increase = self._accrue(user, index)
        self.scaled[user] -= scaled
        self.supply -= scaled
        assert self.scaled[user] >= 0 and self.supply >= 0
        if increase > amount:
            return [(self.label, "Transfer",
                     {"from": ZERO, "to": user, "value": increase - amount}),
                    (self.label, "Mint", {"caller": user, "onBehalfOf": user,
                                          "value": increase - amount, "balanceIncrease": increase,
                                          "index": index})]
        return [(self.label, "Transfer", {"from": user, "to": ZERO, "value": amount - increase}),
                (self.label, "Burn", {"from": user, "target": target, "value": amount - increase,
                                      "balanceIncrease": increase, "index": index})]

    def transfer(self, caller: str, sender: str, receiver: str, amount: int,
                 index: int) -> list[Ev]:
        """The Mint/Transfer part of an aToken transfer (BalanceTransfer comes after the pool's
        finalizeTransfer)."""
        sender_increase = self._accrue(sender, index)
        receiver_increase = self._accrue(receiver, index)
        scaled = ray_div(amount, index)
        self.scaled[sender] -= scaled
        self.scaled[receiver] = self.scaled.get(receiver, 0) + scaled
        assert self.scaled[sender] >= 0
        out: list[Ev] = []
        for who, increase in ((sender, sender_increase), (receiver, receiver_increase)):
            if increase > 0 and (who == sender or sender != receiver):
                out += [(self.label, "Transfer", {"from": ZERO, "to": who, "value": increase}),
                        (self.label, "Mint", {"caller": caller, "onBehalfOf": who,
                                              "value": increase, "balanceIncrease": increase,
                                              "index": index})]
        return [*out, (self.label, "Transfer", {"from": sender, "to": receiver, "value": amount})]


class ReserveModel:
    """One reserve's ReserveData (interest part), its rate strategy and its two tokens."""

    def __init__(self, symbol: str, asset: str, unit: int, price: int,
                 risk: tuple[int, int, int]) -> None:
        self.symbol, self.asset, self.unit, self.price = symbol, asset.lower(), unit, price
        self.ltv, self.lt, self.bonus = risk
        self.li, self.lr, self.vi, self.vr, self.last = RAY, 0, RAY, 0, 0
        self.rf = self.accrued = self.virtual = self.deficit = 0
        self.rates = (0, 0, 0, 0)  # optimal, base, slope1, slope2
        self.atoken, self.debt = ScaledToken(f"a{symbol}"), ScaledToken(f"vd{symbol}")

    def stored(self) -> tuple[int, ...]:
        return (self.li, self.lr, self.vi, self.vr, self.last, self.rf, self.accrued,
                self.virtual)

    def normalized_income(self, now: int) -> int:
        if now == self.last:
            return self.li
        return ray_mul(linear_interest(self.lr, now - self.last), self.li)

    def normalized_debt(self, now: int) -> int:
        if now == self.last:
            return self.vi
        return ray_mul(compounded_interest(self.vr, now - self.last), self.vi)

    def update_state(self, now: int) -> None:
        if now == self.last:
            return
        next_li, next_vi = self.li, self.vi
        if self.lr != 0:
            next_li = ray_mul(linear_interest(self.lr, now - self.last), self.li)
        scaled_debt = self.debt.supply
        if scaled_debt != 0:
            next_vi = ray_mul(compounded_interest(self.vr, now - self.last), self.vi)
        if self.rf != 0:
            accrued = ray_mul(scaled_debt, next_vi) - ray_mul(scaled_debt, self.vi)
            to_mint = percent_mul(accrued, self.rf)
            if to_mint != 0:
                self.accrued += ray_div(to_mint, next_li)
        self.li, self.vi, self.last = next_li, next_vi, now

    def update_rates(self, added: int, taken: int) -> Ev:
        """DefaultReserveInterestRateStrategyV2 on the virtual balance; the event it emits."""
        optimal, base, slope1, slope2 = self.rates
        total_debt = ray_mul(self.debt.supply, self.vi)
        available = self.virtual + added - taken
        liquidity_rate, borrow_rate = 0, base
        if total_debt != 0:
            borrow_usage = ray_div(total_debt, available + total_debt)
            supply_usage = ray_div(total_debt, available + total_debt + self.deficit)
            if borrow_usage > optimal:
                excess = ray_div(borrow_usage - optimal, RAY - optimal)
                borrow_rate += slope1 + ray_mul(slope2, excess)
            elif optimal != 0:
                borrow_rate += ray_div(ray_mul(slope1, borrow_usage), optimal)
            liquidity_rate = percent_mul(ray_mul(borrow_rate, supply_usage), 10000 - self.rf)
        self.lr, self.vr, self.virtual = liquidity_rate, borrow_rate, available
        return ("pool", "ReserveDataUpdated", {
            "reserve": self.asset, "liquidityRate": liquidity_rate, "stableBorrowRate": 0,
            "variableBorrowRate": borrow_rate, "liquidityIndex": self.li,
            "variableBorrowIndex": self.vi})


class PoolModel:
    """The pool's actions as Aave v3.3 runs them, returning the events each should emit."""

    def __init__(self, pool: str, treasury: str, reserves: list[ReserveModel]) -> None:
        self.pool, self.treasury = pool.lower(), treasury.lower()
        self.r = {m.symbol: m for m in reserves}
        self.collateral: set[tuple[str, str]] = set()
        self.now = 0

    def _flag(self, user: str, symbol: str, on: bool) -> Ev:
        (self.collateral.add if on else self.collateral.discard)((user, symbol))
        name = "ReserveUsedAsCollateralEnabled" if on else "ReserveUsedAsCollateralDisabled"
        return ("pool", name, {"reserve": self.r[symbol].asset, "user": user})

    def account(self, user: str) -> tuple[int, int, int, int, int, int]:
        """getUserAccountData at self.now."""
        collateral = debt = ltv_sum = lt_sum = 0
        for m in self.r.values():
            if (user, m.symbol) in self.collateral and m.lt != 0:
                worth = (ray_mul(m.atoken.scaled.get(user, 0), m.normalized_income(self.now))
                         * m.price // m.unit)
                collateral += worth
                ltv_sum, lt_sum = ltv_sum + worth * m.ltv, lt_sum + worth * m.lt
            scaled_debt = m.debt.scaled.get(user, 0)
            if scaled_debt:
                debt += ray_mul(scaled_debt, m.normalized_debt(self.now)) * m.price // m.unit
        ltv = ltv_sum // collateral if collateral else 0
        lt = lt_sum // collateral if collateral else 0
        available = max(percent_mul(collateral, ltv) - debt, 0)
        hf = (2**256 - 1 if debt == 0
              else (percent_mul(collateral, lt) * 10**18 + debt // 2) // debt)
        return collateral, debt, available, lt, ltv, hf

    def supply(self, user: str, symbol: str, amount: int) -> list[Ev]:
        m = self.r[symbol]
        m.update_state(self.now)
        out = [m.update_rates(amount, 0)]
        first = m.atoken.scaled.get(user, 0) == 0
        out += m.atoken.mint(user, user, amount, m.li)
        if first and m.ltv != 0 and (user, symbol) not in self.collateral:
            out.append(self._flag(user, symbol, True))
        return [*out, ("pool", "Supply", {"reserve": m.asset, "user": user, "onBehalfOf": user,
                                          "amount": amount, "referralCode": 0})]

    def withdraw(self, user: str, symbol: str, amount: int = MAX_UINT256) -> list[Ev]:
        m = self.r[symbol]
        m.update_state(self.now)
        balance = ray_mul(m.atoken.scaled.get(user, 0), m.li)
        amount = balance if amount == MAX_UINT256 else amount
        out = [m.update_rates(0, amount)]
        if (user, symbol) in self.collateral and amount == balance:
            out.append(self._flag(user, symbol, False))
        out += m.atoken.burn(user, user, amount, m.li)
        return [*out, ("pool", "Withdraw", {"reserve": m.asset, "user": user, "to": user,
                                            "amount": amount})]

    def borrow(self, user: str, symbol: str, amount: int) -> list[Ev]:
        m = self.r[symbol]
        m.update_state(self.now)
        out = m.debt.mint(user, user, amount, m.vi)
        out.append(m.update_rates(0, amount))
        return [*out, ("pool", "Borrow", {"reserve": m.asset, "user": user, "onBehalfOf": user,
                                          "amount": amount, "interestRateMode": 2,
                                          "borrowRate": m.vr, "referralCode": 0})]

    def repay(self, user: str, symbol: str, amount: int = MAX_UINT256) -> list[Ev]:
        m = self.r[symbol]
        m.update_state(self.now)
        payback = min(amount, ray_mul(m.debt.scaled.get(user, 0), m.vi))
        out = m.debt.burn(user, ZERO, payback, m.vi)
        out.append(m.update_rates(payback, 0))
        return [*out, ("pool", "Repay", {"reserve": m.asset, "user": user, "repayer": user,
                                         "amount": payback, "useATokens": False})]

    def transfer(self, caller: str, sender: str, receiver: str, symbol: str,
                 amount: int) -> list[Ev]:
        m = self.r[symbol]
        index = m.normalized_income(self.now)  # not stored
        from_before = ray_mul(m.atoken.scaled.get(sender, 0), index)
        to_before = ray_mul(m.atoken.scaled.get(receiver, 0), index)
        out = m.atoken.transfer(caller, sender, receiver, amount, index)
        if sender != receiver and ray_div(amount, index) != 0:
            if (sender, symbol) in self.collateral:
                assert self.account(sender)[5] >= 10**18
                if from_before == amount:
                    out.append(self._flag(sender, symbol, False))
            if to_before == 0 and m.ltv != 0 and (receiver, symbol) not in self.collateral:
                out.append(self._flag(receiver, symbol, True))
        return [*out, (m.atoken.label, "BalanceTransfer", {
            "from": sender, "to": receiver, "value": ray_div(amount, index), "index": index})]

    def configure(self, symbol: str, *, rates: tuple[int, int, int, int] | None = None,
                  reserve_factor: int | None = None) -> list[Ev]:
        m = self.r[symbol]
        m.update_state(self.now)
        m.rates = rates if rates is not None else m.rates
        m.rf = reserve_factor if reserve_factor is not None else m.rf
        return [m.update_rates(0, 0)]

    def mint_to_treasury(self, symbols: list[str]) -> list[Ev]:
        out: list[Ev] = []
        for symbol in symbols:
            m = self.r[symbol]
            if m.accrued == 0:
                continue
            index = m.normalized_income(self.now)
            amount = ray_mul(m.accrued, index)
            m.accrued = 0
            out += m.atoken.mint(self.pool, self.treasury, amount, index)
            out.append(("pool", "MintedToTreasury", {"reserve": m.asset, "amountMinted": amount}))
        return out

    def _burn_debt(self, m: ReserveModel, user: str, user_debt: int, covered: int,
                   no_collateral_left: bool) -> list[Ev]:
        out = m.debt.burn(user, ZERO, user_debt if no_collateral_left else covered, m.vi)
        if no_collateral_left and user_debt > covered:
            m.deficit += user_debt - covered
            out.append(("pool", "DeficitCreated", {"user": user, "debtAsset": m.asset,
                                                   "amountCreated": user_debt - covered}))
        return [*out, m.update_rates(covered, 0)]

    def liquidate(self, liquidator: str, user: str, collateral: str, debt: str) -> list[Ev]:
        """liquidationCall(..., debtToCover=max, receiveAToken=False)."""
        c, d = self.r[collateral], self.r[debt]
        d.update_state(self.now)
        total_collateral, _, _, _, _, hf = self.account(user)
        assert hf < 10**18
        user_debt = ray_mul(d.debt.scaled[user], d.vi)
        debt_amount = percent_mul(user_debt, 5000 if hf > 95 * 10**16 else 10000)
        user_collateral = ray_mul(c.atoken.scaled[user], c.normalized_income(self.now))
        seized = percent_mul(d.price * debt_amount * c.unit // (c.price * d.unit), c.bonus)
        if seized > user_collateral:
            seized = user_collateral
            debt_amount = percent_div(c.price * seized * d.unit // (d.price * c.unit), c.bonus)
        out: list[Ev] = []
        if seized == user_collateral:
            out.append(self._flag(user, collateral, False))
        no_collateral_left = total_collateral == seized * c.price // c.unit
        out += self._burn_debt(d, user, user_debt, debt_amount, no_collateral_left)
        c.update_state(self.now)
        out.append(c.update_rates(0, seized))
        out += c.atoken.burn(user, liquidator, seized, c.li)
        if no_collateral_left:
            for m in self.r.values():
                if m.debt.scaled.get(user, 0):
                    m.update_state(self.now)
                    out += self._burn_debt(m, user, ray_mul(m.debt.scaled[user], m.vi), 0, True)
        return [*out, ("pool", "LiquidationCall", {
            "collateralAsset": c.asset, "debtAsset": d.asset, "user": user,
            "debtToCover": debt_amount, "liquidatedCollateralAmount": seized,
            "liquidator": liquidator, "receiveAToken": False})]


TREASURY = "0x000000000000000000000000000000000000fee5"
FRANK = "0x000000000000000000000000000000000000f4a7"  # a second big borrower
# USDC: kinked at 80 %, 2 % base, 6 % slope 1, 300 % slope 2 (RAY)
USDC_RATES = (8 * 10**26, 2 * 10**25, 6 * 10**25, 3 * RAY)


def test_interest_accrues_as_aave_v3(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    """USDC with a kinked rate curve and a 10 %, then 20 %, reserve factor; WETH keeps zero
    rates. Supplies, borrows, repayments (below the accrued interest too), withdrawals, aToken
    transfers, a liquidation interest made possible, and the treasury's mint, several in one
    block, with time passing between blocks: the pool's stored state, every balance (scaled and
    interest-bearing), every pool and token event and the account data match the model."""
    driver, world, ts = base
    symbols = {"WETH": RESERVES["WETH"], "USDC": RESERVES["USDC"]}
    venue = deploy_aave_v3(driver, world, symbols)
    model = PoolModel(venue.pool.address, TREASURY, [
        ReserveModel(s, world.tokens[s].address, 10 ** int(world.tokens[s].call("decimals")),
                     int(world.feeds[s].call("latestRoundData")[1]), risk)
        for s, risk in symbols.items()])
    usdc, weth = model.r["USDC"], model.r["WETH"]
    labels: dict[str, tuple[str, tuple[EventSpec, ...]]] = {
        venue.pool.address.lower(): ("pool", aave_v3.POOL_EVENTS)}
    for s in symbols:
        labels[venue.atokens[s].address.lower()] = (f"a{s}", aave_v3.ATOKEN_EVENTS)
        labels[venue.debt_tokens[s].address.lower()] = (f"vd{s}", aave_v3.DEBT_TOKEN_EVENTS)
    people = [addr(a) for a in (ALICE, BOB, CAROL, DAVE, EVE, FRANK, TREASURY)]
    for who, symbol, amount in ((BOB, "USDC", 201_000 * E6), (CAROL, "USDC", 300_000 * E6),
                                (ALICE, "WETH", 10 * E18), (FRANK, "WETH", 200 * E18),
                                (ALICE, "USDC", 1_000 * E6), (FRANK, "USDC", 100_000 * E6)):
        mint(world, symbol, who, amount)
    _, ts = driver.mine_all(ts + 12)

    def pool_events(receipts: list[dict[str, Any]]) -> list[Ev]:
        """Every log of the pool and the four tokens, decoded in order."""
        out: list[Ev] = []
        for receipt in receipts:
            for log in receipt["logs"]:
                if log["address"].lower() not in labels:
                    continue
                label, specs = labels[log["address"].lower()]
                [spec] = [s for s in specs if s.topic0 == log["topics"][0]]
                [row] = events([{"logs": [log]}], spec)
                out.append((label, spec.declaration.split("(")[0], row))
        return out

    def block(when: int, *expected: list[Ev]) -> list[dict[str, Any]]:
        """Mine what is queued at `when`; the events and the state must be the model's."""
        nonlocal ts
        receipts, ts = mine_at(driver, when)
        assert [r["status"] for r in receipts] == ["0x1"] * len(receipts)
        assert pool_events(receipts) == [ev for evs in expected for ev in evs]
        check(int(receipts[0]["blockNumber"], 16) if receipts else "latest")
        return receipts

    def check(at: int | str) -> None:
        for s, m in model.r.items():
            assert venue.reserve_state(s, at) == m.stored(), s
            assert venue.normalized_income(s, at) == m.normalized_income(model.now)
            assert venue.normalized_debt(s, at) == m.normalized_debt(model.now)
            assert venue.deficit(s) == m.deficit
            a, d = venue.atokens[s], venue.debt_tokens[s]
            assert a.call("scaledTotalSupply", block=at) == m.atoken.supply
            assert d.call("scaledTotalSupply", block=at) == m.debt.supply
            assert venue.pool.call("scaledVariableDebt", m.asset, block=at) == m.debt.supply
            assert a.call("totalSupply", block=at) == ray_mul(m.atoken.supply,
                                                              m.normalized_income(model.now))
            assert d.call("totalSupply", block=at) == ray_mul(m.debt.supply,
                                                              m.normalized_debt(model.now))
            # the virtual balance is the aToken's cash (nobody donates here)
            assert world.tokens[s].call("balanceOf", a.address, block=at) == m.virtual
            for who in people:
                scaled_a, scaled_d = m.atoken.scaled.get(who, 0), m.debt.scaled.get(who, 0)
                assert venue.atoken_scaled(who, s, at) == scaled_a, (s, who)
                assert venue.debt_scaled(who, s, at) == scaled_d, (s, who)
                assert a.call("getPreviousIndex", who, block=at) == m.atoken.prev.get(who, 0)
                assert d.call("getPreviousIndex", who, block=at) == m.debt.prev.get(who, 0)
                assert a.call("balanceOf", who, block=at) == \
                    ray_mul(scaled_a, m.normalized_income(model.now))
                assert d.call("balanceOf", who, block=at) == \
                    ray_mul(scaled_d, m.normalized_debt(model.now))
        for who in people:
            assert venue.pool.call("getUserAccountData", who, block=at) == model.account(who)

    # Configuration: the treasury, USDC's curve and a 10 % reserve factor (each updates the
    # state first and emits ReserveDataUpdated: zero debt -> the base rate, no supply rate).
    model.now = ts
    venue.set_treasury(TREASURY)
    venue.set_interest_rate_data("USDC", InterestRateData(*USDC_RATES))
    venue.set_reserve_factor("USDC", 1000)
    block(ts, model.configure("USDC", rates=USDC_RATES),
          model.configure("USDC", reserve_factor=1000))
    assert venue.interest_rate_data("USDC") == USDC_RATES
    assert venue.interest_rate_data("WETH") == (0, 0, 0, 0)
    assert usdc.vr == 2 * 10**25 and usdc.lr == 0 and usdc.last == ts - 12

    # Liquidity and collateral, in one block.
    model.now = ts
    for who, symbol, amount in ((BOB, "USDC", 200_000 * E6), (CAROL, "USDC", 100_000 * E6),
                                (ALICE, "WETH", 10 * E18), (FRANK, "WETH", 200 * E18)):
        venue.supply(who, symbol, amount)
    block(ts, model.supply(addr(BOB), "USDC", 200_000 * E6),
          model.supply(addr(CAROL), "USDC", 100_000 * E6),
          model.supply(addr(ALICE), "WETH", 10 * E18),
          model.supply(addr(FRANK), "WETH", 200 * E18))

    # An hour on: two borrows in one block push USDC's usage past the kink (84 %).
    model.now = ts + 3600
    venue.borrow(ALICE, "USDC", 15_000 * E6)  # HF 20,000 * 0.825 / 15,000 = 1.1
    venue.borrow(FRANK, "USDC", 237_000 * E6)
    block(model.now, model.borrow(addr(ALICE), "USDC", 15_000 * E6),
          model.borrow(addr(FRANK), "USDC", 237_000 * E6))
    assert usdc.vr > USDC_RATES[1] + USDC_RATES[2] and usdc.lr > 0
    assert weth.stored()[:4] == (RAY, 0, RAY, 0)  # no rates on WETH: nothing moves

    # A day on: the indexes moved; a new supplier, a top-up (Bob's Mint carries his interest)
    # and more borrowing: usage ~95 %, far past the kink.
    model.now = ts + 86400
    venue.supply(CAROL, "USDC", 50_000 * E6)
    venue.supply(BOB, "USDC", 1_000 * E6)
    venue.borrow(FRANK, "USDC", 80_000 * E6)
    receipts = block(model.now, model.supply(addr(CAROL), "USDC", 50_000 * E6),
                     model.supply(addr(BOB), "USDC", 1_000 * E6),
                     model.borrow(addr(FRANK), "USDC", 80_000 * E6))
    bob_mint = [e for e in pool_events(receipts) if e[:2] == ("aUSDC", "Mint")][-1][2]
    assert bob_mint["balanceIncrease"] > 0 and bob_mint["index"] > RAY
    assert usdc.accrued > 0  # the reserve factor's share of the interest

    # Three days on: Frank repays part; Alice repays less than her accrued interest, which
    # Aave reports as a Mint of the difference on the debt token; then the factor goes to 20 %.
    model.now = ts + 3 * 86400
    venue.repay(FRANK, "USDC", 20_000 * E6)
    venue.repay(ALICE, "USDC", 10 * E6)
    venue.set_reserve_factor("USDC", 2000)
    receipts = block(model.now, model.repay(addr(FRANK), "USDC", 20_000 * E6),
                     model.repay(addr(ALICE), "USDC", 10 * E6),
                     model.configure("USDC", reserve_factor=2000))
    alice = [e for e in pool_events(receipts) if e[0] == "vdUSDC" and e[2].get("onBehalfOf")
             == addr(ALICE)]
    assert [e[1] for e in alice] == ["Mint"] and alice[0][2]["balanceIncrease"] > 10 * E6

    # aToken transfers: Bob to Eve (Bob's interest minted first; Eve's collateral enabled),
    # then Eve sends part back in the same block (no interest between them).
    model.now = ts + 5 * 86400
    venue.transfer_atoken(BOB, "USDC", EVE, 5_000 * E6)
    venue.transfer_atoken(EVE, "USDC", BOB, 1_234_567)
    block(model.now, model.transfer(addr(BOB), addr(BOB), addr(EVE), "USDC", 5_000 * E6),
          model.transfer(addr(EVE), addr(EVE), addr(BOB), "USDC", 1_234_567))
    assert (addr(EVE), "USDC") in model.collateral

    # Time alone makes Alice liquidatable: check the views at a later, empty block.
    # (about 144 % a year since the last rate update: 15,000 USDC of debt becomes ~17,200)
    model.now = ts + 19 * 86400
    driver.mine(model.now)
    ts = model.now + 12
    check("latest")
    assert 95 * 10**16 < model.account(addr(ALICE))[5] < 10**18  # close factor 50 %
    mint(world, "USDC", CAROL, 20_000 * E6)
    _, ts = driver.mine_all(ts)
    model.now = ts + 12
    venue.liquidate(CAROL, ALICE, "WETH", "USDC")
    receipts = block(model.now, model.liquidate(addr(CAROL), addr(ALICE), "WETH", "USDC"))
    assert len(events(receipts, aave_v3.LIQUIDATION_CALL)) == 1

    # Frank repays everything and withdraws his WETH; Carol withdraws all her USDC; Alice
    # repays all she still owes: one block.
    model.now = ts + 86400
    venue.repay(FRANK, "USDC")
    venue.withdraw(FRANK, "WETH")
    venue.withdraw(CAROL, "USDC")
    venue.repay(ALICE, "USDC")
    block(model.now, model.repay(addr(FRANK), "USDC"), model.withdraw(addr(FRANK), "WETH"),
          model.withdraw(addr(CAROL), "USDC"), model.repay(addr(ALICE), "USDC"))
    assert usdc.debt.supply == 0 and usdc.vr == USDC_RATES[1] and usdc.lr == 0

    # The treasury's share becomes aUSDC (WETH accrued nothing: no event for it).
    model.now = ts + 3600
    accrued = usdc.accrued
    venue.mint_to_treasury(DAVE, "USDC", "WETH")
    block(model.now, model.mint_to_treasury(["USDC", "WETH"]))
    assert accrued > 0 and venue.reserve_state("USDC").accrued_to_treasury == 0
    assert venue.atoken_scaled(TREASURY, "USDC") == accrued

    # With no debt left the indexes stop; everyone can leave with exactly what they are owed.
    model.now = ts + 86400
    for who in (BOB, EVE, TREASURY):
        venue.withdraw(who, "USDC")
    block(model.now, *(model.withdraw(addr(w), "USDC") for w in (BOB, EVE, TREASURY)))
    assert usdc.atoken.supply == usdc.debt.supply == 0
    # Borrowers paid compounded interest, suppliers (and the treasury) earned linear interest on
    # the index: as in Aave, the difference stays in the reserve, claimed by no aToken.
    assert world.tokens["USDC"].call("balanceOf", venue.atokens["USDC"].address) == \
        usdc.virtual > 0


def mine_at(driver: DevnetDriver, when: int) -> tuple[list[dict[str, Any]], int]:
    """Send the queue and mine it in one block at `when`; returns (receipts, next time)."""
    hashes = driver.flush()
    driver.mine(when)
    assert int(driver.client.call("txpool_status")["pending"], 16) == 0
    return driver.receipts(hashes), when + 12
