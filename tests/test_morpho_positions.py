"""Morpho Blue supply and debt positions against the contract, after bad debt.

A short devnet crisis with Morpho loopers and borrowers, then a Morpho WETH/USDC market driven
by hand: two lenders, a borrower at 84% of its collateral's value and one who borrows an odd
share count; WETH falls 45% and the first borrower's whole collateral is seized, so the
contract writes the rest of its debt off against the suppliers (Liquidate's badDebtAssets
lower the total supply assets: every supply share is worth less). Then one lender withdraws
every share, the other some assets, a third supplies at the new share price and the second
borrower repays part. Then a WETH/USDC market the registry does not list, backed by a
fixed-rate IRM, accrues interest over hours with a 10 % fee minted to one recipient, then
another. At every snapshot each Morpho position's amount_raw equals its shares valued as the
contract values them (`position` shares at `market` totals: supply rounded down, debt up,
virtual shares 10^6 and assets 1), the replayed market totals equal `market(id)`, and the
truth check agrees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import World, named_address, scenario_world
from eth_utils import to_checksum_address

from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.registry import Registry
from contagion.truth import truth_check
from contagion.warehouse import connect_readonly, run_checks

pytestmark = pytest.mark.devnet

SCENARIO = """
name: morpho-bad-debt
seed: 5
blocks: 12
accounts:
  loopers: {count: 3, venues: [morpho_blue]}
  borrowers: {count: 4, collateral: [WETH, WBTC, stETH]}
  liquidity_providers: {count: 2}
prices:
  ETH: {gbm: {start: 2000, vol: 0.2}}
  BTC: {gbm: {start: 30000, vol: 0.2}}
  USDC: {gbm: {start: 1.0}}
activity: 0.5
"""

WAD = 10**18
VIRTUAL_SHARES, VIRTUAL_ASSETS = 10**6, 1
MARKET = "WETH/USDC"


LENDER_A, LENDER_B, LENDER_C = (named_address(f"morpho/lender-{x}") for x in "abc")
BAD_BORROWER, BORROWER = named_address("morpho/bad-borrower"), named_address("morpho/borrower")
FEE_TO, FEE_TO2 = named_address("morpho/fee-recipient"), named_address("morpho/next-fee-recipient")


def _bad_debt_at_morpho(driver: DevnetDriver, registry: Registry) -> None:
    venue = registry.venue("morpho_blue")
    morpho = driver.at("MorphoBlue", venue.main_contract)
    market = next(m for m in venue.markets if m.params.get("label") == MARKET)
    market_id = bytes.fromhex(market.id[2:])
    params = morpho.call("idToMarketParams", market_id)
    weth, usdc = (driver.at("ERC20", registry.token(s).address) for s in ("WETH", "USDC"))
    feed = driver.at("ChainlinkAggregator",
                     next(f.address for f in registry.feeds if f.id == "WETH/USD"))
    oracle = driver.at("MorphoChainlinkOracle", str(market.params["oracle"]))
    latest = driver.client.call("eth_getBlockByNumber", ["latest", False])
    ts = int(latest["timestamp"], 16) + 12

    for who, amount in ((LENDER_A, 100_000 * 10**6), (LENDER_B, 37_777_777_777),
                        (LENDER_C, 12_345_678_901), (BORROWER, 2_000 * 10**6),
                        (DEPLOYER, 1_000_000 * 10**6)):
        usdc.tx(DEPLOYER, "mint", who, amount)
    weth.tx(DEPLOYER, "mint", BAD_BORROWER, 10 * WAD)
    weth.tx(DEPLOYER, "mint", BORROWER, 20 * WAD)
    _, ts = driver.mine_all(ts)
    for who in (LENDER_A, LENDER_B, LENDER_C, BORROWER, BAD_BORROWER, DEPLOYER):
        usdc.tx(who, "approve", morpho.address, 2**256 - 1)
        weth.tx(who, "approve", morpho.address, 2**256 - 1)
    morpho.tx(LENDER_A, "supply", params, 100_000 * 10**6, 0, LENDER_A, b"")
    morpho.tx(LENDER_B, "supply", params, 37_777_777_777, 0, LENDER_B, b"")
    morpho.tx(BAD_BORROWER, "supplyCollateral", params, 10 * WAD, BAD_BORROWER, b"")
    morpho.tx(BORROWER, "supplyCollateral", params, 20 * WAD, BORROWER, b"")
    _, ts = driver.mine_all(ts + 12)
    price = int(oracle.call("price"))
    morpho.tx(BAD_BORROWER, "borrow", params, 10 * WAD * price // 10**36 * 84 // 100, 0,
              BAD_BORROWER, BAD_BORROWER)
    # an odd share count: the debt rounds down, the borrow share price is no longer round
    morpho.tx(BORROWER, "borrow", params, 0, 5_000 * 10**12 + 999_999, BORROWER, BORROWER)
    _, ts = driver.mine_all(ts + 12)
    feed.tx(DEPLOYER, "transmit", int(feed.call("latestAnswer")) * 55 // 100)
    _, ts = driver.mine_all(ts + 12)
    # seize everything: what the collateral does not cover is bad debt
    morpho.tx(DEPLOYER, "liquidate", params, BAD_BORROWER, 10 * WAD, 0, b"", gas=3_000_000)
    _, ts = driver.mine_all(ts + 12)
    assert tuple(int(x) for x in morpho.call("position", market_id, BAD_BORROWER)) == (0, 0, 0)
    shares_a = int(morpho.call("position", market_id, LENDER_A)[0])
    morpho.tx(LENDER_A, "withdraw", params, 0, shares_a, LENDER_A, LENDER_A)
    morpho.tx(LENDER_B, "withdraw", params, 1_000 * 10**6, 0, LENDER_B, LENDER_B)
    morpho.tx(LENDER_C, "supply", params, 12_345_678_901, 0, LENDER_C, b"")
    morpho.tx(BORROWER, "repay", params, 1_234_567_891, 0, BORROWER, b"")
    _, ts = driver.mine_all(ts + 12)
    _interest_at_morpho(driver, morpho, params, ts)


def _interest_at_morpho(driver: DevnetDriver, morpho: Contract, params: tuple[Any, ...],
                        ts: int) -> None:
    """A second WETH/USDC market, one the registry does not list, backed by a fixed-rate IRM:
    hours pass between its events, a 10 % fee goes to one recipient, then another."""
    irm = driver.deploy("FixedRateIrm", 5 * 10**17 // 31_536_000, label="fixed-rate IRM")
    morpho.tx(DEPLOYER, "enableIrm", irm.address)
    accruing = (*params[:3], irm.address, params[4])
    morpho.tx(DEPLOYER, "createMarket", accruing)
    morpho.tx(DEPLOYER, "setFeeRecipient", FEE_TO)
    # the deployer holds USDC and the WETH it seized: it pays for the others' deposits
    morpho.tx(DEPLOYER, "supply", accruing, 20_000 * 10**6, 0, LENDER_B, b"")
    morpho.tx(DEPLOYER, "supplyCollateral", accruing, 5 * WAD, BORROWER, b"")
    _, ts = driver.mine_all(ts + 12)
    morpho.tx(BORROWER, "borrow", accruing, 0, 3_000 * 10**12 + 4_321, BORROWER, BORROWER)
    _, ts = driver.mine_all(ts + 12)
    morpho.tx(DEPLOYER, "setFee", accruing, 10 * 10**16)
    _, ts = driver.mine_all(ts + 3_600)
    morpho.tx(DEPLOYER, "accrueInterest", accruing)
    _, ts = driver.mine_all(ts + 3_600)
    morpho.tx(DEPLOYER, "setFeeRecipient", FEE_TO2)
    morpho.tx(DEPLOYER, "supply", accruing, 1_000 * 10**6, 0, LENDER_C, b"")
    _, ts = driver.mine_all(ts + 3_600)
    morpho.tx(BORROWER, "repay", accruing, 0, 1_000 * 10**12, BORROWER, b"")
    driver.mine_all(ts + 3_600)


@pytest.fixture(scope="module")
def bad_debt_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with scenario_world(tmp_path_factory.mktemp("morpho_bad_debt") / "data", SCENARIO,
                        after_scenario=_bad_debt_at_morpho) as built:
        yield built


def _to_assets(shares: int, total_assets: int, total_shares: int, *, up: bool) -> int:
    num, den = shares * (total_assets + VIRTUAL_ASSETS), total_shares + VIRTUAL_SHARES
    return -(-num // den) if up else num // den


def _on_chain(world: World, block: int) -> tuple[dict[str, tuple[int, ...]],
                                                 dict[tuple[str, str, str], tuple[int, int]]]:
    """At `block`: every Morpho market's (total supply assets, shares, total borrow assets,
    shares), and every (market, account, side) the events ever named: (assets, shares) as the
    contract values them."""
    morpho = DevnetDriver(world.client).at(
        "MorphoBlue", world.registry.venue("morpho_blue").main_contract)
    markets = sorted({m.id.lower() for m in world.registry.venue("morpho_blue").markets}
                     | {m for (m,) in world.sql("select distinct market from int_morpho_markets")})
    totals = {m: tuple(int(x) for x in morpho.call("market", bytes.fromhex(m[2:]),
                                                   block=block)[:4]) for m in markets}
    accounts = [a for (a,) in world.sql(
        "select distinct account from stg_morpho_moves where account is not null "
        "order by 1")]
    held = {}
    for m in markets:
        sa, ss, ba, bs = totals[m]
        for a in accounts:
            supply, borrow, _ = (int(x) for x in morpho.call(
                "position", bytes.fromhex(m[2:]), to_checksum_address(a), block=block))
            held[m, a, "supply"] = (_to_assets(supply, sa, ss, up=False), supply)
            held[m, a, "debt"] = (_to_assets(borrow, ba, bs, up=True), borrow)
    return totals, held


def test_bad_debt_was_written_off_against_the_suppliers(bad_debt_world: World) -> None:
    (bad, liquidations), = bad_debt_world.sql(
        "select sum(bad_debt_assets::decimal(38, 0)), count(*) from src_morpho_blue__liquidate "
        "where bad_debt_assets::decimal(38, 0) > 0")
    assert liquidations >= 1 and bad > 5_000 * 10**6


def test_interest_and_fee_shares_reach_the_positions(bad_debt_world: World) -> None:
    world = bad_debt_world
    (accruals, interest, minted), = world.sql(
        "select count(*), sum(interest::decimal(38, 0)), "
        "count(*) filter (where fee_shares::decimal(38, 0) > 0) "
        "from src_morpho_blue__accrue_interest")
    assert accruals >= 4 and interest > 0 and minted >= 2
    last = world.sql("select max(snapshot_block) from ref_snapshots")[0][0]
    held = dict(world.sql(
        "select account, shares_raw from fct_positions where snapshot_block = ? "
        "and venue = 'morpho_blue' and side = 'supply' and account in (?, ?)",
        [last, FEE_TO.lower(), FEE_TO2.lower()]))
    assert held.keys() == {FEE_TO.lower(), FEE_TO2.lower()} and min(held.values()) > 0
    # the borrower owes more than it took out and has not paid back
    (owed, net), = world.sql(
        "select p.amount_raw, (select sum(sign * amount_raw) from stg_flows as f "
        "  where f.market = p.market and f.account = p.account and f.side = 'debt') "
        "from fct_positions as p join (select distinct market from stg_morpho_moves "
        "  where side = 'supply' and shares_delta > 0 and supply_assets_delta > 0 "
        "  and account = ?) as m on m.market = p.market "
        "where p.snapshot_block = ? and p.account = ? and p.side = 'debt'",
        [FEE_TO.lower(), last, BORROWER.lower()])
    assert owed > net > 0


def test_positions_equal_the_contract_at_every_snapshot(bad_debt_world: World) -> None:
    world = bad_debt_world
    compared = 0
    for block in world.snapshots():
        _, held = _on_chain(world, block)
        mine = {(m, a, s): (int(x), int(n)) for m, a, s, x, n in world.sql(
            "select market, account, side, amount_raw, shares_raw from fct_positions "
            "where snapshot_block = ? and venue = 'morpho_blue' and side in ('supply', 'debt')",
            [block])}
        assert set(mine) <= set(held)
        for key, (assets, shares) in held.items():
            assert mine.get(key, (0, 0)) == (assets, shares), (block, key)
            compared += bool(shares)
    assert compared > 20


def test_market_totals_equal_the_contract_at_every_snapshot(bad_debt_world: World) -> None:
    world = bad_debt_world
    for block in world.snapshots():
        totals, _ = _on_chain(world, block)
        replayed = {m: (int(a), int(b), int(c), int(d)) for m, a, b, c, d in world.sql(
            "select m.market, t.total_supply_assets, t.total_supply_shares, "
            "t.total_borrow_assets, t.total_borrow_shares "
            "from (select distinct market, (?::hugeint + 1) * 1000000 as block_end "
            "      from int_morpho_markets) as m "
            "asof join int_morpho_markets as t "
            "on t.market = m.market and t.ordinal < m.block_end", [block])}
        assert replayed == {m: t for m, t in totals.items() if m in replayed}, block
        assert all(t == (0, 0, 0, 0) for m, t in totals.items() if m not in replayed)


def test_a_lender_who_withdrew_every_share_holds_nothing(bad_debt_world: World) -> None:
    world = bad_debt_world
    last = world.sql("select max(snapshot_block) from ref_snapshots")[0][0]
    lender = LENDER_A.lower()
    # its withdrawal paid less than it supplied: the flows leave a remainder it cannot take
    (left_in_flows,), = world.sql(
        "select sum(sign * amount_raw) from stg_flows where venue = 'morpho_blue' "
        "and account = ? and side = 'supply'", [lender])
    assert left_in_flows > 0
    assert world.sql("select * from fct_positions where snapshot_block = ? and account = ? "
                     "and venue = 'morpho_blue'", [last, lender]) == []
    # and the suppliers hold what the market holds for them, less its rounding
    for market, supplied, total in world.sql(
            "select p.market, sum(p.amount_raw), any_value(t.total_supply_assets) "
            "from fct_positions as p asof join int_morpho_markets as t "
            "on t.market = p.market and t.ordinal < (p.snapshot_block::hugeint + 1) * 1000000 "
            "where p.snapshot_block = ? and p.venue = 'morpho_blue' and p.side = 'supply' "
            "group by all", [last]):
        assert 0 <= total - supplied < 100, market


def test_truth_check_compares_morpho_assets(bad_debt_world: World) -> None:
    world = bad_debt_world
    last = world.sql("select max(snapshot_block) from ref_snapshots")[0][0]
    with connect_readonly(world.db) as con:
        report = truth_check(world.client, con, world.registry, last, sample=None)
    assert report.ok, report.summary()
    assert report.accounts["morpho_blue"] >= 5


def test_the_blocking_checks_hold_with_bad_debt_and_interest(bad_debt_world: World) -> None:
    with connect_readonly(bad_debt_world.db) as con:
        failed = [(r.check.name, r.sample) for r in run_checks(con)
                  if r.check.severity == "error" and not r.passed]
    assert failed == []
