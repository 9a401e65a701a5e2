"""The policy file and the greedy coordinated recommendation, on hand-built ecosystems."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from contagion.graph.cascade import Ecosystem, Leg, LiquidationRule, Pool
from contagion.policy.model import PolicyError, load_policy
from contagion.policy.recommend import (
    Action,
    Anomaly,
    InForce,
    Market,
    lifts,
    recommend,
    simulated_loss,
)

X, USD = "0xx", "0xusd"


def _book(venues: tuple[str, ...] = ("a", "b"), groups: int = 5) -> Ecosystem:
    """Each venue lends USD against X to borrowers at health 1.05 (threshold 0.8)."""
    legs = []
    for venue in venues:
        for k in range(groups):
            legs += [Leg(venue, f"g{k}", X, 100_000.0, "collateral", 0.8),
                     Leg(venue, f"g{k}", USD, 100_000.0 * 0.8 / 1.05, "debt")]
    return Ecosystem({X: 1.0, USD: 1.0}, legs, [Pool(X, USD, 2e6, 2e6)],
                     {v: LiquidationRule(close_factor=1.0) for v in venues},
                     symbols={X: "X", USD: "USDC"})


def _market(rate: dict[str, float], vol: float = 0.8) -> Market:
    paths = [("venue:a", "venue:b", 0.5, ["venue:a", "token:0xx", "venue:b"]),
             ("token:0xx", "venue:b", 0.5, ["token:0xx", "venue:b"])]
    return Market({X: vol}, rate, paths, window_seconds=86_400.0,
                  symbols={X: "X", USD: "USDC"})


def _anomaly(venue: str = "a", level: str = "red", drift: float = 0.0) -> Anomaly:
    return Anomaly(venue, level, 12.0, {"oracle_drift": drift}, {"oracle_drift": 1.0})


def test_the_bundled_policy_documents_every_rule_and_bad_files_name_the_field(
        tmp_path: Path) -> None:
    policy = load_policy()
    assert {r.action for r in policy.rules} >= {"watch", "raise_margin", "freeze_market", "halt"}
    assert all(r.doc for r in policy.rules)
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\nhorizon_windows: 0\nstress_quantile: 0.99\n"
                   "min_transmission: 0.1\nmin_loss_cut_usd: 0\nrules: []\n")
    with pytest.raises(PolicyError, match="horizon_windows"):
        load_policy(bad)
    bad.write_text(bad.read_text().replace("rules: []", "rules:\n  - {name: r, doc: d, when: "
                                           "{}, action: raise_margin}"))
    with pytest.raises(PolicyError, match="threshold_cut"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="no policy file"):
        load_policy("nonexistent")


def test_a_freeze_left_open_elsewhere_pushes_the_capital_there() -> None:
    eco, market = _book(), _market({"a": 0.2, "b": 0.2})
    shocks = {X: -0.3}
    none = simulated_loss(eco, [], shocks, market, horizon=12)
    only_a = simulated_loss(eco, [Action("freeze_market", "a", X)], shocks, market, 12)
    both = simulated_loss(eco, [Action("freeze_market", "a", X),
                                Action("freeze_market", "b", X)], shocks, market, 12)
    assert none > 0
    assert only_a == pytest.approx(none, rel=0.05)  # growth moved to b, loss about the same
    assert both < 0.7 * none


def test_greedy_chooses_the_coordinated_freeze_with_its_evidence() -> None:
    policy = load_policy()
    recs = recommend(_book(), [_anomaly()], "red", _market({"a": 0.2, "b": 0.2}), policy)
    frozen = [r for r in recs if r.action in ("freeze_market", "raise_margin")]
    assert {r.venue for r in frozen} == {"a", "b"}
    assert all(r.asset == X and r.loss_after_usd < r.loss_before_usd for r in frozen)
    assert all(r.loss_cut_usd >= policy.min_loss_cut_usd for r in frozen)
    assert '"paths"' in frozen[0].evidence and "oracle_drift" in frozen[0].evidence
    assert any(r.action == "watch" and r.venue == "a" for r in recs)


def test_no_action_without_a_reason() -> None:
    policy = load_policy()
    market = _market({"a": 0.2, "b": 0.2})
    assert recommend(_book(), [], "green", market, policy) == []
    # an amber venue in a green ecosystem is only watched
    watched = recommend(_book(), [_anomaly(level="amber")], "green", market, policy)
    assert [(r.venue, r.action) for r in watched] == [("a", "watch")]
    # nothing moves without volatility: no loss to cut
    calm = recommend(_book(), [_anomaly()], "red", _market({"a": 0.2, "b": 0.2}, vol=0.0),
                     policy)
    assert {r.action for r in calm} == {"watch"}


def test_guardrails_exempt_assets_and_cooldown() -> None:
    policy = load_policy()
    market = _market({"a": 0.2, "b": 0.2})
    exempt = Market(market.volatility, market.borrow_rate, market.paths, market.window_seconds,
                    {X: "USDC", USD: "USDC"})
    assert {r.action for r in recommend(_book(), [_anomaly()], "red", exempt, policy)} \
        == {"watch"}
    cooling = frozenset((kind, v, X) for kind in ("freeze_market", "raise_margin")
                        for v in ("a", "b"))
    assert {r.action for r in recommend(_book(), [_anomaly()], "red", market, policy,
                                        cooling=cooling)} == {"watch"}
    cut = max(r.params.get("threshold_cut", 0.0)
              for r in recommend(_book(), [_anomaly()], "red", market, policy))
    assert cut <= policy.guardrails.max_threshold_cut


def test_a_margin_cut_in_force_is_replaced_not_added_to() -> None:
    """The book's thresholds already carry the RiskOracle's cut in force: a raise_margin of the
    same size changes nothing and is not proposed again; a deeper one lowers them only by the
    difference (the oracle stores the new cut in place of the old)."""
    policy = load_policy()
    market = _market({"a": 0.2, "b": 0.2})
    shocks = {X: -0.3}
    base = _book()
    cut = replace(base, legs=[replace(leg, threshold=leg.threshold - 0.05) for leg in base.legs],
                  margin_cuts={(v, X): 0.05 for v in ("a", "b")})
    for venue in ("a", "b"):
        same = [Action("raise_margin", venue, X, 0.05)]
        assert simulated_loss(cut, same, shocks, market, 12) == \
            simulated_loss(cut, [], shocks, market, 12)
        # 0.08 on a book cut by 0.05 = 0.08 on the uncut book
        assert simulated_loss(cut, [Action("raise_margin", venue, X, 0.08)], shocks, market,
                              12) == pytest.approx(simulated_loss(
                                  base, [Action("raise_margin", venue, X, 0.08)], shocks, market,
                                  12))
    margin_only = policy.model_copy(update={"rules": [r for r in policy.rules
                                                      if r.action == "raise_margin"]})
    assert {(r.venue, r.action) for r in recommend(base, [_anomaly()], "red", market,
                                                   margin_only)} == {("a", "raise_margin"),
                                                                     ("b", "raise_margin")}
    assert recommend(cut, [_anomaly()], "red", market, margin_only) == []


def test_what_is_in_force_is_lifted_after_a_calm_stretch_unless_it_still_cuts_the_loss(
        tmp_path: Path) -> None:
    policy = load_policy()
    lift = next(r for r in policy.rules if r.action == "normal")
    need = lift.when.calm_windows
    assert need is not None and need >= 1
    base = _book()  # borrowers at health 1.3 (1.22 on the thresholds cut by 0.05)
    healthy = replace(base, legs=[replace(leg, amount=leg.amount * 1.05 / 1.3)
                                  if leg.side == "debt" else leg for leg in base.legs])
    cut = replace(healthy, legs=[replace(leg, threshold=leg.threshold - 0.05)
                                 for leg in healthy.legs],
                  margin_cuts={(v, X): 0.05 for v in ("a", "b")})
    held = [InForce("a", X, False, 0.05), InForce("b", X, True, 0.0),
            InForce("b", None, True, 0.0), InForce("a", USD, False, 0.0)]
    calm_market = _market({"a": 0.2, "b": 0.2}, vol=0.0)
    recs = lifts(cut, held, {"a": need, "b": need}, need, calm_market, policy)
    # everything held is lifted (the last market holds nothing): nothing moves without
    # volatility, so lifting costs no simulated loss
    assert [(r.venue, r.asset, r.action, r.rule) for r in recs] == [
        ("a", X, "normal", lift.name), ("b", None, "normal", lift.name),
        ("b", X, "normal", lift.name)]
    assert all(r.loss_before_usd == r.loss_after_usd == 0.0 for r in recs)
    assert '"calm_windows"' in recs[0].evidence
    # not calm long enough, the venue or the ecosystem; or lifted within the cooldown
    assert {r.venue for r in lifts(cut, held, {"a": need - 1, "b": need}, need, calm_market,
                                   policy)} == {"b"}
    assert lifts(cut, held, {"a": need, "b": need}, need - 1, calm_market, policy) == []
    assert [r.venue for r in lifts(cut, held, {"a": need, "b": need}, need, calm_market,
                                   policy, cooling=frozenset({("normal", "a", X)}))] == ["b", "b"]
    # a cut stays while lifting it would add more than min_loss_cut_usd to the simulated loss
    # of X falling by the policy's quantile over the horizon
    years = policy.horizon_windows * 86_400 / (365.25 * 86_400)
    outcomes = set()
    for vol in (0.3, 0.53, 0.8):
        stormy = _market({"a": 0.2, "b": 0.2}, vol=vol)
        fall = {X: -(1 - np.exp(-norm.ppf(policy.stress_quantile) * vol * np.sqrt(years)))}
        added = simulated_loss(cut, [Action("normal", "a", X)], fall, stormy, 12) - \
            simulated_loss(cut, [], fall, stormy, 12)
        kept = not lifts(cut, held[:1], {"a": need}, need, stormy, policy)
        assert kept == (added > policy.min_loss_cut_usd), vol
        outcomes.add(kept)
    assert outcomes == {True, False}  # both happen on this book
    # a lift rule needs calm_windows, and only a lift rule takes it
    bad = tmp_path / "p.yaml"
    for rule in ("{name: r, doc: d, when: {}, action: normal}",
                 "{name: r, doc: d, when: {calm_windows: 3}, action: watch}",
                 "{name: r, doc: d, when: {calm_windows: 3, venue_level: amber}, "
                 "action: normal}"):
        bad.write_text("version: 1\nhorizon_windows: 1\nstress_quantile: 0.99\n"
                       f"min_transmission: 0.1\nmin_loss_cut_usd: 0\nrules:\n  - {rule}\n")
        with pytest.raises(PolicyError, match="normal"):
            load_policy(bad)


def test_a_freeze_stays_while_the_leverage_it_keeps_out_would_add_to_the_loss() -> None:
    """A freeze or a halt in force keeps a market's growth out; lifting it lets the growth back
    in. The lift is weighed on the book with the hold (one venue here, so the growth has nowhere
    else to go), and a halt against every asset the venue holds. Two holds that cover each
    other are weighed one after the other, so they are not both lifted as each redundant."""
    policy = load_policy()
    need = next(r for r in policy.rules if r.action == "normal").when.calm_windows
    assert need is not None
    eco = _book(("a",))
    freeze, halt = InForce("a", X, True, 0.0), InForce("a", None, True, 0.0)
    years = policy.horizon_windows * 86_400 / (365.25 * 86_400)
    outcomes = set()
    for vol in (0.3, 0.8):
        market = _market({"a": 0.2}, vol=vol)
        fall = {X: -(1 - np.exp(-norm.ppf(policy.stress_quantile) * vol * np.sqrt(years)))}
        added = simulated_loss(eco, [], fall, market, 12) - \
            simulated_loss(eco, [Action("freeze_market", "a", X)], fall, market, 12)
        kept = added > policy.min_loss_cut_usd
        outcomes.add(kept)
        for hold in (freeze, halt):
            recs = lifts(eco, [hold], {"a": need}, need, market, policy)
            assert (recs == []) == kept, (vol, hold)
            assert all(r.loss_after_usd - r.loss_before_usd == pytest.approx(added)
                       for r in recs)
        both = lifts(eco, [freeze, halt], {"a": need}, need, market, policy)
        assert [r.asset for r in both] == ([None] if kept else [None, X]), vol
    assert outcomes == {True, False}
    # a market of a claim (aX, worth X) is weighed as the asset the book holds it as
    ax = "0xax"
    claimed = replace(eco, legs=[replace(leg, token=ax) if leg.token == X else leg
                                 for leg in eco.legs],
                      prices={**eco.prices, ax: 1.0}, claims={ax: ("issuer", X)})
    stormy = _market({"a": 0.2}, vol=0.8)
    assert lifts(claimed, [InForce("a", ax, True, 0.0)], {"a": need}, need, stormy,
                 policy) == []
    # an action proposed at the market this window outranks its lift
    calm = _market({"a": 0.2}, vol=0.0)
    assert [r.asset for r in lifts(eco, [freeze], {"a": need}, need, calm, policy)] == [X]
    assert lifts(eco, [freeze], {"a": need}, need, calm, policy,
                 acted=frozenset({("a", X)})) == []


def _policy_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (Path(__file__).parents[2] / "contagion" / "policy" / "default.yaml").read_text()
    assert old in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_a_mistyped_feature_is_refused_by_name(tmp_path: Path) -> None:
    """`oracle_drfit` would never be above anything: the rule would silently never fire."""
    path = _policy_with(tmp_path, "feature_above: {oracle_drift:", "feature_above: {oracle_drfit:")
    with pytest.raises(PolicyError) as exc:
        load_policy(path)
    message = str(exc.value)
    assert "feature_above" in message and "unknown feature 'oracle_drfit'" in message
    assert "did you mean 'oracle_drift'" in message and "utilization" in message


def test_an_exempt_asset_the_registry_lacks_is_refused_where_the_policy_meets_it(
        tmp_path: Path) -> None:
    """The policy file cannot tell `USCD` is a typo; the early-warning marts, which read it with
    the registry, refuse it before computing anything (with it, USDC would not be exempt)."""
    import duckdb

    from contagion.registry import parse_registry
    from contagion.risk.marts import compute_risk_marts

    policy = load_policy(_policy_with(tmp_path, "exempt_assets: [USDC]", "exempt_assets: [USCD]"))
    policy.check_against(["WETH", "USCD"])  # the file itself is fine
    registry = parse_registry({
        "network": "t", "chain_id": 1,
        "tokens": [{"symbol": "WETH", "address": "0x" + "11" * 20, "decimals": 18},
                   {"symbol": "USDC", "address": "0x" + "22" * 20, "decimals": 6}],
        "venues": [{"id": "pool", "protocol": "aave_v3", "kind": "lending",
                    "contracts": {"pool": "0x" + "33" * 20}}]})
    with pytest.raises(PolicyError) as exc:
        policy.check_against(t.symbol for t in registry.tokens)
    assert "exempt_assets" in str(exc.value) and "'USCD' (did you mean 'USDC'?)" in str(exc.value)
    with duckdb.connect() as con, pytest.raises(PolicyError, match="USCD"):
        compute_risk_marts(con, registry, policy=policy)  # an empty database: checked first
    load_policy().check_against(t.symbol for t in registry.tokens)


def test_a_freeze_held_on_an_asset_and_its_claim_is_lifted_once_by_the_asset() -> None:
    """The feed writes a WETH freeze at Comet on WETH and on the aWETH it lists, so the oracle
    holds both; the lift is one `normal` named by the asset (the feed acts on both markets
    again), with what the two hold merged: two rows would make the feed refuse the pair."""
    import json

    from contagion.feed.oracle import MarketState, updates_from_recommendations
    from contagion.registry import parse_registry

    weth, aweth, usdc = ("0x" + b * 20 for b in ("11", "22", "33"))
    registry = parse_registry({
        "network": "t", "chain_id": 1,
        "tokens": [{"symbol": "WETH", "address": weth, "decimals": 18},
                   {"symbol": "USDC", "address": usdc, "decimals": 6},
                   {"symbol": "aWETH", "address": aweth, "decimals": 18, "kind": "atoken",
                    "issued_by": "aave_v3", "underlying": "WETH"}],
        "venues": [{"id": "aave_v3", "protocol": "aave_v3", "kind": "lending",
                    "contracts": {"pool": "0x" + "44" * 20}},
                   {"id": "comet", "protocol": "compound_v3", "kind": "lending",
                    "contracts": {"comet": "0x" + "55" * 20},
                    "markets": [{"id": "WETH", "collateral": ["WETH"], "loan": "USDC"},
                                {"id": "aWETH", "collateral": ["aWETH"], "loan": "USDC"}]}]})
    legs = []
    for k in range(3):
        legs += [Leg("comet", f"g{k}", weth, 10.0, "collateral", 0.895),
                 Leg("comet", f"g{k}", usdc, 10_000.0, "debt"),
                 Leg("comet", f"h{k}", aweth, 10.0, "collateral", 0.83),
                 Leg("comet", f"h{k}", usdc, 10_000.0, "debt")]
    eco = Ecosystem({weth: 3000.0, aweth: 3000.0, usdc: 1.0}, legs, [Pool(weth, usdc, 1e3, 3e6)],
                    {"comet": LiquidationRule(close_factor=1.0, absorb=True)},
                    claims={aweth: ("aave_v3", weth)}, deposits_usd={"aave_v3": 1e7})
    policy = load_policy()
    need = next(r for r in policy.rules if r.action == "normal").when.calm_windows
    assert need is not None
    held = [InForce("comet", weth, True, 0.0), InForce("comet", aweth, False, 0.05)]
    calm = replace(_market({"comet": 0.1}, vol=0.0), paths=[])
    recs = lifts(eco, held, {"comet": need}, need, calm, policy)
    assert [(r.venue, r.asset, r.action) for r in recs] == [("comet", weth, "normal")]
    assert json.loads(recs[0].evidence)["in_force"] == {"frozen": True, "margin_cut": 0.05}
    # within the cooldown, or with an action proposed there this window, nothing is lifted
    assert lifts(eco, held, {"comet": need}, need, calm, policy,
                 cooling=frozenset({("normal", "comet", weth)})) == []
    assert lifts(eco, held, {"comet": need}, need, calm, policy,
                 acted=frozenset({("comet", weth)})) == []
    rows = [{"snapshot_block": 1, "venue": r.venue, "asset": r.asset, "action": r.action,
             "params": json.dumps(r.params)} for r in recs]
    updates = updates_from_recommendations(
        rows, registry, chain_state=lambda venue, asset: MarketState(True, True, 0, 0),
        max_cut_step_bps=1000, expiry=10, snapshot_hash=b"\0" * 32, first_nonce=1)
    assert sorted(u.asset.lower() for u in updates) == [weth, aweth]


def test_the_reported_losses_are_those_of_the_actions_that_survive() -> None:
    """The greedy loop freezes X at both venues, then would add raise_margin on the same
    markets; one action per market survives (the strongest), so the weaker one is not taken at
    all and every row's loss after is the simulated loss of the actions reported."""
    from contagion.policy.recommend import _stress_moves

    policy = load_policy()
    for rate, vol in ((0.2, 0.8), (0.02, 0.65), (0.05, 0.65), (0.2, 1.2)):
        eco, market = _book(), _market({"a": rate, "b": rate}, vol=vol)
        recs = [r for r in recommend(eco, [_anomaly()], "red", market, policy)
                if r.action != "watch"]
        assert recs, (rate, vol)
        actions = [Action(r.action, r.venue, r.asset, r.params.get("threshold_cut", 0.0))
                   for r in recs]
        shocks = _stress_moves([X], market, policy)
        assert {r.loss_before_usd for r in recs} == {simulated_loss(eco, [], shocks, market, 12)}
        after = simulated_loss(eco, actions, shocks, market, 12)
        assert all(r.loss_after_usd == pytest.approx(after) for r in recs), (rate, vol)
        for r in recs:
            assert set(r.coordinated_with) <= {a.venue for a in actions
                                               if (a.kind, a.asset) == (r.action, r.asset)}


def test_a_cut_in_force_on_a_claim_market_counts_as_the_cut_on_its_asset() -> None:
    """`Ecosystem.margin_cuts` is keyed as on chain, by the claim (aX at venue c), while the
    actions name the asset (X): the same cut is not proposed again nor simulated twice, and
    lifting it gives the claim's thresholds back."""
    from contagion.policy.recommend import _stress_moves

    ax = "0xax"
    policy = load_policy()
    legs = []
    for k in range(5):  # health 1.05 on the thresholds cut by 0.05
        legs += [Leg("c", f"g{k}", ax, 100_000.0, "collateral", 0.8 - 0.05),
                 Leg("c", f"g{k}", USD, 100_000.0 * 0.75 / 1.05, "debt")]
    eco = Ecosystem({X: 1.0, USD: 1.0, ax: 1.0}, legs, [Pool(X, USD, 2e6, 2e6)],
                    {"c": LiquidationRule(close_factor=1.0)}, claims={ax: ("a", X)},
                    deposits_usd={"a": 1e7}, symbols={X: "X", USD: "USDC", ax: "aX"},
                    margin_cuts={("c", ax): 0.05})
    uncut = replace(eco, legs=[replace(leg, threshold=0.8) if leg.side == "collateral" else leg
                               for leg in legs], margin_cuts={})
    market = replace(_market({"c": 0.2}), paths=[])
    shocks = _stress_moves([X], market, policy)
    none = simulated_loss(eco, [], shocks, market, 12)
    assert none > policy.min_loss_cut_usd
    assert simulated_loss(eco, [Action("raise_margin", "c", X, 0.05)], shocks, market, 12) \
        == none
    assert simulated_loss(eco, [Action("normal", "c", X)], shocks, market, 12) == \
        pytest.approx(simulated_loss(uncut, [], shocks, market, 12))
    margin_only = policy.model_copy(update={"rules": [r for r in policy.rules
                                                      if r.action == "raise_margin"]})
    assert recommend(eco, [_anomaly("c")], "red", market, margin_only) == []
    # a deeper cut is still proposed, named by the asset
    deeper = margin_only.model_copy(update={"rules": [
        r.model_copy(update={"params": r.params.model_copy(update={"threshold_cut": 0.1})})
        for r in margin_only.rules if r.params]})
    assert [(r.venue, r.asset, r.params) for r in recommend(
        eco, [_anomaly("c")], "red", market, deeper)] == [("c", X, {"threshold_cut": 0.1})]


@pytest.mark.parametrize(("old", "new", "message"), [
    ("oracle_drift: 0.05", "oracle_drift: .nan",
     r"rules\.3\.when\.feature_above\.oracle_drift: Input should be a finite number"),
    ("min_loss_cut_usd: 10000", "min_loss_cut_usd: .inf",
     "min_loss_cut_usd: Input should be a finite number"),
    ("version: 1", "version: 1\nversion: 1", "duplicate key 'version'"),
    ("when: {venue_level: amber}\n", "when: {venue_level: amber, venue_level: red}\n",
     r"duplicate key 'rules\.0\.when\.venue_level'"),
])
def test_a_number_that_is_not_finite_or_a_key_given_twice_is_refused_by_name(
        tmp_path: Path, old: str, new: str, message: str) -> None:
    """`.nan` in feature_above makes a rule that can never fire, `.inf` a policy that never
    acts, and YAML keeps the last of two equal keys without a word."""
    with pytest.raises(PolicyError, match=message):
        load_policy(_policy_with(tmp_path, old, new))
