"""Every query in docs/queries.md runs against a devnet crisis, and its answer is checked
against the same question answered another way (from the positions or the lake directly)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from conftest import World

DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"


def queries() -> dict[int, str]:
    text = DOC.read_text()
    found = re.findall(r"^## (\d+)\. .*?```sql\n(.*?)```", text, re.S | re.M)
    return {int(n): sql for n, sql in found}


def rows(world: World, sql: str) -> list[dict[str, Any]]:
    from contagion.warehouse import connect_readonly

    with connect_readonly(world.db) as con:
        result = con.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def latest_positions(world: World) -> list[dict[str, Any]]:
    return rows(world, "select p.*, t.issuer_venue, t.underlying from fct_positions p "
                       "left join dim_tokens t using (chain_id, token) "
                       "where snapshot_block = (select max(snapshot_block) from ref_snapshots)")


def test_the_document_holds_at_least_eight_queries() -> None:
    assert sorted(queries()) == list(range(1, len(queries()) + 1))
    assert len(queries()) >= 8


@pytest.mark.devnet
def test_q1_claims_issued_by_aave_held_elsewhere(world: World) -> None:
    got = {(r["holder_venue"], r["symbol"], r["side"]): r for r in rows(world, queries()[1])}
    expected: dict[tuple[str, str, str], float] = defaultdict(float)
    tokens = {r["token"]: r for r in rows(world, "select * from dim_tokens")}
    for p in latest_positions(world):
        claim = tokens.get(p["backing_token"] or p["token"])
        if (claim and claim["issuer_venue"] == "aave_v3" and p["venue"] != "aave_v3"
                and p["side"] in ("collateral", "margin", "supply")):
            expected[p["venue"], claim["symbol"], p["side"]] += p["amount_usd"]
    assert expected and set(got) == set(expected)
    for key, usd in expected.items():
        assert got[key]["usd"] == pytest.approx(usd, abs=0.01)


@pytest.mark.devnet
def test_q2_accounts_across_three_venues(world: World) -> None:
    venues: dict[str, set[str]] = defaultdict(set)
    debt: dict[str, float] = defaultdict(float)
    for p in latest_positions(world):
        venues[p["account"]].add(p["venue"])
        if p["side"] == "debt":
            debt[p["account"]] += p["amount_usd"] or 0
    expected = {a for a, v in venues.items() if len(v) >= 3 and debt[a] > 0}
    got = rows(world, queries()[2])
    assert expected and {r["account"] for r in got} == expected
    assert all(r["venues"] == len(venues[r["account"]]) for r in got)


@pytest.mark.devnet
def test_q3_loops_pair_a_borrow_with_a_deposit_of_the_same_asset_elsewhere(world: World) -> None:
    positions = latest_positions(world)
    got = rows(world, queries()[3])
    assert got
    for loop in got:
        mine = [p for p in positions if p["account"] == loop["account"]]
        borrowed = [p for p in mine if p["venue"] == loop["borrowed_at"] and p["side"] == "debt"]
        deposited = [p for p in mine if p["venue"] == loop["deposited_at"]
                     and p["symbol"] == loop["deposited_as"] and p["side"] != "debt"]
        assets = {p["token"] for p in borrowed}
        assert any((p["underlying"] or p["token"]) in assets for p in deposited), loop
        assert loop["looped_usd"] <= sum(p["amount_usd"] for p in deposited) + 0.01
    assert [r["looped_usd"] for r in got] == sorted((r["looped_usd"] for r in got), reverse=True)


@pytest.mark.devnet
def test_q4_health_near_liquidation_recomputed_from_positions(world: World) -> None:
    thresholds = {(r["venue"], r["market"], r["collateral_token"]): r["liquidation_threshold"]
                  for r in rows(world, "select * from ref_markets")}
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in latest_positions(world):
        if p["venue_kind"] != "lending" or p["side"] not in ("collateral", "debt"):
            continue
        key = (p["venue"], p["account"], p["market"] if p["protocol"] == "morpho_blue" else "")
        if p["side"] == "debt":
            groups[key][1] += p["amount_usd"]
        else:
            groups[key][0] += p["amount_usd"] * (thresholds.get(
                (p["venue"], p["market"], p["token"])) or 0)
    got = {r["venue"]: r for r in rows(world, queries()[4])}
    for venue in got:
        mine = [(c, d) for (v, _, _), (c, d) in groups.items() if v == venue and d > 0]
        assert got[venue]["borrowers"] == len(mine)
        assert got[venue]["accounts_liquidatable"] == sum(c < d for c, d in mine)
        assert got[venue]["accounts_within_10pct"] == sum(d <= c < 1.1 * d for c, d in mine)
        assert got[venue]["undecided"] == 0  # every devnet token is priced and has thresholds
    assert sum(r["accounts_liquidatable"] for r in got.values()) >= 1


@pytest.mark.devnet
def test_q5_every_venue_holding_the_lst_is_reached(world: World) -> None:
    got = {r["venue"]: r for r in rows(world, queries()[5])}
    direct = {p["venue"] for p in latest_positions(world)
              if p["symbol"] == "stETH" and p["side"] in ("collateral", "margin")
              and (p["amount_usd"] or 0) > 0}
    assert direct and direct <= set(got)
    assert all(got[v]["shortest_hops"] == 1 for v in direct)
    assert all(0 < r["strongest_path_weight"] <= 1 for r in got.values())
    assert any(r["shortest_hops"] > 1 for r in got.values())  # reached through another node


@pytest.mark.devnet
def test_q6_one_row_per_lending_venue_and_snapshot(world: World) -> None:
    got = rows(world, queries()[6])
    lenders = [v.id for v in world.registry.venues if v.kind == "lending"]
    snapshots = rows(world, "select snapshot_block from ref_snapshots")
    assert len(got) == len(lenders) * len(snapshots)
    assert all(r["underwater_debt_usd"] <= r["debt_usd"] + 1e-9 for r in got)


@pytest.mark.devnet
def test_q7_liquidations_match_the_lake(world: World) -> None:
    flows = ds.dataset(str(world.data / "lake" / "flows"), format="parquet").to_table()
    seized = flows.filter(pc.equal(flows["action"], "liquidation_seize"))
    expected: dict[str, int] = defaultdict(int)
    for venue in seized["venue"].to_pylist():
        expected[venue] += 1
    got: dict[str, int] = defaultdict(int)
    for r in rows(world, queries()[7]):
        got[r["venue"]] += r["liquidations"]
    assert expected and got == expected


@pytest.mark.devnet
def test_q8_every_token_held_has_a_price_with_its_age(world: World) -> None:
    got = rows(world, queries()[8])
    assert got and all(r["unpriced_positions"] == 0 for r in got)  # oTokens: marked
    assert any(r["symbol"].startswith("oToken ") for r in got)
    assert all(r["price_age_blocks"] >= 0 for r in got if r["symbol"] != "USD")


@pytest.mark.devnet
def test_q9_concentration_recomputed(world: World) -> None:
    by_venue: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for p in latest_positions(world):
        if p["side"] == "collateral" and (p["amount_usd"] or 0) > 0:
            by_venue[p["venue"]][p["account"]] += p["amount_usd"]
    got = {r["venue"]: r for r in rows(world, queries()[9])}
    assert set(got) == set(by_venue)
    for venue, holders in by_venue.items():
        total = sum(holders.values())
        hhi = sum((v / total) ** 2 for v in holders.values())
        assert got[venue]["hhi"] == pytest.approx(hhi, abs=1e-4)
        assert got[venue]["depositors"] == len(holders)


def test_every_documented_query_is_one_the_sql_command_runs() -> None:
    from contagion.cli import _not_a_query

    for number, sql in queries().items():
        assert _not_a_query(sql) is None, number


def test_contagion_sql_refuses_anything_but_a_query(tmp_path: Path) -> None:
    """Read-only means nothing changes: not the database, not a lake file through COPY, not
    another database through ATTACH; the refusal names the statement type."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from contagion.cli import app
    from contagion.lake import Lake
    from contagion.registry import load_registry
    from contagion.warehouse import build_database

    db = tmp_path / "contagion.duckdb"
    build_database(db, Lake(str(tmp_path / "lake")), load_registry("ethereum"),
                   extra_snapshots=[100], allow_empty_lake=True)
    lake_file = tmp_path / "part.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), lake_file)
    kept = lake_file.read_bytes()
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("create view fct_flows as select 1 as x")
    before = db.read_bytes()
    runner = CliRunner()

    def run(query: str) -> Any:
        return runner.invoke(app, ["sql", query, "--db", str(db)], terminal_width=300)

    for query, kind in (
            (f"copy (select 42 as x) to '{lake_file}' (format parquet)", "COPY"),
            (f"attach '{other}' as w (READ_WRITE)", "ATTACH"),
            (f"attach '{other}' as w (READ_WRITE); drop view w.fct_flows", "exactly one"),
            ("drop view w.fct_flows", "DROP"),
            ("set enable_external_access = true", "SET"),
            ("pragma show_tables", "PRAGMA"),
            (f"explain analyze copy (select 42 as x) to '{lake_file}'", "EXPLAIN only of a"),
            ("select 1; create table mine as select 1", "exactly one")):
        refused = run(query)
        assert refused.exit_code == 1, (query, refused.output)
        assert isinstance(refused.exception, SystemExit)
        text = " ".join(refused.output.split())
        assert kind in text and "read-only" in text, (query, text)
    assert lake_file.read_bytes() == kept
    with duckdb.connect(str(other), read_only=True) as con:
        assert con.execute("select x from fct_flows").fetchall() == [(1,)]
    assert db.read_bytes() == before
    for query in ("select snapshot_block from ref_snapshots",
                  "with s as (select snapshot_block from ref_snapshots) select * from s;",
                  "explain select * from ref_snapshots",
                  "explain analyze select * from ref_snapshots"):
        shown = run(query)
        assert shown.exit_code == 0, (query, shown.output)
    assert "100" in run("select snapshot_block from ref_snapshots").output
