"""The DuckDB database on a devnet crisis: models build, marts describe every venue and wire,
the truth check equals the chain exactly, degenerate inputs give defined results."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import World

from contagion import exact
from contagion.lake import Lake
from contagion.registry import USD
from contagion.warehouse import (
    SQL_DIR,
    build_database,
    connect_readonly,
    define_macros,
    load_models,
)

ROOT = Path(__file__).resolve().parents[1]
MARTS = ("dim_venues", "dim_tokens", "fct_flows", "fct_positions", "fct_venue_balance_sheet",
         "fct_exposure_edges", "fct_cross_protocol_links", "fct_venue_state",
         "fct_liquidation_audit")



def _bare_database() -> duckdb.DuckDBPyConnection:
    """An in-memory database with the macros and exact functions the models use, for
    hand-built inputs."""
    con = duckdb.connect()
    define_macros(con)
    exact.register(con)
    return con


def _build_models(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Materialize the named models, in the order given, over the tables already there."""
    models = {m.name: m for m in load_models()}
    for name in names:
        con.execute(f"create table {name} as {models[name].sql}")

@pytest.mark.devnet
def test_every_mart_is_built_and_documented(world: World) -> None:
    """docs/schema.md lists each mart's columns; they must be exactly the table's."""
    doc = (ROOT / "docs" / "schema.md").read_text()
    for mart in MARTS:
        section = re.search(rf"^## `{mart}`\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
        assert section, f"docs/schema.md has no section for {mart}"
        table = re.search(r"^\| column \|.*?(?=\n\n|\Z)", section.group(1), re.S | re.M)
        assert table, f"{mart}: no table headed | column | in its section"
        documented = re.findall(r"^\| (\w+) \|", table.group(0), re.M)[1:]
        columns = [r[0] for r in world.sql(f"describe {mart}")]
        assert documented == columns, mart


@pytest.mark.devnet
def test_truth_check_equals_the_chain_at_every_snapshot(world: World) -> None:
    from contagion.chain.rpc import RpcClient
    from contagion.truth import truth_check

    class RecordsCalls(RpcClient):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            self.sent: list[str] = []

        def batch(self, requests_: Any) -> list[Any]:
            if len(requests_) <= self.max_batch:  # a longer one comes back here in pieces
                self.sent += [json.dumps(p, sort_keys=True) for m, p in requests_
                              if m == "eth_call"]
            return super().batch(requests_)

    snapshots = [int(b) for (b,) in world.sql("select snapshot_block from ref_snapshots")]
    assert len(snapshots) >= 3
    client = RecordsCalls(world.client.url)
    with connect_readonly(world.db) as con:
        for block in snapshots[-2:]:
            client.sent = []
            report = truth_check(client, con, world.registry, block, sample=None)
            assert report.ok, report.summary()
            assert report.compared > 200
            assert set(report.accounts) >= {"aave_v3", "compound_v3_usdc", "morpho_blue",
                                            "gmx_v1", "opyn_gamma"}
            # each view is asked once: one Morpho `position` reply serves its shares,
            # collateral and assets
            assert client.sent and len(set(client.sent)) == len(client.sent)
    client.close()


@pytest.mark.devnet
def test_balance_sheets_cover_every_venue_at_every_snapshot(world: World) -> None:
    venues = {v.id for v in world.registry.venues}
    rows = world.sql("select snapshot_block, venue, collateral_usd, debt_usd, buffer_usd, "
                     "reserves_usd from fct_venue_balance_sheet")
    snapshots = {r[0] for r in rows}
    assert len(rows) == len(snapshots) * len(venues)
    last = max(snapshots)
    sheet = {r[1]: r for r in rows if r[0] == last}
    for lender in ("aave_v3", "compound_v3_usdc", "morpho_blue"):
        assert sheet[lender][2] > 0 and sheet[lender][3] > 0 and sheet[lender][4] > 0
    # Aave on the devnet has no interest and no treasury: what it holds plus what it is owed
    # equals what it owes, so its reserves are zero up to float rounding
    assert abs(sheet["aave_v3"][5]) < 1e-6 * sheet["aave_v3"][2]
    first = min(snapshots)  # block 0: before any contract existed
    assert all(r[2] == 0 and r[3] == 0 and r[4] == 0 for r in rows if r[0] == first)


@pytest.mark.devnet
def test_cross_protocol_wires_are_found(world: World) -> None:
    last = world.sql("select max(snapshot_block) from ref_snapshots")[0][0]
    links = {(r[0], r[1], r[2]) for r in world.sql(
        "select issuer_venue, symbol, holder_venue from fct_cross_protocol_links "
        "where snapshot_block = ?", [last])}
    assert {("lido", "stETH", "aave_v3"), ("lido", "stETH", "compound_v3_usdc"),
            ("lido", "stETH", "morpho_blue")} <= links
    assert ("aave_v3", "aUSDC", "gmx_v1") in links or ("aave_v3", "aUSDC", "opyn_gamma") in links
    edges = world.sql("select kind, count(*), min(weight), max(weight) from fct_exposure_edges "
                      "where snapshot_block = ? group by kind", [last])
    kinds = {r[0]: r for r in edges}
    assert set(kinds) == {"collateral", "margin", "debt", "issued_by", "holds"}
    assert all(0 <= r[2] <= r[3] <= 1 for r in edges)
    # the path aave_v3 -> aUSDC -> a derivatives venue exists edge by edge
    hops = {(r[0], r[1]) for r in world.sql(
        "select src_name, dst_name from fct_exposure_edges where snapshot_block = ?", [last])}
    assert ("aave_v3", "aUSDC") in hops
    assert ("aUSDC", "gmx_v1") in hops or ("aUSDC", "opyn_gamma") in hops


@pytest.mark.devnet
def test_positions_are_exact_and_priced_as_of_the_snapshot(world: World) -> None:
    rows = world.sql("select count(*), count(*) filter (where amount_raw < 0), "
                     "count(*) filter (where price_age_blocks < 0) from fct_positions")
    assert rows[0][0] > 150 and rows[0][1] == 0 and rows[0][2] == 0
    # the price used is the latest answer at or before the snapshot, never a later one
    late = world.sql("select count(*) from fct_positions where price_block > snapshot_block")
    assert late[0][0] == 0
    # at block 0 nothing exists
    assert world.sql("select count(*) from fct_positions where snapshot_block = 0")[0][0] == 0


@pytest.mark.devnet
def test_analysts_cannot_write(world: World) -> None:
    with connect_readonly(world.db) as con, pytest.raises(duckdb.Error):
        con.execute("create table mine as select 1")


def test_models_declare_their_grain_and_run_after_what_they_read() -> None:
    models = load_models(SQL_DIR)
    names = [m.name for m in models]
    assert set(MARTS) <= set(names)
    for i, model in enumerate(models):
        assert model.grain
        assert all(names.index(dep) < i for dep in model.depends), model.name
    assert {m.layer for m in models} == {"staging", "intermediate", "marts"}


def test_a_cycle_or_a_missing_grain_is_refused(tmp_path: Path) -> None:
    for layer in ("staging", "intermediate", "marts"):
        (tmp_path / layer).mkdir()
    (tmp_path / "staging" / "a.sql").write_text("-- grain: x\nselect * from b\n")
    (tmp_path / "staging" / "b.sql").write_text("-- grain: x\nselect * from a\n")
    with pytest.raises(ValueError, match="cycle"):
        load_models(tmp_path)
    (tmp_path / "staging" / "b.sql").write_text("select 1\n")
    with pytest.raises(ValueError, match="grain"):
        load_models(tmp_path)


def test_an_empty_lake_builds_empty_marts(tmp_path: Path) -> None:
    from contagion.registry import load_registry

    registry = load_registry("ethereum")
    db = tmp_path / "contagion.duckdb"
    build_database(db, Lake(str(tmp_path / "lake")), registry, extra_snapshots=[100],
                   allow_empty_lake=True)
    with connect_readonly(db) as con:
        for mart in MARTS:
            count = con.execute(f"select count(*) from {mart}").fetchone()
            assert count is not None
            expected = len(registry.venues) if mart in ("dim_venues",
                                                        "fct_venue_balance_sheet") else None
            if expected is not None:
                assert count[0] == expected, mart
        sheet = con.execute("select buffer_usd, reserves_usd from fct_venue_balance_sheet"
                            ).fetchall()
        assert all(b == 0 and r == 0 for b, r in sheet)


def test_a_failed_build_keeps_the_previous_database(tmp_path: Path) -> None:
    from contagion.registry import load_registry

    registry = load_registry("ethereum")
    db = tmp_path / "contagion.duckdb"
    lake = Lake(str(tmp_path / "lake"))
    build_database(db, lake, registry, extra_snapshots=[1], allow_empty_lake=True)
    before = db.read_bytes()
    broken = tmp_path / "sql"
    for layer in ("staging", "intermediate", "marts"):
        (broken / layer).mkdir(parents=True)
    (broken / "marts" / "bad.sql").write_text("-- grain: nothing\nselect * from no_such_table\n")
    with pytest.raises(RuntimeError, match=r"bad\.sql"):
        build_database(db, lake, registry, sql_dir=broken, allow_empty_lake=True)
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.devnet
def test_contagion_sql_prints_and_exports_read_only(world: World, tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from contagion.cli import app

    runner = CliRunner()
    query = "select venue, venue_kind from dim_venues order by venue"
    venues = sorted(v.id for v in world.registry.venues)
    shown = runner.invoke(app, ["sql", query, "--db", str(world.db)])
    assert shown.exit_code == 0, shown.output
    assert all(v in shown.output for v in venues)
    as_csv = runner.invoke(app, ["sql", query, "--db", str(world.db), "--format", "csv"])
    assert as_csv.exit_code == 0
    assert [line.split(",")[0].strip('"') for line in as_csv.output.splitlines()[1:]] == venues
    out = tmp_path / "venues.json"
    runner.invoke(app, ["sql", query, "--db", str(world.db), "--format", "json", "--output",
                        str(out)])
    assert [r["venue"] for r in json.loads(out.read_text())] == venues
    parquet = tmp_path / "venues.parquet"
    runner.invoke(app, ["sql", query, "--db", str(world.db), "--format", "parquet",
                        "--output", str(parquet)])
    assert pq.read_table(parquet).column("venue").to_pylist() == venues
    refused = runner.invoke(app, ["sql", "drop table fct_positions", "--db", str(world.db)])
    assert refused.exit_code != 0 and "read-only" in refused.output.lower()
    assert world.sql("select count(*) from fct_positions")[0][0] > 0


@pytest.mark.devnet
def test_checks_hold_on_the_crisis_and_catch_a_missing_flow(world: World, tmp_path: Path) -> None:
    from contagion.warehouse import run_checks

    with connect_readonly(world.db) as con:
        results = {r.check.name: r for r in run_checks(con)}
    assert set(results) >= {"flows_reconcile_with_token_balances", "no_negative_balances",
                            "prices_fresh", "transfer_values_fit"}
    assert all(r.passed for r in results.values() if r.check.severity == "error")
    # every position has a fresh price, oTokens included (marked by Black–Scholes)
    assert results["prices_fresh"].passed and not results["prices_fresh"].sample
    # the registry lists every reserve's aToken and debt token: none is valued at principal
    assert results["aave_interest_counted"].passed
    # every Comet principal change of the crisis was logged: the reads add up to the totals
    assert results["compound_principals_reconcile"].passed

    # lose one Aave supply flow from the lake: the venue no longer adds up
    lake_copy = _lake_without_one_aave_supply(world, tmp_path / "lake")
    db = tmp_path / "broken.duckdb"
    build_database(db, Lake(str(lake_copy)), world.registry)
    with connect_readonly(db) as con:
        broken = {r.check.name: r for r in run_checks(con)}
    failing = broken["flows_reconcile_with_token_balances"]
    assert not failing.passed and {row["venue"] for row in failing.sample} == {"aave_v3"}


def test_no_snapshot_at_all_gives_empty_marts(tmp_path: Path) -> None:
    from contagion.registry import load_registry
    from contagion.warehouse import run_checks

    db = tmp_path / "contagion.duckdb"
    build_database(db, Lake(str(tmp_path / "lake")), load_registry("ethereum"),
                   allow_empty_lake=True)
    with connect_readonly(db) as con:
        assert con.execute("select count(*) from ref_snapshots").fetchone() == (0,)
        for mart in ("fct_positions", "fct_venue_balance_sheet", "fct_exposure_edges",
                     "fct_cross_protocol_links"):
            assert con.execute(f"select count(*) from {mart}").fetchone() == (0,), mart
        assert all(r.passed for r in run_checks(con))


def test_a_negative_snapshot_is_refused(tmp_path: Path) -> None:
    from contagion.registry import load_registry

    with pytest.raises(ValueError, match="block number"):
        build_database(tmp_path / "x.duckdb", Lake(str(tmp_path / "lake")),
                       load_registry("ethereum"), extra_snapshots=[-5])


def _indexed_lake(root: Path, chain_id: int, ranges: list[tuple[int, int]],
                  logged: Sequence[int] = ()) -> Lake:
    """A lake holding complete partitions of one chain without a log: raw logs, and the
    headers of both ends of each partition and of the `logged` blocks in it (a block a minute,
    from 1 January 2021)."""
    from contagion.ingest import BLOCKS, RAW_LOGS
    from contagion.lake import BLOCKS_SCHEMA, RAW_LOGS_SCHEMA, PartitionFile

    lake = Lake(str(root))
    for start, stop in ranges:
        part = PartitionFile(chain_id, start, stop)
        held = sorted({start, stop - 1, *(b for b in logged if start <= b < stop)})
        headers = pa.Table.from_pylist(
            [{"chain_id": chain_id, "block_number": b, "block_hash": b.to_bytes(32, "big"),
              "parent_hash": (b - 1).to_bytes(32, "big", signed=True),
              "timestamp": 1_609_459_200 + 60 * b} for b in held], schema=BLOCKS_SCHEMA)
        lake.write(RAW_LOGS, part, RAW_LOGS_SCHEMA.empty_table())
        lake.write(BLOCKS, part, headers)
    return lake


def test_a_lake_without_the_chain_or_a_snapshot_beyond_it_keeps_the_database(
        tmp_path: Path) -> None:
    """A missing or empty lake, a registry of another chain than the lake's, a snapshot past
    the indexed blocks or in a gap: refused, naming why, before the database is touched."""
    from contagion.registry import load_registry

    registry = load_registry("ethereum")
    db = tmp_path / "contagion.duckdb"
    lake = _indexed_lake(tmp_path / "lake", registry.chain_id, [(0, 10), (10, 20), (30, 40)],
                         logged=[5, 35])
    build_database(db, lake, registry, extra_snapshots=[5, 35])
    before = db.read_bytes()
    with connect_readonly(db) as con:
        assert [b for (b,) in con.execute("select snapshot_block from ref_snapshots "
                                          "order by 1").fetchall()] == [5, 9, 19, 35, 39]

    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "missing", tmp_path / "empty"):
        with pytest.raises(ValueError, match=r"no complete partition of chain 1 .*no indexed"):
            build_database(db, Lake(str(root)), registry)
    other = registry.model_copy(update={"chain_id": 10})
    with pytest.raises(ValueError, match=r"no complete partition of chain 10 .*chain 1 only"):
        build_database(db, lake, other)
    lake.delete("raw_logs", lake.partitions("raw_logs", 1)[0])  # blocks alone: not complete
    with pytest.raises(ValueError, match="outside the indexed blocks of chain 1 "
                                         r"\(10–19, 30–39\)"):
        build_database(db, lake, registry)
    lake = _indexed_lake(tmp_path / "lake", registry.chain_id, [(0, 10)], logged=[5])
    for far in ([5_000_000], [25]):
        with pytest.raises(ValueError, match=rf"snapshot {far[0]} is outside the indexed "
                                             r"blocks of chain 1 \(0–19, 30–39\)"):
            build_database(db, lake, registry, extra_snapshots=far)
        with pytest.raises(ValueError, match=rf"snapshot {far[0]} is outside"):
            build_database(db, lake, registry, snapshots=far)
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # before the first partition: covered only when it starts at the deployment block
    late = _indexed_lake(tmp_path / "late", registry.chain_id, [(100, 110)])
    with pytest.raises(ValueError, match="snapshot 50 is outside"):
        build_database(tmp_path / "late.duckdb", late, registry, extra_snapshots=[50])
    deployed = registry.model_copy(update={"deployed_at_block": 100})
    build_database(tmp_path / "late.duckdb", late, deployed, extra_snapshots=[50])


def test_a_snapshot_whose_time_is_unknown_is_refused(tmp_path: Path) -> None:
    """A snapshot inside a partition at a block that did not log has no header in the lake, so
    no time: interest, price ages and option marks would come out null and be summed as
    nothing. Refused, naming the nearest blocks with a header, before the database is
    touched; the ends of partitions and the blocks that logged are kept."""
    from contagion.registry import load_registry

    registry = load_registry("ethereum")
    db = tmp_path / "contagion.duckdb"
    lake = _indexed_lake(tmp_path / "lake", registry.chain_id, [(0, 10), (10, 20)],
                         logged=[4, 7, 13])
    build_database(db, lake, registry, extra_snapshots=[0, 4, 10, 13])
    before = db.read_bytes()
    with connect_readonly(db) as con:
        times = con.execute("select snapshot_block, epoch(snapshot_time)::bigint - 1609459200 "
                            "from stg_snapshot_times order by 1").fetchall()
    assert times == [(0, 0), (4, 240), (9, 540), (10, 600), (13, 780), (19, 1140)]
    for asked, named in (([5], r"5 \(nearest with one: 4 or 7\)"),
                         ([1, 18], r"1 \(nearest with one: 0 or 4\); "
                                   r"18 \(nearest with one: 13 or 19\)")):
        with pytest.raises(ValueError, match=rf"no header of snapshot {named}: .*time is "
                                             "unknown.*nothing was built"):
            build_database(db, lake, registry, extra_snapshots=asked)
        with pytest.raises(ValueError, match=rf"no header of snapshot {named}"):
            build_database(db, lake, registry, snapshots=asked)
    assert db.read_bytes() == before


def _lake_without_one_row(world: World, target: Path, table: str,
                          matches: Callable[[pa.Table], pa.ChunkedArray]) -> Path:
    """A copy of the lake with the first row of `table` that `matches` gone."""
    shutil.copytree(world.data / "lake", target)
    for path in sorted((target / table).rglob("*.parquet")):
        rows = pq.read_table(path)
        hits = pc.indices_nonzero(matches(rows)).to_pylist()
        if hits:
            pq.write_table(rows.take([i for i in range(rows.num_rows) if i != hits[0]]), path)
            return target
    raise AssertionError(f"no matching row in {table}")


def _lake_without_one_aave_supply(world: World, target: Path) -> Path:
    return _lake_without_one_row(world, target, "flows", lambda flows: pc.and_(
        pc.equal(flows["protocol"], "aave_v3"), pc.equal(flows["action"], "supply")))


def _lake_without_one_atoken_mint(world: World, target: Path) -> Path:
    """Aave positions are the tokens' scaled balances: losing a Mint changes one."""
    atokens = pa.array([bytes.fromhex(t.address[2:]) for t in world.registry.tokens
                        if t.kind == "atoken"], pa.binary(20))
    return _lake_without_one_row(world, target, "aave_v3__mint",
                                 lambda mints: pc.is_in(mints["contract_address"], atokens))


@pytest.mark.devnet
def test_truth_check_reports_a_missing_flow_and_an_unreadable_venue(world: World,
                                                                    tmp_path: Path) -> None:
    from contagion.truth import truth_check

    db = tmp_path / "broken.duckdb"
    build_database(db, Lake(str(_lake_without_one_atoken_mint(world, tmp_path / "lake"))),
                   world.registry)
    with connect_readonly(db) as con:
        row = con.execute("select max(snapshot_block) from ref_snapshots").fetchone()
        assert row is not None
        last = int(row[0])
        report = truth_check(world.client, con, world.registry, last, sample=None)
        assert not report.ok and {m.venue for m in report.mismatches} == {"aave_v3"}
        assert all(m.what.startswith(("collateral", "scaled collateral"))
                   for m in report.mismatches)
        # a registry whose options venue points at a contract without the views the check reads
        data = world.registry.model_dump()
        weth = world.registry.token("WETH").address
        for venue in data["venues"]:
            if venue["id"] == "opyn_gamma":
                venue["contracts"] = {"controller": weth}
        other = type(world.registry).model_validate(data)
        report = truth_check(world.client, con, other, last, sample=None)
    assert "opyn_gamma" in report.unreadable and "aave_v3" in report.accounts
    assert "not readable" in report.summary()


@pytest.mark.devnet
def test_contracts_the_options_venue_creates_are_indexed(world: World) -> None:
    """oTokens are not in the registry: the indexer finds them through OtokenCreated and reads
    their transfers, so option buyers' holdings exist and liquidations name their series."""
    held = world.sql("select count(*), count(distinct p.token) from fct_positions as p "
                     "join dim_tokens as t using (chain_id, token) "
                     "where t.token_kind = 'otoken' and p.side = 'holding'")
    assert held[0][0] > 0 and held[0][1] > 1
    unnamed = world.sql("select count(*) from fct_flows where protocol = 'opyn_gamma' "
                        "and token is null")
    assert unnamed[0][0] == 0


@pytest.mark.devnet
def test_venue_state_vectors(world: World) -> None:
    rows = world.sql("select snapshot_block, venue, collateral_ratio, collateral_ratio_change, "
                     "collateral_ratio_acceleration, utilization, debt_share_within_5pct, "
                     "debt_share_within_10pct, liquidated_share, flow_asymmetry, collateral_hhi "
                     "from fct_venue_state order by venue, snapshot_block")
    lenders = {v.id for v in world.registry.venues if v.kind == "lending"}
    assert {r[1] for r in rows} == {v.id for v in world.registry.venues}
    by_venue: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        if r[1] in lenders:
            by_venue.setdefault(r[1], []).append(r)
    for series in by_venue.values():
        ratios = [r[2] for r in series]
        for k in range(1, len(series)):
            if ratios[k] is not None and ratios[k - 1] is not None:
                assert series[k][3] == pytest.approx(ratios[k] - ratios[k - 1])
        for r in series:
            assert r[5] is None or 0 <= r[5] <= 1
            assert r[6] is None or 0 <= r[6] <= r[7] <= 1 + 1e-9
            assert -1 <= r[9] <= 1 and 0 <= r[10] <= 1 + 1e-9
    # the crisis liquidated somebody, and that shows as a share of debt in some window
    assert any((r[8] or 0) > 0 for r in rows)
    for kind, sigmas, slippage, imbalance, drift, flow in world.sql(
            "select venue_kind, liquidation_distance_sigmas, liquidation_slippage, "
            "open_interest_imbalance, oracle_drift, order_flow_imbalance from fct_venue_state"):
        assert (sigmas is not None) == (kind == "lending") == (slippage is not None)
        assert sigmas is None or 0 <= sigmas <= 10
        assert slippage is None or 0 <= slippage <= 1
        assert (imbalance is not None) == (kind == "perps")
        assert imbalance is None or -1 <= imbalance <= 1
        assert drift >= 0 and -1 <= flow <= 1


@pytest.mark.devnet
def test_perps_margin_held_as_a_claim_moves_with_the_asset_it_is_priced_as(
        world: World) -> None:
    """The perps venue's market signals weigh its margin by the asset it is priced as: margin
    held in aUSDC counts with USDC's order flow and drift (it used to be weighed as aUSDC, which
    has no signals row, so that share of the exposure read as calm)."""
    rows = world.sql("""
        select p.snapshot_block,
               coalesce(t.underlying, p.backing_token, p.priced_as, p.token) as asset,
               sum(p.amount_usd) as usd, bool_or(t.token_kind = 'atoken') as claim
        from int_positions as p
        join ref_venues as v on v.venue = p.venue and v.venue_kind = 'perps'
        left join int_tokens as t on t.token = p.backing_token and t.token_kind = 'atoken'
        where p.side in ('collateral', 'margin', 'supply') and p.amount_usd > 0
        group by all""")
    assert any(claim for *_, claim in rows)  # the world posts aUSDC as perps margin
    signals = {(b, t): (abs(d or 0), f or 0) for b, t, d, f in world.sql(
        "select snapshot_block, token, oracle_drift, order_flow_imbalance "
        "from int_token_signals")}
    totals: dict[int, float] = {}
    for block, _, usd, _ in rows:
        totals[block] = totals.get(block, 0.0) + usd
    expected: dict[int, list[float]] = {}
    for block, asset, usd, _ in rows:
        assert (block, asset) in signals, (block, asset)
        drift, flow = signals[(block, asset)]
        acc = expected.setdefault(block, [0.0, 0.0])
        acc[0] += usd / totals[block] * drift
        acc[1] += usd / totals[block] * flow
    got = {b: (d, f) for b, d, f in world.sql(
        "select s.snapshot_block, s.oracle_drift, s.order_flow_imbalance "
        "from fct_venue_state as s join ref_venues as v on v.venue = s.venue "
        "where v.venue_kind = 'perps'")}
    assert set(expected) and set(expected) <= set(got)
    for block, (drift, flow) in expected.items():
        assert got[block] == pytest.approx((drift, flow), abs=1e-12), block


@pytest.mark.devnet
def test_token_signals_recomputed_from_the_pools(world: World) -> None:
    """WETH's AMM price and drift from the WETH/USDC pair's last Sync, by hand."""
    weth = world.registry.token("WETH").address.lower()
    usdc = world.registry.token("USDC").address.lower()
    block, oracle, amm, drift = world.sql(
        "select snapshot_block, oracle_price_usd, amm_price_usd, oracle_drift "
        "from int_token_signals where token = ? order by snapshot_block desc limit 1",
        [weth])[0]
    r_weth, r_usdc = world.sql(
        "select case when token0 = ? then reserve0 else reserve1 end, "
        "case when token0 = ? then reserve0 else reserve1 end "
        "from int_amm_reserves where snapshot_block = ? and ? in (token0, token1) "
        "and ? in (token0, token1)", [weth, usdc, block, weth, usdc])[0]
    usdc_price = world.sql("select price_usd from int_token_prices where snapshot_block = ? "
                           "and token = ?", [block, usdc])[0][0]
    expected = (float(r_usdc) / 1e6) / (float(r_weth) / 1e18) * usdc_price
    assert amm == pytest.approx(expected, rel=1e-9)
    assert drift == pytest.approx(math.log(expected / oracle), abs=1e-12)


@pytest.mark.devnet
def test_options_book_greeks_join_the_state_vectors(world: World) -> None:
    """The written oTokens' greeks per USD of margin: only at the options venue, gamma and
    vega as non-negative magnitudes, and a book that exists has some."""
    from contagion.risk.state import FEATURES, state_vectors

    with connect_readonly(world.db) as con:
        state = state_vectors(con)
    options = state.filter(state["venue_kind"] == "options")
    others = state.filter(state["venue_kind"] != "options")
    assert options.height and others["book_gamma"].null_count() == others.height
    assert (options["book_gamma"] >= 0).all() and (options["book_vega"] >= 0).all()
    assert (options["book_vega"] > 0).any()
    for kind, features in FEATURES.items():
        assert {f.name for f in features} <= set(state.columns), kind


def test_an_otoken_is_marked_by_black_scholes_and_after_expiry_by_what_it_pays() -> None:
    """int_otoken_prices on hand-made inputs: a live out-of-the-money put at Black–Scholes at
    its strike's vol on the smile (richer than ATM: puts are bid), and a call on the same
    strike at the same vol, so the two keep put–call parity; an expired call nobody has settled
    yet at its intrinsic value at the latest answer (what a settlement would freeze now), and
    one the venue has settled at the answer it froze: the latest before its first settlement
    (a redemption here, then a vault settled), whatever the price did before expiry or after;
    a series whose underlying has no vol mark unpriced, and one whose feed says 0; one created
    after the snapshot absent."""
    from contagion.risk import greeks

    con = _bare_database()
    greeks.register(con)
    now = "2024-01-31 00:00:00+00"
    con.execute("create table ref_snapshots as "
                "select 1::ubigint as chain_id, 100::ubigint as snapshot_block")
    con.execute(f"create table stg_blocks as select 1::ubigint as chain_id, "
                f"100::ubigint as block_number, '{now}'::timestamptz as block_time")
    con.execute("""create table stg_otokens as select * from (values
        (1::ubigint, 10::ubigint, 'put', 'weth', 1800::double, true, '2024-03-01 00:00:00+00'),
        (1, 20, 'call', 'weth', 1500.0, false, '2024-01-21 00:00:00+00'),
        (1, 21, 'settled', 'weth', 1500.0, false, '2024-01-21 00:00:00+00'),
        (1, 25, 'samestrike', 'weth', 1800.0, false, '2024-03-01 00:00:00+00'),
        (1, 30, 'novol', 'wbtc', 30000.0, true, '2024-03-01 00:00:00+00'),
        (1, 40, 'zerovol', 'wsol', 100.0, true, '2024-03-01 00:00:00+00'),
        (1, 200, 'later', 'weth', 2000.0, true, '2024-03-01 00:00:00+00'))
        as t(chain_id, created_block, otoken, underlying, strike_price_usd, is_put, expiry)""")
    con.execute("alter table stg_otokens alter expiry type timestamptz")
    # WETH's feed: 1,700 before expiry, 1,900 and 1,950 after it, 2,000 now; a redemption of
    # 'settled' in block 60 after the 1,900 (log 2 < log 5), a vault settled in block 70
    con.execute("""create table stg_prices as select *, block_number::hugeint * 1000000
        + log_index as ordinal, true as usable from (values
        (1::ubigint, 'weth', 'f', 40::ubigint, 0::uinteger, 1700::double),
        (1, 'weth', 'f', 60, 2, 1900.0),
        (1, 'weth', 'f', 60, 7, 1950.0),
        (1, 'weth', 'f', 90, 0, 2000.0))
        as t(chain_id, token, feed, block_number, log_index, price_usd)""")
    con.execute("create table int_token_feeds as select 1::ubigint as chain_id, "
                "'weth' as token, 'f' as feed")
    con.execute("""create table src_opyn_gamma__redeem as select 1::ubigint as chain_id,
        60::ubigint as block_number, 5::uinteger as log_index, from_hex('5e') as otoken""")
    con.execute("""create table src_opyn_gamma__vault_settled as select 1::ubigint as chain_id,
        70::ubigint as block_number, 1::uinteger as log_index,
        from_hex('5e') as o_token_address""")
    con.execute("update stg_otokens set otoken = '0x5e' where otoken = 'settled'")
    con.execute("""create table int_oracle_prices as select * from (values
        (1::ubigint, 100::ubigint, 'weth', 2000::double, 90::ubigint, 10::bigint, 86400::bigint),
        (1, 100, 'wbtc', 40000.0, 95, 5, 60),
        (1, 100, 'wsol', 90.0, 95, 5, 60))
        as t(chain_id, snapshot_block, token, price_usd, price_block, price_age_blocks,
             price_age_seconds)""")
    con.execute("""create table int_implied_vols as select * from (values
        (1::ubigint, 100::ubigint, 'weth', 0.6::double, -0.1::double),
        (1, 100, 'wsol', 0.0, 0.0))  -- a broken feed: no usable vol
        as t(chain_id, snapshot_block, token, implied_vol, risk_reversal)""")
    model = next(m for m in load_models() if m.name == "int_otoken_prices")
    got = {r[0]: r[1:] for r in con.execute(
        f"select token, price_usd, vol, years from ({model.sql})").fetchall()}
    assert set(got) == {"put", "call", "0x5e", "samestrike", "novol", "zerovol"}
    price, vol, years = got["put"]
    assert years == pytest.approx(30 / 365.25)
    assert vol == pytest.approx(float(greeks.smile_vol(2000.0, 1800.0, years, 0.6, -0.1)))
    assert 0.6 < vol < 0.7  # between ATM and ATM − RR: a put below spot is bid
    expected = greeks.black_scholes(2000.0, 1800.0, 30 / 365.25, vol, is_put=True).price
    assert price == pytest.approx(float(expected), rel=1e-12)
    assert got["samestrike"][1] == vol
    assert got["samestrike"][0] - price == pytest.approx(2000.0 - 1800.0, rel=1e-9)
    assert got["call"][0] == pytest.approx(500.0)  # unsettled: 2,000 now, not 1,700 then
    assert got["0x5e"][0] == pytest.approx(400.0)  # frozen at 1,900 by the redemption
    assert got["novol"][0] is None
    assert got["zerovol"][:2] == (None, None)  # not marked at a 0.01 floor


@pytest.mark.parametrize("stored", ["asc", "desc"])
def test_the_price_at_a_snapshot_is_the_latest_usable_answer_of_the_venues_feed(
        stored: str) -> None:
    """stg_prices → int_oracle_prices on hand-made answers: of two answers in one block the
    later (by log index) counts, in whichever order the rows are stored; only the feed a venue
    reads for the token (int_token_feeds: the lowest address) counts, not a second feed of the
    same token answering later; a latest answer the venues reject (at or below 0) leaves the
    token unpriced instead of letting the answer before it stand in, and the blocking
    prices_usable check names it."""
    from contagion.warehouse import load_checks, run_checks

    con = _bare_database()
    con.execute("""create table int_tokens as select * from (values
        (1::ubigint, 'weth', 'WETH', 18, 'asset', null::varchar, null::varchar),
        (1, 'wbtc', 'WBTC', 8, 'asset', null, null))
        as t(chain_id, token, symbol, decimals, token_kind, issued_by, underlying)""")
    con.execute(f"""create table ref_feeds as select * from (values
        (1::ubigint, 'WETH/USD', '0xfa', 8, 'price', 'weth', 'USD', '{USD}'),
        (1, 'WETH/USD backup', '0xfb', 8, 'price', 'weth', 'USD', '{USD}'),
        (1, 'WBTC/USD', '0xfc', 8, 'price', 'wbtc', 'USD', '{USD}'))
        as t(chain_id, feed_id, feed, decimals, feed_kind, base_token, quote, quote_token)""")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "100::ubigint as snapshot_block")
    con.execute("create table stg_blocks as select 1::ubigint as chain_id, "
                "100::ubigint as block_number, to_timestamp(1200) as block_time")
    con.execute(f"""create table src_prices as select 1::ubigint as chain_id,
        b::ubigint as block_number, to_timestamp(b * 12) as block_time,
        l::uinteger as log_index, token, upper(token) as symbol, p::double as price,
        '{USD}' as quote, p::double as price_usd,
        (p * 1e8)::decimal(38, 0) as answer_raw, feed_id as source, feed from (values
        (90, 3, 'weth', 'WETH/USD', '0xfa', 2000),
        (100, 9, 'weth', 'WETH/USD', '0xfa', 1500),
        (100, 3, 'weth', 'WETH/USD', '0xfa', 1800),
        (100, 12, 'weth', 'WETH/USD backup', '0xfb', 999),
        (80, 1, 'wbtc', 'WBTC/USD', '0xfc', 30000),
        (95, 1, 'wbtc', 'WBTC/USD', '0xfc', -1))
        as t(b, l, token, feed_id, feed, p) order by b, l {stored}""")
    _build_models(con, "stg_prices", "stg_snapshot_times", "int_token_feeds",
                  "int_oracle_prices")
    got = {r[0]: r[1:] for r in con.execute(
        "select token, price_usd, price_block, answer_raw from int_oracle_prices").fetchall()}
    assert got["weth"] == (1500.0, 100, 150_000_000_000)
    assert got["wbtc"] == (None, 95, None)  # not 30,000 from block 80
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "prices_usable"])
    assert result.check.severity == "error" and result.failing_rows == 1
    assert result.sample[0]["token"] == "wbtc" and result.sample[0]["answer_raw"] == -100_000_000


def test_a_price_quoted_in_another_token_is_multiplied_by_that_tokens_usd_price() -> None:
    """int_oracle_prices composes feeds quoted in a token: stETH = STETH/ETH × ETH/USD, wstETH
    along two such feeds, an aToken on stETH priced as stETH, each as old as its oldest answer
    and exact (the answers' product, their decimals summed; null past 38 digits). A token with
    a USD feed keeps it though another feed quotes it in ETH. Once ETH/USD's latest answer is
    rejected, every price built on it is null, and prices_usable names each such token with
    that answer; a feed that has not answered yet leaves its token out."""
    from contagion.warehouse import load_checks, run_checks

    con = _bare_database()
    weth, steth, wsteth, cbeth, reth = "0xe0", "0xe1", "0xe2", "0xe3", "0xe4"
    con.execute(f"""create table int_tokens as select * from (values
        (1::ubigint, '{weth}', 'WETH', 18, 'asset', null::varchar, null::varchar),
        (1, '{steth}', 'stETH', 18, 'lst', null, null),
        (1, '{wsteth}', 'wstETH', 18, 'lst', null, null),
        (1, '{cbeth}', 'cbETH', 18, 'lst', null, null),
        (1, '{reth}', 'rETH', 18, 'lst', null, null),
        (1, '0xa1', 'astETH', 18, 'atoken', 'aave', '{steth}'))
        as t(chain_id, token, symbol, decimals, token_kind, issued_by, underlying)""")
    feeds = [  # id, address, decimals, base, quote symbol, quote token
        ("ETH/USD", "0xfa", 8, weth, "USD", USD),
        ("STETH/ETH", "0xfd", 18, steth, "WETH", weth),
        ("WSTETH/STETH", "0xfe", 18, wsteth, "stETH", steth),
        ("CBETH/ETH", "0xf0", 18, cbeth, "WETH", weth),  # lower address, yet USD wins
        ("CBETH/USD", "0xf1", 8, cbeth, "USD", USD),
        ("RETH/ETH", "0xf2", 18, reth, "WETH", weth)]
    con.register("_feeds", pa.table(
        list(zip(*[(1, fid, addr, dec, "price", base, quote, qt)
                   for fid, addr, dec, base, quote, qt in feeds], strict=True)),
        names=["chain_id", "feed_id", "feed", "decimals", "feed_kind", "base_token", "quote",
               "quote_token"]))
    con.execute("create table ref_feeds as select chain_id::ubigint as chain_id, "
                "* exclude (chain_id) from _feeds")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "b::ubigint as snapshot_block from (values (100), (120)) as t(b)")
    con.execute("create table stg_blocks as select 1::ubigint as chain_id, b::ubigint as "
                "block_number, to_timestamp(b * 12) as block_time from (values (100), (120)) "
                "as t(b)")
    answers = [  # feed id, block, answer
        ("ETH/USD", 90, 2000 * 10**8), ("ETH/USD", 110, -(10**8)),
        ("STETH/ETH", 50, 99 * 10**16), ("WSTETH/STETH", 95, 12 * 10**17),
        ("CBETH/USD", 80, 2100 * 10**8), ("CBETH/ETH", 99, 15 * 10**17),
        ("RETH/ETH", 101, 11 * 10**17)]
    by_id = {f[0]: f for f in feeds}
    rows = []
    for fid, block, answer in answers:
        _, addr, dec, base, _, quote = by_id[fid]
        price = answer / 10**dec
        rows.append({"chain_id": 1, "block_number": block, "block_time": block * 12,
                     "log_index": 0, "token": base, "symbol": fid.split("/")[0],
                     "price": price, "quote": quote,
                     "price_usd": price if quote == USD else None,
                     "answer_raw": str(answer), "source": fid, "feed": addr})
    con.register("_answers", pa.Table.from_pylist(rows))
    con.execute("""create table src_prices as select chain_id::ubigint as chain_id,
        block_number::ubigint as block_number, to_timestamp(block_time) as block_time,
        log_index::uinteger as log_index, token, symbol, price, quote, price_usd,
        answer_raw::decimal(38, 0) as answer_raw, source, feed from _answers""")
    _build_models(con, "stg_prices", "stg_snapshot_times", "int_token_feeds",
                  "int_oracle_prices")
    got = {(r[0], r[1]): r[2:] for r in con.execute(
        "select snapshot_block, token, priced_as, price_usd, price_block, price_age_blocks, "
        "price_age_seconds, feed_id, answer_raw, answer_decimals "
        "from int_oracle_prices").fetchall()}
    assert got[100, weth] == (weth, 2000.0, 90, 10, 120, "ETH/USD", 2000 * 10**8, 8)
    steth_at_100 = (steth, pytest.approx(1980.0), 50, 50, 600, "STETH/ETH × ETH/USD",
                    99 * 10**16 * 2000 * 10**8, 26)
    assert got[100, steth] == steth_at_100
    assert got[100, "0xa1"] == steth_at_100
    # 1.2e18 × 1.98e29 has 48 digits: no exact answer, the float all the same
    assert got[100, wsteth] == (wsteth, pytest.approx(2376.0), 50, 50, 600,
                                "WSTETH/STETH × STETH/ETH × ETH/USD", None, 44)
    assert got[100, cbeth][1:2] + got[100, cbeth][5:6] == (2100.0, "CBETH/USD")
    assert (100, reth) not in got
    for token in (weth, steth, "0xa1", wsteth, reth):
        assert got[120, token][1] is None, token
    assert got[120, cbeth][1] == 2100.0
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "prices_usable"])
    assert result.failing_rows == 5
    assert {(r["token"], r["price_block"], r["answer_raw"]) for r in result.sample} == {
        (t, 110, -(10**8)) for t in (weth, steth, "0xa1", wsteth, reth)}


def test_a_flow_held_in_two_partition_files_fails_a_blocking_check() -> None:
    """flows_unique: the same flow in two files of the lake (a window left twice) is named,
    with its number of copies; distinct flows of one log (flow_index) are not."""
    from contagion.warehouse import load_checks, run_checks

    con = duckdb.connect()
    con.execute("""create table src_flows as select * from (values
        (1::ubigint, 10::ubigint, 3::uinteger, 0::uinteger),
        (1, 10, 3, 1),
        (1, 12, 0, 0),
        (1, 12, 0, 0))
        as t(chain_id, block_number, log_index, flow_index)""")
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "flows_unique"])
    assert result.check.severity == "error" and result.failing_rows == 1
    assert result.sample == [{"chain_id": 1, "block_number": 12, "log_index": 0,
                              "flow_index": 0, "copies": 2}]


def test_aave_flows_stay_principal_where_no_token_gives_scaled_balances() -> None:
    """int_balances leaves Aave flows to int_aave_balances only for the (venue, reserve, side)
    of a registered aToken / debt token with an issuer; an aToken the registry names no issuer
    for must not hide the other reserves' flows (a null in the `in` list would)."""
    con = _bare_database()
    con.execute("""create table ref_tokens as select * from (values
        (1::ubigint, '0xa1', 'aWETH', 18, 'atoken', 'aave', '0xweth'),
        (1, '0xa2', 'aWBTC', 8, 'atoken', null, '0xwbtc'))
        as t(chain_id, token, symbol, decimals, token_kind, issued_by, underlying)""")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "10::ubigint as snapshot_block")
    con.execute("""create table stg_flows as select * from (values
        (1::ubigint, 'aave', 'aave_v3', '0xweth', '0xu', '0xweth', 'collateral', 5::ubigint,
         1, 100::decimal(38, 0)),
        (1, 'aave', 'aave_v3', '0xusdc', '0xu', '0xusdc', 'collateral', 5, 1, 7),
        (1, 'aave', 'aave_v3', '0xwbtc', '0xu', '0xwbtc', 'collateral', 5, 1, 3))
        as t(chain_id, venue, protocol, market, account, token, side, block_number, sign,
             amount_raw)""")
    _build_models(con, "stg_aave_tokens", "int_balances")
    held = dict(con.execute("select market, amount_raw from int_balances").fetchall())
    # WETH comes from the aToken's scaled balance; USDC has no aToken, WBTC's has no issuer
    assert held == {"0xusdc": 7, "0xwbtc": 3}


def test_an_aave_reserve_valued_at_principal_while_its_index_moved_is_named() -> None:
    """aave_interest_counted (warn): a reserve whose positions int_balances sums from flows (no
    registered aToken / debt token with an issuer) is named once its index for that side has
    moved off 1 by the latest snapshot; one at 1, or one valued from its scaled balances, is
    not."""
    from contagion.warehouse import load_checks, run_checks

    ray = 10**27
    con = _bare_database()
    con.execute("""create table ref_tokens as select * from (values
        (1::ubigint, '0xa1', 'aWETH', 18, 'atoken', 'aave', '0xweth'))
        as t(chain_id, token, symbol, decimals, token_kind, issued_by, underlying)""")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "b::ubigint as snapshot_block from range(5, 25, 10) as t(b)")
    con.execute("""create table stg_flows as select * from (values
        (1::ubigint, 'aave', 'aave_v3', '0xweth', '0xu', '0xweth', 'collateral', 5::ubigint,
         1, 100::decimal(38, 0)),
        (1, 'aave', 'aave_v3', '0xusdc', '0xu', '0xusdc', 'collateral', 5, 1, 7),
        (1, 'aave', 'aave_v3', '0xusdc', '0xv', '0xusdc', 'collateral', 6, 1, 5),
        (1, 'aave', 'aave_v3', '0xusdc', '0xu', '0xusdc', 'debt', 6, 1, 2),
        (1, 'aave', 'aave_v3', '0xdai', '0xu', '0xdai', 'debt', 7, 1, 3))
        as t(chain_id, venue, protocol, market, account, token, side, block_number, sign,
             amount_raw)""")
    # USDC's supply side earned interest at block 9; its borrow index moves only after the
    # last snapshot (block 15); DAI's borrow index moved, WETH's both (but WETH has aWETH).
    con.execute(f"""create table stg_aave_reserve_updates as select * from (values
        (1::ubigint, 9::ubigint, 0, 9000000, 'aave', '0xusdc', {ray + 5}::decimal(38, 0),
         {ray}::decimal(38, 0)),
        (1, 30, 0, 30000000, 'aave', '0xusdc', {ray + 6}, {ray + 9}),
        (1, 8, 0, 8000000, 'aave', '0xdai', {ray}, {ray + 1}),
        (1, 8, 1, 8000001, 'aave', '0xweth', {ray + 2}, {ray + 3}))
        as t(chain_id, block_number, log_index, ordinal, venue, reserve, liquidity_index,
             variable_borrow_index)""")
    _build_models(con, "stg_aave_tokens", "int_balances")
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "aave_interest_counted"])
    assert result.check.severity == "warn"
    assert [(r["reserve"], r["side"], r["positions"], r["principal_raw"], r["index_ray"])
            for r in result.sample] == [("0xdai", "debt", 1, 3, ray + 1),
                                        ("0xusdc", "collateral", 2, 12, ray + 5)]


def test_compound_base_positions_are_principals_at_the_indexes_brought_to_the_snapshot() -> None:
    """int_compound_balances on hand-made state reads: each account's latest principal at or
    before the snapshot, valued at the Comet's latest state brought forward to the snapshot's
    second (Comet's accruedInterestIndices and presentValue, as contagion.protocols.compound_v3
    computes them); debt positive on side debt; no time needed while the rates are 0; a failed
    read, a Comet without a state yet or a snapshot without a header leaves the amount null and
    says why. int_balances keeps Compound collateral and drops its base supply and debt."""
    from contagion.protocols import compound_v3 as c
    from contagion.warehouse import replace_table

    one, day, big = c.BASE_INDEX_SCALE, 86_400, 10**12
    rates = c.InterestRates.per_year(9 * 10**17, 5 * 10**16, 2 * 10**18, 0,
                                     9 * 10**17, 6 * 10**16, 3 * 10**18, 15 * 10**15)
    con = _bare_database()
    c.register(con)
    con.execute("""create table ref_venues as select * from (values
        (1::ubigint, 'usdc', 'compound_v3'), (1, 'weth', 'compound_v3'), (1, 'aave', 'aave_v3'))
        as t(chain_id, venue, protocol)""")
    con.execute("""create table ref_venue_contracts as select * from (values
        (1::ubigint, 'usdc', 'comet', '0xc1'), (1, 'weth', 'comet', '0xc2'),
        (1, 'aave', 'pool', '0xc3'), (1, 'usdc', 'configurator', '0xc8'))
        as t(chain_id, venue, role, contract)""")
    con.execute("""create table ref_markets as select * from (values
        (1::ubigint, 'usdc', '0xweth', '0xusdc'), (1, 'usdc', '0xwbtc', '0xusdc'),
        (1, 'weth', '0xwsteth', '0xweth'))
        as t(chain_id, venue, market, loan_token)""")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "b::ubigint as snapshot_block from (values (4), (10), (20), (30)) as t(b)")
    # a day a block; block 30 has no header: its time is unknown
    con.execute(f"create table stg_blocks as select 1::ubigint as chain_id, b::ubigint as "
                f"block_number, to_timestamp(b * {day}) as block_time from range(0, 30) as t(b)")
    totals = (big, 8 * big // 10)  # 80 % used
    state: dict[str, object] = {
        "base_supply_index": one, "base_borrow_index": one, "total_supply_base": totals[0],
        "total_borrow_base": totals[1], "last_accrual_time": 5 * day - 100, **rates._asdict(),
        "unread_reason": None}
    unread = dict.fromkeys(state) | {"unread_reason": "totalsBasic() reverted"}
    zero = state | c.ZERO_RATES._asdict()
    grown = state | {"base_supply_index": one + 12_345_678, "base_borrow_index": one + 67_890_123,
                     "last_accrual_time": 15 * day - 7}
    key: dict[str, object] = {"chain_id": 1, "block_time": 0}
    states = [key | {"block_number": 5, "contract_address": "0xc1"} | state,
              key | {"block_number": 15, "contract_address": "0xc1"} | grown,
              key | {"block_number": 8, "contract_address": "0xc2"} | unread,
              key | {"block_number": 12, "contract_address": "0xc2"} | zero,
              key | {"block_number": 9, "contract_address": "0xc9"} | state]  # not a Comet
    replace_table(con, "src_compound_v3__states",
                  pa.Table.from_pylist(states, schema=c.STATES_SCHEMA))
    principals = [(5, "0xc1", "0xa", big + 7), (5, "0xc1", "0xb", -big // 2 - 3),
                  (16, "0xc1", "0xa", 0), (12, "0xc1", "0xd", None), (8, "0xc2", "0xe", 70),
                  (12, "0xc2", "0xf", -9)]
    replace_table(con, "src_compound_v3__principals", pa.Table.from_pylist([
        key | {"block_number": b, "contract_address": comet, "account": account,
               "principal": p, "unread_reason": None if p is not None else "userBasic reverted"}
        for b, comet, account, p in principals], schema=c.PRINCIPALS_SCHEMA))
    _build_models(con, "stg_snapshot_times", "stg_comets", "stg_compound_states",
                  "stg_compound_principals", "int_compound_balances")
    # the Comets are the venues' `comet` contracts, as the indexer reads them
    assert con.execute("select contract, venue, base_token from stg_comets order by 1"
                       ).fetchall() == [("0xc1", "usdc", "0xusdc"), ("0xc2", "weth", "0xweth")]
    got = {(s, a): (side, amount, shares, reason) for s, a, side, amount, shares, reason in
           con.execute("select snapshot_block, account, side, amount_raw, shares_raw, "
                       "unvalued_reason from int_compound_balances").fetchall()}

    def worth(supply_index: int, borrow_index: int, accrued: int, principal: int,
              at: int) -> int:
        indices = c.accrued_indices(supply_index, borrow_index, *totals, rates, at - accrued)
        return abs(c.present_value(*indices, principal))

    lent, owed = worth(one, one, 5 * day - 100, big + 7, 10 * day), \
        worth(one, one, 5 * day - 100, -big // 2 - 3, 10 * day)
    assert lent > big + 7 and owed > big // 2 + 3  # five days of interest
    later = worth(one + 12_345_678, one + 67_890_123, 15 * day - 7, -big // 2 - 3, 20 * day)
    assert got == {
        (10, "0xa"): ("supply", lent, big + 7, None),
        (10, "0xb"): ("debt", owed, big // 2 + 3, None),
        (10, "0xe"): ("supply", None, 70, "the Comet's state was not read: "
                                          "totalsBasic() reverted"),
        (20, "0xa"): ("supply", 0, 0, None),  # withdrew everything at block 16
        (20, "0xb"): ("debt", later, big // 2 + 3, None),
        (20, "0xd"): ("supply", None, None, "the principal was not read: userBasic reverted"),
        (20, "0xe"): ("supply", 70, 70, None),
        (20, "0xf"): ("debt", 9, 9, None),
        (30, "0xa"): ("supply", None, 0, "the snapshot block has no header: its time is "
                                         "unknown"),  # left out of int_positions: no shares
        (30, "0xb"): ("debt", None, big // 2 + 3, "the snapshot block has no header: its "
                                                  "time is unknown"),
        (30, "0xd"): ("supply", None, None, "the principal was not read: userBasic reverted"),
        (30, "0xe"): ("supply", 70, 70, None),  # rates 0: the time does not matter
        (30, "0xf"): ("debt", 9, 9, None),
    }
    # a principal read before the Comet's first state: nothing to value it with
    replace_table(con, "src_compound_v3__principals", pa.Table.from_pylist([
        key | {"block_number": 3, "contract_address": "0xc1", "account": "0xa",
               "principal": 5, "unread_reason": None}], schema=c.PRINCIPALS_SCHEMA))
    con.execute("drop table stg_compound_principals; drop table int_compound_balances")
    _build_models(con, "stg_compound_principals", "int_compound_balances")
    assert con.execute("select amount_raw, unvalued_reason from int_compound_balances "
                       "where snapshot_block = 4").fetchall() == [
        (None, "no state of the Comet read before the snapshot")]
    # int_balances: Compound collateral from the flows, its base supply and debt not
    con.execute("create table stg_aave_tokens (chain_id ubigint, token varchar, venue varchar, "
                "reserve varchar, side varchar)")
    con.execute("""create table stg_flows as select * from (values
        (1::ubigint, 'usdc', 'compound_v3', '0xweth', '0xa', '0xweth', 'collateral',
         5::ubigint, 1, 7::decimal(38, 0)),
        (1, 'usdc', 'compound_v3', '0xusdc', '0xa', '0xusdc', 'supply', 5, 1, 1000),
        (1, 'usdc', 'compound_v3', '0xusdc', '0xb', '0xusdc', 'debt', 5, 1, 800))
        as t(chain_id, venue, protocol, market, account, token, side, block_number, sign,
             amount_raw)""")
    _build_models(con, "int_balances")
    assert con.execute("select distinct account, side, amount_raw from int_balances"
                       ).fetchall() == [("0xa", "collateral", 7)]


def test_a_borrower_group_with_an_unvalued_leg_or_no_threshold_is_undecided() -> None:
    """int_account_health on hand-made positions: a group that owes and has a leg without a USD
    value (unpriced collateral, unpriced debt) or a collateral without a liquidation threshold
    is undecided (health null, with the reason), not underwater at health 0; the balance sheet
    and the state vector leave it out of their health sums and count it in undecided_accounts.
    A group that owes nothing is not undecided, whatever its collateral."""
    con = _bare_database()
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "10::ubigint as snapshot_block")
    con.execute("create table int_windows as select 1::ubigint as chain_id, "
                "10::ubigint as snapshot_block, 0::ubigint as window_start")
    con.execute("""create table ref_venues as select 1::ubigint as chain_id, 'lend' as venue,
        'aave_v3' as protocol, 'lending' as venue_kind""")
    con.execute("""create table int_market_thresholds as select 10::ubigint as snapshot_block,
        1::ubigint as chain_id, 'lend' as venue, t as market, t as collateral_token,
        0.8::double as liquidation_threshold
        from (values ('weth'), ('steth')) as v(t)""")  # gov has none
    # (account, token, side, usd): usd null is unpriced
    legs = [("0xa", "weth", "collateral", 100.0), ("0xa", "usdc", "debt", 120.0),
            ("0xf", "weth", "collateral", 300.0), ("0xf", "usdc", "debt", 100.0),
            ("0xb", "steth", "collateral", None), ("0xb", "usdc", "debt", 50.0),
            ("0xc", "gov", "collateral", 1000.0), ("0xc", "usdc", "debt", 10.0),
            ("0xd", "weth", "collateral", 200.0), ("0xd", "wbtc", "debt", None),
            ("0xe", "steth", "collateral", None), ("0xe", "gov", "collateral", 5.0)]
    con.register("_legs", pa.Table.from_pylist(
        [{"account": a, "token": t, "side": s, "amount_usd": u} for a, t, s, u in legs],
        schema=pa.schema({"account": pa.string(), "token": pa.string(), "side": pa.string(),
                          "amount_usd": pa.float64()})))
    con.execute("""create table int_positions as select 10::ubigint as snapshot_block,
        1::ubigint as chain_id, 'lend' as venue, 'aave_v3' as protocol, 'lending' as venue_kind,
        token as market, account, token, side, amount_usd, token as priced_as,
        null::varchar as backing_token from _legs""")
    con.execute("""create table stg_aave_collateral_switches as  -- all on, at the supply
        select distinct 1::ubigint as chain_id, 'lend' as venue, account, token as reserve,
               log_ordinal(5, 0) as ordinal, true as enabled
        from _legs where side = 'collateral'""")
    con.execute("create table int_venue_cash (snapshot_block ubigint, chain_id ubigint, "
                "venue varchar, token varchar, amount_raw decimal(38, 0))")
    con.execute("create table int_tokens (chain_id ubigint, token varchar, decimals integer)")
    con.execute("create table int_token_prices (chain_id ubigint, snapshot_block ubigint, "
                "token varchar, price_usd double)")
    con.execute("create table int_oracle_prices (chain_id ubigint, snapshot_block ubigint, "
                "token varchar, priced_as varchar)")
    con.execute("create table stg_flows (chain_id ubigint, block_number ubigint, "
                "venue varchar, token varchar, side varchar, action varchar, "
                "amount_raw decimal(38, 0), amount double)")
    con.execute("create table ref_markets (chain_id ubigint, venue varchar, "
                "collateral_token varchar, loan_token varchar)")
    con.execute("create table int_token_signals (chain_id ubigint, snapshot_block ubigint, "
                "token varchar, oracle_price_usd double, oracle_drift double, "
                "order_flow_imbalance double, implied_vol_change double, "
                "risk_reversal_change double, volatility double, amm_depth_units double)")
    con.execute("create table int_perp_margin (snapshot_block ubigint, chain_id ubigint, "
                "venue varchar, size_usd_raw decimal(38, 0), is_long boolean)")
    _build_models(con, "int_account_health", "fct_venue_balance_sheet", "fct_venue_state")
    health = {r[0]: r[1:] for r in con.execute(
        "select account, collateral_usd, threshold_collateral_usd, debt_usd, health_factor, "
        "undecided_reason from int_account_health").fetchall()}
    assert health == {
        "0xa": (100.0, 80.0, 120.0, pytest.approx(80 / 120), None),
        "0xf": (300.0, 240.0, 100.0, 2.4, None),
        "0xb": (None, None, 50.0, None, "a collateral has no USD value"),
        "0xc": (1000.0, None, 10.0, None, "a collateral has no liquidation threshold"),
        "0xd": (200.0, 160.0, None, None, "a debt has no USD value"),
        "0xe": (None, None, 0.0, None, None),  # owes nothing: nothing to decide
    }
    sheet = con.execute("select accounts_below_liquidation_threshold, undecided_accounts, "
                        "underwater_debt_usd, excess_collateral_usd from fct_venue_balance_sheet"
                        ).fetchall()
    assert sheet == [(1, 3, 20.0, 200.0)]  # 0xa below and 20 underwater; 0xf 200 in excess
    state = con.execute("select debt_share_within_5pct, borrower_collateral_ratio, "
                        "liquidation_collateral_ratio, undecided_accounts from fct_venue_state"
                        ).fetchall()
    assert state == [(pytest.approx(120 / 220), pytest.approx(400 / 220),
                      pytest.approx(400 / 320), 3)]


def _position_sources(con: duckdb.DuckDBPyConnection, *built: str) -> None:
    """Empty inputs of int_positions but those `built` (a test fills the ones it needs), and
    one priced token."""
    for name in {"int_morpho_shares", "int_aave_balances", "int_compound_balances"} - set(built):
        con.execute(f"create table {name} (snapshot_block ubigint, chain_id ubigint, "
                    "venue varchar, market varchar, account varchar, token varchar, "
                    "loan_token varchar, side varchar, amount_raw decimal(38, 0), "
                    "shares_raw decimal(38, 0))")
    con.execute("create table int_balances (snapshot_block ubigint, chain_id ubigint, "
                "venue varchar, protocol varchar, market varchar, account varchar, "
                "token varchar, side varchar, amount_raw decimal(38, 0))")
    con.execute("create table int_perp_margin (snapshot_block ubigint, chain_id ubigint, "
                "venue varchar, index_token varchar, account varchar, "
                "collateral_usd_raw decimal(38, 0), collateral_token varchar)")
    con.execute("create table int_options_vaults (snapshot_block ubigint, chain_id ubigint, "
                "venue varchar, side varchar, token varchar, owner varchar, "
                "amount_raw decimal(38, 0))")
    if "ref_tokens" not in built:
        con.execute("create table ref_tokens (chain_id ubigint, token varchar, "
                    "token_kind varchar)")
    con.execute("""create table ref_venues as select * from (values
        (1::ubigint, 'usdc', 'lending'), (1, 'aave', 'lending'), (1, 'morpho', 'lending'))
        as t(chain_id, venue, venue_kind)""")
    con.execute("create table int_tokens as select 1::ubigint as chain_id, '0xusdc' as token, "
                "'USDC' as symbol, 6 as decimals")
    con.execute("""create table int_token_prices as select 1::ubigint as chain_id,
        b::ubigint as snapshot_block, '0xusdc' as token, '0xusdc' as priced_as,
        1.0::double as price_usd, b::ubigint as price_block, 0::bigint as price_age_blocks,
        0::bigint as price_age_seconds from (values (10), (20)) as t(b)""")


def test_a_position_whose_principal_was_not_read_is_kept_unvalued_and_named() -> None:
    """A Compound base position whose principal read failed (amount and shares unknown) stays in
    fct_positions, unvalued, and the blocking no_negative_balances names it; a position known
    to be empty (shares 0, amount unknown: the time was) is left out as before."""
    from contagion.warehouse import load_checks, run_checks

    con = _bare_database()
    _position_sources(con)
    con.execute("""insert into int_compound_balances
        (snapshot_block, chain_id, venue, market, account, token, side, amount_raw, shares_raw)
        select 20, 1, 'usdc', '0xusdc', a, '0xusdc', 'supply', amount, shares from (values
        ('0xa', 1000::decimal(38, 0), 990::decimal(38, 0)),
        ('0xd', null, null),  -- userBasic reverted
        ('0xe', null, 0)) as t(a, amount, shares)""")
    _build_models(con, "int_positions", "fct_positions")
    got = con.execute("select account, amount_raw, shares_raw, amount_usd from fct_positions "
                      "order by account").fetchall()
    assert got == [("0xa", 1000, 990, 0.001), ("0xd", None, None, None)]
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "no_negative_balances"])
    assert result.failing_rows == 1 and result.sample[0]["account"] == "0xd"


def test_morpho_rounding_left_after_every_position_exited_reconciles() -> None:
    """flows_reconcile_with_token_balances adds what a Morpho market holds beyond its positions
    (its totals less what they can take: the shares' rounding) also once no position is left:
    Morpho keeps the unit its last withdrawal rounded down, and the blocking check must not
    fail on it. While a position is there, its amount is subtracted from the totals."""
    from contagion.warehouse import load_checks, run_checks

    con = _bare_database()
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "b::ubigint as snapshot_block from (values (5), (10)) as t(b)")
    con.execute("create table ref_venues as select 1::ubigint as chain_id, "
                "'morpho' as venue, 'lending' as venue_kind")
    # the supplier's shares were worth 999 of the 1000 supplied; it withdrew them at block 9
    con.execute("""create table int_morpho_markets as select 1::ubigint as chain_id,
        'morpho' as venue, '0xm' as market, log_ordinal(b, 0) as ordinal,
        a::decimal(38, 0) as total_supply_assets, 0::decimal(38, 0) as total_borrow_assets,
        0::decimal(38, 0) as borrow_assets_floored from (values (4, 1000), (9, 1)) as t(b, a)""")
    con.execute("""create table int_morpho_shares as select b::ubigint as snapshot_block,
        1::ubigint as chain_id, 'morpho' as venue, '0xm' as market, '0xs' as account,
        'supply' as side, '0xl' as loan_token, s::decimal(38, 0) as shares_raw,
        a::decimal(38, 0) as amount_raw from (values (5, 999000000, 999), (10, 0, 0))
        as t(b, s, a)""")
    con.execute("""create table fct_positions as select snapshot_block, chain_id, venue,
        'morpho_blue' as protocol, 'lending' as venue_kind, market, loan_token as token, side,
        amount_raw from int_morpho_shares where shares_raw <> 0""")
    con.execute("""create table int_venue_cash as select b::ubigint as snapshot_block,
        1::ubigint as chain_id, 'morpho' as venue, '0xl' as token, c::decimal(38, 0) as amount_raw
        from (values (5, 1000), (10, 1)) as t(b, c)""")
    con.execute("create table stg_protocol_owned_moves (chain_id ubigint, block_number ubigint, "
                "venue varchar, token varchar, delta decimal(38, 0))")
    con.execute("create table stg_flows (chain_id ubigint, block_number ubigint, venue varchar, "
                "protocol varchar, token varchar, side varchar, action varchar, sign tinyint, "
                "amount_raw decimal(38, 0))")
    (result,) = run_checks(con, [c for c in load_checks()
                                 if c.name == "flows_reconcile_with_token_balances"])
    assert result.passed, result.sample
    # a unit the market should hold but does not is still found
    con.execute("update int_venue_cash set amount_raw = 0 where snapshot_block = 10")
    (result,) = run_checks(con, [c for c in load_checks()
                                 if c.name == "flows_reconcile_with_token_balances"])
    assert [(r["snapshot_block"], r["token"], r["difference"]) for r in result.sample] == [
        (10, "0xl", -1)]


def test_a_pair_with_one_reserve_empty_implies_no_price() -> None:
    """int_token_signals: a pair whose other side is empty (drained, or a donation synced)
    implies no AMM price for the token (not 0, whose drift ln(0) is −inf and reached the venues'
    state vectors); with both reserves above 0 it does."""
    con = _bare_database()
    weth, usdc = "0xe0", "0xe1"
    con.execute(f"""create table int_tokens as select * from (values
        (1::ubigint, '{weth}', 'WETH', 18, 'asset', null::varchar),
        (1, '{usdc}', 'USDC', 6, 'stablecoin', null))
        as t(chain_id, token, symbol, decimals, token_kind, underlying)""")
    con.execute(f"""create table int_oracle_prices as select 1::ubigint as chain_id,
        b::ubigint as snapshot_block, token, token as priced_as, p::double as price_usd
        from (values (10, '{weth}', 2000), (10, '{usdc}', 1), (20, '{weth}', 2000),
                     (20, '{usdc}', 1)) as t(b, token, p)""")
    con.execute("create table int_token_prices as select chain_id, snapshot_block, token, "
                "price_usd from int_oracle_prices")
    con.execute("""create table stg_snapshot_times as select 1::ubigint as chain_id,
        b::ubigint as snapshot_block, to_timestamp(b * 12) as snapshot_time
        from (values (10), (20)) as t(b)""")
    con.execute("""create table int_windows as select 1::ubigint as chain_id,
        b::ubigint as snapshot_block, w::ubigint as window_start
        from (values (10, 0), (20, 10)) as t(b, w)""")
    # at 10 the pool holds no WETH, at 20 one WETH for 2,100 USDC
    con.execute(f"""create table int_amm_reserves as select b::ubigint as snapshot_block,
        1::ubigint as chain_id, '0xp' as pair, '{weth}' as token0, '{usdc}' as token1,
        r0::decimal(38, 0) as reserve0, r1::decimal(38, 0) as reserve1
        from (values (10, 0, 2100000000), (20, {10**18}, 2100000000)) as t(b, r0, r1)""")
    con.execute("create table stg_amm_swaps (chain_id ubigint, block_number ubigint, "
                "token0 varchar, amount0 double, token1 varchar, amount1 double)")
    con.execute("create table int_implied_vols (chain_id ubigint, snapshot_block ubigint, "
                "token varchar, implied_vol double, risk_reversal double)")
    _build_models(con, "int_token_signals")
    got = {(b, t): (amm, drift) for b, t, amm, drift in con.execute(
        "select snapshot_block, token, amm_price_usd, oracle_drift from int_token_signals"
        ).fetchall()}
    assert got[10, weth] == got[10, usdc] == (None, None)
    assert got[20, weth] == (pytest.approx(2100.0), pytest.approx(math.log(2100 / 2000)))
    assert got[20, usdc] == (pytest.approx(2000 / 2100), pytest.approx(math.log(2000 / 2100)))


def test_an_aave_move_too_large_to_compute_leaves_the_balance_unknown() -> None:
    """A Mint whose value does not fit (10^37 or more: stg_aave_scaled_moves' scaled_delta is
    null) leaves the holder's scaled balance and amount null from its block on, with the reason,
    instead of the sum of the other moves; fct_positions keeps the position and the blocking
    no_negative_balances names it. The other holder and the earlier snapshot are untouched."""
    from contagion.protocols import aave_v3
    from contagion.warehouse import lake_schemas, load_checks, replace_table, run_checks

    ray = 10**27
    con = _bare_database()
    aave_v3.register(con)
    atoken, usdc, x, y = "a1" * 20, "0xusdc", "b0" * 20, "b1" * 20
    con.execute(f"""create table ref_tokens as select 1::ubigint as chain_id,
        '0x{atoken}' as token, 'aUSDC' as symbol, 6 as decimals, 'atoken' as token_kind,
        'aave' as issued_by, '{usdc}' as underlying""")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "b::ubigint as snapshot_block from (values (6), (10)) as t(b)")
    con.execute("create table stg_snapshot_times as select chain_id, snapshot_block, "
                "to_timestamp(snapshot_block * 12) as snapshot_time from ref_snapshots")
    con.execute(f"""create table stg_aave_reserve_updates as select 1::ubigint as chain_id,
        1::ubigint as block_number, 0 as log_index, log_ordinal(1, 0) as ordinal,
        'aave' as venue, '{usdc}' as reserve, to_timestamp(12) as updated_at,
        0::decimal(38, 0) as liquidity_rate, 0::decimal(38, 0) as variable_borrow_rate,
        {ray}::decimal(38, 0) as liquidity_index, {ray}::decimal(38, 0) as variable_borrow_index""")
    mints = [(5, 0, x, 1000), (5, 1, y, 700), (7, 0, x, 10**37 + 5)]
    replace_table(con, "src_aave_v3__mint", pa.Table.from_pylist([
        {"chain_id": 1, "block_number": b, "transaction_hash": bytes(32), "log_index": i,
         "contract_address": bytes.fromhex(atoken), "on_behalf_of": bytes.fromhex(a),
         "value": str(v), "balance_increase": "0", "index": str(ray)}
        for b, i, a, v in mints], schema=lake_schemas()["aave_v3__mint"]))
    for table in ("aave_v3__burn", "aave_v3__balance_transfer"):
        replace_table(con, f"src_{table}", lake_schemas()[table].empty_table())
    _build_models(con, "stg_aave_tokens", "stg_aave_scaled_moves", "int_aave_balances")
    got = {(b, a[2:]): rest for b, a, *rest in con.execute(
        "select snapshot_block, account, amount_raw, shares_raw, unvalued_reason "
        "from int_aave_balances").fetchall()}
    assert got == {
        (6, x): [1000, 1000, None], (6, y): [700, 700, None], (10, y): [700, 700, None],
        (10, x): [None, None, "a scaled move of the position does not fit decimal(38,0)"]}
    _position_sources(con, "int_aave_balances", "ref_tokens")
    _build_models(con, "int_positions", "fct_positions")
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "no_negative_balances"])
    assert [(r["snapshot_block"], r["account"]) for r in result.sample] == [(10, "0x" + x)]


def test_a_morpho_count_past_decimal_38_leaves_its_market_unknown() -> None:
    """Morpho's totals are uint128: a Supply whose shares pass decimal(38,0), or two whose sum
    does, used to abort the build. Now the market's totals are null from that event on, and so
    are its positions' amounts (and the shares of those that move there then); the blocking
    no_negative_balances names them. Earlier snapshots keep their values."""
    from contagion.warehouse import lake_schemas, load_checks, replace_table, run_checks

    con = _bare_database()
    morpho, a, b = "c0" * 20, "aa" * 32, "bb" * 32
    x, y, z = "b0" * 20, "b1" * 20, "b2" * 20
    con.execute(f"create table ref_venue_contracts as select 1::ubigint as chain_id, "
                f"'0x{morpho}' as contract, 'morpho' as venue")
    con.execute(f"""create table ref_markets as select 1::ubigint as chain_id, 'morpho' as venue,
        '0x' || m as market, '0xusdc' as loan_token from (values ('{a}'), ('{b}')) as t(m)""")
    con.execute("create table ref_snapshots as select 1::ubigint as chain_id, "
                "s::ubigint as snapshot_block from (values (6), (10)) as t(s)")
    supplies = [(5, 0, a, x, 1000, 1000 * 10**6), (5, 1, b, y, 1000, 1000 * 10**6),
                (7, 0, a, z, 10**33, 2 * 10**38),  # one count past decimal(38,0)
                (8, 0, b, y, 6 * 10**31, 6 * 10**37), (9, 0, b, y, 6 * 10**31, 6 * 10**37)]
    replace_table(con, "src_morpho_blue__supply", pa.Table.from_pylist([
        {"chain_id": 1, "block_number": blk, "transaction_hash": bytes(32), "log_index": i,
         "contract_address": bytes.fromhex(morpho), "id": bytes.fromhex(m),
         "on_behalf": bytes.fromhex(who), "assets": str(assets), "shares": str(shares)}
        for blk, i, m, who, assets, shares in supplies],
        schema=lake_schemas()["morpho_blue__supply"]))
    for table in ("withdraw", "borrow", "repay", "liquidate", "accrue_interest",
                  "set_fee_recipient", "create_market"):
        replace_table(con, f"src_morpho_blue__{table}",
                      lake_schemas()[f"morpho_blue__{table}"].empty_table())
    _build_models(con, "stg_morpho_moves", "int_morpho_markets", "int_morpho_shares")
    totals = con.execute("select market, block_number, total_supply_assets, total_supply_shares "
                         "from int_morpho_markets order by market, block_number").fetchall()
    assert totals == [("0x" + a, 5, 1000, 10**9), ("0x" + a, 7, None, None),
                      ("0x" + b, 5, 1000, 10**9), ("0x" + b, 8, 6 * 10**31 + 1000,
                                                   6 * 10**37 + 10**9),
                      ("0x" + b, 9, None, None)]  # the sum would pass 10^38
    got = {(s, m[2:4], who[2:4]): (shares, amount) for s, m, who, shares, amount in
           con.execute("select snapshot_block, market, account, shares_raw, amount_raw "
                       "from int_morpho_shares").fetchall()}
    assert got == {(6, "aa", "b0"): (10**9, 1000), (6, "bb", "b1"): (10**9, 1000),
                   (10, "aa", "b0"): (10**9, None),  # its shares are known, their worth not
                   (10, "aa", "b2"): (None, None), (10, "bb", "b1"): (None, None)}
    _position_sources(con, "int_morpho_shares")
    _build_models(con, "int_positions", "fct_positions")
    (result,) = run_checks(con, [c for c in load_checks() if c.name == "no_negative_balances"])
    assert {(r["snapshot_block"], r["account"]) for r in result.sample} == {
        (10, "0x" + x), (10, "0x" + y), (10, "0x" + z)}


def test_an_aave_supply_counts_as_collateral_only_while_switched_on() -> None:
    """Aave's health factor counts a reserve only while the user has it on as collateral (the
    last ReserveUsedAsCollateralEnabled / Disabled); so does int_account_health."""
    con = _bare_database()
    con.execute("""create table int_positions as select 10::ubigint as snapshot_block,
        1::ubigint as chain_id, 'lend' as venue, 'aave_v3' as protocol, 'lending' as venue_kind,
        token as market, account, token, side, usd as amount_usd from (values
        ('0xa', 'weth', 'collateral', 100.0), ('0xa', 'steth', 'collateral', 50.0),
        ('0xa', 'usdc', 'debt', 60.0),
        ('0xb', 'weth', 'collateral', 100.0), ('0xb', 'usdc', 'debt', 10.0),
        ('0xc', 'weth', 'collateral', 100.0), ('0xc', 'usdc', 'debt', 10.0))
        as t(account, token, side, usd)""")
    con.execute("""create table int_market_thresholds as select 10::ubigint as snapshot_block,
        1::ubigint as chain_id, 'lend' as venue, t as market, t as collateral_token,
        0.8::double as liquidation_threshold from (values ('weth'), ('steth')) as v(t)""")
    con.execute("""create table stg_aave_collateral_switches as select 1::ubigint as chain_id,
        'lend' as venue, account, reserve, log_ordinal(block, 0) as ordinal, enabled
        from (values ('0xa', 'weth', 5, true), ('0xa', 'steth', 5, true),
                     ('0xa', 'steth', 8, false),  -- switched off before the snapshot
                     ('0xc', 'weth', 12, true))   -- switched on after it
        as t(account, reserve, block, enabled)""")  # 0xb never switched weth on
    _build_models(con, "int_account_health")
    health = {r[0]: r[1:] for r in con.execute(
        "select account, collateral_usd, threshold_collateral_usd, debt_usd, health_factor "
        "from int_account_health order by account").fetchall()}
    assert health == {"0xa": (100.0, 80.0, 60.0, pytest.approx(80 / 60)),
                      "0xb": (0.0, 0.0, 10.0, 0.0), "0xc": (0.0, 0.0, 10.0, 0.0)}

