"""The devnet Aave v3 pool: exact balances, account data, liquidations, deficits and events.

Expected numbers are worked out by hand from Aave's formulas (PercentageMath/WadRayMath, half-up
rounding), not by re-running the contract's arithmetic in Python."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.aave_v3 import MAX_UINT256, AaveV3Venue, deploy_aave_v3
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
        # the devnet pool keeps no rate indices and lends no flash loans
        not_emitted = {aave_v3.RESERVE_DATA_UPDATED.topic0, aave_v3.FLASH_LOAN.topic0}
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
