from __future__ import annotations

from typing import Any

import pytest
from conftest import contract_events, mine_receipts

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.compound_v3 import CompoundV3Venue, deploy_compound_v3
from contagion.protocols import compound_v3 as spec

pytestmark = pytest.mark.devnet

ZERO = "0x" + "00" * 20
LP = "0x00000000000000000000000000000000000001f0"
ALICE = "0x00000000000000000000000000000000000a11ce"
BOB = "0x0000000000000000000000000000000000000b0b"
CAROL = "0x00000000000000000000000000000000000ca201"
DAVE = "0x000000000000000000000000000000000000da7e"
ABSORBER = "0x0000000000000000000000000000000000ab5042"

E18 = 10**18
USDC = 10**6
TARGET_RESERVES = 1_000 * USDC


def _deploy(driver: DevnetDriver, world: BaseWorld, ts: int) -> tuple[CompoundV3Venue, int]:
    # A plain ERC-20 stands in for an Aave aWETH: another venue's claim, priced by WETH's feed.
    aweth = driver.deploy("ERC20", "Aave Ethereum WETH", "aEthWETH", 18, label="aWETH")
    weth_feed = world.feeds["WETH"].address
    venue = deploy_compound_v3(
        driver,
        world,
        {
            "WETH": (
                world.tokens["WETH"].address,
                weth_feed,
                825 * 10**15,
                895 * 10**15,
                95 * 10**16,
                1_000 * E18,
            ),
            "aWETH": (aweth.address, weth_feed, 80 * 10**16, 85 * 10**16, 90 * 10**16, 1_000 * E18),
        },
        target_reserves=TARGET_RESERVES,
    )
    mint(world, "USDC", LP, 100_000 * USDC)
    world.tokens["USDC"].tx(LP, "approve", venue.comet.address, 2**256 - 1)
    venue.supply(LP, 100_000 * USDC)
    _, ts = driver.mine_all(ts + 12)
    return venue, ts


def _fund(world: BaseWorld, venue: CompoundV3Venue, account: str, symbol: str, amount: int) -> None:
    if symbol == "aWETH":
        venue.comet.driver.at("ERC20", venue.collaterals["aWETH"]).tx(
            DEPLOYER, "mint", account, amount
        )
        token = venue.comet.driver.at("ERC20", venue.collaterals["aWETH"])
    else:
        mint(world, symbol, account, amount)
        token = world.tokens[symbol]
    token.tx(account, "approve", venue.comet.address, 2**256 - 1)




def _reverts(driver: DevnetDriver, ts: int) -> int:
    """Mine the queue and check that its last transaction, and only that one, reverted."""
    hashes = driver.flush()
    ts += 12
    driver.mine(ts)
    *before, last = driver.receipts(hashes)
    assert all(r["status"] == "0x1" for r in before), before
    assert last["status"] == "0x0"
    return ts





def _events(receipts: list[dict[str, Any]], comet: str) -> list[tuple[Any, ...]]:
    events: list[tuple[Any, ...]] = contract_events(receipts, comet, spec.EVENTS)
    return events

def test_supply_borrow_repay_withdraw(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    venue, ts = _deploy(driver, world, ts)
    comet, usdc, weth = venue.comet, world.tokens["USDC"], world.tokens["WETH"]
    w = weth.address.lower()
    assert comet.call("baseToken") == usdc.address.lower()
    assert comet.call("baseTokenPriceFeed") == world.feeds["USDC"].address.lower()
    assert comet.call("numAssets") == 2
    assert comet.call("getAssetInfoByAddress", weth.address) == (
        0,
        w,
        world.feeds["WETH"].address.lower(),
        E18,
        825 * 10**15,
        895 * 10**15,
        95 * 10**16,
        1_000 * E18,
    )
    assert comet.call("getPrice", world.feeds["WETH"].address) == usd_feed_answer(2000)
    assert comet.call("totalSupply") == 100_000 * USDC
    assert venue.supply_balance(LP) == 100_000 * USDC

    _fund(world, venue, ALICE, "WETH", 10 * E18)
    venue.supply_collateral(ALICE, "WETH", 10 * E18)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [("SupplyCollateral", ALICE, ALICE, w, 10 * E18)]
    assert venue.collateral_balance(ALICE, "WETH") == 10 * E18
    assert comet.call("totalsCollateral", weth.address) == (10 * E18, 0)

    # Below the minimum borrow, then beyond the borrow CF (10 WETH x 2000 x 0.825 = 16,500).
    venue.withdraw(ALICE, 99 * USDC)
    ts = _reverts(driver, ts)
    venue.withdraw(ALICE, 16_500 * USDC + 1)
    ts = _reverts(driver, ts)
    venue.withdraw(ALICE, 16_500 * USDC)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [("Withdraw", ALICE, ALICE, 16_500 * USDC)]
    assert venue.borrow_balance(ALICE) == 16_500 * USDC
    assert venue.supply_balance(ALICE) == 0
    assert comet.call("totalBorrow") == 16_500 * USDC
    assert usdc.call("balanceOf", ALICE) == 16_500 * USDC
    assert comet.call("isBorrowCollateralized", ALICE) is True
    assert venue.reserves() == 0
    # At the boundary, not a wei of collateral may leave.
    venue.withdraw_collateral(ALICE, "WETH", 1)
    ts = _reverts(driver, ts)

    # Repay with 17,000: 16,500 wipes the debt, only the 500 left over is minted as supply.
    mint(world, "USDC", ALICE, 500 * USDC)
    usdc.tx(ALICE, "approve", comet.address, 2**256 - 1)
    venue.supply(ALICE, 17_000 * USDC)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("Supply", ALICE, ALICE, 17_000 * USDC),
        ("Transfer", ZERO, ALICE, 500 * USDC),
    ]
    assert venue.borrow_balance(ALICE) == 0
    assert venue.supply_balance(ALICE) == 500 * USDC
    assert comet.call("totalBorrow") == 0
    assert comet.call("totalSupply") == 100_500 * USDC

    # Withdraw 600 of a 500 supply: 500 burned (Transfer), 100 borrowed.
    venue.withdraw(ALICE, 600 * USDC)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("Withdraw", ALICE, ALICE, 600 * USDC),
        ("Transfer", ALICE, ZERO, 500 * USDC),
    ]
    assert venue.borrow_balance(ALICE) == 100 * USDC
    assert comet.call("totalSupply") == 100_000 * USDC
    assert comet.call("totalBorrow") == 100 * USDC

    # supplyTo from the LP repays Alice's debt exactly: no supply minted, no Transfer.
    mint(world, "USDC", LP, 100 * USDC)
    comet.tx(LP, "supplyTo", ALICE, usdc.address, 2**256 - 1)  # max = her whole debt
    venue.withdraw_collateral(ALICE, "WETH", 10 * E18)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("Supply", LP.lower(), ALICE, 100 * USDC),
        ("WithdrawCollateral", ALICE, ALICE, w, 10 * E18),
    ]
    assert venue.borrow_balance(ALICE) == 0
    assert venue.collateral_balance(ALICE, "WETH") == 0
    assert weth.call("balanceOf", ALICE) == 10 * E18
    assert comet.call("totalsCollateral", weth.address) == (0, 0)
    assert venue.reserves() == 0

    # Collateral transfer: Alice's claim moves to Bob's account.
    venue.supply_collateral(ALICE, "WETH", 2 * E18)
    comet.tx(ALICE, "transferAsset", BOB, weth.address, E18)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address)[1] == ("TransferCollateral", ALICE, BOB, w, E18)
    assert venue.collateral_balance(BOB, "WETH") == E18

    # Governance: only the owner re-risks an asset; the new cap binds the next supply.
    comet.tx(ALICE, "set_asset_risk", weth.address, 1, 2, 3, 4)
    ts = _reverts(driver, ts)
    venue.set_asset_risk("WETH", 5 * 10**17, 6 * 10**17, 9 * 10**17, 3 * E18)
    _, ts = mine_receipts(driver, ts)
    assert comet.call("getAssetInfoByAddress", weth.address)[4:] == (
        5 * 10**17,
        6 * 10**17,
        9 * 10**17,
        3 * E18,
    )
    venue.supply_collateral(ALICE, "WETH", E18)  # total 3: at the cap
    venue.supply_collateral(ALICE, "WETH", 1)
    ts = _reverts(driver, ts)


def test_absorb_credits_excess_and_buy_collateral(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> None:
    driver, world, ts = base
    venue, ts = _deploy(driver, world, ts)
    comet = venue.comet
    aweth = venue.collaterals["aWETH"]
    _fund(world, venue, BOB, "aWETH", 10 * E18)
    venue.supply_collateral(BOB, "aWETH", 10 * E18)
    venue.withdraw(BOB, 16_000 * USDC)  # 10 x 2000 x 0.80
    _, ts = mine_receipts(driver, ts)

    assert venue.is_liquidatable(BOB) is False
    venue.absorb(ABSORBER, [BOB])
    ts = _reverts(driver, ts)

    # 10 x 1800 x 0.85 = 15,300 < 16,000: liquidatable; 10 x 1800 x 0.9 = 16,200 > debt.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1800))
    _, ts = mine_receipts(driver, ts)
    assert venue.is_liquidatable(BOB) is True
    assert venue.reserves() == 0
    venue.absorb(ABSORBER, [BOB])
    receipts, ts = mine_receipts(driver, ts)
    a, b = ABSORBER.lower(), BOB.lower()
    assert _events(receipts, comet.address) == [
        ("AbsorbCollateral", a, b, aweth.lower(), 10 * E18, 18_000 * 10**8),
        ("AbsorbDebt", a, b, 16_200 * USDC, 16_200 * 10**8),
        ("Transfer", ZERO, b, 200 * USDC),
    ]
    assert venue.borrow_balance(BOB) == 0
    assert venue.supply_balance(BOB) == 200 * USDC
    assert venue.collateral_balance(BOB, "aWETH") == 0
    assert comet.call("totalsCollateral", aweth) == (0, 0)
    assert comet.call("getCollateralReserves", aweth) == 10 * E18
    assert comet.call("totalBorrow") == 0
    assert comet.call("totalSupply") == 100_200 * USDC
    assert venue.reserves() == -16_200 * USDC  # falls by basePaidOut
    assert venue.is_liquidatable(BOB) is False

    # Store front: 1800 x (1 - 0.6 x (1 - 0.9)) = 1692 per aWETH.
    quote = venue.quote_collateral("aWETH", 1_000 * USDC)
    assert quote == 1_000 * E18 // 1692
    mint(world, "USDC", DAVE, 50_000 * USDC)
    world.tokens["USDC"].tx(DAVE, "approve", comet.address, 2**256 - 1)
    venue.buy_collateral(DAVE, "aWETH", 1_000 * USDC, min_amount=quote + 1)
    ts = _reverts(driver, ts)
    venue.buy_collateral(DAVE, "aWETH", 20_000 * USDC)  # more than the 10 aWETH held
    ts = _reverts(driver, ts)
    venue.buy_collateral(DAVE, "aWETH", 1_000 * USDC, min_amount=quote)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("BuyCollateral", DAVE, aweth.lower(), 1_000 * USDC, quote)
    ]
    assert driver.at("ERC20", aweth).call("balanceOf", DAVE) == quote
    assert comet.call("getCollateralReserves", aweth) == 10 * E18 - quote
    assert venue.reserves() == -15_200 * USDC

    # Once reserves reach the target the store front closes.
    world.tokens["USDC"].tx(DAVE, "transfer", comet.address, 16_200 * USDC)
    _, ts = mine_receipts(driver, ts)
    assert venue.reserves() == TARGET_RESERVES
    venue.buy_collateral(DAVE, "aWETH", 100 * USDC)
    ts = _reverts(driver, ts)


def test_bad_debt_drives_reserves_negative(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    venue, ts = _deploy(driver, world, ts)
    comet = venue.comet
    weth, aweth = world.tokens["WETH"].address.lower(), venue.collaterals["aWETH"].lower()
    _fund(world, venue, CAROL, "WETH", 5 * E18)
    _fund(world, venue, CAROL, "aWETH", 5 * E18)
    venue.supply_collateral(CAROL, "WETH", 5 * E18)
    venue.supply_collateral(CAROL, "aWETH", 5 * E18)
    venue.withdraw(CAROL, 16_250 * USDC)  # 5 x 2000 x 0.825 + 5 x 2000 x 0.80
    _fund(world, venue, DAVE, "WETH", E18)
    venue.supply_collateral(DAVE, "WETH", E18)
    venue.withdraw(DAVE, 500 * USDC)
    _, ts = mine_receipts(driver, ts)
    assert venue.reserves() == 0

    # The WETH feed also prices aWETH: one crash hits both collaterals.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1000))
    _, ts = mine_receipts(driver, ts)
    assert venue.is_liquidatable(CAROL) and not venue.is_liquidatable(DAVE)
    venue.absorb(ABSORBER, [CAROL, DAVE])  # one healthy account fails the whole batch
    ts = _reverts(driver, ts)
    assert venue.borrow_balance(CAROL) == 16_250 * USDC

    venue.absorb(ABSORBER, [CAROL])
    receipts, ts = mine_receipts(driver, ts)
    a, c = ABSORBER.lower(), CAROL.lower()
    # Seized value x liquidation factor = 5000 x 0.95 + 5000 x 0.90 = 9,250 < 16,250 of debt.
    assert _events(receipts, comet.address) == [
        ("AbsorbCollateral", a, c, weth, 5 * E18, 5_000 * 10**8),
        ("AbsorbCollateral", a, c, aweth, 5 * E18, 5_000 * 10**8),
        ("AbsorbDebt", a, c, 16_250 * USDC, 16_250 * 10**8),
    ]
    assert venue.borrow_balance(CAROL) == 0 and venue.supply_balance(CAROL) == 0
    assert venue.collateral_balance(CAROL, "WETH") == 0
    assert venue.collateral_balance(CAROL, "aWETH") == 0
    assert comet.call("totalBorrow") == 500 * USDC  # Dave's
    assert comet.call("totalSupply") == 100_000 * USDC
    # The whole debt leaves reserves; the 7,000 not covered by the credited collateral value
    # is bad debt that selling the seized collateral cannot recover.
    assert venue.reserves() == -16_250 * USDC
    assert comet.call("getCollateralReserves", weth) == 5 * E18
    assert comet.call("getCollateralReserves", aweth) == 5 * E18


def test_event_topics_match_real_comet() -> None:
    for s in spec.EVENTS:
        assert s.topic0 == s.topic0_onchain, s.declaration
        assert s.real
    by_topic = {s.topic0: s for s in spec.EVENTS}
    abi_events = [e for e in compile_contract("Comet").abi if e["type"] == "event"]
    assert len(abi_events) == len(spec.EVENTS)
    for entry in abi_events:
        s = by_topic[event_topic0(entry)]
        assert s.name == entry["name"]
        assert [p.indexed for p in s.params] == [i["indexed"] for i in entry["inputs"]]
