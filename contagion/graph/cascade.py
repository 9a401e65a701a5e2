"""The DeFi cascade: price shocks → unhealthy borrowers → liquidations → seized collateral sold
into the AMMs' actual reserves → new prices → again, until nothing changes. Bad debt at a venue
devalues the claims it issued (aTokens), which hits every venue that holds them as collateral.
None of the standard network models (DebtRank, clearing, threshold cascades) captures this
price-mediated channel (Cifuentes, Ferrucci & Shin 2005, in DeFi terms).

Each round:
1. every borrower group (an account at a cross-collateral venue; an account and market at
   Morpho) is valued at current prices: health = Σ collateral × liquidation threshold / debt;
2. a group below 1 is liquidated as its venue does it: Aave repays the close factor (all of
   the debt below the full-close health factor) and seizes repaid × bonus; Compound absorbs
   everything (bonus 1 / liquidation factor); Morpho repays up to all of it with its
   liquidation incentive min(1.15, 1 / (0.3 × LLTV + 0.7)). Collateral is seized pro rata
   across the group's collateral; debt left without collateral becomes the venue's bad debt;
3. the seized collateral is sold into the deepest registry pool that trades it (a claim as its
   underlying), with the constant-product price impact of that pool's reserves (0.3 % fee);
   the token's price moves by the pool's relative price change;
4. a venue's bad debt lowers the value of the claims it issued by bad debt / its deposits.

Amounts here are floats: this is a simulation of what would happen, not accounting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "CascadeRound",
    "Ecosystem",
    "Leg",
    "LiquidationRule",
    "Pool",
    "cascade",
    "morpho_incentive",
]

Vector = npt.NDArray[np.float64]
AMM_FEE = 0.003


@dataclass(frozen=True)
class LiquidationRule:
    close_factor: float = 0.5  # share of the debt one liquidation may repay
    full_close_below: float = 0.0  # health factor under which all of it may be repaid
    bonus: float = 1.05  # collateral seized per unit of debt repaid (by value)


def morpho_incentive(lltv: float) -> float:
    """Morpho Blue's liquidation incentive factor for a market's LLTV."""
    return min(1.15, 1.0 / (0.3 * lltv + 0.7))


@dataclass(frozen=True)
class Leg:
    venue: str
    group: str  # the borrower group (account, or account and market)
    token: str
    amount: float  # token units
    side: str  # collateral | debt
    threshold: float = 0.0  # liquidation threshold of a collateral leg
    bonus: float | None = None  # the collateral's own liquidation bonus, if it has one


@dataclass(frozen=True)
class Pool:
    token0: str
    token1: str
    reserve0: float  # token units
    reserve1: float


@dataclass
class Ecosystem:
    """What the cascade needs of a snapshot (see `contagion.graph.load` for the database)."""

    prices: dict[str, float]  # USD per token unit
    legs: list[Leg]
    pools: list[Pool] = field(default_factory=list)
    rules: dict[str, LiquidationRule] = field(default_factory=dict)  # venue -> rule
    claims: dict[str, tuple[str, str]] = field(default_factory=dict)  # claim -> (issuer, asset)
    deposits_usd: dict[str, float] = field(default_factory=dict)  # venue -> lenders' claims
    symbols: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CascadeRound:
    round: int
    prices: dict[str, float]
    liquidated_usd: dict[str, float]  # debt repaid by liquidations, per venue
    seized_usd: dict[str, float]  # collateral seized, per venue
    bad_debt_usd: dict[str, float]  # new bad debt, per venue
    liquidations: int


def _sell(pools: list[Pool], token: str, units: float) -> tuple[int, float] | None:
    """The deepest pool trading `token`, and the relative change of its price after selling
    `units` of it there."""
    best = None
    for k, p in enumerate(pools):
        depth = p.reserve0 if p.token0 == token else p.reserve1 if p.token1 == token else -1.0
        if depth > 0 and (best is None or depth > best[1]):
            best = (k, depth)
    if best is None:
        return None
    k, _ = best
    p = pools[k]
    x, y = (p.reserve0, p.reserve1) if p.token0 == token else (p.reserve1, p.reserve0)
    paid_in = units * (1 - AMM_FEE)
    out = y * paid_in / (x + paid_in)
    x2, y2 = x + units, y - out
    ratio = (y2 / x2) / (y / x)
    pools[k] = (Pool(p.token0, p.token1, x2, y2) if p.token0 == token
                else Pool(p.token0, p.token1, y2, x2))
    return k, ratio


def cascade(eco: Ecosystem, shocks: Mapping[str, float] | None = None, *,
            failed_venues: Sequence[str] = (), max_rounds: int = 200,
            dust_usd: float = 1.0, tolerance: float = 1e-9) -> list[CascadeRound]:
    """Run the cascade. `shocks`: token → relative price change (−0.15: down 15 %);
    `failed_venues`: venues whose issued claims are worth nothing from the start. Debt below
    `dust_usd` is not worth liquidating. Returns one entry per round, round 0 being the shocked
    starting point."""
    base = dict(eco.prices)
    for token, change in (shocks or {}).items():
        if token not in base:
            raise KeyError(f"no price for {token}: it cannot be shocked")
        base[token] = base[token] * (1 + change)
    pools = list(eco.pools)
    solvency = {venue: 0.0 for venue in failed_venues}
    bad_total: dict[str, float] = {}
    amounts = np.array([leg.amount for leg in eco.legs], dtype=np.float64)
    groups = sorted({(leg.venue, leg.group) for leg in eco.legs})
    group_of = np.array([groups.index((leg.venue, leg.group)) for leg in eco.legs], np.int64)
    is_debt = np.array([leg.side == "debt" for leg in eco.legs])
    thresholds = np.array([leg.threshold for leg in eco.legs])
    bonuses = np.array([np.nan if leg.bonus is None else leg.bonus for leg in eco.legs])

    def price(token: str) -> float:
        if token in eco.claims:
            issuer, asset = eco.claims[token]
            return price(asset) * solvency.get(issuer, 1.0)
        return base.get(token, 0.0)

    priced = sorted(set(base) | set(eco.claims))
    rounds = [CascadeRound(0, {t: price(t) for t in priced}, {}, {}, {}, 0)]
    for number in range(1, max_rounds + 1):
        unit = np.array([price(leg.token) for leg in eco.legs])
        value = amounts * unit
        n_groups = len(groups)
        debt = np.bincount(group_of, np.where(is_debt, value, 0.0), n_groups)
        collateral = np.bincount(group_of, np.where(is_debt, 0.0, value), n_groups)
        weighted = np.bincount(group_of, np.where(is_debt, 0.0, value * thresholds), n_groups)
        unhealthy = np.nonzero((debt > dust_usd) & (weighted < debt * (1 - 1e-12)))[0]
        liquidated: dict[str, float] = {}
        seized_usd: dict[str, float] = {}
        new_bad: dict[str, float] = {}
        sold: dict[str, float] = {}
        for g in unhealthy:
            venue = groups[g][0]
            rule = eco.rules.get(venue, LiquidationRule())
            health = weighted[g] / debt[g]
            close = 1.0 if health < rule.full_close_below else rule.close_factor
            mine = group_of == g
            coll_legs = np.nonzero(mine & ~is_debt & (value > 0))[0]
            debt_legs = np.nonzero(mine & is_debt & (value > 0))[0]
            own = bonuses[coll_legs]  # the collateral's own bonuses, by value
            known = ~np.isnan(own)
            bonus = (float(np.dot(value[coll_legs][known], own[known])
                           / value[coll_legs][known].sum()) if known.any() else rule.bonus)
            repay = min(close * debt[g], collateral[g] / bonus)
            seize = repay * bonus
            if collateral[g] > 0:
                for k in coll_legs:
                    taken = amounts[k] * seize / collateral[g]
                    amounts[k] -= taken
                    token = eco.legs[k].token
                    asset = eco.claims[token][1] if token in eco.claims else token
                    sold[asset] = sold.get(asset, 0.0) + taken * (
                        price(token) / price(asset) if price(asset) > 0 else 1.0)
            for k in debt_legs:
                amounts[k] -= amounts[k] * repay / debt[g]
            left_collateral = collateral[g] - seize
            if left_collateral <= tolerance * max(1.0, collateral[g]):
                remaining = float(np.dot(amounts[debt_legs], unit[debt_legs]))
                if remaining > 0:
                    new_bad[venue] = new_bad.get(venue, 0.0) + remaining
                    amounts[debt_legs] = 0.0
                amounts[coll_legs] = 0.0
            liquidated[venue] = liquidated.get(venue, 0.0) + repay
            seized_usd[venue] = seized_usd.get(venue, 0.0) + seize
        moved = False
        for asset, units in sorted(sold.items()):
            impact = _sell(pools, asset, units) if units > 0 else None
            if impact is not None and asset in base:
                base[asset] *= impact[1]
                moved = moved or abs(impact[1] - 1) > tolerance
        for venue, amount in new_bad.items():
            bad_total[venue] = bad_total.get(venue, 0.0) + amount
            deposits = eco.deposits_usd.get(venue, 0.0)
            if venue not in failed_venues:
                solvency[venue] = max(0.0, 1 - bad_total[venue] / deposits) if deposits > 0 \
                    else 0.0
        rounds.append(CascadeRound(number, {t: price(t) for t in priced}, liquidated,
                                   seized_usd, new_bad, len(unhealthy)))
        if not len(unhealthy) and not moved:
            break
    return rounds
