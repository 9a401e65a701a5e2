"""`contagion evaluate`: reading a detector off its levels, the static baseline, and a small
crisis run end to end on a fresh devnet (scenario → index → database → marts → detection)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from contagion.devnet.node import free_port
from contagion.evaluate import (
    Detection,
    ScenarioEvaluation,
    baseline_alerts,
    detect,
    evaluate_scenario,
    freeze_windows,
    lead_ceiling,
)

ROOT = Path(__file__).resolve().parents[2]

SMALL_CRASH = """
name: small-crash
seed: 5
blocks: 160
accounts:
  loopers: {count: 8, target_ltv: [0.85, 0.97]}
  borrowers: {count: 8, collateral: [WETH, aWETH, stETH]}
  basis_traders: {count: 3, capital_usd: [10000, 30000]}
  option_writers: {count: 3, collateral: [WETH, USDC]}
  option_buyers: {count: 3}
  liquidity_providers: {count: 2}
  liquidators: {count: 1}
  arbitrageurs: {count: 1}
prices:
  ETH: {gbm: {start: 2000, vol: 0.5}}
  BTC: {gbm: {start: 30000, vol: 0.4}}
  USDC: {gbm: {start: 1.0}}
shocks:
  - {type: lst_depeg, pct: 20, start_block: 110, blocks: 10, recover_blocks: 40}
  - {type: price_drop, asset: ETH, pct: 30, start_block: 125, blocks: 5}
activity: 0.2
"""


def _levels(pairs: list[tuple[int, str]]) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema=["snapshot_block", "level"], orient="row")


def test_detect_counts_calm_alerts_and_lead_from_the_first_shock() -> None:
    levels = _levels([(10, "green"), (20, "amber"), (30, "green"), (40, "green"),
                      (50, "amber"), (60, "red"), (70, "red")])
    d = detect(levels, first_shock=35, calm_until=35, first_bad_debt=65, seconds_per_block=12,
               freezes=[20, 60])
    assert (d.first_amber, d.first_red, d.first_freeze) == (50, 60, 60)
    assert d.lead_blocks == 15 and d.lead_minutes == pytest.approx(3.0)
    assert (d.false_alerts, d.calm_windows) == (1, 3)  # the amber at 20 was a false alert
    late = detect(levels, first_shock=55, calm_until=55, first_bad_debt=58,
                  seconds_per_block=12)
    assert late.lead_blocks == -2  # alerted only after the bad debt
    calm = detect(_levels([(10, "green"), (20, "amber")]), first_shock=None,
                  calm_until=2**63, first_bad_debt=None, seconds_per_block=12)
    assert (calm.first_amber, calm.lead_blocks, calm.false_alerts, calm.calm_windows) \
        == (20, None, 1, 2)
    replay = detect(levels, first_shock=None, calm_until=None, first_bad_debt=65,
                    seconds_per_block=600)
    assert (replay.first_amber, replay.lead_minutes, replay.calm_windows) == (20, 450.0, 0)


def test_the_lead_ceiling_is_an_alert_in_the_first_window_of_the_first_shock() -> None:
    windows = [10, 20, 30, 40, 50, 60]
    assert lead_ceiling(windows, first_shock=33, first_bad_debt=55) == 15  # window ending 40
    assert lead_ceiling(windows, first_shock=30, first_bad_debt=55) == 25  # ends at the shock
    assert lead_ceiling(windows, first_shock=None, first_bad_debt=55) is None
    assert lead_ceiling(windows, first_shock=33, first_bad_debt=None) is None
    assert lead_ceiling(windows, first_shock=61, first_bad_debt=70) is None

    def run(ours: int, baseline: int | None) -> ScenarioEvaluation:
        def d(lead: int | None) -> Detection:
            return Detection(None, None, None, lead, None, 0, 0)
        return ScenarioEvaluation("s", 6, 10, 33, 55, 1.0, d(ours), d(baseline),
                                  lead_ceiling_blocks=15)

    assert run(15, 10).ceiling_ratio == pytest.approx(1.5)  # no detector can show 2x here
    assert run(15, 10).lead_ratio == pytest.approx(1.5)
    assert run(15, None).ceiling_ratio == float("inf")


def test_the_static_floor_is_fixed_at_the_first_window_with_debt() -> None:
    state = pl.DataFrame({
        "snapshot_block": [10, 20, 30, 10, 20, 30],
        "venue": ["a", "a", "a", "b", "b", "b"],
        "venue_kind": ["lending"] * 6,
        "borrower_collateral_ratio": [1.5, 1.3, 1.2, None, 2.0, 1.0],
        "liquidation_collateral_ratio": [1.2, 1.0, 1.0, None, 1.25, 1.25],
    })
    con = duckdb.connect()
    con.register("fct_venue_state", state.to_arrow())
    # a: floor 1.32 from its first window, crossed at 20; b: floor 1.375, crossed at 30
    alerts = baseline_alerts(con)
    assert alerts["alert"].to_list() == [False, True, True]


def test_a_lift_is_not_a_freeze() -> None:
    con = duckdb.connect()
    con.execute("create table fct_freeze_recommendations as select * from (values "
                "(100, 'watch'), (125, 'normal'), (150, 'raise_margin'), (175, 'normal'), "
                "(200, 'freeze_market'), (225, 'halt')) as t(snapshot_block, action)")
    assert freeze_windows(con) == [150, 200, 225]


@pytest.mark.devnet
def test_a_small_crisis_is_alerted_before_its_bad_debt(tmp_path: Path) -> None:
    scenario = tmp_path / "small-crash.yaml"
    scenario.write_text(SMALL_CRASH)
    result = evaluate_scenario(str(scenario), tmp_path / "run", free_port(), window=5)
    assert result.first_shock_block is not None and result.first_bad_debt_block is not None
    ours = result.ours
    assert ours.calm_windows >= 20 and ours.false_alerts == 0
    assert ours.first_amber is not None
    assert result.first_shock_block <= ours.first_amber < result.first_bad_debt_block
    assert ours.first_freeze is not None and ours.first_freeze < result.first_bad_debt_block
    assert ours.lead_blocks is not None and ours.lead_blocks > 0
    assert result.lead_ratio is not None and result.lead_ratio >= 1  # never later than the floor
    assert result.lead_ceiling_blocks is not None and ours.lead_blocks <= result.lead_ceiling_blocks

    with duckdb.connect(str(tmp_path / "run" / "contagion.duckdb"), read_only=True) as con:
        doc = (ROOT / "docs" / "schema.md").read_text()
        for mart in ("fct_anomaly_scores", "fct_ecosystem_score", "fct_freeze_recommendations"):
            section = re.search(rf"^## `{mart}`\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
            assert section, mart
            table = re.search(r"^\| column \|.*?(?=\n\n|\Z)", section.group(1), re.S | re.M)
            assert table, mart
            documented = re.findall(r"^\| (\w+) \|", table.group(0), re.M)[1:]
            assert documented == [r[0] for r in con.execute(f"describe {mart}").fetchall()]
        windows, venues = con.execute("select count(*), count(distinct venue) "
                                      "from fct_venue_state").fetchall()[0]
        assert con.execute("select count(*) from fct_anomaly_scores").fetchall()[0][0] \
            == windows
        assert venues == len(con.execute("select * from ref_venues").fetchall())
        # every feature's contribution adds up to the squared distance
        gap = con.execute("select max(abs(distance * distance - (select sum(f.contribution) "
                          "from unnest(features) as t(f)))) from fct_anomaly_scores "
                          "where method <> 'none'").fetchall()[0][0]
        assert gap < 1e-6
        for kind, probability, paths in con.execute(
                "select venue_kind, insolvency_probability, insolvency_paths "
                "from fct_anomaly_scores").fetchall():
            modelled = kind in ("lending", "perps", "options")
            assert (probability is not None) == modelled and paths == 1_000
            assert probability is None or 0 <= probability <= 1
        # the crisis raised some lending venue's probability of insolvency above its calm level
        calm_p, crisis_p = con.execute(
            "select max(insolvency_probability) filter (where snapshot_block < ?), "
            "max(insolvency_probability) filter (where snapshot_block >= ?) "
            "from fct_anomaly_scores where baseline_windows >= 8",
            [result.first_shock_block, result.first_shock_block]).fetchall()[0]
        assert crisis_p > calm_p
        evidence = con.execute("select evidence from fct_freeze_recommendations "
                               "where action <> 'watch' limit 1").fetchall()[0][0]
        assert '"contributions"' in evidence and '"paths"' in evidence

    # the same database through the command line, with the bundled policy and a broken one
    from typer.testing import CliRunner

    from contagion.cli import app

    run_dir = tmp_path / "run"
    args = ["warn", "--db", str(run_dir / "contagion.duckdb"), "--registry",
            str(run_dir / "registry.yaml")]
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "ecosystem level" in shown.output and "red" in shown.output
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: 1\nhorizon_windows: 12\nstress_quantile: 2\n"
                      "min_transmission: 0.1\nmin_loss_cut_usd: 0\nrules: []\n")
    refused = CliRunner().invoke(app, [*args, "--policy", str(broken)])
    assert refused.exit_code == 1 and "stress_quantile" in refused.output


def test_contagion_warn_refuses_a_database_without_a_snapshot_and_writes_nothing(
        tmp_path: Path) -> None:
    import duckdb
    from typer.testing import CliRunner

    from contagion.cli import app

    db = tmp_path / "contagion.duckdb"  # e.g. built before a lake was indexed
    with duckdb.connect(str(db)) as con:
        con.execute("create table ref_snapshots (chain_id ubigint, snapshot_block ubigint)")
    before = db.read_bytes()
    refused = CliRunner().invoke(app, ["warn", "--db", str(db), "--registry", "ethereum"])
    assert refused.exit_code == 1, refused.output
    assert isinstance(refused.exception, SystemExit), refused.exception  # no traceback
    assert "has no snapshot" in " ".join(refused.output.split())
    assert db.read_bytes() == before
