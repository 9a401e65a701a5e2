"""The DeFi cascade: price shocks → unhealthy borrowers → liquidations → seized collateral sold
into the AMMs' actual reserves → new prices → again, until nothing changes. Bad debt at a venue
devalues the claims it issued (aTokens), which hits every venue that holds them as collateral.
None of the standard network models (DebtRank, clearing, threshold cascades) captures this
price-mediated channel (Cifuentes, Ferrucci & Shin 2005, in DeFi terms).

Each round:
1. every borrower group (an account at a cross-collateral venue; an account and market at
   Morpho) is valued at current prices: health = Σ collateral × liquidation threshold / debt;
2. a group below 1 is liquidated as its venue does it: Aave repays the close factor (all of
   the debt below the full-close health factor) and seizes repaid × bonus; Morpho repays up to
   all of it with its liquidation incentive min(1.15, 1 / (0.3 × LLTV + 0.7)). Collateral is
   seized pro rata across the group's collateral; debt left without collateral becomes the
   venue's bad debt. Compound absorbs (`LiquidationRule.absorb`, Comet's `absorb`): it takes
   all of the collateral and clears all of the debt; the collateral counts for Σ value ×
   liquidation factor (value / bonus), what of it exceeds the debt is credited to the borrower
   in the base token, and what of the debt it does not cover is the venue's bad debt;
3. the seized collateral is sold into the deepest registry pool that trades it (an aToken as
   its underlying), with the constant-product price impact of that pool's reserves (0.3 % fee);
   the token's price moves by the pool's relative price change;
4. a venue's bad debt lowers the value of the claims it issued by bad debt / its deposits; a
   failed venue's claims (aTokens, the LST, LP shares) are worth nothing.

`cascade_batch` runs the same rounds on many price paths at once (arrays of paths × legs); a
path that has settled drops out. `cascade` is that engine on one path, round by round.

A group with a leg the cascade cannot value (its token has no price, nor an asset it follows
with one) cannot be decided healthy or not: it is left out of every round, neither liquidated
nor bad debt, and `Ecosystem.left_out` says which groups and how much debt that is.

Amounts here are floats: this is a simulation of what would happen, not accounting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

__all__ = [
    "BatchOutcome",
    "CascadeRound",
    "Ecosystem",
    "LeftOut",
    "Leg",
    "LiquidationRule",
    "Pool",
    "cascade",
    "cascade_batch",
    "morpho_incentive",
]

Vector = npt.NDArray[np.float64]
IntVector = npt.NDArray[np.int64]
BoolVector = npt.NDArray[np.bool_]
AMM_FEE = 0.003


@dataclass(frozen=True)
class LiquidationRule:
    close_factor: float = 0.5  # share of the debt one liquidation may repay
    full_close_below: float = 0.0  # health factor under which all of it may be repaid
    bonus: float = 1.05  # collateral seized per unit of debt repaid (by value)
    # the venue absorbs the account (Compound v3): all of its collateral is seized and all of its
    # debt cleared, whatever the close factor; the collateral counts for its value / bonus (×
    # liquidation factor), the surplus over the debt is credited to the borrower, the shortfall
    # is bad debt
    absorb: bool = False


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


@dataclass(frozen=True)
class LeftOut:
    """The borrower groups the cascade leaves out, for holding a leg in a token it cannot value."""

    groups: frozenset[tuple[str, str]]  # (venue, group)
    debt_usd: dict[str, float]  # per venue with such a group, their debt that has a price
    tokens: tuple[str, ...]  # the tokens without a price, sorted


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
    # (venue, collateral token as on chain: a claim by its own address) -> the margin cut in
    # force on that market (a fraction, as thresholds are): the legs' thresholds already include
    # it; an action setting a new cut replaces it, not adds to it. Read it with `margin_cut`.
    margin_cuts: dict[tuple[str, str], float] = field(default_factory=dict)

    @cached_property
    def arrays(self) -> LegArrays:
        """The legs as arrays, built once for every scenario run on this ecosystem."""
        return LegArrays.of(self)

    def asset_of(self, token: str) -> str:
        """What a token is worth and sold as: an aToken's underlying asset, else itself."""
        claim = self.claims.get(token)
        return claim[1] if claim is not None and claim[1] is not None else token

    def margin_cut(self, venue: str, asset: str) -> float:
        """The cut in force at a venue on an asset's market or on the market of a claim that
        follows it (the oracle puts the same cut on both; the deepest if they differ): the
        actions name the asset, `margin_cuts` the market as on chain."""
        return max((cut for (at, token), cut in self.margin_cuts.items()
                    if at == venue and self.asset_of(token) == asset), default=0.0)

    def priced(self, token: str) -> bool:
        """Whether the cascade can value a token: a claim that follows an asset is worth the
        asset's price, anything else needs a finite price of its own."""
        seen = set()
        while (claim := self.claims.get(token)) is not None and claim[1] is not None \
                and token not in seen:  # a cycle is the layout's error to report
            seen.add(token)
            token = claim[1]
        return math.isfinite(self.prices.get(token, math.nan))

    @cached_property
    def left_out(self) -> LeftOut:
        """The groups holding some of a token without a price: valued at 0 it would make the
        whole debt of a group bad debt before any shock, so the cascade leaves them out."""
        holding = [leg for leg in self.legs if leg.amount > 0]  # an empty leg changes nothing
        unpriced = {leg.token for leg in holding if not self.priced(leg.token)}
        groups = frozenset((leg.venue, leg.group) for leg in holding if leg.token in unpriced)
        debt: dict[str, float] = {venue: 0.0 for venue, _ in groups}
        for leg in self.legs:
            if leg.side == "debt" and (leg.venue, leg.group) in groups \
                    and leg.token not in unpriced:
                debt[leg.venue] += leg.amount * self.prices.get(leg.token, 0.0)
        return LeftOut(groups, debt, tuple(sorted(unpriced)))


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
        left_out = eco.left_out.groups
        legs = [leg for leg in eco.legs if (leg.venue, leg.group) not in left_out]
        groups: dict[tuple[str, str], int] = {}
        group_of = np.fromiter((groups.setdefault((leg.venue, leg.group), len(groups))
                                for leg in legs), np.int64, count=len(legs))
        # every venue with legs, those whose groups are all left out too: each keeps its column
        venues = sorted({leg.venue for leg in eco.legs})
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
    # what absorbs credit back to their borrowers (Σ value × liquidation factor − debt, in the
    # base token: a supply balance at the venue), per venue; the borrowers' penalty is
    # seized − liquidated − credited
    credited_usd: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchOutcome:
    """Where each of `cascade_batch`'s paths ends: totals over all its rounds, per venue."""

    venues: list[str]
    tokens: list[str]  # the priced tokens, the columns of `prices`
    bad_debt_usd: Vector  # paths × venues
    liquidated_usd: Vector  # paths × venues: debt repaid
    seized_usd: Vector  # paths × venues: collateral seized
    prices: Vector  # paths × tokens, when the path stopped
    rounds: IntVector  # rounds run; the last is the first with nothing left to do
    converged: BoolVector  # False where max_rounds stopped the path first
    credited_usd: Vector  # paths × venues: credited back to absorbed borrowers


@dataclass(frozen=True)
class _Sale:
    asset: int  # column in the layout's names
    side: IntVector  # per pool: 0 or 1 where the asset is token0 or token1, else −1
    priced: bool  # the asset has a price of its own to move


@dataclass(frozen=True)
class _Layout:
    """The ecosystem's prices, claims and pools as columns, built once per run."""

    names: list[str]  # every token a price is needed for, sorted
    base: Vector  # the starting price of each (0 without one)
    priced: IntVector  # the columns reported: tokens with a price, and claims
    leg_price: IntVector  # each leg's column
    claims: list[tuple[int, int, int]]  # (claim, the column its value follows, its issuer)
    issuers: list[str]  # leg venues and claim issuers: the venues a solvency is kept for
    venue_issuer: IntVector  # each leg venue's place among the issuers
    # (leg token, its column, its sold asset's column, that asset's sale); in token order
    sellers: list[tuple[int, int, int, int]]
    sales: list[_Sale]  # in the order of the assets' names

    @classmethod
    def of(cls, eco: Ecosystem) -> _Layout:
        arrays = eco.arrays
        assets = {a for _, a in eco.claims.values() if a is not None}
        names = sorted(set(eco.prices) | set(eco.claims) | assets | set(arrays.tokens))
        col = {t: k for k, t in enumerate(names)}
        order: list[str] = []

        def visit(token: str, trail: tuple[str, ...]) -> None:
            if token not in eco.claims or token in order:
                return
            if token in trail:
                raise ValueError(f"claims follow each other in a cycle: {' → '.join(trail)}")
            asset = eco.claims[token][1]
            if asset is not None:  # a claim on a claim is priced after the claim it follows
                visit(asset, (*trail, token))
            order.append(token)

        for token in sorted(eco.claims):
            visit(token, ())
        issuers = sorted(set(arrays.venues) | {i for i, _ in eco.claims.values()})
        issuer = {v: k for k, v in enumerate(issuers)}
        sold_as = [eco.asset_of(t) for t in arrays.tokens]
        sales: dict[str, _Sale] = {}
        for asset in sorted(set(sold_as)):
            side = np.array([0 if p.token0 == asset else 1 if p.token1 == asset else -1
                             for p in eco.pools], np.int64)
            if (side >= 0).any():  # without a pool, seized collateral moves no price
                sales[asset] = _Sale(col[asset], side, asset in eco.prices)
        slot = {asset: k for k, asset in enumerate(sales)}
        return cls(
            names, np.array([eco.prices.get(t, 0.0) for t in names]),
            np.array([col[t] for t in sorted(set(eco.prices) | set(eco.claims))], np.int64),
            np.array([col[t] for t in arrays.tokens], np.int64)[arrays.token_of],
            [(col[t], col[eco.asset_of(t)], issuer[eco.claims[t][0]]) for t in order],
            issuers, np.array([issuer[v] for v in arrays.venues], np.int64),
            [(k, col[t], col[a], slot[a]) for k, (t, a) in enumerate(zip(arrays.tokens,
                                                                          sold_as, strict=True))
             if a in slot],
            list(sales.values()))

    def prices(self, base: Vector, solvency: Vector) -> Vector:
        """Paths × names: a claim is worth what it follows (itself, or its asset) times its
        issuer's solvency."""
        price = base.copy()
        for claim, follows, issuer in self.claims:
            price[:, claim] = price[:, follows] * solvency[:, issuer]
        return price


def _binned(bins: IntVector, weights: npt.ArrayLike, rows: int, n: int) -> Vector:
    """rows × n sums of `weights` by their flat bin, row · n + column."""
    sums = np.bincount(bins, weights, rows * n)
    return sums.reshape(rows, n).astype(np.float64, copy=False)


class _RowSums:
    """Row-wise bincount: row r's weights go to bins r·n … r·n + n − 1, so one bincount sums
    every path, each in leg order exactly as a single path would be summed."""

    def __init__(self, index: IntVector, n: int, rows: int) -> None:
        self.n = n
        self.flat = index + n * np.arange(rows)[:, None]

    def __call__(self, weights: Vector) -> Vector:
        rows = len(weights)
        return _binned(self.flat[:rows].ravel(), weights.ravel(), rows, self.n)


@dataclass(frozen=True)
class _Round:
    """One round of the paths still running in it, in batch order."""

    prices: Vector  # rows × layout names, after the round
    liquidated: Vector  # rows × venues
    seized: Vector
    touched: BoolVector  # some group of the venue was liquidated
    bad: Vector  # new bad debt
    count: IntVector  # groups liquidated
    credited: Vector  # credited back to absorbed borrowers


def _run(eco: Ecosystem, layout: _Layout, base: Vector, failed_venues: Sequence[str],
         max_rounds: int, dust_usd: float, tolerance: float,
         record: list[_Round] | None = None) -> BatchOutcome:
    """The cascade on every row of `base` (paths × layout names) at once. A path that has
    settled leaves the arrays, so it cannot change any more and costs nothing after."""
    arrays = eco.arrays
    group_of, group_venue, venues = arrays.group_of, arrays.group_venue, arrays.venues
    is_debt, token_of, bonuses = arrays.is_debt, arrays.token_of, arrays.bonus
    known_bonus = ~np.isnan(bonuses)
    own_bonus = np.where(known_bonus, bonuses, 0.0)
    rules = [eco.rules.get(v, LiquidationRule()) for v in venues]
    close_factor = np.array([r.close_factor for r in rules])[group_venue]
    full_close_below = np.array([r.full_close_below for r in rules])[group_venue]
    rule_bonus = np.array([r.bonus for r in rules])[group_venue]
    absorbs = np.array([r.absorb for r in rules], bool)[group_venue]
    deposits = np.array([eco.deposits_usd.get(v, 0.0) for v in venues])
    keeps_solvency = np.array([v not in failed_venues for v in venues], bool)
    n_paths, n_groups, n_venues = len(base), len(group_venue), len(venues)
    n_tokens = len(arrays.tokens)
    # every path's health in two passes over its legs: collateral and debt side by side, then
    # the collateral weighted by its liquidation threshold
    by_side = _RowSums(group_of + n_groups * is_debt, 2 * n_groups, n_paths)
    by_group = _RowSums(group_of, n_groups, n_paths)
    threshold = np.where(is_debt, 0.0, arrays.threshold)
    # each group's legs, in leg order, to liquidate only the groups that are unhealthy
    group_legs = np.argsort(group_of, kind="stable")
    group_size = np.bincount(group_of, minlength=n_groups)
    group_start = np.cumsum(group_size) - group_size

    ids = np.arange(n_paths)
    amounts = np.tile(arrays.amount, (n_paths, 1))
    base = base.copy()
    reserve0 = np.tile(np.array([p.reserve0 for p in eco.pools]), (n_paths, 1))
    reserve1 = np.tile(np.array([p.reserve1 for p in eco.pools]), (n_paths, 1))
    solvency = np.ones((n_paths, len(layout.issuers)))
    solvency[:, [k for k, v in enumerate(layout.issuers) if v in failed_venues]] = 0.0
    bad_total = np.zeros((n_paths, n_venues))
    liquidated_out, seized_out = np.zeros((n_paths, n_venues)), np.zeros((n_paths, n_venues))
    credited_out = np.zeros((n_paths, n_venues))
    bad_out = np.zeros((n_paths, n_venues))
    prices_out = np.zeros((n_paths, len(layout.priced)))
    rounds_out = np.zeros(n_paths, np.int64)
    converged = np.zeros(n_paths, bool)
    price = layout.prices(base, solvency)
    if record is not None:
        none = np.zeros((n_paths, n_venues))
        record.append(_Round(price, none, none, none > 0, none,
                             np.zeros(n_paths, np.int64), none))
    for number in range(1, max_rounds + 1):
        if not len(ids):
            break
        n = len(ids)
        unit = price[:, layout.leg_price]
        value = amounts * unit
        sides = by_side(value)
        collateral, debt = sides[:, :n_groups], sides[:, n_groups:]
        weighted = by_group(value * threshold)
        unhealthy = (debt > dust_usd) & (weighted < debt * (1 - 1e-12))
        # the unhealthy (path, group) pairs, and their legs: `pair` of each, in leg order
        row, group = np.nonzero(unhealthy)
        size = group_size[group]
        pair = np.repeat(np.arange(len(row)), size)
        leg = group_legs[np.repeat(group_start[group] - np.cumsum(size) + size, size)
                         + np.arange(len(pair))]
        at_row = row[pair]
        value_of, amount, unit_of = value[at_row, leg], amounts[at_row, leg], unit[at_row, leg]
        debt_leg = is_debt[leg]
        coll_leg = ~debt_leg & (value_of > 0)
        # the group's bonus: its collateral's own bonuses weighed by value, else the venue's
        known = coll_leg & known_bonus[leg]
        weight = np.bincount(pair, np.where(known, value_of, 0.0), len(row))
        bonus = np.where(weight > 0, np.bincount(pair, np.where(
            known, value_of * own_bonus[leg], 0.0), len(row)) / np.where(weight > 0, weight, 1.0),
            rule_bonus[group])
        owed, held = debt[row, group], collateral[row, group]
        with np.errstate(divide="ignore", invalid="ignore"):
            health = np.where(owed > 0, weighted[row, group] / np.where(owed > 0, owed, 1.0),
                              np.inf)
        close = np.where(health < full_close_below[group], 1.0, close_factor[group])
        # an absorb takes everything; the collateral counts for each leg's value over its own
        # bonus (Comet: Σ value × liquidation factor), and repays the debt up to that
        absorb = absorbs[group]
        leg_bonus = np.where(known, own_bonus[leg], bonus[pair])
        cover = np.bincount(pair, np.where(coll_leg, value_of / np.where(
            coll_leg & (leg_bonus > 0), leg_bonus, 1.0), 0.0), len(row))
        repay = np.where(absorb, np.minimum(owed, cover), np.minimum(close * owed, held / bonus))
        seize = np.where(absorb, held, repay * bonus)
        credit = np.where(absorb, cover - repay, 0.0)  # the surplus, back to the borrower
        seized_share = np.where(held > 0, seize / np.where(held > 0, held, 1.0), 0.0)
        taken = np.where(coll_leg, amount * seized_share[pair], 0.0)
        amount -= taken
        repaid_share = np.where(owed > 0, repay / np.where(owed > 0, owed, 1.0), 0.0)
        amount = np.where(debt_leg & (value_of > 0), amount * (1 - repaid_share[pair]), amount)
        exhausted = (held - seize <= tolerance * np.maximum(1.0, held))[pair]
        remaining = np.bincount(pair, np.where(exhausted & debt_leg, amount * unit_of, 0.0),
                                len(row))
        amounts[at_row, leg] = np.where(exhausted & (~debt_leg | (remaining[pair] > 0)), 0.0,
                                        amount)
        venue_bin = row * n_venues + group_venue[group]
        bad, liquidated, seized, credited = (_binned(venue_bin, x, n, n_venues)
                                             for x in (remaining, repay, seize, credit))
        liquidated_out[ids] += liquidated
        seized_out[ids] += seized
        credited_out[ids] += credited
        # what the liquidators sell: each seized claim as units of its underlying
        taken_units = _binned(at_row * n_tokens + token_of[leg], taken, n, n_tokens)
        sold = np.zeros((n, len(layout.sales)))
        token_sold = taken_units.sum(axis=0) > 0  # most rounds sell few tokens
        for token, column, asset, slot in layout.sellers:
            if not token_sold[token]:
                continue
            own, underlying = price[:, column], price[:, asset]
            ratio = np.where(underlying > 0, own / np.where(underlying > 0, underlying, 1.0),
                             1.0)
            sold[:, slot] += taken_units[:, token] * ratio
        moved = np.zeros(n, bool)
        each = np.arange(n)
        asset_sold = sold.sum(axis=0) > 0
        for slot, sale in enumerate(layout.sales):
            if not asset_sold[slot]:
                continue
            # the deepest pool for the asset, path by path (the first of equals)
            depth = np.where(sale.side == 0, reserve0, np.where(sale.side == 1, reserve1, -1.0))
            pool = depth.argmax(axis=1)
            at = np.nonzero((sold[:, slot] > 0) & (depth[each, pool] > 0))[0]
            pool, units = pool[at], sold[at, slot]
            first = sale.side[pool] == 0
            x = np.where(first, reserve0[at, pool], reserve1[at, pool])
            y = np.where(first, reserve1[at, pool], reserve0[at, pool])
            paid_in = units * (1 - AMM_FEE)
            x2, y2 = x + units, y - y * paid_in / (x + paid_in)
            reserve0[at, pool] = np.where(first, x2, y2)
            reserve1[at, pool] = np.where(first, y2, x2)
            if sale.priced:
                # the pool's price change (y2 / x2) / (y / x), in a form that holds for y = 0
                ratio = x / (x + paid_in) * (x / x2)
                base[at, sale.asset] *= ratio
                moved[at] |= np.abs(ratio - 1) > tolerance
        new_bad = bad > 0
        bad_total = np.where(new_bad, bad_total + bad, bad_total)
        level = np.where(deposits > 0, np.maximum(
            0.0, 1 - bad_total / np.where(deposits > 0, deposits, 1.0)), 0.0)
        solvency[:, layout.venue_issuer] = np.where(
            new_bad & keeps_solvency, level, solvency[:, layout.venue_issuer])
        count = np.bincount(row, minlength=n)
        price = layout.prices(base, solvency)
        if record is not None:
            touched = _binned(venue_bin, np.ones(len(row)), n, n_venues) > 0
            record.append(_Round(price, liquidated, seized, touched, bad, count, credited))
        rounds_out[ids] = number
        done = (count == 0) & ~moved
        if done.any():
            converged[ids[done]] = True
            prices_out[ids[done]] = price[done][:, layout.priced]
            bad_out[ids[done]] = bad_total[done]
            keep = ~done
            ids, amounts, base, price = ids[keep], amounts[keep], base[keep], price[keep]
            reserve0, reserve1 = reserve0[keep], reserve1[keep]
            solvency, bad_total = solvency[keep], bad_total[keep]
    prices_out[ids] = price[:, layout.priced]
    bad_out[ids] = bad_total
    return BatchOutcome(venues, [layout.names[k] for k in layout.priced], bad_out,
                        liquidated_out, seized_out, prices_out, rounds_out, converged,
                        credited_out)


def _shocked_columns(eco: Ecosystem, layout: _Layout, tokens: Sequence[str]) -> list[int]:
    """The layout's column of each shocked token. A claim that follows an asset (an aToken) is
    priced as that asset × its issuer's solvency every round, so a shock of its own would be
    overwritten without effect: it is refused, naming the asset to shock."""
    for token in tokens:
        if token not in eco.prices:
            raise ValueError(f"no price for {token}: it cannot be shocked")
        if (asset := eco.asset_of(token)) != token:
            name = eco.symbols.get
            raise ValueError(f"{name(token) or token} follows the price of {name(asset) or asset}"
                             f": shock {name(asset) or asset} instead")
    return [layout.names.index(t) for t in tokens]


def cascade_batch(eco: Ecosystem, shocks: npt.ArrayLike, tokens: Sequence[str], *,
                  failed_venues: Sequence[str] = (), max_rounds: int = 200,
                  dust_usd: float = 1.0, tolerance: float = 1e-9) -> BatchOutcome:
    """The cascade on P independent price paths at once: `shocks` is P × len(tokens), the
    relative change of each token's price on each path. Each path ends exactly as `cascade`
    with that path's shocks would; the arrays are paths × legs, paths × pools, paths × venues."""
    changes = np.asarray(shocks, dtype=np.float64)
    tokens = list(tokens)
    if changes.ndim != 2 or changes.shape[1] != len(tokens):
        raise ValueError(f"shocks must be paths × {len(tokens)} (one column per token), "
                         f"not {changes.shape}")
    if not np.isfinite(changes).all() or (changes < -1).any():
        raise ValueError("shocks must be finite and at least -1 (a price falls at most 100 %)")
    if len(set(tokens)) < len(tokens):
        raise ValueError("a token is shocked twice: give each token one column")
    layout = _Layout.of(eco)
    base = np.tile(layout.base, (len(changes), 1))
    columns = _shocked_columns(eco, layout, tokens)
    base[:, columns] = layout.base[columns] * (1 + changes)
    return _run(eco, layout, base, failed_venues, max_rounds, dust_usd, tolerance)


def cascade(eco: Ecosystem, shocks: Mapping[str, float] | None = None, *,
            failed_venues: Sequence[str] = (), max_rounds: int = 200,
            dust_usd: float = 1.0, tolerance: float = 1e-9) -> list[CascadeRound]:
    """Run the cascade. `shocks`: token → relative price change (−0.15: down 15 %);
    `failed_venues`: venues whose issued claims are worth nothing from the start. Debt below
    `dust_usd` is not worth liquidating. Returns one entry per round, round 0 being the shocked
    starting point."""
    layout = _Layout.of(eco)
    base = layout.base.copy()
    shocks = shocks or {}
    columns = _shocked_columns(eco, layout, list(shocks))
    base[columns] = base[columns] * (1 + np.array(list(shocks.values()), dtype=np.float64))
    steps: list[_Round] = []
    _run(eco, layout, base[None, :], failed_venues, max_rounds, dust_usd, tolerance, steps)
    venues, priced = eco.arrays.venues, [(layout.names[k], k) for k in layout.priced]

    def per_venue(amounts: Vector, where: BoolVector) -> dict[str, float]:
        return {venues[v]: float(amounts[v]) for v in np.nonzero(where)[0]}

    return [CascadeRound(number, {t: float(s.prices[0, k]) for t, k in priced},
                         per_venue(s.liquidated[0], s.touched[0]),
                         per_venue(s.seized[0], s.touched[0]),
                         per_venue(s.bad[0], s.bad[0] > 0), int(s.count[0]),
                         per_venue(s.credited[0], s.credited[0] > 0))
            for number, s in enumerate(steps)]
