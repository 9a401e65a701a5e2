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
3. the seized collateral is sold into the deepest registry pool that trades it (an aToken as
   its underlying), with the constant-product price impact of that pool's reserves (0.3 % fee);
   the token's price moves by the pool's relative price change;
4. a venue's bad debt lowers the value of the claims it issued by bad debt / its deposits; a
   failed venue's claims (aTokens, the LST, LP shares) are worth nothing.

Amounts here are floats: this is a simulation of what would happen, not accounting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

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
    # claim -> (issuer, asset): an aToken follows its asset's price; a claim with asset None
    # (the LST, LP shares) keeps its own price. Either is scaled by its issuer's solvency.
    claims: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    deposits_usd: dict[str, float] = field(default_factory=dict)  # venue -> lenders' claims
    symbols: dict[str, str] = field(default_factory=dict)

    @cached_property
    def arrays(self) -> LegArrays:
        """The legs as arrays, built once for every scenario run on this ecosystem."""
        return LegArrays.of(self)


@dataclass(frozen=True)
class LegArrays:
    amount: Vector
    group_of: npt.NDArray[np.int64]
    group_venue: npt.NDArray[np.int64]  # venue index of each group
    venues: list[str]
    token_of: npt.NDArray[np.int64]
    tokens: list[str]
    is_debt: npt.NDArray[np.bool_]
    threshold: Vector
    bonus: Vector  # NaN where the collateral has no bonus of its own

    @classmethod
    def of(cls, eco: Ecosystem) -> LegArrays:
        legs = eco.legs
        groups: dict[tuple[str, str], int] = {}
        group_of = np.fromiter((groups.setdefault((leg.venue, leg.group), len(groups))
                                for leg in legs), np.int64, count=len(legs))
        venues = sorted({venue for venue, _ in groups})
        venue_index = {v: k for k, v in enumerate(venues)}
        group_venue = np.array([venue_index[v] for v, _ in groups], np.int64)
        tokens = sorted({leg.token for leg in legs})
        token_index = {t: k for k, t in enumerate(tokens)}
        return cls(
            np.fromiter((leg.amount for leg in legs), np.float64, count=len(legs)),
            group_of, group_venue, venues,
            np.fromiter((token_index[leg.token] for leg in legs), np.int64, count=len(legs)),
            tokens,
            np.fromiter((leg.side == "debt" for leg in legs), bool, count=len(legs)),
            np.fromiter((leg.threshold for leg in legs), np.float64, count=len(legs)),
            np.fromiter((np.nan if leg.bonus is None else leg.bonus for leg in legs),
                        np.float64, count=len(legs)))


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
    # legs, groups, venues and tokens as arrays: every round is whole-vector arithmetic
    arrays = eco.arrays
    amounts = arrays.amount.copy()
    group_of, group_venue, venues = arrays.group_of, arrays.group_venue, arrays.venues
    token_of, tokens, is_debt = arrays.token_of, arrays.tokens, arrays.is_debt
    thresholds, bonuses = arrays.threshold, arrays.bonus
    rules = [eco.rules.get(v, LiquidationRule()) for v in venues]
    close_factor = np.array([r.close_factor for r in rules])
    full_close_below = np.array([r.full_close_below for r in rules])
    rule_bonus = np.array([r.bonus for r in rules])
    asset_of = [(eco.claims[t][1] or t) if t in eco.claims else t for t in tokens]
    n_groups, n_venues = len(group_venue), len(venues)

    def price(token: str) -> float:
        if token in eco.claims:
            issuer, asset = eco.claims[token]
            own = base.get(token, 0.0) if asset is None else price(asset)
            return own * solvency.get(issuer, 1.0)
        return base.get(token, 0.0)

    def per_venue(amounts_by_venue: npt.NDArray[Any], where: npt.NDArray[np.bool_]
                  ) -> dict[str, float]:
        return {venues[v]: float(amounts_by_venue[v]) for v in np.nonzero(where)[0]}

    priced = sorted(set(base) | set(eco.claims))
    rounds = [CascadeRound(0, {t: price(t) for t in priced}, {}, {}, {}, 0)]
    for number in range(1, max_rounds + 1):
        token_price = np.array([price(t) for t in tokens])
        unit = token_price[token_of] if len(tokens) else np.zeros(0)
        value = amounts * unit
        debt = np.bincount(group_of, np.where(is_debt, value, 0.0), n_groups)
        collateral = np.bincount(group_of, np.where(is_debt, 0.0, value), n_groups)
        weighted = np.bincount(group_of, np.where(is_debt, 0.0, value * thresholds), n_groups)
        unhealthy = (debt > dust_usd) & (weighted < debt * (1 - 1e-12))
        in_unhealthy = unhealthy[group_of]
        coll_leg = in_unhealthy & ~is_debt & (value > 0)
        debt_leg = in_unhealthy & is_debt & (value > 0)
        # the group's bonus: its collateral's own bonuses weighed by value, else the venue's
        known = coll_leg & ~np.isnan(bonuses)
        weight = np.bincount(group_of, np.where(known, value, 0.0), n_groups)
        bonus = np.where(weight > 0, np.bincount(group_of, np.where(
            known, value * np.nan_to_num(bonuses), 0.0), n_groups) / np.where(
            weight > 0, weight, 1.0), rule_bonus[group_venue])
        with np.errstate(divide="ignore", invalid="ignore"):
            health = np.where(debt > 0, weighted / np.where(debt > 0, debt, 1.0), np.inf)
        close = np.where(health < full_close_below[group_venue], 1.0, close_factor[group_venue])
        repay = np.where(unhealthy, np.minimum(close * debt, collateral / bonus), 0.0)
        seize = repay * bonus
        seized_share = np.where(collateral > 0, seize / np.where(collateral > 0, collateral,
                                                                  1.0), 0.0)
        taken = np.where(coll_leg, amounts * seized_share[group_of], 0.0)
        amounts -= taken
        repaid_share = np.where(debt > 0, repay / np.where(debt > 0, debt, 1.0), 0.0)
        amounts = np.where(debt_leg, amounts * (1 - repaid_share[group_of]), amounts)
        exhausted = unhealthy & (collateral - seize <= tolerance * np.maximum(1.0, collateral))
        in_exhausted = exhausted[group_of]
        remaining = np.bincount(group_of, np.where(in_exhausted & is_debt, amounts * unit, 0.0),
                                n_groups)
        amounts = np.where(in_exhausted & (~is_debt | (remaining[group_of] > 0)), 0.0, amounts)
        bad_by_venue = np.bincount(group_venue, remaining, n_venues)
        touched = np.bincount(group_venue, unhealthy.astype(np.float64), n_venues) > 0
        liquidated = per_venue(np.bincount(group_venue, repay, n_venues), touched)
        seized_usd = per_venue(np.bincount(group_venue, seize, n_venues), touched)
        new_bad = per_venue(bad_by_venue, bad_by_venue > 0)
        # what the liquidators sell: each seized claim as units of its underlying
        sold: dict[str, float] = {}
        by_token = np.bincount(token_of, taken, len(tokens)) if len(tokens) else np.zeros(0)
        for t in np.nonzero(by_token > 0)[0]:
            asset = asset_of[t]
            ratio = token_price[t] / price(asset) if price(asset) > 0 else 1.0
            sold[asset] = sold.get(asset, 0.0) + float(by_token[t]) * ratio
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
        count = int(unhealthy.sum())
        rounds.append(CascadeRound(number, {t: price(t) for t in priced}, liquidated,
                                   seized_usd, new_bad, count))
        if not count and not moved:
            break
    return rounds
