"""Greeks against Hull's worked example, the anomaly score's statistics, alert hysteresis."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import polars as pl
import pytest
from conftest import Views, World
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.risk.anomaly import anomaly_score
from contagion.risk.greeks import black_scholes, smile_vol
from contagion.risk.levels import Hysteresis, levels
from contagion.risk.marts import pairwise_correlation
from contagion.risk.scores import ecosystem_scores, venue_scores
from contagion.risk.state import features_of


def test_black_scholes_matches_hulls_example() -> None:
    """Hull, Options, Futures and Other Derivatives: S = 42, K = 40, r = 10 %, σ = 20 %,
    six months: call 4.76, put 0.81; call delta 0.779, gamma 0.050, vega 8.81."""
    call = black_scholes(42, 40, 0.5, 0.2, rate=0.1)
    put = black_scholes(42, 40, 0.5, 0.2, rate=0.1, is_put=True)
    assert float(call.price) == pytest.approx(4.76, abs=0.005)
    assert float(put.price) == pytest.approx(0.81, abs=0.005)
    assert float(call.delta) == pytest.approx(0.7791, abs=1e-4)
    assert float(call.gamma) == pytest.approx(0.0500, abs=1e-4)
    assert float(call.vega) == pytest.approx(8.81, abs=0.01)
    assert float(put.delta) == pytest.approx(0.7791 - 1, abs=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 5000), st.floats(1, 5000), st.floats(0.0, 3.0), st.floats(0.0, 3.0),
       st.floats(0.0, 0.2))
def test_put_call_parity_and_bounds(spot: float, strike: float, years: float, vol: float,
                                    rate: float) -> None:
    c = black_scholes(spot, strike, years, vol, rate=rate)
    p = black_scholes(spot, strike, years, vol, rate=rate, is_put=True)
    forward = spot - strike * np.exp(-rate * years)
    assert float(c.price - p.price) == pytest.approx(forward, abs=1e-6 * (spot + strike))
    assert 0 <= float(c.delta) <= 1 and -1 <= float(p.delta) <= 0
    assert float(c.gamma) >= 0 and float(c.vega) >= 0
    assert float(c.price) >= max(forward, 0.0) - 1e-9 * (spot + strike)


def test_the_smile_passes_through_the_quotes_it_is_built_from() -> None:
    """Malz's smile from ATM vol and the 25-delta risk reversal: at the strikes where the call
    delta (at the ATM vol) is ¼, ½ and ¾ it gives ATM + RR/2, ATM and ATM − RR/2 (the 25-delta
    call's and put's vols); with puts bid (RR < 0) it falls as the strike rises, stays within
    ATM ± |RR|, and one strike has one vol, so a put and a call there keep put–call parity."""
    from scipy.stats import norm

    spot, years, atm, rr = 2000.0, 30 / 365.25, 0.6, -0.1
    root = atm * np.sqrt(years)
    strikes = spot * np.exp(-norm.ppf([0.25, 0.5, 0.75]) * root + root**2 / 2)
    assert black_scholes(spot, strikes, years, atm).delta == pytest.approx([0.25, 0.5, 0.75])
    assert smile_vol(spot, strikes, years, atm, rr) == pytest.approx(
        [atm + rr / 2, atm, atm - rr / 2], abs=1e-12)
    grid = np.linspace(500, 6000, 200)
    vols = smile_vol(spot, grid, years, atm, rr)
    assert (np.diff(vols) <= 0).all() and (vols <= atm - rr).all() and (vols >= atm + rr).all()
    call = black_scholes(spot, grid, years, vols).price
    put = black_scholes(spot, grid, years, vols, is_put=True).price
    assert call - put == pytest.approx(spot - grid, abs=1e-9 * spot)


def test_vectorized_over_a_book_and_expired_options_are_intrinsic() -> None:
    g = black_scholes([100, 100, 100], [90, 110, 100], [0.25, 0.0, 0.0], [0.6, 0.6, 0.0],
                      is_put=[False, True, False])
    assert g.price.shape == (3,)
    assert g.price[1] == pytest.approx(10.0) and g.delta[1] == -1.0 and g.gamma[1] == 0
    assert g.price[2] == 0.0 and g.vega[2] == 0.0


def test_anomaly_score_calm_and_outlier_with_contributions() -> None:
    rng = np.random.default_rng(3)
    cov = [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 4.0]]
    baseline = rng.multivariate_normal([0, 0, 0], cov, 300)
    calm = anomaly_score(baseline, [0.1, 0.1, 0.0])
    assert calm.method == "mcd_ledoit_wolf" and calm.p_value > 0.5
    # against the correlation: each feature alone is ordinary, together they are not
    odd = anomaly_score(baseline, [2.0, -2.0, 0.0])
    assert odd.p_value < 1e-6
    assert odd.contributions.sum() == pytest.approx(odd.distance**2)
    assert np.argmin(odd.contributions) == 2  # the third feature did not move


def test_p_values_are_roughly_uniform_under_the_baseline() -> None:
    rng = np.random.default_rng(11)
    baseline = rng.normal(size=(400, 4))
    fresh = rng.normal(size=(400, 4))
    p = np.array([anomaly_score(baseline, z).p_value for z in fresh])
    assert 0.01 < (p < 0.05).mean() < 0.12


def _lending_null(rng: np.random.Generator, windows: int, spread: float = 5.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lending's state vectors drawn from one distribution, each feature moving `spread` times
    its floor: the floors and directions venue_scores scores them with."""
    features = features_of("lending")
    floor = np.array([f.floor for f in features])
    x = rng.normal(size=(windows, len(features))) * floor * spread
    return x, floor, np.array([f.direction for f in features], dtype=np.float64)


def test_a_window_like_its_baseline_is_rarely_amber_with_a_full_baseline() -> None:
    """The false-alarm rate when nothing happens, at the baseline lengths where MCD chooses
    the windows (32 and 40, lending's 15 features). With MCD's own covariance about one such
    window in eight scored amber (p < 1e-4); here at most one in 120."""
    rng = np.random.default_rng(5)
    for n in (32, 40):
        amber = 0
        for _ in range(120):
            x, floor, direction = _lending_null(rng, n + 1)
            result = anomaly_score(x[:n], x[n], floor=floor, direction=direction)
            assert result.method == "mcd_ledoit_wolf"
            amber += result.p_value < 1e-4
        assert amber <= 1, f"{amber} of 120 null windows amber with {n} baseline windows"


def test_a_crisis_already_in_the_baseline_does_not_hide_the_next_window() -> None:
    """Four of the forty baseline windows already carry the crisis (three features moved ten
    times their spread, the adverse way), and so does the current one: MCD leaves those four
    out of the fit, so the current window still stands out. Ledoit–Wolf on all forty windows
    flags it in none of these draws."""
    rng = np.random.default_rng(2)
    flagged = 0
    for _ in range(40):
        x, floor, direction = _lending_null(rng, 41)
        moved = [0, 3, 5]
        x[36:, moved] += 10 * 5 * floor[moved] * direction[moved]
        flagged += anomaly_score(x[:40], x[40], floor=floor, direction=direction).p_value < 1e-4
    assert flagged >= 32, f"flagged {flagged} of 40"


def test_short_singular_and_missing_baselines_are_handled() -> None:
    short = anomaly_score([[1.0, 2.0], [1.1, 2.1]], [5.0, 5.0])
    assert short.method == "none" and short.p_value == 1.0
    flat = np.column_stack([np.linspace(0, 1, 20), np.full(20, 3.0)])  # second never moves
    moved = anomaly_score(flat, [0.5, 4.0])
    assert moved.method == "diagonal" and moved.p_value < 1e-9
    assert anomaly_score(flat, [0.5, 3.0]).p_value > 0.5
    few = anomaly_score(np.random.default_rng(1).normal(size=(6, 4)), np.zeros(4))
    assert few.method == "ledoit_wolf" and np.isfinite(few.distance)
    gaps = np.vstack([flat, [[np.nan, 3.0]]])
    assert anomaly_score(gaps, [0.5, 3.0]).baseline_windows == 20
    with pytest.raises(ValueError, match="missing or infinite"):
        anomaly_score(flat, [np.nan, 3.0])


def test_levels_rise_at_once_and_fall_only_after_a_calm_stretch() -> None:
    rule = Hysteresis(amber=3.0, red=6.0, margin=0.5, cooldown=3)
    # hovering just under the amber threshold does not flicker back to green
    assert levels([3.1, 2.9, 3.2, 2.8, 2.9], rule) == ["amber"] * 5
    # three windows clearly calm bring it down to where the score is
    assert levels([7, 1, 1, 1, 1, 1, 1], rule) == [
        "red", "red", "red", "green", "green", "green", "green"]
    assert levels([7, 4, 4, 4, 4], rule) == ["red", "red", "red", "amber", "amber"]
    with pytest.raises(ValueError):
        Hysteresis(amber=5, red=4)
    with pytest.raises(ValueError, match="margin < amber"):  # amber could never be left
        Hysteresis(amber=1, red=4, margin=1)


@pytest.mark.devnet
def test_a_database_without_snapshots_is_a_clear_error(world: World, tmp_path: Path) -> None:
    import shutil

    import duckdb

    from contagion.risk.marts import write_risk_marts

    db = tmp_path / "empty.duckdb"
    shutil.copy(world.db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("delete from ref_snapshots")
    with pytest.raises(ValueError, match="no snapshot"):
        write_risk_marts(db, world.registry)


@pytest.mark.devnet
def test_the_derivatives_book_is_the_chains_and_gets_an_insolvency_probability(
        world: World) -> None:
    """At the last snapshot every open perps position and written option the insolvency paths
    value is what the venues' own views hold, and the perps and options venues get a probability
    of insolvency beside the lending ones."""
    from contagion.devnet.driver import DevnetDriver
    from contagion.graph.load import ecosystem_at, latest_snapshot
    from contagion.risk.derivatives import OPTION_UNIT, USD_30, derivatives_at
    from contagion.risk.marts import insolvency
    from contagion.warehouse import connect_readonly

    registry, driver = world.registry, DevnetDriver(world.client)
    with connect_readonly(world.db) as con:
        last = latest_snapshot(con)
        book = derivatives_at(con, last)
        perps = con.execute(
            "select venue, account, collateral_token, index_token, is_long, size_usd_raw, "
            "collateral_usd_raw, average_price_raw from int_perp_margin "
            "where snapshot_block = ? and size_usd_raw > 0", [last]).fetchall()
        shorts = con.execute(
            "select venue, owner, vault_id, token, amount_raw from int_options_vaults "
            "where snapshot_block = ? and side = 'debt' and amount_raw > 0", [last]).fetchall()
        marts = insolvency(con, registry, {last: ecosystem_at(con, registry, last)})

    view = Views(world.client, last)

    def at(contract: str, address: str, fn: str, *args: object) -> object:
        return view(driver.at(contract, address), fn, *args)

    assert perps and shorts  # the crisis leaves both kinds open
    for venue, account, collateral_token, index, is_long, size, collateral, entry in perps:
        vault = registry.venue(venue).main_contract
        on_chain = at("PerpsVault", vault, "getPosition", account, collateral_token, index,
                      is_long)
        assert cast(tuple[int, ...], on_chain)[:3] == (int(size), int(collateral), int(entry))
    assert sorted((p.size_usd, p.collateral_usd, p.entry_price) for p in book.perps) == sorted(
        (int(s) / USD_30, int(c) / USD_30, int(e) / USD_30) for *_, s, c, e in perps)
    for venue, owner, vault_id, otoken, amount in shorts:
        venue_address = registry.venue(venue).main_contract
        assert at("OptionsVenue", venue_address, "short_amount", owner, int(vault_id),
                  otoken) == int(amount)
        asset, collateral, settled = cast(tuple[str, int, bool], at(
            "OptionsVenue", venue_address, "vault_of", owner, int(vault_id)))
        is_put, strike, _ = cast(tuple[bool, int, int], at("OptionsVenue", venue_address,
                                                           "series_of", otoken))
        written = [o for o in book.options if o.vault == f"{owner}#{vault_id}"
                   and o.amount == int(amount) / OPTION_UNIT]
        assert not settled and len(written) == 1, (owner, vault_id)
        decimals = registry.token(next(t.symbol for t in registry.tokens
                                       if t.address.lower() == asset.lower())).decimals
        assert (written[0].is_put, written[0].strike_usd, written[0].collateral_token,
                written[0].collateral) == (is_put, strike / OPTION_UNIT, asset.lower(),
                                           collateral / 10**decimals)
    kinds = {v.id: v.kind for v in registry.venues}
    rows = {r["venue"]: r for r in marts.to_dicts()}
    assert {kinds[v] for v in rows} == {"lending", "perps", "options"}
    for venue in (v for v in rows if kinds[v] != "lending"):
        assert 0.0 <= rows[venue]["insolvency_probability"] <= 1.0
        assert rows[venue]["expected_bad_debt_usd"] >= 0.0


@pytest.mark.devnet
def test_perps_under_water_are_insolvent_with_the_bad_debt_their_loss_leaves(
        world: World, tmp_path: Path) -> None:
    """The crisis leaves shorts in profit. Turned into longs (a copy of the database), each
    loses size × (1 − price / entry) on the way from 2,000 to the crash price: the perps venue's
    mean bad debt is that loss beyond the collateral (the price is driftless, and every path
    stays under water), and it is insolvent where that exceeds the LPs' liquidity."""
    import shutil

    import duckdb

    from contagion.graph.load import ecosystem_at, latest_snapshot
    from contagion.risk.marts import insolvency

    db = tmp_path / "longs.duckdb"
    shutil.copy(world.db, db)
    with duckdb.connect(str(db)) as con:
        last = latest_snapshot(con)
        con.execute("update int_perp_margin set is_long = not is_long where snapshot_block = ?",
                    [last])
        positions = con.execute(
            "select m.size_usd_raw / 1e30, m.collateral_usd_raw / 1e30, "
            "m.average_price_raw / 1e30, p.price_usd from int_perp_margin as m "
            "join int_token_prices as p on p.snapshot_block = m.snapshot_block "
            "and p.token = m.index_token where m.snapshot_block = ? and m.size_usd_raw > 0",
            [last]).fetchall()
        rows = {r["venue"]: r for r in insolvency(con, world.registry, {
            last: ecosystem_at(con, world.registry, last)}).to_dicts()}
        (buffer,), = con.execute("select buffer_usd from fct_venue_balance_sheet "
                                 "where snapshot_block = ? and venue = 'gmx_v1'",
                                 [last]).fetchall()
    expected = sum(float(size) * (1 - float(price) / float(entry)) - float(collateral)
                   for size, collateral, entry, price in positions)
    assert positions and expected > 0
    gmx = rows["gmx_v1"]
    assert gmx["expected_bad_debt_usd"] == pytest.approx(expected, rel=0.03)
    assert gmx["bad_debt_q99_usd"] > expected
    # the LPs' liquidity (the venue's buffer) absorbs it on a path, or the venue is insolvent
    if gmx["bad_debt_q99_usd"] < buffer:
        assert gmx["insolvency_probability"] <= 0.01
    else:
        assert gmx["insolvency_probability"] > 0


@pytest.mark.devnet
def test_a_lending_venue_is_insolvent_when_its_bad_debt_exceeds_its_reserves(
        world: World) -> None:
    """Bad debt on a path is each borrower's debt beyond what their collateral fetches; other
    borrowers' excess collateral cannot pay it, only the venue's reserves can. After the crash
    every lending venue is left bad debt above its reserves on most paths, and the probability
    says so, where the exposure graph's buffer (reserves + excess collateral) would have hidden
    it at a venue whose 99 % quantile stays under that buffer."""
    from contagion.graph.load import ecosystem_at, latest_snapshot
    from contagion.risk.marts import insolvency
    from contagion.warehouse import connect_readonly

    with connect_readonly(world.db) as con:
        last = latest_snapshot(con)
        sheet = {r[0]: r[1:] for r in con.execute(
            "select venue, venue_kind, reserves_usd, supply_usd, buffer_usd, bad_debt_buffer_usd "
            "from fct_venue_balance_sheet where snapshot_block = ?", [last]).fetchall()}
        rows = {r["venue"]: r for r in insolvency(con, world.registry, {
            last: ecosystem_at(con, world.registry, last)}).to_dicts()}
    for kind, reserves, supply, _, bad_debt_buffer in sheet.values():
        expected = {"lending": max(reserves, 0.0), "perps": supply}.get(kind, 0.0)
        assert bad_debt_buffer == pytest.approx(expected, abs=1e-6)
    lending = [v for v, (kind, *_) in sheet.items() if kind == "lending"]
    assert lending
    for venue in lending:
        row, buffer = rows[venue], sheet[venue][4]
        assert row["expected_bad_debt_usd"] > buffer
        assert row["insolvency_probability"] >= 0.5, (venue, row)
    hidden = [v for v in lending if rows[v]["bad_debt_q99_usd"] < sheet[v][3]]
    assert hidden  # this world tells the two buffers apart


@pytest.mark.devnet
def test_every_otoken_is_marked_by_black_scholes_from_what_the_chain_holds(
        world: World) -> None:
    """At the last snapshot each series' mark is Black–Scholes (zero rate) of the chain's own
    state at that block: the series (OptionsVenue.series_of, OToken.underlyingAsset), the
    underlying's Chainlink answer, the vol and risk-reversal feeds' answers (the vol at the
    strike on their smile) and the block's timestamp; and each oToken position is worth its
    amount at that mark."""
    from contagion.devnet.driver import DevnetDriver
    from contagion.graph.load import latest_snapshot
    from contagion.risk.greeks import black_scholes, smile_vol
    from contagion.warehouse import connect_readonly

    registry, driver = world.registry, DevnetDriver(world.client)
    with connect_readonly(world.db) as con:
        last = latest_snapshot(con)
        marks = dict(con.execute("select token, price_usd from int_otoken_prices "
                                 "where snapshot_block = ?", [last]).fetchall())
        held = con.execute(
            "select p.token, p.amount_raw, p.amount_usd from fct_positions as p "
            "join int_tokens as t on t.token = p.token "
            "where p.snapshot_block = ? and t.token_kind = 'otoken'", [last]).fetchall()
    view = Views(world.client, last)
    timestamp = int(world.client.call("eth_getBlockByNumber", [hex(last), False])["timestamp"],
                    16)
    venue = next(v for v in registry.venues if v.kind == "options").main_contract
    symbol_of = {t.address.lower(): t.symbol for t in registry.tokens}

    def answer(kind: str, base: str) -> float:
        feed = next(f for f in registry.feeds if f.kind == kind and f.base == base)
        raw = view(driver.at("ChainlinkAggregator", feed.address), "latestAnswer")
        return float(cast(int, raw) / 10**feed.decimals)

    assert marks and held
    for otoken, mark in marks.items():
        is_put, strike, expiry = cast(tuple[bool, int, int], view(
            driver.at("OptionsVenue", venue), "series_of", otoken))
        base = symbol_of[str(view(driver.at("OToken", otoken), "underlyingAsset")).lower()]
        spot, strike_usd = answer("price", base), strike / 1e8
        years = (expiry - timestamp) / 31_557_600
        vol = smile_vol(spot, strike_usd, years, answer("implied_vol", base),
                        answer("risk_reversal", base))
        expected = black_scholes(spot, strike_usd, years, max(float(vol), 0.01),
                                 is_put=is_put).price
        assert mark == pytest.approx(float(expected), rel=1e-9), otoken
    for otoken, amount, usd in held:
        assert usd == pytest.approx(int(amount) / 1e8 * marks[otoken], rel=1e-12)


def _states(venue: str, blocks: range, values: np.ndarray) -> pl.DataFrame:
    names = [f.name for f in features_of("amm")]
    return pl.DataFrame({"snapshot_block": list(blocks), "chain_id": [1] * len(blocks),
                         "venue": [venue] * len(blocks), "venue_kind": ["amm"] * len(blocks),
                         **{n: values[:, k] for k, n in enumerate(names)}})


def test_scores_hold_no_nan_or_infinity_and_nothing_to_score_keeps_the_columns() -> None:
    names = [f.name for f in features_of("amm")]
    values = np.random.default_rng(1).normal(size=(30, len(names))) * 0.01
    values[-1, names.index("oracle_drift")] = -np.inf  # ln(0): a drift that is not defined
    scores = venue_scores(_states("pool", range(100, 130), values))
    assert scores.height == 30 and scores["score"].is_finite().all()
    assert (scores["score"] >= 0).all() and not scores["score"].is_nan().any()
    medians = scores.explode("features").unnest("features")["baseline_median"]
    assert not medians.is_nan().any()  # the first window has no baseline: null, not NaN
    assert medians.null_count() == len(names)
    empty = venue_scores(_states("pool", range(0), np.zeros((0, len(names)))))
    assert empty.is_empty() and set(empty.columns) >= {"snapshot_block", "score", "level"}
    ecosystem = ecosystem_scores(empty, {}, {})
    assert ecosystem.is_empty() and "level" in ecosystem.columns


def test_a_token_listed_late_costs_only_its_own_correlations() -> None:
    rng = np.random.default_rng(0)
    common = rng.normal(size=20) * 0.02
    returns = np.column_stack([common, common + rng.normal(size=20) * 0.002,
                               np.r_[np.full(18, np.nan), rng.normal(size=2)]])
    corr = pairwise_correlation(returns)
    assert corr[0, 1] == pytest.approx(np.corrcoef(returns[:, 0], returns[:, 1])[0, 1])
    assert corr[0, 1] > 0.99  # not wiped out by the third token's 18 missing windows
    assert corr[0, 2] == corr[1, 2] == 0.0 and (np.diag(corr) == 1).all()

