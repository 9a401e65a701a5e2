"""Compound v3's absorb in the DeFi cascade, against Comet's own arithmetic (`_absorb_account`
in contagion/devnet/contracts/Comet.vy, as real Comet): all of the account's collateral is
seized, all of its debt cleared, and the borrower is credited Σ value × liquidation factor −
debt in the base token; what that value leaves of the debt unpaid falls on the reserves (bad
debt). By hand, through the stress suite's penalties, from the registry, and on a devnet Comet."""

from __future__ import annotations

import pytest
from conftest import World, contract_events, mine_receipts

from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.compound_v3 import CompoundV3Venue, deploy_compound_v3
from contagion.graph.cascade import (
    AMM_FEE,
    Ecosystem,
    Leg,
    LiquidationRule,
    Pool,
    cascade,
    cascade_batch,
)
from contagion.graph.stress import Scenario, run_scenario
from contagion.protocols import compound_v3 as spec

ETH, BTC, USD = "eth", "btc", "usdc"
COMET = "compound_v3_usdc"
WAD = 10**18
FEED = 10**8  # Chainlink USD feeds: 8 decimals
USDC = 10**6


def comet_absorb(debt: int, collateral: list[tuple[int, int, int, int]], base_price: int = FEED,
                 base_scale: int = USDC) -> tuple[int, int, int, int]:
    """Comet.vy `_absorb_account` in its integers: `debt` in base units; each collateral as
    (units, feed price, the asset's scale, liquidation factor × 10^18). Returns the seized value
    (feed USD), the debt cleared and the credit (base units), and the shortfall the clamp of
    the new balance at 0 leaves to the reserves (base units)."""
    old = -debt
    seized = delta_value = 0
    for units, price, scale, factor in collateral:
        value = units * price // scale
        seized += value
        delta_value += value * factor // WAD
    new = old + delta_value * base_scale // base_price
    return seized, debt, max(new, 0), max(-new, 0)


def one_comet_account(collateral: list[tuple[str, float, float, float]], debt: float,
                      prices: dict[str, float], rule: LiquidationRule | None = None,
                      pools: list[Pool] | None = None) -> Ecosystem:
    """One Compound group: each collateral as (token, units, liquidate CF, liquidation factor),
    its bonus 1 / liquidation factor as `load.venue_rule` reads it."""
    legs = [Leg(COMET, "alice", token, units, "collateral", cf, 1 / factor)
            for token, units, cf, factor in collateral]
    return Ecosystem(prices={**prices, USD: 1.0}, legs=[*legs, Leg(COMET, "alice", USD, debt,
                                                                    "debt")],
                     pools=pools or [],
                     rules={COMET: rule or LiquidationRule(close_factor=1.0, absorb=True)})


@pytest.mark.parametrize("close_factor", [1.0, 0.5])
def test_an_absorb_seizes_everything_and_credits_the_surplus(close_factor: float) -> None:
    """$100k of WETH against $90k of debt, liquidation factor 0.95 (health 89.5k / 90k): Comet
    seizes all $100k, clears the $90k and credits 95k − 90k = 5k of USDC; the penalty is
    (1 − 0.95) × 100k. The close factor plays no part in an absorb."""
    eco = one_comet_account([(ETH, 50.0, 0.895, 0.95)], 90_000.0, {ETH: 2000.0},
                            LiquidationRule(close_factor=close_factor, absorb=True),
                            [Pool(ETH, USD, 1000.0, 2_000_000.0)])
    rounds = cascade(eco)
    first = rounds[1]
    seized, cleared, credit, shortfall = comet_absorb(
        90_000 * USDC, [(50 * WAD, 2000 * FEED, WAD, 95 * 10**16)])
    assert (seized, cleared, credit, shortfall) == (100_000 * FEED, 90_000 * USDC,
                                                    5_000 * USDC, 0)
    assert first.liquidations == 1
    assert first.seized_usd[COMET] == pytest.approx(seized / FEED)  # all of it, not 90k / 0.95
    assert first.liquidated_usd[COMET] == pytest.approx(cleared / USDC)
    assert first.credited_usd[COMET] == pytest.approx(credit / USDC)
    assert not first.bad_debt_usd
    penalty = first.seized_usd[COMET] - first.liquidated_usd[COMET] - first.credited_usd[COMET]
    assert penalty == pytest.approx(0.05 * 100_000)
    # all 50 WETH go into the pool
    paid_in = 50.0 * (1 - AMM_FEE)
    after = (2_000_000.0 - 2_000_000.0 * paid_in / (1000.0 + paid_in)) / 1050.0
    assert first.prices[ETH] == pytest.approx(after)
    # the account is left with nothing to liquidate, whatever the price does next
    assert [r.liquidations for r in rounds[2:]] == [0]


def test_an_absorb_short_of_the_debt_leaves_bad_debt_at_each_assets_factor() -> None:
    """Comet's devnet test_bad_debt_drives_reserves_negative in the cascade, with WBTC for the
    second asset: 5 WETH at 1000 (factor 0.95) and 0.25 WBTC at 20,000 (factor 0.90) against
    16,250 of debt. The collateral counts for 4,750 + 4,500 = 9,250, each asset at its own
    factor (not at one averaged bonus: 10,000 / mean(1/0.95, 1/0.90) = 9,244); the other
    7,000 of the debt is bad debt, nothing is credited."""
    eco = one_comet_account([(ETH, 5.0, 0.895, 0.95), (BTC, 0.25, 0.85, 0.90)], 16_250.0,
                            {ETH: 2000.0, BTC: 40_000.0})
    first = cascade(eco, {ETH: -0.5, BTC: -0.5})[1]
    seized, cleared, credit, shortfall = comet_absorb(
        16_250 * USDC, [(5 * WAD, 1000 * FEED, WAD, 95 * 10**16),
                        (25 * 10**6, 20_000 * FEED, 10**8, 90 * 10**16)])
    assert (seized, credit, shortfall) == (10_000 * FEED, 0, 7_000 * USDC)
    assert first.seized_usd[COMET] == pytest.approx(seized / FEED)
    assert first.bad_debt_usd[COMET] == pytest.approx(shortfall / USDC)
    # the debt is cleared: repaid by the collateral's 9,250, the rest written off
    assert first.liquidated_usd[COMET] == pytest.approx((cleared - shortfall) / USDC)
    assert first.liquidated_usd[COMET] + first.bad_debt_usd[COMET] == pytest.approx(16_250.0)
    assert not first.credited_usd


def test_the_batch_reports_the_credit_as_the_single_cascade_does() -> None:
    eco = one_comet_account([(ETH, 50.0, 0.895, 0.95)], 81_000.0, {ETH: 2000.0})
    out = cascade_batch(eco, [[0.0], [-0.1], [-0.5]], [ETH])
    # calm: healthy; −10 %: 90k of collateral, 85.5k credited for it; −50 %: 47.5k for 81k
    assert out.seized_usd[:, 0] == pytest.approx([0.0, 90_000.0, 50_000.0])
    assert out.liquidated_usd[:, 0] == pytest.approx([0.0, 81_000.0, 47_500.0])
    assert out.credited_usd[:, 0] == pytest.approx([0.0, 4_500.0, 0.0])
    assert out.bad_debt_usd[:, 0] == pytest.approx([0.0, 0.0, 33_500.0])


def test_the_stress_penalty_of_an_absorb_is_what_the_borrower_loses() -> None:
    """WETH −10 %: 90k of collateral against 81k of debt; the borrower keeps a credit of
    85.5k − 81k, so it loses 90k − 85.5k = (1 − 0.95) × 90k, not 90k − 81k."""
    eco = one_comet_account([(ETH, 50.0, 0.895, 0.95)], 81_000.0, {ETH: 2000.0})
    result, _ = run_scenario(eco, Scenario("ETH -10%", "token_shock", ETH, -0.1), {})
    assert result.liquidated_usd == pytest.approx(81_000.0)
    assert result.penalties_usd == pytest.approx(4_500.0)
    assert result.total_loss_usd == pytest.approx(10_000.0 + 4_500.0)
    assert not result.bad_debt_usd


@pytest.mark.devnet
def test_the_registry_makes_compound_absorb(world: World) -> None:
    from contagion.graph.load import ecosystem_at, latest_snapshot, venue_rule
    from contagion.warehouse import connect_readonly

    comet = world.registry.venue(COMET)
    rule, bonuses = venue_rule(comet)
    assert rule.absorb and rule.close_factor == 1.0
    factors = {m.id: m.params["liquidation_factor"] for m in comet.markets}
    assert factors and bonuses == {k: WAD / f for k, f in factors.items()}
    for other in ("aave_v3", "morpho_blue"):
        assert not venue_rule(world.registry.venue(other))[0].absorb
    with connect_readonly(world.db) as con:
        eco = ecosystem_at(con, world.registry, latest_snapshot(con))
    assert {v for v, r in eco.rules.items() if r.absorb} == {
        v.id for v in world.registry.venues if v.protocol == "compound_v3"}


# -- against a devnet Comet --------------------------------------------------------------------

ALICE = "0x00000000000000000000000000000000000a11ce"
CAROL = "0x00000000000000000000000000000000000ca201"
LP = "0x00000000000000000000000000000000000001f0"
ABSORBER = "0x0000000000000000000000000000000000ab5042"
# token symbol -> (borrow CF, liquidate CF, liquidation factor), 1e18-scaled
CONFIG = {"WETH": (825 * 10**15, 895 * 10**15, 95 * 10**16),
          "WBTC": (70 * 10**16, 77 * 10**16, 90 * 10**16)}






def _as_ecosystem(world: BaseWorld, venue: CompoundV3Venue, account: str) -> Ecosystem:
    """The account as the cascade sees it: Comet's prices, balances and factors (the bonus
    1 / liquidation factor, as `load.venue_rule` reads the registry)."""
    legs, prices = [], {}
    for symbol, (_, liquidate_cf, factor) in CONFIG.items():
        units = venue.collateral_balance(account, symbol)
        prices[symbol] = venue.comet.call("getPrice", world.feeds[symbol].address) / FEED
        if units:
            decimals = int(world.tokens[symbol].call("decimals"))
            legs.append(Leg(COMET, account, symbol, units / 10**decimals, "collateral",
                            liquidate_cf / WAD, WAD / factor))
    legs.append(Leg(COMET, account, "USDC", venue.borrow_balance(account) / USDC, "debt"))
    prices["USDC"] = venue.comet.call("getPrice", world.feeds["USDC"].address) / FEED
    return Ecosystem(prices, legs, rules={COMET: LiquidationRule(close_factor=1.0, absorb=True)})


@pytest.mark.devnet
def test_the_cascade_absorbs_as_a_devnet_comet_does(base: tuple[DevnetDriver, BaseWorld, int]
                                                    ) -> None:
    """Alice: 50 WETH, 90,000 USDC borrowed at 2,200, absorbed at 2,000 (a credit of 5,000).
    Carol: 20 WETH and 1 WBTC, 50,000 borrowed, absorbed once both have halved (bad debt). The
    cascade on each account as it stands before its absorb seizes what Comet's AbsorbCollateral
    logs, clears the debt, credits what Comet's Transfer mints and leaves as bad debt what the
    reserves pay beyond the collateral's credited value."""
    driver, world, ts = base
    tokens = {s: world.tokens[s].address for s in CONFIG}
    venue = deploy_compound_v3(driver, world, {
        s: (tokens[s], world.feeds[s].address, *CONFIG[s], 10**6 * WAD) for s in CONFIG})
    mint(world, "USDC", LP, 200_000 * USDC)
    world.tokens["USDC"].tx(LP, "approve", venue.comet.address, 2**256 - 1)
    venue.supply(LP, 200_000 * USDC)
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(2200))
    _, ts = mine_receipts(driver, ts)
    # Alice at 2,200: 50 × 2,200 × 0.825 = 90,750 may be borrowed; at 2,000 its liquidate CF
    # covers 89,500. Carol at 2,000 and 30,000: 33,000 + 21,000 may be borrowed.
    for account, holdings, borrowed, crash in (
            (ALICE, {"WETH": 50 * WAD}, 90_000, {"WETH": 2000}),
            (CAROL, {"WETH": 20 * WAD, "WBTC": 10**8}, 50_000, {"WETH": 1000, "WBTC": 15_000})):
        for symbol, units in holdings.items():
            mint(world, symbol, account, units)
            world.tokens[symbol].tx(account, "approve", venue.comet.address, 2**256 - 1)
            venue.supply_collateral(account, symbol, units)
        _, ts = mine_receipts(driver, ts)
        venue.withdraw(account, borrowed * USDC)
        _, ts = mine_receipts(driver, ts)
        for symbol, price in crash.items():
            world.feeds[symbol].tx(DEPLOYER, "transmit", usd_feed_answer(price))
        _, ts = mine_receipts(driver, ts)
        assert venue.is_liquidatable(account)

        eco = _as_ecosystem(world, venue, account)
        debt = venue.borrow_balance(account)
        reserves = venue.reserves()
        venue.absorb(ABSORBER, [account])
        receipts, ts = mine_receipts(driver, ts)
        events = contract_events(receipts, venue.comet.address, spec.EVENTS)
        seized = [e for e in events if e[0] == "AbsorbCollateral"]
        (_, _, _, paid_out, _), = (e for e in events if e[0] == "AbsorbDebt")
        credit = venue.supply_balance(account)
        assert [e[4] for e in seized] == list(holdings.values())  # all of it
        assert paid_out == debt + credit == reserves - venue.reserves()
        assert venue.borrow_balance(account) == 0
        # what the reserves pay beyond the collateral's credited value, Σ value × factor
        factor = {tokens[s].lower(): CONFIG[s][2] for s in CONFIG}
        credited_value = sum(e[5] * factor[e[3]] // WAD for e in seized) * USDC // FEED
        shortfall = max(debt - credited_value, 0)
        assert (sum(e[5] for e in seized), debt, credit, shortfall) == comet_absorb(
            debt, [(e[4], venue.comet.call("getPrice", world.feeds[s].address),
                    10**int(world.tokens[s].call("decimals")), CONFIG[s][2])
                   for e, s in zip(seized, holdings, strict=True)])

        first = cascade(eco)[1]
        assert first.liquidations == 1
        assert first.seized_usd[COMET] == pytest.approx(sum(e[5] for e in seized) / FEED)
        assert first.credited_usd.get(COMET, 0.0) == pytest.approx(credit / USDC)
        assert first.bad_debt_usd.get(COMET, 0.0) == pytest.approx(shortfall / USDC)
        assert first.liquidated_usd[COMET] == pytest.approx((debt - shortfall) / USDC)
        # what the reserves pay out: the debt cleared and the credit
        assert (first.liquidated_usd[COMET] + first.bad_debt_usd.get(COMET, 0.0)
                + first.credited_usd.get(COMET, 0.0)) == pytest.approx(paid_out / USDC)
        assert (credit > 0) == (account == ALICE) and (shortfall > 0) == (account == CAROL)
