"""The ecosystem health report: one self-contained HTML file read from the analysts' database.

Sections (each a `<section>` with a stable id, `SECTIONS`): the ecosystem score over time with
its levels, the venue × window anomaly heatmap, the exposure graph at the latest snapshot, the
strongest contagion paths, the stress suite, the current freeze recommendation with its
evidence, and data coverage and freshness. A section whose data is missing (the marts not
written yet, an empty table, a lake the database can no longer read) says "not available" and
why; the rest of the report is still written.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np

from contagion.graph.build import SMALL_ACCOUNTS
from contagion.graph.load import latest_snapshot
from contagion.graph.marts import GRAPH_MARTS
from contagion.lake import Lake
from contagion.registry import Registry
from contagion.report import charts
from contagion.report.html import (
    Markup,
    badge,
    esc,
    number,
    page,
    percent,
    table,
    unavailable,
    usd,
)
from contagion.risk.marts import RISK_MARTS
from contagion.risk.scores import ScoreSettings
from contagion.warehouse import (
    DEFAULT_MAX_PRICE_AGE_SECONDS,
    connect_readonly,
    lake_schemas,
    load_checks,
    run_checks,
)

__all__ = ["SECTIONS", "Report", "ReportSummary", "SectionStatus", "build_report",
           "render_report"]

TOP_ROWS = 15  # rows of the long tables (paths, edges)
QUARANTINE_TABLES = tuple(t for t in lake_schemas() if t.endswith("quarantine"))


class Unavailable(Exception):
    """A section cannot be drawn from this database; the message says why."""


@dataclass(frozen=True)
class SectionStatus:
    id: str
    title: str
    reason: str | None = None  # None: written; else why it is not available

    @property
    def available(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Report:
    html: str
    snapshot_block: int | None
    level: str | None  # the ecosystem level at the latest snapshot
    sections: tuple[SectionStatus, ...]


@dataclass(frozen=True)
class ReportSummary:
    """What `build_report` wrote."""

    path: Path
    size_bytes: int
    snapshot_block: int | None
    level: str | None
    sections: tuple[SectionStatus, ...]

    @property
    def written(self) -> list[str]:
        """Ids of the sections drawn from data."""
        return [s.id for s in self.sections if s.available]

    @property
    def unavailable(self) -> dict[str, str]:
        """Id → why, for the sections that said "not available"."""
        return {s.id: s.reason for s in self.sections if s.reason is not None}


@dataclass
class _Context:
    con: duckdb.DuckDBPyConnection
    registry: Registry
    settings: ScoreSettings
    snapshot: int | None
    chain_head: int | None
    lake: Lake | None
    tables: set[str]
    symbols: dict[str, str] = field(default_factory=dict)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def need(self, *tables: str) -> None:
        for name in tables:
            if name in self.tables:
                continue
            if name in GRAPH_MARTS:
                why = ("the contagion marts were not written "
                       "(contagion.graph.marts.write_graph_marts, `contagion warn`)")
            elif name in RISK_MARTS:
                why = ("the early-warning marts were not written "
                       "(contagion.risk.marts.write_risk_marts, `contagion warn`)")
            else:
                why = "the database was built by an older pipeline; rebuild it (`contagion build`)"
            raise Unavailable(f"{name} is not in the database: {why}")

    def latest_in(self, name: str, empty: str) -> int:
        """The latest snapshot a mart has rows for; `empty` says what no row means."""
        self.need(name)
        [(block,)] = self.rows(f"select max(snapshot_block) from {name}")
        if block is None:
            raise Unavailable(f"{name} has no rows: {empty}")
        return int(block)

    def symbol(self, token: str | None) -> str:
        return "—" if token is None else self.symbols.get(token, _short(token))

    def node(self, node: str) -> str:
        kind, _, key = node.partition(":")
        if node == SMALL_ACCOUNTS:
            return "small accounts"
        if kind == "token":
            return self.symbol(key)
        return _short(key) if kind == "account" else key

    def stale(self, name: str, block: int) -> str:
        """A note when a mart's latest rows are older than the database's latest snapshot."""
        if self.snapshot is None or block >= self.snapshot:
            return ""
        return (f" The latest snapshot with rows in {name}; the database's latest is "
                f"{self.snapshot}.")


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if address.startswith("0x") and len(address) > 12 \
        else address


def _lead(text: str) -> Markup:
    return Markup(f'<p class="lead">{esc(text)}</p>')


def _note(text: str) -> Markup:
    return Markup(f'<p class="note">{esc(text)}</p>') if text else Markup("")


def _facts(items: Sequence[tuple[str, object]]) -> Markup:
    return Markup('<div class="facts">' + "".join(
        f'<div><span class="label">{esc(k)}</span>{esc(v)}</div>' for k, v in items) + "</div>")


# ---------------------------------------------------------------- sections

def _ecosystem(ctx: _Context) -> Markup:
    ctx.need("fct_ecosystem_score")
    rows = ctx.rows("select snapshot_block, score, level, driver, venues_at_amber "
                    "from fct_ecosystem_score order by snapshot_block")
    if not rows:
        raise Unavailable("fct_ecosystem_score has no rows: the database has no window to "
                          "score")
    rule = ctx.settings.levels
    blocks = [int(r[0]) for r in rows]
    chart = charts.ecosystem_chart(blocks, [float(r[1]) for r in rows], [r[2] for r in rows],
                                   rule)
    block, score, level, driver, at_amber = rows[-1]
    changes = [r for k, r in enumerate(rows) if k == 0 or r[2] != rows[k - 1][2]]
    return Markup(
        _lead(f"The largest venue anomaly score, weighted by how much that venue matters "
              f"(0.5 + 0.25 × the DebtRank of its failure + 0.25 × the share of venues its "
              f"contagion paths reach). Amber from {rule.amber:g}, red from {rule.red:g}; a "
              f"level falls only after {rule.cooldown} windows below its threshold minus "
              f"{rule.margin:g}.")
        + _facts([("level at block " + str(block), badge(level)),
                  ("score", number(score)), ("driven by", driver or "—"),
                  ("venues at amber or above", at_amber)])
        + charts.to_svg(chart, "ecosystem-score")
        + Markup("<h3>Level changes</h3>")
        + table(["window ending at block", "level", "score", "driven by"],
                [(b, badge(lv), number(s), d or "—") for b, s, lv, d, _ in changes],
                numeric=[0, 2]))


def _heatmap(ctx: _Context) -> Markup:
    ctx.need("fct_anomaly_scores")
    frame = ctx.con.sql("select snapshot_block, venue, score, method from fct_anomaly_scores"
                        ).pl()
    if frame.is_empty():
        raise Unavailable("fct_anomaly_scores has no rows: the database has no window to score")
    venues = sorted(set(frame["venue"].to_list()))
    blocks = sorted({int(b) for b in frame["snapshot_block"]})
    grid = np.full((len(venues), len(blocks)), np.nan)
    row_of = {v: i for i, v in enumerate(venues)}
    col_of = {b: i for i, b in enumerate(blocks)}
    for block, venue, score, method in frame.iter_rows():
        if method != "none":  # no baseline yet: grey, not a calm zero
            grid[row_of[venue], col_of[int(block)]] = score
    latest = blocks[-1]
    now = ctx.rows("select venue, venue_kind, score, level, top_feature, "
                   "insolvency_probability, expected_bad_debt_usd, method, "
                   "insolvency_horizon_days "
                   "from fct_anomaly_scores where snapshot_block = ? "
                   "order by score desc, venue", [latest])
    rule = ctx.settings.levels
    scored = int(np.isfinite(grid).sum())
    horizon = next((h for *_, h in now if h is not None), None)
    return Markup(
        _lead("Each venue's anomaly score per window: −log10 of the p-value of its state "
              "vector's Mahalanobis distance from its own previous windows (4 ≈ once in "
              f"10,000 calm windows). Colour bands at {rule.amber:g} (amber) and "
              f"{rule.red:g} (red); grey: fewer than {ctx.settings.min_windows} earlier "
              "windows, no baseline yet.")
        + charts.to_svg(charts.anomaly_heatmap(venues, blocks, grid, rule), "anomaly-heatmap")
        + _note("" if scored else f"No window has a baseline yet: scores start after "
                f"{ctx.settings.min_windows} windows.")
        + Markup(f"<h3>Venues at block {esc(latest)}</h3>")
        + table(["venue", "kind", "score", "level", "top feature",
                 "P(insolvent)" if horizon is None else f"P(insolvent in {horizon:g} d)",
                 "expected bad debt"],
                [(v, k, number(s) if m != "none" else "no baseline", badge(lv), f or "—",
                  percent(p), usd(e)) for v, k, s, lv, f, p, e, m, _ in now],
                numeric=[2, 5, 6]))


def _exposure(ctx: _Context) -> Markup:
    ctx.need("fct_exposure_edges")
    if ctx.snapshot is None:
        raise Unavailable("the database has no snapshot")
    rows = ctx.rows("select src, src_type, src_name, dst, dst_type, dst_name, kind, value_usd "
                    "from fct_exposure_edges where snapshot_block = ? and value_usd > 0 "
                    "order by value_usd desc", [ctx.snapshot])
    flows = [charts.Flow(*r) for r in rows if r[1] != "account" and r[4] != "account"]
    if not flows:
        raise Unavailable(f"no exposure between venues and tokens at block {ctx.snapshot}: "
                          "nothing is deposited, posted as collateral or issued yet")
    accounts = [r for r in rows if r[1] == "account" or r[4] == "account"]
    return Markup(
        _lead(f"At block {ctx.snapshot}: tokens posted as collateral or margin at venues, and "
              "claims venues issue (aTokens, the LST, LP shares, oTokens). Arrows point the way "
              "a loss travels; edge width grows with the log of its USD value.")
        + charts.to_svg(charts.exposure_chart(flows), "exposure-graph")
        + _note(f"Not drawn: {len(accounts)} edges to or from accounts (debt owed, claims "
                f"held), {usd(sum(r[7] for r in accounts))} in all.")
        + Markup("<h3>Largest edges</h3>")
        + table(["from", "to", "kind", "USD"],
                [(f.src_name, f.dst_name, f.kind.replace("_", " "), usd(f.value_usd))
                 for f in flows[:TOP_ROWS]], numeric=[3]))


def _paths(ctx: _Context) -> Markup:
    block = ctx.latest_in("fct_contagion_paths", "no venue or collateral token reaches "
                          "another venue at any snapshot (nothing is deposited or borrowed)")
    total, sources = ctx.rows("select count(*), count(distinct source) from fct_contagion_paths "
                              "where snapshot_block = ?", [block])[0]
    rows = ctx.rows("select source, target, path, hops, transmission, loss_usd "
                    "from fct_contagion_paths where snapshot_block = ? and rank = 1 "
                    "order by loss_usd desc, transmission desc, source, target limit ?",
                    [block, TOP_ROWS])
    return Markup(
        _lead(f"At block {block}: the strongest path from a shocked venue or collateral token "
              "to each venue it reaches, by the loss it carries (the source's value × the "
              "product of the edges' vulnerabilities)." + ctx.stale("fct_contagion_paths",
                                                                     block))
        + table(["from", "to", "path", "hops", "transmission", "loss"],
                [(ctx.node(s), ctx.node(t), " → ".join(ctx.node(n) for n in p), h,
                  number(x, 3), usd(loss)) for s, t, p, h, x, loss in rows],
                numeric=[3, 4, 5])
        + _note(f"{total} paths from {sources} sources in all (up to 3 per target); the "
                f"{len(rows)} strongest first paths shown."))


def _stress(ctx: _Context) -> Markup:
    block = ctx.latest_in("fct_stress_results", "the database has no snapshot to stress")
    rows = ctx.rows("select scenario, kind, initial_loss_usd, bad_debt_usd, liquidated_usd, "
                    "total_loss_usd, amplification, failed_venues, target from fct_stress_results "
                    "where snapshot_block = ? order by total_loss_usd desc, scenario", [block])
    calm = all(r[3] == 0 for r in rows)
    return Markup(
        _lead(f"At block {block}: each priced token −10/−30/−50 %, each LST depegged, each "
              "venue failing alone, run through the DeFi cascade (liquidations, price impact, "
              "bad debt). Shaded: a venue other than the one failing is left more bad debt than "
              "its reserves (LP liquidity for perps) absorb."
              + ctx.stale("fct_stress_results", block))
        + table(["scenario", "kind", "initial loss", "bad debt", "liquidated", "total loss",
                 "amplification", "failed venues"],
                [(s, k.replace("_", " "), usd(i), usd(b), usd(q), usd(t),
                  "—" if a is None else f"{a:.2f}×", ", ".join(f) or "—")
                 for s, k, i, b, q, t, a, f, _ in rows],
                numeric=[2, 3, 4, 5, 6],
                # a failing venue is among its own scenario's failures: not a spread
                row_class=["alert" if set(r[7]) - {r[8]} else "" for r in rows])
        + _note("No scenario leaves bad debt at this snapshot." if calm else ""))


def _freeze(ctx: _Context) -> Markup:
    ctx.need("fct_freeze_recommendations")
    [(block,)] = ctx.rows("select max(snapshot_block) from fct_freeze_recommendations")
    if block is None:
        return Markup(
            "<p><strong>No action recommended.</strong> No window had a venue at amber or "
            "above with a policy rule that applies.</p>")
    rows = ctx.rows("select venue, asset, action, rule, params, anomalous_venue, "
                    "loss_before_usd, loss_after_usd, loss_cut_usd, coordinated_with, evidence "
                    "from fct_freeze_recommendations where snapshot_block = ? "
                    "order by anomalous_venue, action desc, venue, asset", [block])
    now = ctx.snapshot is None or int(block) >= ctx.snapshot
    intro = (f"Recommended at the latest snapshot, block {block}." if now else
             f"No action recommended at the latest snapshot (block {ctx.snapshot}). The most "
             f"recent recommendation, at block {block}:")
    out = [_lead("The policy's coordinated actions (contagion/policy): what each venue should "
                 "do, and the simulated bad debt over the horizon with and without them."),
           Markup(f"<p><strong>{esc(intro)}</strong></p>"),
           table(["venue", "asset", "action", "rule", "parameters", "coordinated with",
                  "loss cut"],
                 [(v, ctx.symbol(a) if a else "whole venue" if act != "watch" else "—", act,
                   r, _params(p), ", ".join(c) or "—", usd(cut) if act != "watch" else "—")
                  for v, a, act, r, p, _, _, _, cut, c, _ in rows], numeric=[6]),
           _note(_last_action(ctx) if all(r[2] == "watch" for r in rows) else "")]
    seen: set[str] = set()
    for _, _, _, _, _, anomalous, before, after, _, _, evidence in rows:
        if anomalous in seen:
            continue
        seen.add(anomalous)
        out.append(_evidence(ctx, anomalous, json.loads(evidence), before, after,
                             acted=any(r[5] == anomalous and r[2] != "watch" for r in rows)))
    return Markup("".join(out))


def _last_action(ctx: _Context) -> str:
    """The latest recommendation beyond watching, for when the latest ones only watch."""
    rows = ctx.rows("select snapshot_block, action, asset, list(venue order by venue) "
                    "from fct_freeze_recommendations where action <> 'watch' and "
                    "snapshot_block = (select max(snapshot_block) from "
                    "fct_freeze_recommendations where action <> 'watch') group by all "
                    "order by action, asset")
    if not rows:
        return "No action beyond watching has been recommended in any window."
    return f"The latest action beyond watching, at block {rows[0][0]}: " + "; ".join(
        f"{action.replace('_', ' ')} {ctx.symbol(asset) if asset else ''} at "
        f"{', '.join(venues)}".replace("  ", " ") for _, action, asset, venues in rows) + "."


def _params(text: str | None) -> str:
    params = json.loads(text) if text else {}
    return ", ".join(f"{k.replace('_', ' ')} {percent(v) if k == 'threshold_cut' else v}"
                     for k, v in params.items()) or "—"


def _evidence(ctx: _Context, venue: str, evidence: dict[str, Any], before: float,
              after: float, *, acted: bool) -> Markup:
    values: dict[str, float] = evidence.get("features", {})
    contributions: dict[str, float] = evidence.get("contributions", {})
    total = sum(c for c in contributions.values() if c > 0)
    features = sorted(contributions, key=lambda f: -contributions[f])[:8]
    paths = evidence.get("paths", [])
    shocks: dict[str, float] = evidence.get("shocks", {})
    parts = [Markup(f"<h3>Evidence: {esc(venue)} {badge(evidence.get('level'))} score "
                    f"{esc(number(evidence.get('score')))}</h3>")]
    if acted:
        parts.append(_facts([("simulated bad debt, no action", usd(before)),
                             ("with the recommended actions", usd(after)),
                             ("cut", usd(before - after))]))
    parts.append(table(["feature", "value", "contribution to distance²", "share"],
                       [(f.replace("_", " "), number(values.get(f), 4),
                         number(contributions[f], 2),
                         percent(contributions[f] / total) if total > 0 else "—")
                        for f in features], numeric=[1, 2, 3]))
    if paths:
        parts.append(table(["strong contagion path", "transmission"],
                           [(" → ".join(ctx.node(n) for n in p["path"]),
                             number(p["transmission"], 3)) for p in paths], numeric=[1]))
    if shocks:
        parts.append(_note("Stress over the horizon: " + ", ".join(
            f"{ctx.symbol(t)} {percent(s)}" for t, s in shocks.items()) + "."))
    return Markup("".join(parts))


def _coverage(ctx: _Context) -> Markup:
    ctx.need("stg_blocks", "ref_snapshots", "stg_prices", "fct_positions")
    [(first, last, blocks, first_time, last_time)] = ctx.rows(
        "select min(block_number), max(block_number), count(*), min(block_time), "
        "max(block_time) from stg_blocks")
    if last is None:
        raise Unavailable("no block is indexed yet (`contagion index`)")
    [(snapshots, first_snap, last_snap)] = ctx.rows(
        "select count(*), min(snapshot_block), max(snapshot_block) from ref_snapshots")
    if ctx.chain_head is None:
        lag = "unknown (no chain head given)"
    elif ctx.chain_head >= last:
        lag = f"{ctx.chain_head - last:,} blocks (head {ctx.chain_head:,})"
    else:
        lag = f"head {ctx.chain_head:,} is behind the last indexed block"
    [(price_block, price_age_blocks, price_age_seconds)] = ctx.rows(
        "select p.block_number, ? - p.block_number, date_diff('second', b.block_time, ?) "
        "from (select max(block_number) as block_number from stg_prices) as p "
        "left join stg_blocks as b on b.block_number = p.block_number", [last, last_time])
    stalest = ctx.rows("select symbol, price_age_seconds from fct_positions "
                       "where snapshot_block = ? and price_age_seconds is not null "
                       "order by price_age_seconds desc, symbol limit 1", [last_snap])
    [fresh] = run_checks(ctx.con, [c for c in load_checks() if c.name == "prices_fresh"],
                         max_price_age_seconds=DEFAULT_MAX_PRICE_AGE_SECONDS,
                         sample=TOP_ROWS)
    quarantined, source = _quarantine(ctx)
    facts = [
        ("blocks indexed", f"{first:,} – {last:,} ({blocks:,} blocks)"),
        ("block times", f"{first_time:%Y-%m-%d %H:%M} – {last_time:%Y-%m-%d %H:%M} UTC"),
        ("snapshots", f"{snapshots:,} (blocks {first_snap:,} – {last_snap:,})"
         if snapshots else "none"),
        ("lag to chain head", lag),
        ("last price update", "none" if price_block is None else
         f"block {price_block:,}: {price_age_blocks:,} blocks, "
         f"{_duration(price_age_seconds)} before the last indexed block"),
        ("oldest price held at the latest snapshot",
         f"{stalest[0][0]}: {_duration(stalest[0][1])}" if stalest else "none"),
        ("quarantined rows", f"{sum(quarantined.values()):,} ({source})"),
    ]
    stale_rows = [(r["symbol"], r["problem"], r["positions"],
                   _duration(cast("float | None", r["price_age_seconds"])))
                  for r in fresh.sample]
    return Markup(
        _lead("What the database covers and how fresh it is.")
        + _facts(facts)
        + (table(["table", "reason", "rows"],
                 [(t, reason, f"{n:,}") for (t, reason), n in quarantined.most_common()],
                 numeric=[2])
           if quarantined else _note("No row was quarantined."))
        + (Markup(f"<h3>Tokens held at block {esc(last_snap)} without a price younger than "
                  f"{esc(_duration(DEFAULT_MAX_PRICE_AGE_SECONDS))}</h3>")
           + table(["token", "problem", "positions", "age"], stale_rows, numeric=[2, 3])
           + _note(f"{fresh.failing_rows} tokens in all (the prices_fresh check).")
           if fresh.failing_rows else
           _note(f"Every token held at block {last_snap} has a price younger than "
                 f"{_duration(DEFAULT_MAX_PRICE_AGE_SECONDS)} (the prices_fresh check).")))


def _quarantine(ctx: _Context) -> tuple[Counter[tuple[str, str]], str]:
    """Quarantined rows by (table, reason): read from the lake when given, else through the
    database's views of it."""
    counts: Counter[tuple[str, str]] = Counter()
    if ctx.lake is not None:
        for name in QUARANTINE_TABLES:
            for part in ctx.lake.partitions(name, ctx.registry.chain_id):
                counts.update((name, r) for r in
                              ctx.lake.read(name, part).column("reason").to_pylist())
        return counts, f"read from the lake at {ctx.lake.root}"
    ctx.need(*(f"src_{name}" for name in QUARANTINE_TABLES))
    for name in QUARANTINE_TABLES:
        counts.update({(name, str(r)): int(n) for r, n in ctx.rows(
            f"select reason, count(*) from src_{name} group by reason")})
    return counts, "read through the database's views of the lake"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if abs(s) >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s} s"


SECTIONS: tuple[tuple[str, str, Callable[[_Context], Markup]], ...] = (
    ("ecosystem-score", "Ecosystem score", _ecosystem),
    ("anomaly-heatmap", "Venue anomaly scores", _heatmap),
    ("exposure-graph", "Exposure graph", _exposure),
    ("contagion-paths", "Strongest contagion paths", _paths),
    ("stress-tests", "Stress tests", _stress),
    ("freeze-recommendation", "Freeze recommendation", _freeze),
    ("data-coverage", "Data coverage and freshness", _coverage),
)


# ---------------------------------------------------------------- the document

def render_report(con: duckdb.DuckDBPyConnection, registry: Registry, *,
                  chain_head: int | None = None, lake: Lake | None = None,
                  generated_at: datetime | None = None,
                  settings: ScoreSettings = ScoreSettings()) -> Report:
    """The report as HTML from an open (read-only) connection; see the module."""
    if chain_head is not None and chain_head < 0:
        raise ValueError(f"the chain head is a block number; got {chain_head}")
    when = generated_at or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("generated_at needs a time zone (e.g. datetime.now(UTC))")
    tables = {str(t) for (t,) in con.execute(
        "select table_name from information_schema.tables").fetchall()}
    if "ref_tokens" not in tables:
        raise ValueError("not an analysts' database (no ref_tokens): build it with "
                         "`contagion build`")
    chains = {int(c) for (c,) in con.execute("select distinct chain_id from ref_tokens"
                                             ).fetchall()}
    if chains and chains != {registry.chain_id}:
        raise ValueError(f"the database holds chain {sorted(chains)}, the registry "
                         f"({registry.network}) is chain {registry.chain_id}")
    try:
        snapshot: int | None = latest_snapshot(con)
    except ValueError:
        snapshot = None
    ctx = _Context(con, registry, settings, snapshot, chain_head, lake, tables)
    ctx.symbols = {t.address.lower(): t.symbol for t in registry.tokens}
    if "dim_tokens" in tables:  # also the tokens created on chain (oTokens)
        ctx.symbols.update(dict(con.execute("select token, symbol from dim_tokens").fetchall()))
    level = None
    if snapshot is not None and "fct_ecosystem_score" in tables:
        found = con.execute("select level from fct_ecosystem_score where snapshot_block = ?",
                            [snapshot]).fetchall()
        level = str(found[0][0]) if found else None
    statuses, bodies = [], []
    for sid, title, draw in SECTIONS:
        try:
            body = draw(ctx)
            statuses.append(SectionStatus(sid, title))
        except Unavailable as exc:
            body = unavailable(str(exc))
            statuses.append(SectionStatus(sid, title, str(exc)))
        except duckdb.Error as exc:  # e.g. a view over lake files that were moved
            reason = f"the database could not be read: {exc}".split("\n")[0]
            body = unavailable(reason)
            statuses.append(SectionStatus(sid, title, reason))
        bodies.append((sid, title, body))
    facts = [("network", registry.network), ("chain id", str(registry.chain_id)),
             ("snapshot block", "none" if snapshot is None else f"{snapshot:,}"),
             ("generated at", when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
             ("ecosystem level now", badge(level))]
    document = page(f"DeFi ecosystem health — {registry.network}", facts, bodies,
                    "contagion · ecosystem health report · figures from the analysts' "
                    "database (docs/schema.md)")
    return Report(document, snapshot, level, tuple(statuses))


def build_report(db: Path, registry: Registry, out: Path, *, chain_head: int | None = None,
                 lake: Lake | None = None, generated_at: datetime | None = None,
                 settings: ScoreSettings = ScoreSettings()) -> ReportSummary:
    """Write the report for the database at `db` (opened read-only) to `out`, one
    self-contained HTML file (inline CSS and SVG, no external URL). `chain_head`: the chain's
    latest block when the caller knows it (the lag to head is "unknown" otherwise); `lake`:
    where to count quarantined rows (default: through the database's views of the lake).
    The file appears complete or not at all (written aside, then renamed)."""
    with connect_readonly(db) as con:
        report = render_report(con, registry, chain_head=chain_head, lake=lake,
                               generated_at=generated_at, settings=settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(report.html, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ReportSummary(out, out.stat().st_size, report.snapshot_block, report.level,
                         report.sections)


def write_health_report(db: Path, registry: Registry, report_dir: Path, *,
                        chain_head: int | None = None, lake: Lake | None = None) -> ReportSummary:
    """This run's report as reports/health-<UTC time>.html under report_dir, and the newest
    copied to report_dir/report.html."""
    now = datetime.now(UTC)
    written = build_report(db, registry, report_dir / "reports" /
                           f"health-{now:%Y%m%dT%H%M%S.%fZ}.html", chain_head=chain_head,
                           lake=lake, generated_at=now)
    latest = report_dir / "report.html"
    tmp = latest.with_name(f".{latest.name}.{uuid.uuid4().hex}.tmp")
    shutil.copyfile(written.path, tmp)
    tmp.replace(latest)
    return written
