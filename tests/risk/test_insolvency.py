"""Probability of insolvency: the lognormal probability by hand, the mean bad debt as a put,
orderings in volatility, horizon and correlation, and refused inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from contagion.graph.cascade import Ecosystem, Leg, LiquidationRule, Pool
from contagion.risk.derivatives import DerivativeBook, OptionShort, PerpPosition
from contagion.risk.greeks import black_scholes
from contagion.risk.insolvency import insolvency_probability

ETH, BTC, USD = "eth", "btc", "usdc"
YEAR = 365.0


def one_borrower(debt: float = 15_000.0) -> Ecosystem:
    """10 ETH against `debt` USD, all of it closed at once without bonus, no pool: bad debt is
    exactly debt − 10 × price once the price is below debt / 10."""
    return Ecosystem(
        prices={ETH: 2000.0, USD: 1.0},
        legs=[Leg("lender", "alice", ETH, 10.0, "collateral", 0.8),
              Leg("lender", "alice", USD, debt, "debt")],
        rules={"lender": LiquidationRule(1.0, 0.0, 1.0)})


def market() -> Ecosystem:
    """Borrowers from close to the edge to safe; what they lose is sold into an ETH pool."""
    legs = []
    for k, health in enumerate((1.05, 1.15, 1.3, 1.5, 1.8)):
        legs += [Leg("lender", f"b{k}", ETH, 100.0, "collateral", 0.8, 1.05),
                 Leg("lender", f"b{k}", USD, 100 * 2000 * 0.8 / health, "debt")]
    return Ecosystem(prices={ETH: 2000.0, USD: 1.0}, legs=legs,
                     pools=[Pool(ETH, USD, 2_000.0, 4_000_000.0)],
                     rules={"lender": LiquidationRule(0.5, 0.95, 1.05)})


def test_the_probability_is_the_lognormal_one() -> None:
    sigma, days, paths = 0.8, 30.0, 20_000
    result = insolvency_probability(one_borrower(), vols={ETH: sigma}, horizon_days=days,
                                    paths=paths, seed=3)
    t = days / YEAR
    # bad debt above $1: the price below (15,000 − 1) / 10 at the horizon
    expected = norm.cdf((np.log(14_999 / 20_000) + sigma**2 * t / 2) / (sigma * np.sqrt(t)))
    stderr = np.sqrt(expected * (1 - expected) / paths)
    assert abs(result.probability["lender"] - expected) < 4 * stderr
    assert result.stderr["lender"] == pytest.approx(stderr, rel=0.05)
    # the mean bad debt is 10 puts struck at 1,500; 4 standard errors are about 10 %
    put = float(black_scholes(2000.0, 1500.0, t, sigma, is_put=True).price)
    assert result.mean_bad_debt_usd["lender"] == pytest.approx(10 * put, rel=0.1)
    # the 99 % quantile: the price's 1 % quantile
    q01 = 2000 * np.exp(norm.ppf(0.01) * sigma * np.sqrt(t) - sigma**2 * t / 2)
    assert result.q99_bad_debt_usd["lender"] == pytest.approx(15_000 - 10 * q01, rel=0.05)
    assert (result.horizon_days, result.paths, result.seed) == (days, paths, 3)


def test_without_volatility_nothing_fails() -> None:
    for vols in ({ETH: 0.0}, {}):
        result = insolvency_probability(market(), vols=vols, horizon_days=30)
        assert result.probability == {"lender": 0.0}
        assert result.mean_bad_debt_usd == {"lender": 0.0}


def test_the_probability_rises_with_volatility_and_horizon() -> None:
    def probability(sigma: float, days: float) -> float:
        return insolvency_probability(market(), vols={ETH: sigma}, horizon_days=days,
                                      paths=4000).probability["lender"]

    by_vol = [probability(sigma, 30) for sigma in (0.4, 0.7, 1.0)]
    by_horizon = [probability(0.8, days) for days in (7, 14, 30)]
    assert 0 < by_vol[0] < by_vol[1] < by_vol[2]
    assert 0 < by_horizon[0] < by_horizon[1] < by_horizon[2]


def test_a_buffer_absorbs_bad_debt() -> None:
    unbuffered = insolvency_probability(one_borrower(), vols={ETH: 0.8}, horizon_days=30)
    buffered = insolvency_probability(one_borrower(), vols={ETH: 0.8}, horizon_days=30,
                                      buffers_usd={"lender": 1_000.0})
    assert 0 < buffered.probability["lender"] < unbuffered.probability["lender"]
    assert buffered.mean_bad_debt_usd == unbuffered.mean_bad_debt_usd


def test_correlated_collateral_fails_together_and_hedged_collateral_does_not() -> None:
    # 10,000 of ETH and 10,000 of BTC against 15,000: bad debt only if the basket loses 25 %
    eco = Ecosystem(
        prices={ETH: 2000.0, BTC: 40_000.0, USD: 1.0},
        legs=[Leg("lender", "alice", ETH, 5.0, "collateral", 0.8),
              Leg("lender", "alice", BTC, 0.25, "collateral", 0.8),
              Leg("lender", "alice", USD, 15_000.0, "debt")],
        rules={"lender": LiquidationRule(1.0, 0.0, 1.0)})

    def probability(correlation: float | None) -> float:
        matrix = None if correlation is None else np.array([[1.0, correlation],
                                                            [correlation, 1.0]])
        return insolvency_probability(eco, vols={ETH: 0.8, BTC: 0.8}, correlation=matrix,
                                      horizon_days=30, paths=4000).probability["lender"]

    together, independent, hedged = probability(1.0), probability(None), probability(-1.0)
    # perfectly correlated, the basket is one asset 25 % above the debt: the lognormal case
    t = 30 / YEAR
    one_asset = norm.cdf((np.log(14_999 / 20_000) + 0.64 * t / 2) / (0.8 * np.sqrt(t)))
    assert together == pytest.approx(one_asset, abs=4 * np.sqrt(one_asset * (1 - one_asset) / 4000))
    assert together > independent > hedged
    # opposite moves: the basket is worth 20,000 × cosh(x) × e^(−σ²t/2) ≥ 19,480
    assert hedged == 0.0


def test_an_indefinite_correlation_is_replaced_by_the_nearest_semidefinite_one() -> None:
    eco = market()
    eco.prices.update({"a": 1.0, "b": 1.0})
    indefinite = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    assert np.linalg.eigvalsh(indefinite).min() < 0
    result = insolvency_probability(eco, vols={ETH: 0.8, "a": 0.5, "b": 0.5},
                                    correlation=indefinite, horizon_days=30)
    assert 0 < result.probability["lender"] < 1


def test_the_same_seed_gives_the_same_answer() -> None:
    def run(seed: int) -> dict[str, float]:
        return insolvency_probability(market(), vols={ETH: 0.8}, horizon_days=30,
                                      paths=500, seed=seed).mean_bad_debt_usd

    assert run(1) == run(1)
    assert run(1) != run(2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vols": {ETH: -0.1}}, "non-negative"),
    ({"vols": {ETH: float("nan")}}, "finite"),
    ({"vols": {"wbtc": 0.5}}, "no price for wbtc"),
    ({"vols": {ETH: 0.5}, "correlation": np.eye(2)}, r"1 × 1 .* not \(2, 2\)"),
    ({"vols": {ETH: 0.5, USD: 0.1}, "correlation": np.array([[1.0, 0.5], [0.2, 1.0]])},
     "symmetric"),
    ({"vols": {ETH: 0.5, USD: 0.1}, "correlation": np.array([[1.0, 2.0], [2.0, 1.0]])},
     "between -1 and 1"),
    ({"vols": {ETH: 0.5}, "horizon_days": -1.0}, "horizon_days"),
    ({"vols": {ETH: 0.5}, "paths": 0}, "paths"),
])
def test_invalid_inputs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        insolvency_probability(one_borrower(), **kwargs)  # type: ignore[arg-type]


def test_derivatives_bad_debt_by_hand() -> None:
    book = DerivativeBook(
        perps=[PerpPosition("perps", ETH, True, 10_000.0, 1_000.0, 2_000.0),
               PerpPosition("perps", ETH, False, 6_000.0, 500.0, 2_000.0)],
        options=[OptionShort("opts", "w#1", ETH, True, 2_000.0, 10.0, USD, 5_000.0),
                 OptionShort("opts", "w#1", ETH, True, 1_800.0, 5.0, USD, 5_000.0),
                 OptionShort("opts", "w#2", ETH, False, 2_200.0, 3.0, ETH, 3.0)])
    prices: dict[str, Any] = {ETH: np.array([2_000.0, 1_600.0, 2_500.0, 1_000.0]), USD: 1.0}
    bad = book.bad_debt_usd(prices, 4)
    assert book.venues == ["opts", "perps"]
    # long: 10,000 × 20 % = 2,000 lost on 1,000 of collateral at 1,600; short: 6,000 × 25 % =
    # 1,500 on 500 at 2,500; at 1,000 the long loses 5,000
    assert bad[:, 1].tolist() == [0.0, 1_000.0, 1_000.0, 4_000.0]
    # vault 1 owes 10 × 400 + 5 × 200 = 5,000 at 1,600 (covered), 10 × 1,000 + 5 × 800 =
    # 14,000 at 1,000; vault 2's calls are covered by the ETH they hold
    assert bad[:, 0].tolist() == [0.0, 0.0, 0.0, 9_000.0]


def test_derivatives_venues_fail_with_the_lognormal_probability() -> None:
    """A 10× long is insolvent below a 10 % fall, a put writer with a third of the strike as
    collateral below 1,500 (after the lending cascade, which here moves nothing)."""
    sigma, days, paths = 0.8, 30.0, 20_000
    book = DerivativeBook(perps=[PerpPosition("perps", ETH, True, 10_000.0, 1_000.0, 2_000.0)],
                          options=[OptionShort("opts", "w#1", ETH, True, 2_000.0, 10.0, USD,
                                               5_000.0)])
    result = insolvency_probability(one_borrower(), vols={ETH: sigma}, horizon_days=days,
                                    paths=paths, seed=5, derivatives=book)
    t = days / YEAR

    def below(level: float) -> float:
        return float(norm.cdf((np.log(level / 2_000) + sigma**2 * t / 2) / (sigma * np.sqrt(t))))

    # bad debt above $1: the long below 2,000 × (1 − 1,001 / 10,000), the put below 1,499.9
    for venue, level in (("perps", 2_000 * (1 - 1_001 / 10_000)), ("opts", 1_499.9)):
        expected = below(level)
        assert abs(result.probability[venue] - expected) < 4 * np.sqrt(
            expected * (1 - expected) / paths), venue
    # the lending venue is as without the book
    alone = insolvency_probability(one_borrower(), vols={ETH: sigma}, horizon_days=days,
                                   paths=paths, seed=5)
    assert result.probability["lender"] == alone.probability["lender"]
    with pytest.raises(ValueError, match="no price for btc"):
        insolvency_probability(one_borrower(), vols={ETH: sigma}, derivatives=DerivativeBook(
            perps=[PerpPosition("perps", BTC, True, 1.0, 1.0, 1.0)]))
    assert book.priced({USD: 1.0}) == DerivativeBook()
