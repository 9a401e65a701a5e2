"""The contagion marts written into the analysts' database, and their documentation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import World

from contagion.graph.marts import GRAPH_MARTS, write_graph_marts
from contagion.warehouse import connect_readonly

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.devnet
def test_graph_marts_are_written_and_documented(world: World, tmp_path: Path) -> None:
    db = tmp_path / "contagion.duckdb"
    shutil.copy(world.db, db)
    write_graph_marts(db, world.registry)
    doc = (ROOT / "docs" / "schema.md").read_text()
    with connect_readonly(db) as con:
        for mart in GRAPH_MARTS:
            section = re.search(rf"^## `{mart}`\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
            assert section, f"docs/schema.md has no section for {mart}"
            table = re.search(r"^\| column \|.*?(?=\n\n|\Z)", section.group(1), re.S | re.M)
            assert table
            documented = re.findall(r"^\| (\w+) \|", table.group(0), re.M)[1:]
            assert documented == [r[0] for r in con.execute(f"describe {mart}").fetchall()]
        snapshots = {b for (b,) in con.execute("select snapshot_block from ref_snapshots")
                     .fetchall()}
        assert {b for (b,) in con.execute("select distinct snapshot_block from "
                                          "fct_stress_results").fetchall()} == snapshots
        last = max(snapshots)
        risk = con.execute("select node, debtrank, rank, betweenness from fct_systemic_risk "
                           "where snapshot_block = ? order by rank", [last]).fetchall()
        venues = {f"venue:{v.id}" for v in world.registry.venues}
        assert {r[0] for r in risk} <= venues and len(risk) >= 5
        assert all(0 <= r[1] <= 1 and 0 <= r[3] <= 1 for r in risk)
        paths = con.execute("select source_name, target_name, rank, hops, transmission "
                            "from fct_contagion_paths").fetchall()
        assert any(p[0] == "stETH" and p[1] == "aave_v3" for p in paths)
        assert all(1 <= p[2] <= 3 and p[3] >= 1 and 0 < p[4] <= 1 for p in paths)
        stress = con.execute("select scenario, kind, initial_loss_usd, total_loss_usd, "
                             "amplification, failed_venues from fct_stress_results").fetchall()
        kinds = {s[1] for s in stress}
        assert kinds == {"token_shock", "lst_depeg", "venue_failure"}
        assert any(s[0] == "stETH depeg -15%" for s in stress)
        assert all(s[3] >= s[2] >= 0 for s in stress)  # the cascade only adds losses
        assert all(s[4] is None or s[4] >= 1 for s in stress)
        failures = {s[0]: s[5] for s in stress if s[1] == "venue_failure"}
        assert all(name.split()[0] in failed for name, failed in failures.items())
        assert {f"{v.id} fails" for v in world.registry.venues} <= set(failures)
        # the LST issuer failing makes stETH worthless wherever it is collateral
        lido = [s for s in stress if s[0] == "lido fails"]
        assert lido and all(s[2] > 0 and s[3] >= s[2] for s in lido if s[2] or s[3])
        assert any(s[2] > 0 for s in lido)


def test_graph_marts_of_an_empty_database(tmp_path: Path) -> None:
    from contagion.lake import Lake
    from contagion.registry import load_registry
    from contagion.warehouse import build_database

    registry = load_registry("ethereum")
    db = tmp_path / "contagion.duckdb"
    build_database(db, Lake(str(tmp_path / "lake")), registry, allow_empty_lake=True)
    marts = write_graph_marts(db, registry)
    assert all(table.num_rows == 0 for table in marts.tables.values())
    with connect_readonly(db) as con:
        assert con.execute("select count(*) from fct_stress_results").fetchone() == (0,)


@pytest.mark.devnet
def test_contagion_stress_prints_rounds_and_paths(world: World, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from contagion.cli import app

    db = tmp_path / "contagion.duckdb"
    shutil.copy(world.db, db)
    registry = str(world.data / "registry.yaml")
    runner = CliRunner()
    shown = runner.invoke(app, ["stress", "--shock", "LST:-15%", "--db", str(db),
                                "--registry", registry, "--write"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "cascade at block" in shown.output and "strongest contagion paths" in shown.output
    assert "stETH → aave_v3" in shown.output
    with connect_readonly(db) as con:
        assert con.execute("select count(*) from fct_stress_results").fetchone()[0] > 0  # type: ignore[index]
    wrong = runner.invoke(app, ["stress", "--shock", "NOPE:-5%", "--db", str(db),
                                "--registry", registry])
    assert wrong.exit_code != 0 and "no token" in wrong.output
    claim = runner.invoke(app, ["stress", "--shock", "aWETH:-5%", "--db", str(db),
                                "--registry", registry], terminal_width=200)
    assert claim.exit_code == 1 and isinstance(claim.exception, SystemExit), claim.output
    assert "aWETH follows the price of WETH: shock WETH instead" in claim.output


def test_contagion_stress_refuses_an_impossible_shock_or_an_unknown_snapshot(tmp_path: Path
                                                                              ) -> None:
    import duckdb
    from typer.testing import CliRunner

    from contagion.cli import app

    db = tmp_path / "contagion.duckdb"  # only what the checks read: the snapshots
    with duckdb.connect(str(db)) as con:
        con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                    "b::ubigint as snapshot_block from unnest([100, 200, 300]) as t(b)")
    runner = CliRunner()

    def stress(*args: str) -> Any:
        return runner.invoke(app, ["stress", *args, "--db", str(db), "--registry", "ethereum"],
                             terminal_width=300)

    for change in ("nan", "inf%", "-inf", "-1e309", "-150%", "-1.5"):
        refused = stress("--shock", f"wstETH:{change}")
        assert refused.exit_code == 1, (change, refused.output)
        assert isinstance(refused.exception, SystemExit)
        assert "at least -100%" in " ".join(refused.output.split()), (change, refused.output)
    before = db.read_bytes()
    for args in (("--shock", "wstETH:-15%"), ("--fail", "morpho_blue")):
        refused = stress(*args, "--snapshot", "150", "--write")
        assert refused.exit_code == 1, refused.output
        assert isinstance(refused.exception, SystemExit)
        text = " ".join(refused.output.split())
        assert "--snapshot 150 is not a snapshot" in text and "it has 3" in text, text
        assert "first block 100, last 300" in text, text
    negative = stress("--fail", "morpho_blue", "--snapshot", "-1")
    assert negative.exit_code == 1 and isinstance(negative.exception, SystemExit)
    assert "--snapshot -1 is not a snapshot" in " ".join(negative.output.split())
    assert db.read_bytes() == before
    for change in ("-100%", "-0.15", "+20%", "-1"):  # accepted: refused for the snapshot
        shown = stress("--shock", f"wstETH:{change}", "--snapshot", "250")
        assert "--snapshot 250 is not a snapshot" in " ".join(shown.output.split()), change
