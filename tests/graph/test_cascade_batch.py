"""The path-vectorized cascade: every path ends exactly where the single-path cascade with its
shocks ends, whatever round the other paths settle in."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.graph.cascade import (
    BatchOutcome,
    Ecosystem,
    Leg,
    LiquidationRule,
    Pool,
    cascade,
    cascade_batch,
    morpho_incentive,
)

ETH, BTC, STETH, USD, AETH, LP = "eth", "btc", "steth", "usdc", "aeth", "lp"
MOVING = [ETH, BTC, STETH]
PRICES = {ETH: 2000.0, BTC: 40_000.0, STETH: 1990.0, USD: 1.0, LP: 1.5}


def random_ecosystem(seed: int, groups: int = 12) -> Ecosystem:
    """Borrowers at three venues (one absorbing, as Compound), close to the edge, with claims
    (an aToken, an LP share) among their collateral, some debt in ETH, and pools deep enough for
    several rounds of selling."""
    rng = np.random.default_rng(seed)
    venues = ["aave", "compound", "morpho"]
    legs = []
    for g in range(groups):
        venue = venues[rng.integers(3)]
        weighted = 0.0
        for token in rng.choice([ETH, BTC, STETH, AETH, LP], rng.integers(1, 4), replace=False):
            usd, threshold = rng.uniform(1_000, 50_000), rng.uniform(0.7, 0.9)
            bonus = None if rng.random() < 0.5 else float(rng.uniform(1.02, 1.12))
            unit = PRICES[ETH if token == AETH else str(token)]
            legs.append(Leg(venue, f"g{g}", str(token), usd / unit, "collateral", threshold,
                            bonus))
            weighted += usd * threshold
        debt_token = USD if rng.random() < 0.8 else ETH
        legs.append(Leg(venue, f"g{g}", debt_token,
                        weighted / rng.uniform(1.0, 1.5) / PRICES[debt_token], "debt"))
    eth_usd, eth_usd_2 = rng.uniform(20, 200, 2)
    steth, btc = rng.uniform(10, 100), rng.uniform(1, 10)
    pools = [Pool(ETH, USD, eth_usd, eth_usd * 2000), Pool(STETH, ETH, steth, steth * 0.995),
             Pool(BTC, USD, btc, btc * 40_000), Pool(USD, ETH, eth_usd_2 * 2000, eth_usd_2)]
    return Ecosystem(
        dict(PRICES), legs, pools,
        {"aave": LiquidationRule(0.5, 0.95, 1.05),
         "compound": LiquidationRule(1.0, 0.0, 1 / 0.93, absorb=True),
         "morpho": LiquidationRule(1.0, 0.0, morpho_incentive(0.86))},
        {AETH: ("aave", ETH), LP: ("morpho", None)},
        {"aave": float(rng.uniform(5e4, 3e5)), "morpho": float(rng.uniform(5e4, 3e5))})


def random_shocks(seed: int, paths: int) -> np.ndarray:
    """Paths from calm (settling in the first round) to crashes cascading for several rounds."""
    rng = np.random.default_rng(seed)
    return np.expm1(rng.normal(0, 1, (paths, len(MOVING))) * rng.uniform(0.0, 0.4, (paths, 1)))


def assert_path_is_the_single_cascade(eco: Ecosystem, out: BatchOutcome, path: int,
                                      shocks: dict[str, float],
                                      failed: tuple[str, ...] = ()) -> None:
    rounds = cascade(eco, shocks, failed_venues=failed)
    assert out.rounds[path] == len(rounds) - 1
    assert out.converged[path]
    for v, venue in enumerate(out.venues):
        assert out.bad_debt_usd[path, v] == sum(r.bad_debt_usd.get(venue, 0.0) for r in rounds)
        assert out.liquidated_usd[path, v] == sum(r.liquidated_usd.get(venue, 0.0)
                                                  for r in rounds)
        assert out.seized_usd[path, v] == sum(r.seized_usd.get(venue, 0.0) for r in rounds)
        assert out.credited_usd[path, v] == sum(r.credited_usd.get(venue, 0.0) for r in rounds)
    assert dict(zip(out.tokens, out.prices[path], strict=True)) == rounds[-1].prices


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_every_path_ends_where_the_single_cascade_does(seed: int, aave_fails: bool) -> None:
    eco = random_ecosystem(seed)
    shocks = random_shocks(seed, 24)
    failed = ("aave",) if aave_fails else ()
    out = cascade_batch(eco, shocks, MOVING, failed_venues=failed)
    for path in range(len(shocks)):
        assert_path_is_the_single_cascade(eco, out, path, dict(zip(MOVING, shocks[path],
                                                                   strict=True)), failed)


def test_paths_settling_early_do_not_change_while_the_others_run() -> None:
    eco = random_ecosystem(7)
    shocks = random_shocks(7, 200)
    out = cascade_batch(eco, shocks, MOVING)
    assert len(set(out.rounds.tolist())) >= 4  # paths settle in many different rounds
    for path in range(len(shocks)):
        alone = cascade_batch(eco, shocks[path:path + 1], MOVING)
        assert alone.rounds[0] == out.rounds[path]
        for name in ("bad_debt_usd", "liquidated_usd", "seized_usd", "credited_usd", "prices"):
            assert (getattr(alone, name)[0] == getattr(out, name)[path]).all()
    for path in np.argsort(out.rounds)[::20]:  # a spread of settling rounds
        assert_path_is_the_single_cascade(eco, out, int(path),
                                          dict(zip(MOVING, shocks[path], strict=True)))


def test_a_batch_repeats_the_liquidation_by_hand() -> None:
    eco = Ecosystem(
        prices={ETH: 2000.0, USD: 1.0},
        legs=[Leg("lender", "alice", ETH, 10.0, "collateral", 0.8, 1.05),
              Leg("lender", "alice", USD, 17_000.0, "debt")],
        pools=[Pool(ETH, USD, 1000.0, 2_000_000.0)],
        rules={"lender": LiquidationRule(close_factor=0.5, full_close_below=0.95)})
    out = cascade_batch(eco, np.array([[0.0], [-0.1], [-0.5]]), [ETH])
    assert out.venues == ["lender"]
    # calm: health 0.94 already, so everything goes; −50 %: 10,000 of collateral for 17,000
    assert out.liquidated_usd[:, 0] == pytest.approx([17_000.0, 17_000.0, 10_000 / 1.05])
    assert out.bad_debt_usd[:, 0] == pytest.approx([0.0, 0.0, 17_000 - 10_000 / 1.05])
    assert out.rounds.tolist() == [2, 2, 2]
    assert out.converged.all()


def test_no_paths_is_an_empty_outcome() -> None:
    out = cascade_batch(random_ecosystem(0), np.zeros((0, 3)), MOVING)
    assert out.bad_debt_usd.shape == (0, len(out.venues)) and out.rounds.shape == (0,)


def test_max_rounds_stops_a_path_unsettled() -> None:
    eco = random_ecosystem(7)
    shocks = random_shocks(7, 200)
    full = cascade_batch(eco, shocks, MOVING)
    cut = cascade_batch(eco, shocks, MOVING, max_rounds=2)
    assert (cut.converged == (full.rounds <= 2)).all()
    assert (cut.rounds == np.minimum(full.rounds, 2)).all()


@pytest.mark.parametrize(("shocks", "tokens", "message"), [
    (np.zeros((4, 2)), MOVING, r"paths × 3 \(one column per token\), not \(4, 2\)"),
    (np.zeros(3), MOVING, r"paths × 3"),
    (np.full((1, 1), np.nan), [ETH], "finite"),
    (np.full((1, 1), -1.5), [ETH], "at least -1"),
    (np.zeros((1, 1)), ["wbtc"], "no price for wbtc"),
    (np.zeros((1, 2)), [ETH, ETH], "shocked twice"),
])
def test_invalid_shocks_are_refused(shocks: np.ndarray, tokens: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cascade_batch(random_ecosystem(0), shocks, tokens)
