from __future__ import annotations

from typing import Any

import pytest
from conftest import mine_receipts
from eth_abi.abi import decode
from eth_utils.address import to_checksum_address

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.devnet.venues.gmx_v1 import (
    PRICE_PRECISION,
    GmxV1Venue,
    deploy_gmx_v1,
    position_key,
    usd,
)
from contagion.protocols import gmx_v1 as spec

pytestmark = pytest.mark.devnet

LP = "0x00000000000000000000000000000000000001f0"
ALICE = to_checksum_address("0x00000000000000000000000000000000000a11ce")
BOB = to_checksum_address("0x0000000000000000000000000000000000000b0b")
KEEPER = "0x000000000000000000000000000000000000beef"

USDC = 10**6
POOL = 1_000_000 * USDC
BY_TOPIC = {s.topic0: s for s in spec.EVENTS}


def _deploy(driver: DevnetDriver, world: BaseWorld, ts: int) -> tuple[GmxV1Venue, Contract, int]:
    # A plain ERC-20 stands in for Aave's aUSDC: another venue's claim, priced by USDC's feed.
    ausdc = driver.deploy("ERC20", "Aave Ethereum USDC", "aEthUSDC", 6, label="aUSDC")
    usdc_feed = world.feeds["USDC"].address
    venue = deploy_gmx_v1(
        driver,
        world,
        {
            "USDC": (world.tokens["USDC"].address, usdc_feed, 6),
            "aUSDC": (ausdc.address, usdc_feed, 6),
        },
        ["WETH", "WBTC"],
    )
    mint(world, "USDC", LP, POOL)
    venue.approve(LP, venue.pool_token)
    venue.deposit_liquidity(LP, POOL)
    for account in (ALICE, BOB):
        mint(world, "USDC", account, 10_000 * USDC)
        ausdc.tx(DEPLOYER, "mint", account, 10_000 * USDC)
        venue.approve(account, venue.pool_token)
        venue.approve(account, ausdc.address)
    _, ts = driver.mine_all(ts + 12)
    return venue, ausdc, ts




def _reverts(driver: DevnetDriver, ts: int) -> int:
    hashes = driver.flush()
    ts += 12
    driver.mine(ts)
    (receipt,) = driver.receipts(hashes)
    assert receipt["status"] == "0x0"
    return ts


def _events(receipts: list[dict[str, Any]], vault: str) -> list[tuple[Any, ...]]:
    """(name, *non-indexed values) of every vault log, in order."""
    out = []
    for receipt in receipts:
        for log in receipt["logs"]:
            if log["address"].lower() != vault.lower():
                continue
            s = BY_TOPIC[log["topics"][0]]
            types = [p.type for p in s.params if not p.indexed]
            values = decode(types, bytes.fromhex(log["data"][2:]))
            out.append(
                (s.name, *(to_checksum_address(v) if isinstance(v, str) else v for v in values))
            )
    return out


def _set_price(world: BaseWorld, symbol: str, dollars: int) -> None:
    world.feeds[symbol].tx(DEPLOYER, "transmit", usd_feed_answer(dollars))


def _usdc(world: BaseWorld, account: str) -> int:
    return int(world.tokens["USDC"].call("balanceOf", account))


def _check_solvent(venue: GmxV1Venue, tokens: list[str], open_margin: dict[str, int]) -> None:
    """Every token the vault holds is pool, fee reserve or some open position's margin."""
    vault = venue.vault
    for token in tokens:
        balance = int(vault.driver.at("ERC20", token).call("balanceOf", vault.address))
        assert balance == (
            venue.pool_amount(token)
            + int(vault.call("feeReserves", token))
            + open_margin.get(token, 0)
        )


def test_event_topics_match_real_gmx() -> None:
    abi = compile_contract("PerpsVault").abi
    known = {s.topic0 for s in spec.EVENTS}
    events = [e for e in abi if e["type"] == "event"]
    assert len(events) == len(spec.EVENTS)
    for entry in events:
        assert event_topic0(entry) in known, entry["name"]
    for s in spec.EVENTS:
        if s.real:
            assert s.topic0 == s.topic0_onchain, s.name
        else:
            assert s.note and s.topic0 == s.topic0_onchain
        assert s.topic_count == 1 or not s.real  # GMX v1 indexes nothing


def test_long_and_short_pnl_payouts_and_ausdc_margin(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> None:
    driver, world, ts = base
    venue, ausdc, ts = _deploy(driver, world, ts)
    usdc, weth = venue.pool_token, venue.index_tokens["WETH"]
    assert venue.vault.call("getMaxPrice", weth) == 2000 * PRICE_PRECISION
    assert venue.vault.call("getMinPrice", weth) == 2000 * PRICE_PRECISION

    # Alice: 10x long WETH on 1000 USDC; Bob: 5x short WETH on 1000 aUSDC.
    venue.increase(ALICE, "USDC", "WETH", 1_000 * USDC, usd(10_000), True)
    venue.increase(BOB, "aUSDC", "WETH", 1_000 * USDC, usd(5_000), False)
    receipts, ts = mine_receipts(driver, ts)
    key_a = position_key(ALICE, usdc, weth, True)
    assert "0x" + bytes(venue.vault.call("getPositionKey", ALICE, usdc, weth, True)).hex() == key_a
    key_b = bytes.fromhex(venue.key(BOB, "aUSDC", "WETH", False)[2:])
    ev = _events(receipts, venue.vault.address)
    assert ev == [
        (
            "IncreasePosition",
            bytes.fromhex(key_a[2:]),
            ALICE,
            usdc,
            weth,
            usd(1_000),
            usd(10_000),
            True,
            usd(2_000),
            usd(10),
        ),
        (
            "UpdatePosition",
            bytes.fromhex(key_a[2:]),
            usd(10_000),
            usd(990),
            usd(2_000),
            0,
            10_000 * USDC,
            0,
        ),
        (
            "IncreasePosition",
            key_b,
            BOB,
            ausdc.address,
            weth,
            usd(1_000),
            usd(5_000),
            False,
            usd(2_000),
            usd(5),
        ),
        ("UpdatePosition", key_b, usd(5_000), usd(995), usd(2_000), 0, 5_000 * USDC, 0),
    ]
    assert venue.position(ALICE, "USDC", "WETH", True)[:7] == (
        usd(10_000),
        usd(990),
        usd(2_000),
        0,
        10_000 * USDC,
        0,
        True,
    )
    assert venue.margin_held(ALICE, "USDC", "WETH", True) == 990 * USDC
    assert venue.margin_held(BOB, "aUSDC", "WETH", False) == 995 * USDC
    assert venue.open_interest("WETH") == (usd(10_000), usd(5_000))
    assert venue.vault.call("globalShortSizes", weth) == usd(5_000)
    assert venue.vault.call("reservedAmounts", usdc) == 15_000 * USDC

    # ETH +5% to 2100: Alice +500, Bob -125 (on 5000 short).
    _set_price(world, "WETH", 2100)
    _, ts = mine_receipts(driver, ts)
    assert venue.vault.call("getPositionDelta", ALICE, usdc, weth, True) == (True, usd(500))
    assert venue.vault.call("getPositionDelta", BOB, ausdc.address, weth, False) == (
        False,
        usd(250),
    )

    # Bob halves his short: half the loss (125) is realised into the pool in aUSDC; the fee (2.5)
    # comes out of his collateral since nothing is paid out.
    venue.decrease(BOB, "aUSDC", "WETH", 0, usd(2_500), False)
    receipts, ts = mine_receipts(driver, ts)
    half = usd(2_500) // 1000  # $2.5 fee
    assert _events(receipts, venue.vault.address) == [
        (
            "DecreasePosition",
            key_b,
            BOB,
            ausdc.address,
            weth,
            0,
            usd(2_500),
            False,
            usd(2_100),
            half,
        ),
        (
            "UpdatePosition",
            key_b,
            usd(2_500),
            usd(995) - usd(125) - half,
            usd(2_000),
            0,
            2_500 * USDC,
            -usd(125),
        ),
    ]
    assert venue.margin_held(BOB, "aUSDC", "WETH", False) == 995 * USDC - 125 * USDC - 2_500_000
    assert venue.pool_amount(ausdc.address) == 125 * USDC
    assert venue.position(BOB, "aUSDC", "WETH", False)[5:7] == (usd(125), False)

    # Alice closes at 2100: 990 - 10 fee back in USDC, plus 500 profit from the pool.
    venue.decrease(ALICE, "USDC", "WETH", 0, usd(10_000), True)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, venue.vault.address) == [
        (
            "DecreasePosition",
            bytes.fromhex(key_a[2:]),
            ALICE,
            usdc,
            weth,
            0,
            usd(10_000),
            True,
            usd(2_100),
            usd(10),
        ),
        ("ClosePosition", bytes.fromhex(key_a[2:]), usd(10_000), 0, usd(2_000), 0, 0, usd(500)),
    ]
    assert _usdc(world, ALICE) == 9_000 * USDC + 980 * USDC + 500 * USDC
    assert venue.position(ALICE, "USDC", "WETH", True) == (0, 0, 0, 0, 0, 0, True, 0)

    # ETH falls to 1900: Bob's remaining 2500 short is +125. Closing pays his margin back in
    # aUSDC (867.5 - 2.5 fee) and the profit in USDC from the pool.
    _set_price(world, "WETH", 1900)
    venue.decrease(BOB, "aUSDC", "WETH", 0, usd(2_500), False, BOB)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, venue.vault.address)[-1] == (
        "ClosePosition",
        key_b,
        usd(2_500),
        0,
        usd(2_000),
        0,
        0,
        0,
    )
    assert int(ausdc.call("balanceOf", BOB)) == 9_000 * USDC + 865 * USDC
    assert _usdc(world, BOB) == 10_000 * USDC + 125 * USDC
    assert venue.open_interest("WETH") == (0, 0)
    assert venue.vault.call("globalShortSizes", weth) == 0
    assert venue.vault.call("reservedAmounts", usdc) == 0
    assert venue.pool_amount() == POOL - 500 * USDC - 125 * USDC
    assert venue.vault.call("feeReserves", usdc) == 20 * USDC
    assert venue.vault.call("feeReserves", ausdc.address) == 10 * USDC
    _check_solvent(venue, [usdc, ausdc.address], {})

    # LP gets principal back only while it is not reserved for open sizes.
    venue.withdraw_liquidity(LP, 1_000 * USDC)
    _, ts = mine_receipts(driver, ts)
    assert _usdc(world, LP) == 1_000 * USDC
    assert venue.vault.call("lp_balances", LP) == POOL - 1_000 * USDC


def test_average_price_partial_collateral_and_leverage(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> None:
    driver, world, ts = base
    venue, ausdc, ts = _deploy(driver, world, ts)

    # 50x exactly on 1000 margin fails after the entry fee; 45x passes.
    venue.increase(ALICE, "USDC", "WBTC", 1_000 * USDC, usd(50_000), True)
    ts = _reverts(driver, ts)
    venue.increase(ALICE, "USDC", "WBTC", 1_000 * USDC, usd(45_000), True)
    _, ts = mine_receipts(driver, ts)
    assert venue.position(ALICE, "USDC", "WBTC", True)[:2] == (usd(45_000), usd(955))
    # Withdrawing collateral that would breach max leverage reverts.
    venue.decrease(ALICE, "USDC", "WBTC", usd(100), 0, True)
    ts = _reverts(driver, ts)

    # Bob: long 3000 at 30000, BTC to 33000, adds 3000: GMX's next average price.
    venue.increase(BOB, "aUSDC", "WBTC", 1_000 * USDC, usd(3_000), True)
    _set_price(world, "WBTC", 33_000)
    _, ts = mine_receipts(driver, ts)
    venue.increase(BOB, "aUSDC", "WBTC", 0, usd(3_000), True)
    _, ts = mine_receipts(driver, ts)
    delta = usd(300)
    expected_avg = usd(33_000) * usd(6_000) // (usd(6_000) + delta)
    size, collateral, avg, *_ = venue.position(BOB, "aUSDC", "WBTC", True)
    assert (size, collateral, avg) == (usd(6_000), usd(1_000) - usd(3) - usd(3), expected_avg)

    # Withdrawing 200 USD of collateral (no size change) pays 200 aUSDC, fee-free.
    venue.decrease(BOB, "aUSDC", "WBTC", usd(200), 0, True)
    _, ts = mine_receipts(driver, ts)
    assert int(ausdc.call("balanceOf", BOB)) == 9_200 * USDC
    assert venue.position(BOB, "aUSDC", "WBTC", True)[1] == usd(794)
    assert venue.margin_held(BOB, "aUSDC", "WBTC", True) == 794 * USDC
    assert venue.open_interest("WBTC") == (usd(51_000), 0)
    _check_solvent(
        venue,
        [venue.pool_token, ausdc.address],
        {venue.pool_token: 955 * USDC, ausdc.address: 794 * USDC},
    )

    # Alice takes a third of her profitable BTC long off (+4500 on 45000 at 33000): the 1500
    # realised pays the 15 fee, 1485 USDC comes out of the pool; her margin stays.
    venue.decrease(ALICE, "USDC", "WBTC", 0, usd(15_000), True)
    _, ts = mine_receipts(driver, ts)
    assert _usdc(world, ALICE) == 9_000 * USDC + 1_485 * USDC
    assert venue.position(ALICE, "USDC", "WBTC", True)[:7] == (
        usd(30_000),
        usd(955),
        usd(30_000),
        0,
        30_000 * USDC,
        usd(1_500),
        True,
    )
    assert venue.pool_amount() == POOL - 1_500 * USDC
    assert venue.vault.call("feeReserves", venue.pool_token) == 60 * USDC
    _check_solvent(venue, [venue.pool_token], {venue.pool_token: 955 * USDC})

    # Only the owner lists tokens.
    venue.vault.tx(ALICE, "add_index_token", ausdc.address, world.feeds["USDC"].address)
    ts = _reverts(driver, ts)


def test_liquidation_and_bad_debt(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    venue, ausdc, ts = _deploy(driver, world, ts)
    usdc, weth = venue.pool_token, venue.index_tokens["WETH"]
    venue.increase(ALICE, "USDC", "WETH", 1_000 * USDC, usd(10_000), True)
    venue.increase(BOB, "aUSDC", "WETH", 1_000 * USDC, usd(10_000), True)
    _, ts = mine_receipts(driver, ts)
    assert venue.liquidation_state(ALICE, "USDC", "WETH", True) == 0

    # Healthy positions cannot be liquidated.
    venue.liquidate(KEEPER, ALICE, "USDC", "WETH", True)
    ts = _reverts(driver, ts)

    # -4.5% (loss 450): still above maintenance ($100) after fees.
    _set_price(world, "WETH", 1910)
    _, ts = mine_receipts(driver, ts)
    assert venue.liquidation_state(ALICE, "USDC", "WETH", True) == 0
    venue.liquidate(KEEPER, ALICE, "USDC", "WETH", True)
    ts = _reverts(driver, ts)

    # -9% (loss 900): 990 - 900 - 10 fee = 80 < 100 maintenance -> liquidatable.
    _set_price(world, "WETH", 1820)
    _, ts = mine_receipts(driver, ts)
    assert venue.liquidation_state(ALICE, "USDC", "WETH", True) == 1
    venue.liquidate(KEEPER, ALICE, "USDC", "WETH", True)
    receipts, ts = mine_receipts(driver, ts)
    key_a = bytes.fromhex(venue.key(ALICE, "USDC", "WETH", True)[2:])
    assert _events(receipts, venue.vault.address) == [
        (
            "LiquidatePosition",
            key_a,
            ALICE,
            usdc,
            weth,
            True,
            usd(10_000),
            usd(990),
            10_000 * USDC,
            0,
            usd(1_820),
        ),
    ]
    assert _usdc(world, KEEPER) == 5 * USDC  # liquidation fee, in the margin token
    assert venue.pool_amount() == POOL + 975 * USDC  # seized margin less keeper and margin fee
    assert venue.vault.call("feeReserves", usdc) == 20 * USDC
    assert venue.bad_debt_usd() == 0
    assert venue.position(ALICE, "USDC", "WETH", True)[0] == 0

    # -15% (loss 1500 on 990 collateral): 510 USD of bad debt, the aUSDC margin goes to the pool.
    _set_price(world, "WETH", 1700)
    _, ts = mine_receipts(driver, ts)
    venue.decrease(BOB, "aUSDC", "WETH", 0, usd(10_000), True)  # losses exceed collateral
    ts = _reverts(driver, ts)
    venue.liquidate(KEEPER, BOB, "aUSDC", "WETH", True)
    receipts, ts = mine_receipts(driver, ts)
    key_b = bytes.fromhex(venue.key(BOB, "aUSDC", "WETH", True)[2:])
    assert _events(receipts, venue.vault.address) == [
        (
            "LiquidatePosition",
            key_b,
            BOB,
            ausdc.address,
            weth,
            True,
            usd(10_000),
            usd(990),
            10_000 * USDC,
            0,
            usd(1_700),
        ),
        ("BadDebt", key_b, BOB, ausdc.address, usd(510)),
    ]
    assert venue.bad_debt_usd() == usd(510)
    assert int(ausdc.call("balanceOf", KEEPER)) == 5 * USDC
    assert venue.pool_amount(ausdc.address) == 985 * USDC
    assert venue.open_interest("WETH") == (0, 0)
    assert venue.vault.call("reservedAmounts", usdc) == 0
    _check_solvent(venue, [usdc, ausdc.address], {})


def test_short_liquidation_on_rally(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    venue, _, ts = _deploy(driver, world, ts)
    wbtc = venue.index_tokens["WBTC"]
    venue.increase(ALICE, "USDC", "WBTC", 500 * USDC, usd(20_000), False)
    _, ts = mine_receipts(driver, ts)
    assert venue.vault.call("globalShortSizes", wbtc) == usd(20_000)
    # +1% (loss 200): 480 - 200 - 20 = 260 >= 200 maintenance.
    _set_price(world, "WBTC", 30_300)
    _, ts = mine_receipts(driver, ts)
    assert venue.liquidation_state(ALICE, "USDC", "WBTC", False) == 0
    # +1.33% (loss 266.67): 213.33 is above the 200 maintenance, but not once the 20 closing
    # fee is counted too.
    _set_price(world, "WBTC", 30_400)
    _, ts = mine_receipts(driver, ts)
    assert venue.liquidation_state(ALICE, "USDC", "WBTC", False) == 1
    venue.liquidate(KEEPER, ALICE, "USDC", "WBTC", False, BOB)
    _, ts = mine_receipts(driver, ts)
    assert _usdc(world, BOB) == 10_005 * USDC  # fee_receiver, not the keeper, is paid
    assert venue.pool_amount() == POOL + 480 * USDC - 5 * USDC - 20 * USDC
    assert venue.vault.call("globalShortSizes", wbtc) == 0
    assert venue.bad_debt_usd() == 0


def test_margin_token_repricing_settles_against_the_pool(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> None:
    """Collateral is fixed in USD at deposit (GMX); a repriced margin token is settled by the
    pool: surplus tokens go to it, a shortfall is topped up in USDC from it."""
    driver, world, ts = base
    venue, ausdc, ts = _deploy(driver, world, ts)
    venue.increase(ALICE, "aUSDC", "WETH", 1_000 * USDC, usd(10_000), True)
    venue.increase(BOB, "aUSDC", "WBTC", 1_000 * USDC, usd(10_000), True)
    _, ts = mine_receipts(driver, ts)

    # aUSDC (on the USDC feed) at $1.25: 980 USD out is 784 aUSDC; the fee is 8 aUSDC and the
    # other 198 held go to the pool.
    world.feeds["USDC"].tx(DEPLOYER, "transmit", 125_000_000)
    venue.decrease(ALICE, "aUSDC", "WETH", 0, usd(10_000), True)
    _, ts = mine_receipts(driver, ts)
    assert int(ausdc.call("balanceOf", ALICE)) == 9_000 * USDC + 784 * USDC
    assert venue.pool_amount(ausdc.address) == 198 * USDC

    # At $0.80: the fee takes 12.5 aUSDC, the 977.5 left are worth 782 USD, so 198 USD is
    # topped up from the pool as 247.5 USDC.
    world.feeds["USDC"].tx(DEPLOYER, "transmit", 80_000_000)
    venue.decrease(BOB, "aUSDC", "WBTC", 0, usd(10_000), True)
    _, ts = mine_receipts(driver, ts)
    assert int(ausdc.call("balanceOf", BOB)) == 9_000 * USDC + 977_500_000
    assert _usdc(world, BOB) == 10_000 * USDC + 247_500_000
    assert venue.pool_amount() == POOL - 247_500_000
    assert venue.vault.call("feeReserves", ausdc.address) == 40_500_000
    _check_solvent(venue, [venue.pool_token, ausdc.address], {})
