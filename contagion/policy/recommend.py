"""The coordinated-freeze recommendation: which actions, at which venues, cut the simulated
ecosystem loss the most.

At a snapshot, every venue whose level is amber or above is an anomaly. Its implicated assets
are the collateral it holds and the claims it issues (as the assets they are priced as); the
exposed venues are itself and every lending venue a contagion path of at least
`min_transmission` reaches from it or from those assets. The policy's rules whose conditions
hold propose actions at the exposed venues, one market (venue, asset) at a time, and the same
action at every exposed venue holding that asset at once (coordinated).

The counterfactual (`simulated_loss`): the book is projected over the horizon at each venue's
recent gross borrowing rate (every borrowing group's legs grow together), the implicated assets
fall by the policy's quantile of their move over the horizon, and the DeFi cascade of
`contagion.graph.cascade` says what bad debt is left. Actions change the projected book:
- freeze_market (venue, asset): the groups borrowing against that asset there stop growing, and
  the growth they would have had moves to the groups holding it at the venues still open: the
  capital goes where it is allowed to go;
- halt (venue): the same for all its groups;
- raise_margin (venue, asset): the asset's liquidation threshold there is lowered by the rule's
  cut (at most the guardrail), and groups below 1 on the new threshold repay to exactly 1
  before the fall, while the pools are still deep. The cut is the RiskOracle's new value for
  the market, replacing any cut in force (`Ecosystem.margin_cut`, on the asset or a claim that
  follows it): it is proposed only where it is deeper than that one, and only the difference
  lowers the thresholds further.
Greedily, the candidate that cuts the loss most is taken, given those already taken, until no
candidate cuts it by `min_loss_cut_usd`. A market gets one action, the strongest: what the
rows report before and after is the loss of the actions recommended.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import norm

from contagion.graph.cascade import Ecosystem, cascade
from contagion.policy.model import ACTIONS, Policy, Rule

__all__ = ["Action", "Anomaly", "InForce", "Market", "Recommendation", "lifts", "recommend",
           "simulated_loss"]

LEVEL_RANK = {"green": 0, "amber": 1, "red": 2}


@dataclass(frozen=True, order=True)
class Action:
    kind: str  # raise_margin | freeze_market | halt
    venue: str
    asset: str | None  # None: the whole venue (halt)
    threshold_cut: float = 0.0


@dataclass(frozen=True)
class Anomaly:
    venue: str
    level: str
    score: float
    features: Mapping[str, float]  # value per feature
    contributions: Mapping[str, float]  # per feature, to the squared distance


@dataclass(frozen=True)
class Market:
    """What the counterfactual needs besides the ecosystem at the snapshot."""

    volatility: Mapping[str, float]  # asset -> annualised
    borrow_rate: Mapping[str, float]  # venue -> gross new borrowing per window / debt
    paths: Sequence[tuple[str, str, float, Sequence[str]]]  # source, target, transmission, nodes
    window_seconds: float
    symbols: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommendation:
    venue: str
    asset: str | None
    action: str
    rule: str
    params: dict[str, float]
    anomalous_venue: str
    loss_before_usd: float  # simulated bad debt with no action
    loss_after_usd: float  # with every action recommended at this snapshot
    loss_cut_usd: float  # what this action (with its coordinated set) cut when it was chosen
    coordinated_with: tuple[str, ...]  # the other venues of the same coordinated action
    evidence: str  # JSON: features and contributions, paths


def _group_assets(eco: Ecosystem) -> dict[tuple[str, str], dict[str, float]]:
    """Per borrower group, the USD of collateral it holds in each asset."""
    held: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for leg in eco.legs:
        if leg.side == "collateral" and leg.amount > 0:
            held[(leg.venue, leg.group)][eco.asset_of(leg.token)] += \
                leg.amount * eco.prices.get(leg.token, 0.0)
    return held


def _project(eco: Ecosystem, actions: Sequence[Action], market: Market, horizon: int
             ) -> Ecosystem:
    held = _group_assets(eco)
    debt_usd: dict[tuple[str, str], float] = defaultdict(float)
    for leg in eco.legs:
        if leg.side == "debt":
            debt_usd[(leg.venue, leg.group)] += leg.amount * eco.prices.get(leg.token, 0.0)
    halted = {a.venue for a in actions if a.kind == "halt"}
    frozen = {(a.venue, a.asset) for a in actions if a.kind == "freeze_market"}

    def blocked(key: tuple[str, str]) -> bool:
        venue, _ = key
        return venue in halted or any((venue, asset) in frozen for asset in held.get(key, ()))

    growth = {key: horizon * market.borrow_rate.get(key[0], 0.0) for key in debt_usd}
    # growth a frozen group cannot take moves to open groups holding its largest asset
    moved: dict[str, float] = defaultdict(float)
    for key, usd in debt_usd.items():
        if blocked(key) and held.get(key):
            largest = max(held[key].items(), key=lambda item: (item[1], item[0]))[0]
            moved[largest] += growth[key] * usd
            growth[key] = 0.0
    for asset, usd in moved.items():
        open_groups = [k for k in debt_usd if not blocked(k) and asset in held.get(k, ())]
        total = sum(debt_usd[k] for k in open_groups)
        for k in open_groups:
            growth[k] += usd / total if total > 0 else 0.0
    # a new cut replaces the one in force (the legs' thresholds already carry that one): only
    # a deeper cut changes the book, and lifting one (normal) gives its thresholds back
    deeper = {(a.venue, a.asset): a.threshold_cut - eco.margin_cut(a.venue, a.asset)
              for a in actions if a.kind == "raise_margin" and a.asset is not None}
    cuts = {key: cut for key, cut in deeper.items() if cut > 0}
    lifted = {(a.venue, a.asset): eco.margin_cut(a.venue, a.asset)
              for a in actions if a.kind == "normal" and a.asset is not None}
    legs = []
    for leg in eco.legs:
        scale = 1.0 + growth.get((leg.venue, leg.group), 0.0)
        where = (leg.venue, eco.asset_of(leg.token))
        cut = cuts.get(where, 0.0) - lifted.get(where, 0.0) if leg.side == "collateral" \
            else 0.0
        legs.append(replace(leg, amount=leg.amount * scale,
                            threshold=max(leg.threshold - cut, 0.0)))
    if cuts:  # groups below 1 on the new thresholds repay to exactly 1
        weighted: dict[tuple[str, str], float] = defaultdict(float)
        owed: dict[tuple[str, str], float] = defaultdict(float)
        for leg in legs:
            value = leg.amount * eco.prices.get(leg.token, 0.0)
            if leg.side == "debt":
                owed[(leg.venue, leg.group)] += value
            else:
                weighted[(leg.venue, leg.group)] += value * leg.threshold
        ratio = {k: weighted[k] / d for k, d in owed.items()
                 if d > 0 and weighted[k] < d and any(
                     (k[0], a) in cuts for a in held.get(k, ()))}
        legs = [replace(leg, amount=leg.amount * ratio[(leg.venue, leg.group)])
                if leg.side == "debt" and (leg.venue, leg.group) in ratio else leg
                for leg in legs]
    return replace(eco, legs=legs)


def _in_place_of_weaker(taken: Sequence[Action], actions: Sequence[Action]) -> list[Action]:
    """The actions taken with `actions` added, each replacing what is taken on its market
    (a market holds one action: the candidates on a market taken by one at least as strong are
    dropped before, so what is replaced is weaker)."""
    markets = {(a.venue, a.asset) for a in actions}
    return [a for a in taken if (a.venue, a.asset) not in markets] + list(actions)


def simulated_loss(eco: Ecosystem, actions: Sequence[Action], shocks: Mapping[str, float],
                   market: Market, horizon: int) -> float:
    """Bad debt the cascade leaves on the projected book under the shocks, USD."""
    projected = _project(eco, actions, market, horizon)
    rounds = cascade(projected, {t: s for t, s in shocks.items() if t in projected.prices})
    return float(sum(sum(r.bad_debt_usd.values()) for r in rounds))


def _stress_moves(assets: Iterable[str], market: Market, policy: Policy) -> dict[str, float]:
    """Each asset's fall by the policy's quantile of its move over the horizon, 1 − exp(−z·σ·√T)
    (assets without volatility do not move)."""
    years = policy.horizon_windows * market.window_seconds / (365.25 * 86_400)
    z = float(norm.ppf(policy.stress_quantile))
    return {a: -(1 - float(np.exp(-z * market.volatility[a] * np.sqrt(years))))
            for a in assets if market.volatility.get(a, 0.0) > 0}


@dataclass(frozen=True)
class InForce:
    """What the RiskOracle holds for a market (int_oracle_markets)."""

    venue: str
    asset: str | None  # None: the venue-wide market (a halt)
    frozen: bool
    margin_cut: float  # a fraction, as thresholds are


def lifts(eco: Ecosystem, in_force: Sequence[InForce], calm: Mapping[str, int],
          ecosystem_calm: int, market: Market, policy: Policy, *,
          cooling: frozenset[tuple[str, str, str | None]] = frozenset(),
          acted: frozenset[tuple[str, str | None]] = frozenset()) -> list[Recommendation]:
    """`normal` for each market the oracle still holds frozen or cut, at a venue that has been
    green, and the ecosystem with it, for a lift rule's `calm_windows` in a row (`calm`: venue
    -> green windows in a row) — unless lifting raises the simulated loss by more than
    `min_loss_cut_usd`, with the market's asset (for a halt: every asset the venue holds)
    falling by the policy's quantile. The loss before is with what is still in force, after
    with this market's freeze or halt gone and its cut given back. Markets are weighed one at a
    time, in (venue, asset) order, each on the book the lifts already taken leave: two holds
    that cover each other are not both lifted because each looks redundant beside the other.
    A market in `acted` (an action proposed there this window outranks a lift) stays held. A
    market of a claim (Compound's aWETH) is the asset it is worth (WETH), as the book and the
    recommendations name it: its hold is merged with the asset's (the feed puts an action on
    an asset on the claims on it too) and lifted with it, by one `normal` naming the asset."""
    held_assets = _group_assets(eco)
    merged: dict[tuple[str, str | None], InForce] = {}
    for h in in_force:
        key = (h.venue, None if h.asset is None else eco.asset_of(h.asset))
        both = merged.get(key, InForce(*key, False, 0.0))
        merged[key] = InForce(*key, both.frozen or h.frozen, max(both.margin_cut, h.margin_cut))
    standing = {key: Action("halt" if h.asset is None else "freeze_market", h.venue, h.asset)
                for key, h in merged.items() if h.frozen}
    lifted: list[Action] = []
    rules = [r for r in policy.rules if r.action == "normal"]
    out: list[Recommendation] = []
    for held in sorted(merged.values(), key=lambda h: (h.venue, h.asset or "")):
        market_key, asset = (held.venue, held.asset), held.asset  # asset: as the book names it
        rule = next((r for r in rules if calm.get(held.venue, 0) >= (r.when.calm_windows or 0)
                     and ecosystem_calm >= (r.when.calm_windows or 0)), None)
        if rule is None or not (held.frozen or held.margin_cut > 0) \
                or ("normal", held.venue, asset) in cooling or market_key in acted:
            continue
        assets = [asset] if asset else sorted(
            {a for (venue, _), usd in held_assets.items() if venue == held.venue for a in usd})
        shocks = _stress_moves(assets, market, policy)
        kept = [a for key, a in standing.items() if key != market_key]
        before = simulated_loss(eco, [*standing.values(), *lifted], shocks, market,
                                policy.horizon_windows)
        lift = Action("normal", held.venue, asset)
        after = simulated_loss(eco, [*kept, *lifted, lift], shocks, market,
                               policy.horizon_windows)
        if after - before > policy.min_loss_cut_usd:
            continue
        standing.pop(market_key, None)
        lifted.append(lift)
        evidence = json.dumps({
            "venue": held.venue, "calm_windows": calm.get(held.venue, 0),
            "ecosystem_calm_windows": ecosystem_calm,
            "in_force": {"frozen": held.frozen, "margin_cut": held.margin_cut},
            "shocks": shocks}, default=float)
        out.append(Recommendation(held.venue, held.asset, "normal", rule.name, {},
                                  held.venue, before, after, before - after, (), evidence))
    return out


def _holds(rule: Rule, anomaly: Anomaly, ecosystem_level: str) -> bool:
    when = rule.when
    if when.venue_level and LEVEL_RANK[anomaly.level] < LEVEL_RANK[when.venue_level]:
        return False
    if when.ecosystem_level and LEVEL_RANK[ecosystem_level] < LEVEL_RANK[when.ecosystem_level]:
        return False
    return all(anomaly.features.get(name, float("-inf")) > bound
               for name, bound in when.feature_above.items())


def recommend(eco: Ecosystem, anomalies: Sequence[Anomaly], ecosystem_level: str,
              market: Market, policy: Policy, *,
              cooling: frozenset[tuple[str, str, str | None]] = frozenset()
              ) -> list[Recommendation]:
    """The recommendations at one snapshot (see the module). `cooling` lists the (action,
    venue, asset) issued within the cooldown, which are not proposed again."""
    out: list[Recommendation] = []
    exempt = {t for t, s in market.symbols.items() if s in policy.guardrails.exempt_assets}
    held = _group_assets(eco)
    venue_assets: dict[str, set[str]] = defaultdict(set)
    for (venue, _), assets in held.items():
        venue_assets[venue] |= set(assets)
    for anomaly in sorted(anomalies, key=lambda a: -a.score):
        rules = [r for r in policy.rules
                 if r.action != "normal" and _holds(r, anomaly, ecosystem_level)]
        if not rules:
            continue
        issued = {eco.asset_of(t) for t, (issuer, _) in eco.claims.items()
                  if issuer == anomaly.venue}
        implicated = (venue_assets.get(anomaly.venue, set()) | issued) - exempt
        sources = {f"venue:{anomaly.venue}"} | {f"token:{a}" for a in implicated}
        strong = [p for p in market.paths if p[0] in sources and p[2] >= policy.min_transmission]
        exposed = sorted({anomaly.venue} | {p[1].removeprefix("venue:") for p in strong
                                            if p[1].startswith("venue:")})
        shocks = _stress_moves(implicated, market, policy)
        evidence = json.dumps({
            "venue": anomaly.venue, "level": anomaly.level, "score": anomaly.score,
            "features": dict(anomaly.features), "contributions": dict(anomaly.contributions),
            "paths": [{"path": list(p[3]), "transmission": p[2]} for p in strong[:10]],
            "shocks": shocks}, default=float)
        for rule in (r for r in rules if r.action == "watch"):
            out.append(Recommendation(anomaly.venue, None, "watch", rule.name, {},
                                      anomaly.venue, 0.0, 0.0, 0.0, (), evidence))
        candidates: list[tuple[Rule, tuple[Action, ...]]] = []
        for rule in (r for r in rules if r.action not in ("watch", "normal")):
            cut = min(rule.params.threshold_cut, policy.guardrails.max_threshold_cut) \
                if rule.params else 0.0
            if rule.action == "halt":
                singles = [(Action("halt", v, None),) for v in exposed if v in venue_assets]
                candidates += [(rule, s) for s in singles
                               if ("halt", s[0].venue, None) not in cooling]
                continue
            for asset in sorted(implicated):
                group = tuple(Action(rule.action, v, asset, cut) for v in exposed
                              if asset in venue_assets.get(v, ())
                              and (rule.action, v, asset) not in cooling
                              and not (rule.action == "raise_margin"
                                       and cut <= eco.margin_cut(v, asset)))
                candidates += [(rule, (a,)) for a in group]
                if len(group) > 1:
                    candidates.append((rule, group))
        chosen: list[tuple[Rule, tuple[Action, ...], float]] = []
        taken: list[Action] = []
        before = current = simulated_loss(eco, [], shocks, market, policy.horizon_windows)
        while candidates:
            # one action per market, the strongest: a candidate's actions replace weaker ones
            # taken on their markets, so each loss is that of the actions that would be issued
            sets = [_in_place_of_weaker(taken, c) for _, c in candidates]
            losses = [simulated_loss(eco, actions, shocks, market, policy.horizon_windows)
                      for actions in sets]
            best = int(np.argmin(losses))
            if current - losses[best] < max(policy.min_loss_cut_usd, 1e-9):
                break
            rule, actions = candidates.pop(best)
            chosen.append((rule, actions, current - losses[best]))
            taken, current = sets[best], losses[best]
            # an action on a market taken by an action at least as strong would not be issued
            strength = {(a.venue, a.asset): ACTIONS.index(a.kind) for a in taken}
            candidates = [(r, c) for r, c in candidates
                          if all(ACTIONS.index(a.kind) > strength.get((a.venue, a.asset), -1)
                                 for a in c)]
        for rule, actions, cut_usd in chosen:
            kept = [a for a in actions if a in taken]  # not replaced by a stronger one since
            for action in kept:
                params = {"threshold_cut": action.threshold_cut} \
                    if action.kind == "raise_margin" else {}
                out.append(Recommendation(
                    action.venue, action.asset, action.kind, rule.name, params, anomaly.venue,
                    before, current, cut_usd,
                    tuple(a.venue for a in kept if a.venue != action.venue), evidence))
    # one recommendation per market (several anomalies may act on it): the strongest wins
    strongest: dict[tuple[str, str | None], Recommendation] = {}
    for rec in out:
        key = (rec.venue, rec.asset)
        if key not in strongest or \
                ACTIONS.index(rec.action) > ACTIONS.index(strongest[key].action):
            strongest[key] = rec
    return sorted(strongest.values(), key=lambda r: (r.venue, r.asset or "", r.action))
