"""Compound v3 base positions against the contracts, with interest accruing.

A short devnet crisis, then the Comet USDC market given USDC-like rate curves (kinks at 90 %;
borrow 1.5 % a year + 6 % × utilization, 300 % a year more above the kink) and used to 97 %:
a lender supplies 500,000 USDC, a borrower borrows 100,000 against WETH, a second borrower
takes all but 0.1 % of what its borrow collateral factor (82.5 %) allows. A month later, with
no price moving, each base balance equals Comet's `balanceOf` / `borrowBalanceOf` at every
snapshot, interest to the block's second included; the flows' sums would miss it (measured,
see the test). After 150 days the second borrower's debt has outgrown its liquidate
collateral factor (89.5 %) on interest alone: the absorb is decided valid, on the debt Comet
computed, where the flows' sum of the borrow would have found it healthy. Every blocking check
holds, and the truth check agrees.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import World, named_address, scenario_world
from eth_utils import to_checksum_address

from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.compound_v3 import CompoundV3Venue
from contagion.protocols.compound_v3 import (
    InterestRates,
    accrued_indices,
    present_value_borrow,
)
from contagion.registry import Registry
from contagion.truth import truth_check
from contagion.warehouse import connect_readonly, run_checks

pytestmark = pytest.mark.devnet

SCENARIO = """
name: compound-interest
seed: 5
blocks: 10
accounts:
  liquidity_providers: {count: 2}
prices:
  ETH: {gbm: {start: 2000, vol: 0.1}}
  BTC: {gbm: {start: 30000, vol: 0.1}}
  USDC: {gbm: {start: 1.0}}
activity: 0.3
"""

WAD, DAY = 10**18, 86_400
VENUE = "compound_v3_usdc"
# USDC-like curves, yearly (1e18 = 100 %): kinks at 90 %
RATES = InterestRates.per_year(9 * 10**17, 5 * 10**16, 2 * WAD, 0,
                               9 * 10**17, 6 * 10**16, 3 * WAD, 15 * 10**15)
UTILIZATION_PERCENT = 97

LENDER, BORROWER = named_address("compound/lender"), named_address("compound/borrower")
EDGE, ABSORBER = named_address("compound/edge-borrower"), named_address("compound/absorber")
BLOCKS: dict[str, int] = {}  # the steps' blocks, as the scenario mined them


def _feed(registry: Registry, feed_id: str) -> str:
    return next(f.address for f in registry.feeds if f.id == feed_id)


def _interest_at_compound(driver: DevnetDriver, registry: Registry) -> None:
    usdc, weth = (driver.at("ERC20", registry.token(s).address) for s in ("USDC", "WETH"))
    venue = CompoundV3Venue(driver.at("Comet", registry.venue(VENUE).main_contract), "USDC",
                            usdc.address, {"WETH": weth.address})
    comet = venue.comet
    ts = int(driver.client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) + 12
    venue.set_rates(RATES)
    usdc.tx(DEPLOYER, "mint", LENDER, 500_000 * 10**6)
    weth.tx(DEPLOYER, "mint", BORROWER, 100 * WAD)
    for who in (BORROWER, EDGE):
        weth.tx(who, "approve", comet.address, 2**256 - 1)
    usdc.tx(LENDER, "approve", comet.address, 2**256 - 1)
    venue.supply(LENDER, 500_000 * 10**6)
    venue.supply_collateral(BORROWER, "WETH", 100 * WAD)
    _, ts = driver.mine_all(ts)
    venue.withdraw(BORROWER, 100_000 * 10**6)
    _, ts = driver.mine_all(ts + 12)
    # the edge borrower takes the market to the target utilization, at its borrow limit
    supplied, borrowed = int(comet.call("totalSupply")), int(comet.call("totalBorrow"))
    amount = supplied * UTILIZATION_PERCENT // 100 - borrowed
    price = int(comet.call("getPrice", _feed(registry, "WETH/USD")))
    base_price = int(comet.call("getPrice", comet.call("baseTokenPriceFeed")))
    borrow_cf = int(comet.call("getAssetInfoByAddress", weth.address)[4])
    collateral = amount * base_price * WAD * WAD // (10**6 * borrow_cf * price) * 1001 // 1000
    weth.tx(DEPLOYER, "mint", EDGE, collateral)
    venue.supply_collateral(EDGE, "WETH", collateral)
    _, ts = driver.mine_all(ts + 12)
    venue.withdraw(EDGE, amount)
    BLOCKS["edge_borrow"], ts = driver.mine_all(ts + 12)
    # a month of interest; the block holds a log so the lake has its header
    usdc.tx(DEPLOYER, "mint", DEPLOYER, 1)
    BLOCKS["month"], ts = driver.mine_all(ts + 30 * DAY)
    # the lender takes some back: its principal is read again, mid-interest
    venue.withdraw(LENDER, 123_456_789)
    _, ts = driver.mine_all(ts + DAY)
    # 150 days after the borrow, no price moved: the absorb Comet allows is interest's doing
    venue.absorb(ABSORBER, [EDGE])
    BLOCKS["absorb"], ts = driver.mine_all(ts + 119 * DAY)
    usdc.tx(DEPLOYER, "mint", DEPLOYER, 1)
    driver.mine_all(ts + DAY)


@pytest.fixture(scope="module")
def interest_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with scenario_world(tmp_path_factory.mktemp("compound_interest") / "data", SCENARIO,
                        after_scenario=_interest_at_compound,
                        snapshot_every_header=True) as built:
        yield built


def _venue(world: World) -> CompoundV3Venue:
    driver = DevnetDriver(world.client)
    return CompoundV3Venue(driver.at("Comet", world.registry.venue(VENUE).main_contract),
                           "USDC", world.registry.token("USDC").address.lower())


def test_base_positions_equal_the_comet_at_every_snapshot(interest_world: World) -> None:
    world, venue = interest_world, _venue(interest_world)
    usdc = world.registry.token("USDC").address.lower()
    accounts = [a for (a,) in world.sql(
        "select distinct account from stg_flows where venue = ? and side in ('supply', 'debt')",
        [VENUE])]
    (first,), = world.sql("select min(block_number) from stg_compound_principals")
    compared = grown = 0
    for block in (b for b in world.snapshots() if b >= first):
        mine = {(a, s): (int(x), int(n)) for a, s, x, n in world.sql(
            "select account, side, amount_raw, shares_raw from fct_positions "
            "where snapshot_block = ? and venue = ? and token = ? and side in ('supply', 'debt')",
            [block, VENUE, usdc])}
        for account in accounts:
            who = to_checksum_address(account)
            principal = venue.principal(who, block=block)
            chain = {"supply": venue.supply_balance(who, block=block),
                     "debt": venue.borrow_balance(who, block=block)}
            for side, balance in chain.items():
                shares = principal if side == "supply" else -principal
                expected = (balance, shares) if balance else (0, 0)
                assert mine.get((account, side), (0, 0)) == expected, (block, account, side)
                compared += bool(balance)
                grown += balance > abs(principal)
    assert compared > 40 and grown > 25


def test_interest_is_what_the_flows_miss(interest_world: World) -> None:
    """Measured: after a month at 97 % utilization (the curves give 27.9 % a year to borrow,
    18.5 % to supply) the lender's 500,000 USDC have earned 1.52 % (7,603 USDC) and the
    borrowers owe 2.29 % more (2,293 USDC on 100,000; 31,754 on the edge borrower's 1.38
    million). Σ flows, what the warehouse reported before it read Comet's state, is short by
    exactly that."""
    world = interest_world
    usdc = world.registry.token("USDC").address.lower()
    rows = {(a, s): (int(held), int(flows)) for a, s, held, flows in world.sql(
        "select p.account, p.side, p.amount_raw, (select sum(sign * amount_raw) from stg_flows "
        "  as f where f.venue = p.venue and f.token = p.token and f.account = p.account "
        "  and f.side = p.side and f.block_number <= p.snapshot_block) "
        "from fct_positions as p where p.snapshot_block = ? and p.venue = ? and p.token = ? "
        "and p.side in ('supply', 'debt')", [BLOCKS["month"], VENUE, usdc])}
    lent = rows[(LENDER.lower(), "supply")]
    owed = rows[(BORROWER.lower(), "debt")]
    assert lent[1] == 500_000 * 10**6 and owed[1] == 100_000 * 10**6
    assert 0.015 < lent[0] / lent[1] - 1 < 0.0155
    assert 0.0225 < owed[0] / owed[1] - 1 < 0.0235
    # borrowers pay more than suppliers earn: the debt grew by a larger fraction
    assert owed[0] * lent[1] > lent[0] * owed[1]


def test_an_absorb_interest_alone_made_possible_is_valid(interest_world: World) -> None:
    world, venue = interest_world, _venue(interest_world)
    comet, absorb = venue.comet, BLOCKS["absorb"]
    rows = world.sql(
        "select block_number, valid, reason, health_raw, threshold_raw from "
        "fct_liquidation_audit where venue = ? and borrower = ?", [VENUE, EDGE.lower()])
    assert len(rows) == 1
    block, valid, reason, health, threshold = rows[0]
    assert block == absorb and valid is True, reason
    # no price moved between the borrow and the absorb
    feeds = [_feed(world.registry, "WETH/USD"), comet.call("baseTokenPriceFeed")]
    prices = [[int(comet.call("getPrice", f, block=b)) for f in feeds]
              for b in (BLOCKS["edge_borrow"], absorb - 1)]
    assert prices[0] == prices[1]
    base_price = prices[1][1]
    # the debt the absorb valued: the principal before its block at the index it accrued to
    # (independently of the lake: Comet's own state before the block, brought forward)
    before = venue.totals_basic(block=absorb - 1)
    rates = InterestRates(*(int(comet.call(g, block=absorb - 1)) for g in (
        "supplyKink", "supplyPerSecondInterestRateSlopeLow",
        "supplyPerSecondInterestRateSlopeHigh", "supplyPerSecondInterestRateBase",
        "borrowKink", "borrowPerSecondInterestRateSlopeLow",
        "borrowPerSecondInterestRateSlopeHigh", "borrowPerSecondInterestRateBase")))
    when = int(world.client.call("eth_getBlockByNumber", [hex(absorb), False])["timestamp"], 16)
    _, borrow_index = accrued_indices(before.base_supply_index, before.base_borrow_index,
                                      before.total_supply_base, before.total_borrow_base,
                                      rates, when - before.last_accrual_time)
    debt = present_value_borrow(borrow_index, -venue.principal(EDGE, block=absorb - 1))
    assert int(threshold) == debt * base_price // 10**6
    # the borrow as the flows summed it, at the same prices, would be covered
    (borrowed,), = world.sql("select sum(sign * amount_raw) from stg_flows where venue = ? "
                             "and account = ? and side = 'debt' and block_number < ?",
                             [VENUE, EDGE.lower(), absorb])
    assert int(borrowed) * base_price // 10**6 < int(health) < int(threshold)
    assert debt > int(borrowed) * 108 // 100  # grown past 89.5 % / 82.5 %
    assert venue.principal(EDGE, block=absorb) >= 0


def test_truth_check_compares_compound_balances(interest_world: World) -> None:
    world = interest_world
    with connect_readonly(world.db) as con:
        for block in (BLOCKS["month"], *world.snapshots()[-2:]):
            report = truth_check(world.client, con, world.registry, block, sample=None)
            assert report.ok, report.summary()
            assert report.accounts[VENUE] >= 3


def test_the_blocking_checks_hold_with_interest(interest_world: World) -> None:
    with connect_readonly(interest_world.db) as con:
        results = run_checks(con)
    failed = [(r.check.name, r.sample) for r in results
              if r.check.severity == "error" and not r.passed]
    assert failed == []
    # every principal change was logged: the principals read add up to the Comet's totals
    (reconcile,) = [r for r in results if r.check.name == "compound_principals_reconcile"]
    assert reconcile.passed, reconcile.sample
