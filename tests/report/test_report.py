"""The health report: written from the devnet crisis and opened in headless Chromium (every
section in the rendered DOM, a screenshot that is not blank), and its degenerate inputs
(missing marts, empty tables, zero debt, quarantined rows, hostile text)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import World

from contagion.graph.marts import write_graph_marts
from contagion.indexing import decode_partition
from contagion.ingest import RAW_LOGS
from contagion.lake import Lake
from contagion.registry import Registry, load_registry
from contagion.report import SECTIONS, build_report
from contagion.risk.marts import write_risk_marts
from contagion.warehouse import build_database, connect_readonly

CHROMIUM = Path("/usr/bin/chromium")
IDS = [sid for sid, _, _ in SECTIONS]
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TRANSFER = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")


class Sections(HTMLParser):
    """Every element id of a document, and per section: its text and how many SVGs it holds."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.text: dict[str, str] = {}
        self.svgs: dict[str, int] = {}
        self._section: str | None = None
        self._depth = 0
        self.feed(document)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs).get("id")
        if found:
            self.ids.append(found)
        if tag == "section" and found:
            self._section, self._depth = found, 0
            self.text[found], self.svgs[found] = "", 0
        elif tag == "section" and self._section:
            self._depth += 1
        if tag == "svg" and self._section:
            self.svgs[self._section] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._section:
            if self._depth == 0:
                self._section = None
            else:
                self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._section:
            self.text[self._section] += data


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        pytest.skip(f"headless Chromium not found at {CHROMIUM}: `make test` installs it "
                    "(apt-get install chromium chromium-driver)")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def crisis(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The conftest crisis with a snapshot every 2 blocks (enough windows for the anomaly
    baselines), and its contagion and early-warning marts."""
    db = tmp_path_factory.mktemp("report") / "contagion.duckdb"
    build_database(db, world.lake, world.registry, snapshots=range(0, world.head + 1, 2))
    write_graph_marts(db, world.registry)
    write_risk_marts(db, world.registry)
    yield db


@pytest.mark.devnet
def test_the_report_renders_in_headless_chromium(world: World, crisis: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "health.html"
    summary = build_report(crisis, world.registry, out, chain_head=world.head + 5,
                           lake=world.lake, generated_at=WHEN)
    assert summary.written == IDS and summary.unavailable == {}
    assert summary.path == out and summary.size_bytes == out.stat().st_size > 50_000
    document = out.read_text()
    # self-contained: nothing to fetch (the SVG namespace URIs are names, not requests;
    # url(#…) points inside the document)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\((?!#)""",
                         document)
    dom = _chromium(tmp_path, "--dump-dom", out.as_uri()).stdout
    rendered = Sections(dom)
    assert set(IDS) | {"report-header"} <= set(rendered.ids)
    assert [rendered.svgs[i] for i in IDS] == [1, 1, 1, 0, 0, 0, 0]  # the three charts
    shot = tmp_path / "health.png"
    _chromium(tmp_path, "--window-size=1280,4000", f"--screenshot={shot}", out.as_uri())
    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (4000, 1280, 3)
    rgb = pixels.astype(np.uint32)
    colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    assert len(colours) > 200 and pixels.std() > 20
    # the crisis went red: the red of the level badge and the chart's points is on screen
    red = np.all(np.abs(pixels.astype(int) - [0xC6, 0x28, 0x28]) <= 8, axis=-1)
    assert red.sum() > 200


@pytest.mark.devnet
def test_the_sections_say_what_the_database_says(world: World, crisis: Path,
                                                 tmp_path: Path) -> None:
    summary = build_report(crisis, world.registry, tmp_path / "r.html", generated_at=WHEN)
    text = Sections((tmp_path / "r.html").read_text()).text
    with connect_readonly(crisis) as con:
        latest = con.execute("select max(snapshot_block) from ref_snapshots").fetchall()[0][0]
        [(level,)] = con.execute("select level from fct_ecosystem_score "
                                 "where snapshot_block = ?", [latest]).fetchall()
        peak = con.execute("select snapshot_block, score, driver from fct_ecosystem_score "
                           "order by score desc limit 1").fetchall()[0]
        scenarios = con.execute("select count(*) from fct_stress_results "
                                "where snapshot_block = ?", [latest]).fetchall()[0][0]
        rec_block = con.execute("select max(snapshot_block) from fct_freeze_recommendations"
                                ).fetchall()[0][0]
        acted = con.execute("select max(snapshot_block) from fct_freeze_recommendations "
                            "where action <> 'watch'").fetchall()[0][0]
    assert summary.snapshot_block == latest and summary.level == level
    assert f"{peak[1]:.2f}" in text["ecosystem-score"] and peak[2] in text["ecosystem-score"]
    assert "red" in text["ecosystem-score"]
    assert "No window has a baseline yet" not in text["anomaly-heatmap"]  # 20 windows
    assert "stETH → aave_v3" in text["contagion-paths"]
    assert text["stress-tests"].count(" fails") == len(world.registry.venues)
    assert scenarios > len(world.registry.venues)
    freeze = text["freeze-recommendation"]
    assert f"block {rec_block}" in freeze and "Evidence:" in freeze
    assert acted is not None and f"at block {acted}: raise margin stETH" in freeze
    coverage = text["data-coverage"]
    assert f"1 – {world.head} ({world.head} blocks)" in coverage
    assert "unknown (no chain head given)" in coverage
    assert "0 (read through the database's views of the lake)" in coverage
    # the same database, told the chain head
    build_report(crisis, world.registry, tmp_path / "h.html", chain_head=world.head + 7)
    assert "7 blocks" in Sections((tmp_path / "h.html").read_text()).text["data-coverage"]


@pytest.mark.devnet
def test_missing_marts_say_why_they_are_not_available(world: World, tmp_path: Path) -> None:
    # the conftest database has neither the contagion nor the early-warning marts
    summary = build_report(world.db, world.registry, tmp_path / "r.html", generated_at=WHEN)
    missing = summary.unavailable
    assert set(missing) == {"ecosystem-score", "anomaly-heatmap", "contagion-paths",
                            "stress-tests", "freeze-recommendation"}
    assert "write_risk_marts" in missing["ecosystem-score"]
    assert "write_graph_marts" in missing["stress-tests"]
    assert summary.written == ["exposure-graph", "data-coverage"] and summary.level is None
    parsed = Sections((tmp_path / "r.html").read_text())
    for sid in missing:
        assert parsed.text[sid].count("Not available:") == 1 and parsed.svgs[sid] == 0


@pytest.mark.devnet
def test_quarantined_rows_are_counted_by_reason(world: World, tmp_path: Path) -> None:
    """A Transfer log cut one byte short goes to quarantine when its partition is decoded
    again; the report counts it from the lake and through the database alike."""
    lake = Lake(str(tmp_path / "lake"))
    shutil.copytree(world.data / "lake", tmp_path / "lake")
    part = lake.partitions(RAW_LOGS, world.registry.chain_id)[-1]
    logs = lake.read(RAW_LOGS, part)
    data = logs["data"].to_pylist()
    row = next(i for i, (t, d) in enumerate(zip(logs["topic0"].to_pylist(), data,
                                                 strict=True))
               if t == TRANSFER and len(d) == 32)
    data[row] = data[row][:-1]
    lake.write(RAW_LOGS, part, logs.set_column(logs.schema.get_field_index("data"), "data",
                                               pa.array(data, pa.binary())))
    decode_partition(lake, world.registry, part)
    db = tmp_path / "contagion.duckdb"
    build_database(db, lake, world.registry)
    for given in (lake, None):
        build_report(db, world.registry, tmp_path / "r.html", lake=given)
        coverage = Sections((tmp_path / "r.html").read_text()).text["data-coverage"]
        assert "quarantined rows1 (" in coverage
        assert "quarantinedata is 31 bytes, expected 321" in coverage  # table, reason, rows


def _empty(tmp_path: Path, registry: Registry, snapshots: list[int] | None = None) -> Path:
    """A database built from an empty lake (default snapshots: none)."""
    db = tmp_path / "contagion.duckdb"
    build_database(db, Lake(str(tmp_path / "lake")), registry, snapshots=snapshots,
                   allow_empty_lake=True)
    return db


def test_an_empty_database_and_zero_debt(tmp_path: Path) -> None:
    registry = load_registry("ethereum")
    nothing = _empty(tmp_path / "a", registry)  # no block, no snapshot, no mart
    summary = build_report(nothing, registry, tmp_path / "a.html")
    assert summary.written == [] and summary.snapshot_block is None
    assert summary.unavailable["exposure-graph"] == "the database has no snapshot"
    assert "no block is indexed yet" in summary.unavailable["data-coverage"]
    # a snapshot before anything happened: the marts exist, with zeros and no rows
    db = _empty(tmp_path / "b", registry, snapshots=[0])
    write_graph_marts(db, registry)
    write_risk_marts(db, registry)
    summary = build_report(db, registry, tmp_path / "b.html", generated_at=WHEN)
    assert summary.written == ["ecosystem-score", "anomaly-heatmap", "stress-tests",
                               "freeze-recommendation"]
    assert "no exposure" in summary.unavailable["exposure-graph"]
    assert "fct_contagion_paths has no rows" in summary.unavailable["contagion-paths"]
    text = Sections((tmp_path / "b.html").read_text()).text
    assert "No scenario leaves bad debt" in text["stress-tests"]
    assert "No action recommended." in text["freeze-recommendation"]
    assert "No window has a baseline yet" in text["anomaly-heatmap"]


def test_text_is_escaped_and_bad_input_refused(tmp_path: Path) -> None:
    registry = load_registry("ethereum")
    db = _empty(tmp_path, registry, snapshots=[0])
    hostile = registry.model_copy(update={"network": "<script>alert('x')</script> & co"})
    build_report(db, hostile, tmp_path / "r.html")
    document = (tmp_path / "r.html").read_text()
    assert "<script>" not in document and "alert('x')" not in document
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in document
    with pytest.raises(ValueError, match="chain head"):
        build_report(db, registry, tmp_path / "x.html", chain_head=-1)
    with pytest.raises(ValueError, match="time zone"):
        build_report(db, registry, tmp_path / "x.html", generated_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="registry"):
        build_report(db, load_registry("base"), tmp_path / "x.html")
    with pytest.raises(FileNotFoundError, match="contagion build"):
        build_report(tmp_path / "none.duckdb", registry, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()
