"""The DeFi cascade: liquidation arithmetic and AMM price impact by hand, claims contagion
between venues, and the devnet crisis under growing shocks."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from conftest import World

from contagion.graph.cascade import (
    AMM_FEE,
    Ecosystem,
    Leg,
    LiquidationRule,
    Pool,
    cascade,
    cascade_batch,
    morpho_incentive,
)
from contagion.graph.stress import Scenario, run_scenario

ETH, USD, AETH = "eth", "usdc", "aeth"


def one_borrower(debt: float = 15_000.0) -> Ecosystem:
    return Ecosystem(
        prices={ETH: 2000.0, USD: 1.0},
        legs=[Leg("lender", "alice", ETH, 10.0, "collateral", 0.8, 1.05),
              Leg("lender", "alice", USD, debt, "debt")],
        pools=[Pool(ETH, USD, 1000.0, 2_000_000.0)],
        rules={"lender": LiquidationRule(close_factor=0.5, full_close_below=0.95)})


def test_a_liquidation_by_hand() -> None:
    rounds = cascade(one_borrower(), {ETH: -0.10})
    first = rounds[1]
    # health 10 × 1800 × 0.8 / 15000 = 0.96: not below 0.95, so half the debt is repaid
    assert first.liquidations == 1
    assert first.liquidated_usd["lender"] == pytest.approx(7_500.0)
    assert first.seized_usd["lender"] == pytest.approx(7_875.0)
    seized = 7_875.0 / 1_800.0  # ETH units sold
    paid_in = seized * (1 - AMM_FEE)
    out = 2_000_000.0 * paid_in / (1000.0 + paid_in)
    after = (2_000_000.0 - out) / (1000.0 + seized)
    assert first.prices[ETH] == pytest.approx(1_800.0 * after / 2_000.0)
    assert not first.bad_debt_usd


def test_underwater_debt_becomes_bad_debt() -> None:
    rounds = cascade(one_borrower(debt=17_000.0), {ETH: -0.5})
    # collateral 10 × 1000 = 10,000 against 17,000 of debt: health far below 0.95, all of the
    # collateral is seized for 10,000 / 1.05 of debt, the rest is bad debt
    first = rounds[1]
    assert first.liquidated_usd["lender"] == pytest.approx(10_000 / 1.05)
    assert first.bad_debt_usd["lender"] == pytest.approx(17_000 - 10_000 / 1.05)
    assert rounds[-1].liquidations == 0


def test_bad_debt_devalues_claims_held_at_another_venue() -> None:
    eco = Ecosystem(
        prices={ETH: 2000.0, USD: 1.0},
        legs=[
            # at the issuer, a borrower whose collateral will not cover its debt
            Leg("issuer", "bob", ETH, 1.0, "collateral", 0.8, 1.05),
            Leg("issuer", "bob", USD, 1_900.0, "debt"),
            # at another venue, the issuer's claim (aeth) as collateral, close to the edge
            Leg("other", "carol", AETH, 10.0, "collateral", 0.8, 1.05),
            Leg("other", "carol", USD, 15_150.0, "debt"),
        ],
        pools=[Pool(ETH, USD, 10_000.0, 20_000_000.0)],
        rules={"issuer": LiquidationRule(1.0), "other": LiquidationRule(1.0)},
        claims={AETH: ("issuer", ETH)},
        deposits_usd={"issuer": 20_000.0})
    rounds = cascade(eco, {ETH: -0.05})
    assert rounds[1].bad_debt_usd.get("issuer", 0) > 0
    assert rounds[1].prices[AETH] < rounds[1].prices[ETH]  # the claim lost value
    assert any(r.liquidated_usd.get("other", 0) > 0 for r in rounds[2:])
    # without the issuer's bad debt carol would have stayed healthy
    safe = cascade(Ecosystem(eco.prices, eco.legs[2:], eco.pools, eco.rules, eco.claims,
                             eco.deposits_usd), {ETH: -0.05})
    assert all(not r.liquidations for r in safe)


def test_morpho_incentive_matches_its_formula() -> None:
    assert morpho_incentive(0.86) == pytest.approx(1 / (0.3 * 0.86 + 0.7))
    assert morpho_incentive(0.5) == pytest.approx(1.15)


@pytest.mark.devnet
def test_the_crisis_cascade_starts_where_sql_sees_unhealthy_accounts(world: World) -> None:
    from contagion.graph.load import ecosystem_at, latest_snapshot
    from contagion.warehouse import connect_readonly

    with connect_readonly(world.db) as con:
        snapshot = latest_snapshot(con)
        eco = ecosystem_at(con, world.registry, snapshot)
        row = con.execute("select count(*) from int_account_health where snapshot_block = ? "
                          "and health_factor < 1", [snapshot]).fetchone()
    assert row is not None
    # with no shock, the first round liquidates exactly the groups SQL finds unhealthy
    calm = cascade(eco, {})
    assert calm[1].liquidations == row[0]
    steth = world.registry.token("stETH").address.lower()
    for depeg in (-0.05, -0.15, -0.3):  # the LST alone
        rounds = cascade(eco, {steth: depeg})
        assert rounds[-1].liquidations == 0  # it settles
        assert rounds[0].prices[steth] == pytest.approx(eco.prices[steth] * (1 + depeg))
        # liquidations only sell: a price never rises from one round to the next
        for before, after in itertools.pairwise(rounds):
            assert all(after.prices[t] <= before.prices[t] * (1 + 1e-12) for t in before.prices)
        assert sum(sum(r.liquidated_usd.values()) for r in rounds) > 0


def test_a_group_with_an_unpriced_leg_is_left_out_and_counted() -> None:
    """A collateral leg without a price would be worth 0: the group's whole debt would be bad
    debt in round 1 with no shock at all. The cascade cannot decide such a group, so it leaves it
    out (neither liquidated nor bad debt) and the ecosystem says what it left out."""
    y = "y"
    legs = [Leg("v", "g1", ETH, 1.0, "collateral", 0.8), Leg("v", "g1", USD, 1_000.0, "debt"),
            Leg("v", "g2", y, 1_000.0, "collateral", 0.8), Leg("v", "g2", USD, 500.0, "debt"),
            Leg("w", "g3", ETH, 1.0, "collateral", 0.8), Leg("w", "g3", y, 2.0, "debt"),
            # a claim without a price of its own is worth its asset's: it is priced
            Leg("w", "g4", AETH, 1.0, "collateral", 0.8), Leg("w", "g4", USD, 1_000.0, "debt")]
    eco = Ecosystem({ETH: 2000.0, USD: 1.0, "z": float("nan")}, legs,
                    [Pool(ETH, USD, 1e4, 2e7)], {"v": LiquidationRule(), "w": LiquidationRule()},
                    claims={AETH: ("issuer", ETH)}, deposits_usd={"issuer": 1e6})
    assert eco.left_out.groups == frozenset({("v", "g2"), ("w", "g3")})
    assert eco.left_out.debt_usd == {"v": 500.0, "w": 0.0}
    assert eco.left_out.tokens == (y,)
    rounds = cascade(eco)
    assert all(not r.liquidations and not r.bad_debt_usd for r in rounds)
    batch = cascade_batch(eco, np.zeros((1, 1)), [ETH])
    assert batch.venues == ["v", "w"] and not batch.bad_debt_usd.any()
    # under a shock, the groups the cascade decides go as they would without the others
    decided = replace(eco, legs=[leg for leg in legs if leg.group in ("g1", "g4")])
    assert [(r.liquidated_usd, r.bad_debt_usd) for r in cascade(eco, {ETH: -0.5})] == \
        [(r.liquidated_usd, r.bad_debt_usd) for r in cascade(decided, {ETH: -0.5})]
    assert any(r.liquidations for r in cascade(eco, {ETH: -0.5}))
    # an unpriced leg holding nothing changes nothing
    assert not replace(eco, legs=[replace(leg, amount=0.0) if leg.token == y else leg
                                  for leg in legs]).left_out.groups
    assert not one_borrower().left_out.groups


def test_a_shock_on_a_claim_that_follows_its_asset_is_refused() -> None:
    """aETH is priced as ETH × its issuer's solvency every round: its own shock would be
    overwritten without a word, so it is refused, naming the asset to shock instead."""
    eco = Ecosystem({ETH: 2000.0, AETH: 2000.0, USD: 1.0},
                    [Leg("other", "carol", AETH, 10.0, "collateral", 0.8),
                     Leg("other", "carol", USD, 15_000.0, "debt")],
                    [Pool(ETH, USD, 1e4, 2e7)], {"other": LiquidationRule()},
                    claims={AETH: ("issuer", ETH)}, deposits_usd={"issuer": 1e6},
                    symbols={ETH: "ETH", AETH: "aETH"})
    message = "aETH follows the price of ETH: shock ETH instead"
    with pytest.raises(ValueError, match=message):
        cascade(eco, {AETH: -0.5})
    with pytest.raises(ValueError, match=message):
        cascade_batch(eco, np.array([[-0.5]]), [AETH])
    with pytest.raises(ValueError, match="no price for btc"):
        cascade(eco, {"btc": -0.5})
    assert any(r.liquidations for r in cascade(eco, {ETH: -0.5}))


def test_the_initial_loss_of_a_token_shock_counts_the_claims_that_follow_it() -> None:
    """X −30 % takes 30 % of an aX collateral as it does of X: the same initial loss, so the
    same amplification."""
    x, ax = "x", "ax"

    def book(token: str) -> Ecosystem:
        return Ecosystem({x: 1.0, ax: 1.0, USD: 1.0},
                         [Leg("c", "g", token, 100.0, "collateral", 0.8),
                          Leg("c", "g", USD, 70.0, "debt")],
                         [Pool(x, USD, 1e4, 1e4)], {"c": LiquidationRule()},
                         claims={ax: ("a", x)}, deposits_usd={"a": 1e6})

    scenario = Scenario("X -30%", "token_shock", x, -0.3)
    plain, claimed = (run_scenario(book(t), scenario, {})[0] for t in (x, ax))
    assert plain.initial_loss_usd == pytest.approx(30.0)
    assert claimed.initial_loss_usd == pytest.approx(plain.initial_loss_usd)
    assert claimed.total_loss_usd == pytest.approx(plain.total_loss_usd)
    assert claimed.amplification == pytest.approx(plain.amplification)
