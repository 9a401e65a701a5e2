"""The Morpho-Blue-compatible singleton on a real anvil: ids, share math, health, liquidation
(with the exact incentive), bad debt, authorization and the events' real topic0s.

Expected amounts come from an independent Python copy of Morpho's SharesMathLib and liquidation
formulas, tracked alongside the chain."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode, encode
from eth_utils import keccak

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.morpho_blue import MorphoBlueVenue, deploy_morpho_blue, market_id
from contagion.protocols import morpho_blue as spec
from contagion.protocols.spec import EventSpec

pytestmark = pytest.mark.devnet

LENDER = "0x000000000000000000000000000000000000a001"
LENDER2 = "0x000000000000000000000000000000000000a002"
BORROWER = "0x000000000000000000000000000000000000b001"
OPERATOR = "0x000000000000000000000000000000000000c001"
LIQUIDATOR = "0x000000000000000000000000000000000000d001"

MKT = "WETH/USDC"
LLTV = 86 * 10**16
MARKETS = {MKT: ("WETH", "USDC", LLTV), "stETH/WETH": ("stETH", "WETH", 945 * 10**15)}

# -- an independent copy of Morpho's math ---------------------------------------------------
WAD, SCALE, VS, VA = 10**18, 10**36, 10**6, 1


def mul_div_down(x: int, y: int, d: int) -> int:
    return x * y // d


def mul_div_up(x: int, y: int, d: int) -> int:
    return (x * y + d - 1) // d


def shares_down(a: int, ta: int, ts: int) -> int:
    return mul_div_down(a, ts + VS, ta + VA)


def shares_up(a: int, ta: int, ts: int) -> int:
    return mul_div_up(a, ts + VS, ta + VA)


def assets_down(s: int, ta: int, ts: int) -> int:
    return mul_div_down(s, ta + VA, ts + VS)


def assets_up(s: int, ta: int, ts: int) -> int:
    return mul_div_up(s, ta + VA, ts + VS)


def incentive(lltv: int) -> int:
    return min(115 * 10**16, WAD * WAD // (WAD - 3 * 10**17 * (WAD - lltv) // WAD))


# -- chain helpers ----------------------------------------------------------------------------
def mine(driver: DevnetDriver, ts: int) -> tuple[list[dict[str, Any]], int]:
    """Send and mine the queue; every transaction must succeed. Returns the receipts."""
    hashes = driver.flush()
    driver.mine(ts)
    while int(driver.client.call("txpool_status")["pending"], 16) > 0:
        ts += 12
        driver.mine(ts)
    receipts = driver.receipts(hashes)
    assert all(r["status"] == "0x1" for r in receipts), [r["status"] for r in receipts]
    return receipts, ts + 12


def reverts(driver: DevnetDriver, ts: int) -> int:
    """Every queued transaction must revert."""
    hashes = driver.flush()
    driver.mine(ts)
    assert [r["status"] for r in driver.receipts(hashes)] == ["0x0"] * len(hashes)
    return ts + 12


def logs(receipts: list[dict[str, Any]], ev: EventSpec) -> list[dict[str, Any]]:
    out = []
    for receipt in receipts:
        for log in receipt["logs"]:
            if log["topics"][0] != ev.topic0:
                continue
            assert len(log["topics"]) == ev.topic_count
            values: dict[str, Any] = {}
            indexed = [p for p in ev.params if p.indexed]
            for p, topic in zip(indexed, log["topics"][1:], strict=True):
                values[p.name] = decode([p.type], bytes.fromhex(topic[2:]))[0]
            plain = [p for p in ev.params if not p.indexed]
            decoded = decode([p.type for p in plain], bytes.fromhex(log["data"][2:]))
            values.update({p.name: v for p, v in zip(plain, decoded, strict=True)})
            out.append(values)
    return out


def setup(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> tuple[DevnetDriver, BaseWorld, MorphoBlueVenue, int]:
    driver, world, ts = base
    venue = deploy_morpho_blue(driver, world, MARKETS)
    for who in (LENDER, LENDER2, BORROWER, OPERATOR, LIQUIDATOR):
        venue.approve(who, MKT)
        mint(world, "USDC", who, 1_000_000 * 10**6)
        mint(world, "WETH", who, 100 * 10**18)
    _, ts = mine(driver, ts + 12)
    return driver, world, venue, ts


class Book:
    """The market's totals as Morpho should hold them."""

    def __init__(self) -> None:
        self.sa = self.ss = self.ba = self.bs = 0

    def totals(self) -> tuple[int, int, int, int]:
        return self.sa, self.ss, self.ba, self.bs


# -- tests ------------------------------------------------------------------------------------
def test_topics_ids_oracle_and_views(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    for ev in spec.EVENTS:
        assert ev.real and ev.topic0 == ev.topic0_onchain, ev.declaration
    known = {ev.topic0 for ev in spec.EVENTS}
    for name in ("MorphoBlue", "MorphoChainlinkOracle"):
        for entry in compile_contract(name).abi:
            if entry["type"] == "event":
                assert event_topic0(entry) in known, entry["name"]

    driver, world, ts = base
    venue = deploy_morpho_blue(driver, world, MARKETS)
    receipts, ts = mine(driver, ts + 12)
    created = logs(receipts, spec.CREATE_MARKET)
    assert len(created) == 2
    assert [e["lltv"] for e in logs(receipts, spec.ENABLE_LLTV)] == sorted(
        lltv for _, _, lltv in MARKETS.values()
    )
    assert [e["irm"] for e in logs(receipts, spec.ENABLE_IRM)] == ["0x" + "00" * 20]
    for key, (collateral, loan, lltv) in MARKETS.items():
        params = (
            world.tokens[loan].address,
            world.tokens[collateral].address,
            venue.oracles[key].address,
            "0x" + "00" * 20,
            lltv,
        )
        expected_id = keccak(encode(["(address,address,address,address,uint256)"], [params]))
        assert venue.ids[key] == expected_id
        assert any(e["id"] == expected_id for e in created)
        stored = venue.morpho.call("idToMarketParams", expected_id)
        assert [str(x).lower() for x in stored] == [str(x).lower() for x in params]
        assert venue.market_state(key)[:4] == (0, 0, 0, 0) and venue.market_state(key)[4] > 0
    # Oracle: collateral priced in loan-token units, scaled by 1e36, decimals-aware.
    assert venue.price(MKT) == 10**36 * 2000 * 10**6 // 10**18  # 1 WETH-wei in USDC units
    assert venue.price("stETH/WETH") == 10**36
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1999.5))
    world.feeds["USDC"].tx(DEPLOYER, "transmit", usd_feed_answer(1.0003))
    _, ts = mine(driver, ts)
    assert venue.price(MKT) == (10**36 * 199_950_000_000 * 10**6 // (100_030_000 * 10**18))
    assert venue.price("stETH/WETH") == (10**36 * usd_feed_answer(2000) // usd_feed_answer(1999.5))
    # Owner-only configuration; unknown LLTVs and IRMs cannot back a market.
    venue.morpho.tx(LENDER, "enableLltv", 5 * 10**17)
    venue.morpho.tx(DEPLOYER, "enableLltv", LLTV)  # already set
    venue.morpho.tx(DEPLOYER, "createMarket", venue.markets[MKT])  # already created
    bad = (*venue.markets[MKT][:4], 5 * 10**17)
    venue.morpho.tx(DEPLOYER, "createMarket", bad)
    venue.morpho.tx(DEPLOYER, "createMarket", (*venue.markets[MKT][:3], LENDER, LLTV))
    venue.morpho.tx(LENDER, "setFeeRecipient", LENDER)
    venue.morpho.tx(DEPLOYER, "setFee", venue.markets[MKT], 26 * 10**16)  # above 25 %
    reverts(driver, ts)
    assert venue.morpho.call("owner").lower() == DEPLOYER.lower()


def test_supply_borrow_repay_withdraw_share_math(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, venue, ts = setup(base)
    usdc = world.tokens["USDC"]
    book = Book()

    def check_totals() -> None:
        assert venue.market_state(MKT)[:4] == book.totals()

    # Supply by assets (shares rounded down), then by a share count that is not a multiple of
    # the 1e6 virtual ratio (assets rounded up), which leaves a non-integer share price.
    venue.supply(LENDER, MKT, 100_000 * 10**6)
    receipts, ts = mine(driver, ts)
    s1 = shares_down(100_000 * 10**6, book.sa, book.ss)
    book.sa, book.ss = book.sa + 100_000 * 10**6, book.ss + s1
    [ev] = logs(receipts, spec.SUPPLY)
    assert (ev["assets"], ev["shares"]) == (100_000 * 10**6, s1)
    assert ev["caller"].lower() == LENDER and ev["onBehalf"].lower() == LENDER
    assert ev["id"] == venue.ids[MKT]

    odd_shares = 12_345_678_901_234_567
    venue.supply(LENDER2, MKT, 0, odd_shares)
    receipts, ts = mine(driver, ts)
    a2 = assets_up(odd_shares, book.sa, book.ss)
    book.sa, book.ss = book.sa + a2, book.ss + odd_shares
    [ev] = logs(receipts, spec.SUPPLY)
    assert (ev["assets"], ev["shares"]) == (a2, odd_shares)
    check_totals()
    assert venue.position(MKT, LENDER2) == (odd_shares, 0, 0)
    assert book.ss % book.sa != 0  # the share price is no longer a round 1e6
    venue.supply(LENDER, MKT, 7_777_777_777)
    receipts, ts = mine(driver, ts)
    s3 = shares_down(7_777_777_777, book.sa, book.ss)
    book.sa, book.ss = book.sa + 7_777_777_777, book.ss + s3
    [ev] = logs(receipts, spec.SUPPLY)
    assert (ev["assets"], ev["shares"]) == (7_777_777_777, s3)
    s1 += s3
    check_totals()
    assert usdc.call("balanceOf", venue.morpho.address) == book.sa

    # Borrow by odd shares (assets rounded down), then by assets (shares rounded up).
    venue.supply_collateral(BORROWER, MKT, 10 * 10**18)
    venue.borrow(BORROWER, MKT, 0, 3_333_333_333_333_333)
    venue.borrow(BORROWER, MKT, 1_234_567_891, 0, receiver=OPERATOR)
    receipts, ts = mine(driver, ts)
    [collateral_ev] = logs(receipts, spec.SUPPLY_COLLATERAL)
    assert collateral_ev["assets"] == 10 * 10**18
    b1 = assets_down(3_333_333_333_333_333, book.ba, book.bs)
    book.ba, book.bs = book.ba + b1, book.bs + 3_333_333_333_333_333
    bs2 = shares_up(1_234_567_891, book.ba, book.bs)
    book.ba, book.bs = book.ba + 1_234_567_891, book.bs + bs2
    borrows = logs(receipts, spec.BORROW)
    assert [(e["assets"], e["shares"]) for e in borrows] == [
        (b1, 3_333_333_333_333_333),
        (1_234_567_891, bs2),
    ]
    assert borrows[1]["receiver"].lower() == OPERATOR
    assert borrows[1]["caller"].lower() == BORROWER
    check_totals()
    assert venue.position(MKT, BORROWER) == (0, book.bs, 10 * 10**18)
    assert usdc.call("balanceOf", OPERATOR) == 1_000_000 * 10**6 + 1_234_567_891

    # Repay by assets (shares rounded down), then by shares (assets rounded up).
    venue.repay(BORROWER, MKT, 1_000_000_007)
    receipts, ts = mine(driver, ts)
    rs1 = shares_down(1_000_000_007, book.ba, book.bs)
    book.ba, book.bs = book.ba - 1_000_000_007, book.bs - rs1
    venue.repay(BORROWER, MKT, 0, 777_777_777_777)
    receipts2, ts = mine(driver, ts)
    ra2 = assets_up(777_777_777_777, book.ba, book.bs)
    book.ba, book.bs = max(book.ba - ra2, 0), book.bs - 777_777_777_777
    repays = logs(receipts + receipts2, spec.REPAY)
    assert [(e["assets"], e["shares"]) for e in repays] == [
        (1_000_000_007, rs1),
        (ra2, 777_777_777_777),
    ]
    check_totals()

    # Withdraw by assets (shares rounded up), then by shares (assets rounded down).
    venue.withdraw(LENDER, MKT, 9_999_999_999)
    receipts, ts = mine(driver, ts)
    ws1 = shares_up(9_999_999_999, book.sa, book.ss)
    book.sa, book.ss = book.sa - 9_999_999_999, book.ss - ws1
    venue.withdraw(LENDER2, MKT, 0, odd_shares, receiver=OPERATOR)
    receipts2, ts = mine(driver, ts)
    wa2 = assets_down(odd_shares, book.sa, book.ss)
    book.sa, book.ss = book.sa - wa2, book.ss - odd_shares
    withdraws = logs(receipts + receipts2, spec.WITHDRAW)
    assert [(e["assets"], e["shares"]) for e in withdraws] == [
        (9_999_999_999, ws1),
        (wa2, odd_shares),
    ]
    assert withdraws[1]["receiver"].lower() == OPERATOR
    assert withdraws[1]["onBehalf"].lower() == LENDER2
    check_totals()
    assert venue.position(MKT, LENDER) == (s1 - ws1, 0, 0)
    # The singleton holds exactly supplied - borrowed of the loan token (no interest).
    assert usdc.call("balanceOf", venue.morpho.address) == book.sa - book.ba

    # Morpho's input rules: exactly one of assets/shares, no callback data, zero addresses.
    m = venue.morpho
    params = venue.markets[MKT]
    m.tx(LENDER, "supply", params, 10, 10, LENDER, b"")
    m.tx(LENDER, "supply", params, 0, 0, LENDER, b"")
    m.tx(LENDER, "supply", params, 10**6, 0, LENDER, b"\x01")
    m.tx(LENDER, "supply", params, 10**6, 0, "0x" + "00" * 20, b"")
    m.tx(BORROWER, "repay", params, 10**6, 0, BORROWER, b"\x01")
    m.tx(BORROWER, "supplyCollateral", params, 0, BORROWER, b"")
    m.tx(LENDER, "supply", (*params[:4], 5 * 10**17), 10**6, 0, LENDER, b"")  # no market
    # Liquidity: the borrowed part of the supply cannot leave (LENDER's shares would cover it).
    free = book.sa - book.ba
    assert assets_down(venue.position(MKT, LENDER)[0], book.sa, book.ss) > free + 1
    m.tx(LENDER, "withdraw", params, free + 1, 0, LENDER, LENDER)
    ts = reverts(driver, ts)
    check_totals()
    venue.withdraw(LENDER, MKT, free)
    _, ts = mine(driver, ts)
    ws3 = shares_up(free, book.sa, book.ss)
    book.sa, book.ss = book.sa - free, book.ss - ws3
    check_totals()
    # With no liquidity left, even a healthy borrow of one unit fails.
    venue.borrow(BORROWER, MKT, 1)
    reverts(driver, ts)


def test_health_borrow_limit_and_liquidation_incentive(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> None:
    driver, world, venue, ts = setup(base)
    usdc, weth = world.tokens["USDC"], world.tokens["WETH"]
    venue.supply(LENDER, MKT, 500_000 * 10**6)
    venue.supply_collateral(BORROWER, MKT, 10 * 10**18)
    _, ts = mine(driver, ts)

    # 10 WETH at $2000, LLTV 86%: the limit is exactly 17,200 USDC (1:1e6 share price).
    max_borrow = 10 * 10**18 * venue.price(MKT) // SCALE * LLTV // WAD
    assert max_borrow == 17_200 * 10**6
    venue.borrow(BORROWER, MKT, max_borrow + 1)
    ts = reverts(driver, ts)
    venue.borrow(BORROWER, MKT, max_borrow)
    _, ts = mine(driver, ts)
    assert venue.is_healthy(MKT, BORROWER)
    # Withdrawing any collateral now breaks health, and so does borrowing one more unit.
    venue.withdraw_collateral(BORROWER, MKT, 1)
    venue.borrow(BORROWER, MKT, 1)
    # A healthy position cannot be liquidated.
    venue.liquidate(LIQUIDATOR, MKT, BORROWER, seized_assets=10**15)
    ts = reverts(driver, ts)

    # WETH falls to $1900: 10 * 1900 * 0.86 = 16,340 < 17,200, so the position is liquidatable.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1900))
    _, ts = mine(driver, ts)
    assert not venue.is_healthy(MKT, BORROWER)
    price = venue.price(MKT)
    lif = incentive(LLTV)
    assert lif == 10**36 // (WAD - 42 * 10**15)  # 1 / (1 - 0.3 * 0.14)

    sa, ss, ba, bs, _, _ = venue.market_state(MKT)
    _, borrow_shares, _ = venue.position(MKT, BORROWER)
    repaid_shares = borrow_shares // 3
    seized = mul_div_down(assets_down(repaid_shares, ba, bs) * lif // WAD, SCALE, price)
    repaid = assets_up(repaid_shares, ba, bs)
    usdc_before = usdc.call("balanceOf", LIQUIDATOR)
    weth_before = weth.call("balanceOf", LIQUIDATOR)
    venue.liquidate(LIQUIDATOR, MKT, BORROWER, repaid_shares=repaid_shares)
    receipts, ts = mine(driver, ts)
    [ev] = logs(receipts, spec.LIQUIDATE)
    assert (ev["repaidAssets"], ev["repaidShares"], ev["seizedAssets"]) == (
        repaid,
        repaid_shares,
        seized,
    )
    assert (ev["badDebtAssets"], ev["badDebtShares"]) == (0, 0)
    assert ev["caller"].lower() == LIQUIDATOR and ev["borrower"].lower() == BORROWER
    # The liquidator's bonus is the incentive: seized value ~= repaid * LIF.
    assert abs(seized * price // SCALE - repaid * lif // WAD) <= 3  # roundings only
    assert usdc.call("balanceOf", LIQUIDATOR) == usdc_before - repaid
    assert weth.call("balanceOf", LIQUIDATOR) == weth_before + seized
    ba, bs = ba - repaid, bs - repaid_shares
    assert venue.market_state(MKT)[:4] == (sa, ss, ba, bs)
    assert venue.position(MKT, BORROWER) == (0, bs, 10 * 10**18 - seized)

    # Now by seized collateral: repaid shares rounded up from the quoted value / LIF.
    seize = 2 * 10**18 + 10**9 + 7  # not a round number of USDC units at this price
    assert seize * price % SCALE != 0
    repaid_shares = shares_up(mul_div_up(mul_div_up(seize, price, SCALE), WAD, lif), ba, bs)
    repaid = assets_up(repaid_shares, ba, bs)
    venue.liquidate(LIQUIDATOR, MKT, BORROWER, seized_assets=seize)
    receipts, ts = mine(driver, ts)
    [ev] = logs(receipts, spec.LIQUIDATE)
    assert (ev["repaidAssets"], ev["repaidShares"], ev["seizedAssets"]) == (
        repaid,
        repaid_shares,
        seize,
    )
    assert venue.position(MKT, BORROWER)[1:] == (bs - repaid_shares, 10 * 10**18 - seized - seize)


def test_bad_debt_is_socialised_to_suppliers(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, venue, ts = setup(base)
    venue.supply(LENDER, MKT, 100_000 * 10**6)
    venue.supply(LENDER2, MKT, 50_000 * 10**6)
    venue.supply_collateral(BORROWER, MKT, 10 * 10**18)
    venue.supply_collateral(OPERATOR, MKT, 50 * 10**18)
    # Borrowing an odd share count rounds the debt down, leaving a non-round debt share price.
    venue.borrow(BORROWER, MKT, 0, 17_000 * 10**12 + 999_999)
    venue.borrow(OPERATOR, MKT, 1_000 * 10**6)
    _, ts = mine(driver, ts)
    assert venue.market_state(MKT)[2] == 18_000 * 10**6
    lender_shares = venue.position(MKT, LENDER)[0]
    lender_value = assets_down(lender_shares, *venue.market_state(MKT)[:2])
    assert lender_value == 100_000 * 10**6

    def seize_everything(borrower: str) -> int:
        """Liquidate all of `borrower`'s collateral; check Morpho's bad-debt accounting."""
        nonlocal ts
        price = venue.price(MKT)
        sa, ss, ba, bs, _, _ = venue.market_state(MKT)
        _, borrow_shares, collateral = venue.position(MKT, borrower)
        lif = incentive(LLTV)
        repaid_shares = shares_up(
            mul_div_up(mul_div_up(collateral, price, SCALE), WAD, lif), ba, bs
        )
        repaid = assets_up(repaid_shares, ba, bs)
        ba, bs = max(ba - repaid, 0), bs - repaid_shares
        bad_shares = borrow_shares - repaid_shares
        bad_assets = min(ba, assets_up(bad_shares, ba, bs))
        assert bad_shares > 0

        venue.liquidate(LIQUIDATOR, MKT, borrower, seized_assets=collateral)
        receipts, ts = mine(driver, ts)
        [ev] = logs(receipts, spec.LIQUIDATE)
        assert (ev["repaidAssets"], ev["repaidShares"], ev["seizedAssets"]) == (
            repaid,
            repaid_shares,
            collateral,
        )
        assert (ev["badDebtAssets"], ev["badDebtShares"]) == (bad_assets, bad_shares)
        # The loss leaves the borrower, the borrow totals and the suppliers' assets.
        assert venue.position(MKT, borrower) == (0, 0, 0)
        assert venue.market_state(MKT)[:4] == (
            sa - bad_assets,
            ss,
            ba - bad_assets,
            bs - bad_shares,
        )
        return bad_assets

    # A crash to $1000: BORROWER's 10 WETH repay ~10,000 / LIF of a 17,000 USDC debt.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1000))
    _, ts = mine(driver, ts)
    bad1 = seize_everything(BORROWER)
    assert 7_000 * 10**6 < bad1 < 7_500 * 10**6  # 17,000 - 10,000 / LIF
    sa, ss = venue.market_state(MKT)[:2]
    new_value = assets_down(lender_shares, sa, ss)
    assert sa == 150_000 * 10**6 - bad1
    assert abs((lender_value - new_value) - bad1 * 100 // 150) <= 1  # pro-rata loss
    # Then to $10: OPERATOR, now the last borrower, is wiped out too.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(10))
    _, ts = mine(driver, ts)
    bad2 = seize_everything(OPERATOR)
    assert venue.market_state(MKT)[2:4] == (0, 0)

    # Suppliers share what is left: both exit in full, leaving only rounding dust.
    sa, ss = venue.market_state(MKT)[:2]
    assert sa == 150_000 * 10**6 - bad1 - bad2
    lender2_shares = venue.position(MKT, LENDER2)[0]
    out1 = assets_down(lender_shares, sa, ss)
    out2 = assets_down(lender2_shares, sa - out1, ss - lender_shares)
    venue.withdraw(LENDER, MKT, 0, lender_shares)
    venue.withdraw(LENDER2, MKT, 0, lender2_shares)
    receipts, ts = mine(driver, ts)
    assert [e["assets"] for e in logs(receipts, spec.WITHDRAW)] == [out1, out2]
    assert venue.market_state(MKT)[:4] == (sa - out1 - out2, 0, 0, 0)
    assert sa - out1 - out2 <= 1
    assert world.tokens["USDC"].call("balanceOf", venue.morpho.address) == sa - out1 - out2


def taylor_compounded(x: int, n: int) -> int:
    """MathLib.wTaylorCompounded: e^(x n) − 1 to three terms, in WAD."""
    first = x * n
    second = mul_div_down(first, first, 2 * WAD)
    return first + second + mul_div_down(second, first, 3 * WAD)


RATE = 5 * 10**17 // 31_536_000  # 50 % a year, per second
FEE_TO, FEE_TO2 = "0x000000000000000000000000000000000000fee1", \
    "0x000000000000000000000000000000000000fee2"


def test_interest_accrues_with_fee_shares(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    """A market backed by a fixed-rate IRM accrues as Morpho does: on each entry point, the
    borrow total times the rate compounded over the elapsed seconds, onto both totals; the
    fee's share of it minted as supply shares to the fee recipient of the moment."""
    driver, _, venue, ts = setup(base)
    irm = driver.deploy("FixedRateIrm", RATE, label="fixed-rate IRM")
    venue.morpho.tx(DEPLOYER, "enableIrm", irm.address)
    key = "WETH/USDC@fixed"
    venue.create_market(key, (*venue.markets[MKT][:3], irm.address, LLTV))
    venue.approve(LENDER, key)
    venue.approve(BORROWER, key)
    venue.set_fee_recipient(FEE_TO)
    receipts, ts = mine(driver, ts)
    assert [e["newFeeRecipient"] for e in logs(receipts, spec.SET_FEE_RECIPIENT)] == [FEE_TO]
    assert venue.morpho.call("feeRecipient").lower() == FEE_TO
    assert venue.ids[key] == market_id(venue.markets[key]) != venue.ids[MKT]

    venue.supply(LENDER, key, 100_000 * 10**6)
    venue.supply_collateral(BORROWER, key, 10 * 10**18)
    venue.borrow(BORROWER, key, 0, 5_000 * 10**12 + 777)  # an odd share count
    _, ts = mine(driver, ts)
    book = Book()
    book.sa, book.ss, book.ba, book.bs = venue.market_state(key)[:4]
    last = venue.market_state(key)[4]

    def accrued(receipts: list[dict[str, Any]], fee: int) -> None:
        """The one AccrueInterest in the receipts, against the Python copy of the book."""
        nonlocal last
        block = driver.client.call("eth_getBlockByNumber", [receipts[0]["blockNumber"], False])
        now = int(block["timestamp"], 16)
        interest = mul_div_down(book.ba, taylor_compounded(RATE, now - last), WAD)
        book.ba, book.sa = book.ba + interest, book.sa + interest
        fee_amount = mul_div_down(interest, fee, WAD)
        fee_shares = shares_down(fee_amount, book.sa - fee_amount, book.ss)
        book.ss += fee_shares
        [ev] = logs(receipts, spec.ACCRUE_INTEREST)
        assert (ev["id"], ev["prevBorrowRate"], ev["interest"], ev["feeShares"]) == (
            venue.ids[key], RATE, interest, fee_shares)
        assert interest > 0 and (fee_shares > 0) == (fee > 0)
        last = now

    # an hour without fee, then setFee accrues at the old (zero) fee before it changes
    venue.set_fee(key, 10 * 10**16)
    receipts, ts = mine(driver, ts + 3600)
    accrued(receipts, 0)
    assert [e["newFee"] for e in logs(receipts, spec.SET_FEE)] == [10 * 10**16]
    assert venue.market_state(key)[:4] == book.totals()
    assert venue.market_state(key)[5] == 10 * 10**16
    # an hour with the fee: FEE_TO is minted shares
    venue.accrue_interest(OPERATOR, key)
    receipts, ts = mine(driver, ts + 3600)
    accrued(receipts, 10 * 10**16)
    assert venue.market_state(key)[:4] == book.totals()
    fee_to_shares = venue.position(key, FEE_TO)[0]
    assert fee_to_shares == book.ss - venue.position(key, LENDER)[0] > 0
    # the next recipient takes the next fee; a supply is priced after the accrual it causes
    venue.set_fee_recipient(FEE_TO2)
    _, ts = mine(driver, ts)
    venue.supply(LENDER2, key, 1_000 * 10**6)
    receipts, ts = mine(driver, ts + 3600)
    accrued(receipts, 10 * 10**16)
    [supplied] = logs(receipts, spec.SUPPLY)
    assert supplied["shares"] == shares_down(1_000 * 10**6, book.sa, book.ss)
    book.sa, book.ss = book.sa + 1_000 * 10**6, book.ss + supplied["shares"]
    assert venue.market_state(key)[:4] == book.totals()
    assert venue.position(key, FEE_TO)[0] == fee_to_shares
    assert venue.position(key, FEE_TO2)[0] > 0
    # the debt grew by the interest: repaying every share costs more than was borrowed
    shares = venue.position(key, BORROWER)[1]
    venue.repay(BORROWER, key, 0, shares)
    receipts, ts = mine(driver, ts)
    accrued(receipts, 10 * 10**16)
    [repaid] = logs(receipts, spec.REPAY)
    assert repaid["assets"] == assets_up(shares, book.ba, book.bs) > 5_000 * 10**6 + 1
    assert venue.market_state(key)[2:4] == (max(book.ba - repaid["assets"], 0), 0)


def test_authorization(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, venue, ts = setup(base)
    venue.supply(LENDER, MKT, 100_000 * 10**6)
    venue.supply_collateral(BORROWER, MKT, 10 * 10**18)
    _, ts = mine(driver, ts)
    # Without authorization, nobody else can borrow, withdraw or pull collateral for BORROWER.
    venue.borrow(OPERATOR, MKT, 10**6, on_behalf=BORROWER)
    venue.withdraw_collateral(OPERATOR, MKT, 1, on_behalf=BORROWER)
    venue.withdraw(OPERATOR, MKT, 10**6, on_behalf=LENDER)
    ts = reverts(driver, ts)

    venue.morpho.tx(BORROWER, "setAuthorization", OPERATOR, True)
    receipts, ts = mine(driver, ts)
    [ev] = logs(receipts, spec.SET_AUTHORIZATION)
    assert (
        ev["caller"].lower(),
        ev["authorizer"].lower(),
        ev["authorized"].lower(),
        ev["newIsAuthorized"],
    ) == (BORROWER, BORROWER, OPERATOR, True)
    assert venue.morpho.call("isAuthorized", BORROWER, OPERATOR) is True
    assert venue.morpho.call("isAuthorized", OPERATOR, BORROWER) is False

    # Supplying and repaying for someone else needs no authorization; the rest now works.
    usdc = world.tokens["USDC"]
    before = usdc.call("balanceOf", OPERATOR)
    venue.borrow(OPERATOR, MKT, 1_000 * 10**6, on_behalf=BORROWER)
    venue.withdraw_collateral(OPERATOR, MKT, 10**18, on_behalf=BORROWER)
    venue.repay(LIQUIDATOR, MKT, 500 * 10**6, on_behalf=BORROWER)
    venue.supply_collateral(LIQUIDATOR, MKT, 10**18, on_behalf=BORROWER)
    receipts, ts = mine(driver, ts)
    [borrow_ev] = logs(receipts, spec.BORROW)
    assert borrow_ev["caller"].lower() == OPERATOR and borrow_ev["onBehalf"].lower() == BORROWER
    [wc] = logs(receipts, spec.WITHDRAW_COLLATERAL)
    assert (wc["caller"].lower(), wc["onBehalf"].lower(), wc["receiver"].lower(), wc["assets"]) == (
        OPERATOR,
        BORROWER,
        OPERATOR,
        10**18,
    )
    assert usdc.call("balanceOf", OPERATOR) == before + 1_000 * 10**6
    _, borrow_shares, collateral = venue.position(MKT, BORROWER)
    assert collateral == 10 * 10**18 and borrow_shares == 500 * 10**6 * VS

    # Setting the same value again reverts (ALREADY_SET); revoking works and blocks again.
    venue.morpho.tx(BORROWER, "setAuthorization", OPERATOR, True)
    ts = reverts(driver, ts)
    venue.morpho.tx(BORROWER, "setAuthorization", OPERATOR, False)
    _, ts = mine(driver, ts)
    venue.borrow(OPERATOR, MKT, 10**6, on_behalf=BORROWER)
    reverts(driver, ts)


def test_markets_are_isolated(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    """WETH posted as collateral in WETH/USDC sits in the same singleton, but it is not
    liquidity for the stETH/WETH market: a borrow there is capped by that market's supply."""
    driver, world, venue, ts = setup(base)
    steth_market = "stETH/WETH"
    venue.approve(LENDER, steth_market)
    venue.approve(BORROWER, steth_market)
    mint(world, "stETH", BORROWER, 50 * 10**18)
    venue.supply(LENDER, steth_market, 10 * 10**18)
    venue.supply_collateral(OPERATOR, MKT, 50 * 10**18)
    venue.supply_collateral(BORROWER, steth_market, 50 * 10**18)
    _, ts = mine(driver, ts)
    assert world.tokens["WETH"].call("balanceOf", venue.morpho.address) == 60 * 10**18
    assert venue.price(steth_market) == 10**36
    venue.borrow(BORROWER, steth_market, 10 * 10**18 + 1)  # healthy, but beyond this market
    ts = reverts(driver, ts)
    venue.borrow(BORROWER, steth_market, 10 * 10**18)
    _, ts = mine(driver, ts)
    assert venue.market_state(steth_market)[:4] == (
        10 * 10**18,
        10 * 10**24,
        10 * 10**18,
        10 * 10**24,
    )
    assert venue.market_state(MKT)[:4] == (0, 0, 0, 0)
    assert venue.position(MKT, OPERATOR) == (0, 0, 50 * 10**18)
