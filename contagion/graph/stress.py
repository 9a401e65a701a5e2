"""The stress suite: every token down 10, 30 and 50 %, every LST depegged by 5 and 15 %, every
venue failing alone, each run through the DeFi cascade.

Per scenario:
- initial loss: what the shock itself takes from the lending collateral that holds the token
  or a claim that follows it (aX for X: the cascade moves its price with X's), or, for a failed
  venue, the value of its claims posted as collateral elsewhere;
- total loss: the initial loss plus the bad debt the cascade leaves and the liquidation
  penalties borrowers pay (collateral seized beyond the debt repaid and, at a Compound absorb,
  the base credited back to the borrower);
- amplification = total loss / initial loss (null when the shock touches nothing);
- failed venues: those whose bad debt exceeds their loss-absorbing buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from contagion.graph.cascade import CascadeRound, Ecosystem, cascade

__all__ = ["Scenario", "StressResult", "run_scenario", "standard_scenarios", "stress_suite"]

TOKEN_SHOCKS = (-0.10, -0.30, -0.50)
LST_DEPEGS = (-0.05, -0.15)


@dataclass(frozen=True)
class Scenario:
    name: str  # e.g. "stETH -15%", "aave_v3 fails"
    kind: str  # token_shock | lst_depeg | venue_failure
    target: str  # token address or venue id
    size: float  # relative price change, or -1 for a failure

    @property
    def shocks(self) -> dict[str, float]:
        return {} if self.kind == "venue_failure" else {self.target: self.size}

    @property
    def failed(self) -> tuple[str, ...]:
        return (self.target,) if self.kind == "venue_failure" else ()


@dataclass(frozen=True)
class StressResult:
    scenario: Scenario
    rounds: int
    initial_loss_usd: float
    bad_debt_usd: dict[str, float]
    liquidated_usd: float
    penalties_usd: float
    total_loss_usd: float
    amplification: float | None
    failed_venues: tuple[str, ...]


def standard_scenarios(eco: Ecosystem, *, lsts: Iterable[str] = (),
                       venues: Iterable[str] = ()) -> list[Scenario]:
    """Every priced token that is neither a claim nor the USD unit, the LSTs, the venues."""
    name = eco.symbols.get
    out = []
    lst_set = set(lsts)
    follows = {t for t, (_, asset) in eco.claims.items() if asset is not None}  # aTokens
    for token in sorted(t for t in eco.prices if t not in follows and eco.prices[t] > 0
                        and name(t) != "USD"):
        for shock in TOKEN_SHOCKS:
            out.append(Scenario(f"{name(token) or token} {shock:+.0%}", "token_shock", token,
                                shock))
        if token in lst_set:
            for depeg in LST_DEPEGS:
                out.append(Scenario(f"{name(token) or token} depeg {depeg:+.0%}", "lst_depeg",
                                    token, depeg))
    out += [Scenario(f"{venue} fails", "venue_failure", venue, -1.0) for venue in sorted(venues)]
    return out


def _initial_loss(eco: Ecosystem, scenario: Scenario) -> float:
    arrays = eco.arrays
    collateral = ~arrays.is_debt
    if scenario.kind == "venue_failure":  # its claims: aTokens valued as their asset
        unit = np.array([eco.prices.get(eco.asset_of(t), 0.0)
                         if t in eco.claims and eco.claims[t][0] == scenario.target else 0.0
                         for t in arrays.tokens])
    else:  # the token and the claims following it, at the token's price as the cascade has it
        unit = np.array([eco.prices.get(scenario.target, 0.0) * -scenario.size
                         if eco.asset_of(t) == scenario.target else 0.0 for t in arrays.tokens])
    if not len(unit):
        return 0.0
    return float(np.dot(np.where(collateral, arrays.amount, 0.0), unit[arrays.token_of]))


def run_scenario(eco: Ecosystem, scenario: Scenario, buffers_usd: Mapping[str, float]
                 ) -> tuple[StressResult, list[CascadeRound]]:
    rounds = cascade(eco, scenario.shocks, failed_venues=scenario.failed)
    bad: dict[str, float] = {}
    for r in rounds:
        for venue, amount in r.bad_debt_usd.items():
            bad[venue] = bad.get(venue, 0.0) + amount
    liquidated = sum(sum(r.liquidated_usd.values()) for r in rounds)
    penalties = sum(sum(r.seized_usd.values()) - sum(r.credited_usd.values())
                    for r in rounds) - liquidated
    initial = _initial_loss(eco, scenario)
    total = initial + sum(bad.values()) + penalties
    failed = tuple(sorted(v for v, amount in bad.items() if amount > buffers_usd.get(v, 0.0)))
    if scenario.kind == "venue_failure":
        failed = tuple(sorted({scenario.target, *failed}))
    return StressResult(scenario, len(rounds) - 1, initial, bad, liquidated, penalties, total,
                        total / initial if initial > 0 else None, failed), rounds


def stress_suite(eco: Ecosystem, scenarios: Iterable[Scenario],
                 buffers_usd: Mapping[str, float]) -> list[StressResult]:
    return [run_scenario(eco, s, buffers_usd)[0] for s in scenarios]
