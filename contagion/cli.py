"""The `contagion` command."""

from __future__ import annotations

import inspect
import json
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from contagion.devnet.node import NodeError, NodeInfo, node_status, start_node, stop_node
from contagion.devnet.scenario import BUNDLED_SCENARIOS, ScenarioError, load_scenario
from contagion.registry import Registry, RegistryError, load_registry

if TYPE_CHECKING:
    from contagion.devnet.runner import RunSummary
    from contagion.indexing import IndexSummary
    from contagion.policy.model import Policy

app = typer.Typer(help="Systemic-risk pipeline for DeFi.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
devnet_app = typer.Typer(help="The embedded devnet: a local anvil node with the DeFi world.",
                         no_args_is_help=True)
scenario_app = typer.Typer(help="Scenarios that drive the devnet.", no_args_is_help=True)
registry_app = typer.Typer(help="Network registries (venues, tokens, feeds).",
                           no_args_is_help=True)
app.add_typer(devnet_app, name="devnet")
app.add_typer(scenario_app, name="scenario")
feed_app = typer.Typer(help="The signed risk feed: sign, serve, verify, publish on chain.",
                       no_args_is_help=True)
app.add_typer(registry_app, name="registry")
app.add_typer(feed_app, name="feed")
console = Console()
err = Console(stderr=True)

DATA_DIR = typer.Option(Path("data"), "--data-dir", help="Where the node, registry and runs live.")
REGISTRY = typer.Option(None, "--registry", help="Registry file or bundled network (default: "
                        "<data-dir>/registry.yaml).")
DATABASE = typer.Option(None, "--db", help="Database file (default: "
                        "<data-dir>/contagion.duckdb).")
FEED_DIR = typer.Option(None, "--feed-dir", help="Signed documents (default: <data-dir>/feed).")
RPC = typer.Option(None, "--rpc", help="JSON-RPC URL (default: the data dir's devnet node).")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


@devnet_app.command("up")
def devnet_up(port: int = typer.Option(8545, help="Port on 127.0.0.1."),
              data_dir: Path = DATA_DIR) -> None:
    """Start anvil, deploy the ecosystem and write the registry."""
    from contagion.devnet.deploy import deploy_ecosystem

    try:
        info = start_node(data_dir, port)
    except NodeError as exc:
        raise _fail(str(exc)) from None
    try:
        with console.status("deploying the ecosystem…"):
            registry = deploy_ecosystem(info.url, data_dir)
    except Exception as exc:
        stop_node(data_dir)
        raise _fail(f"deployment failed, node stopped: {exc}") from exc
    console.print(f"devnet up: [bold]{info.url}[/] (chain id {info.chain_id}, pid {info.pid})")
    console.print(f"registry: {data_dir / 'registry.yaml'} — {len(registry.venues)} venues, "
                  f"{len(registry.tokens)} tokens, {len(registry.feeds)} feeds")
    console.print(info.url)


@devnet_app.command("down")
def devnet_down(data_dir: Path = DATA_DIR) -> None:
    """Stop the node recorded in the data dir."""
    if stop_node(data_dir):
        console.print(f"devnet in {data_dir} stopped")
    else:
        console.print(f"no running devnet recorded in {data_dir}")


@devnet_app.command("status")
def devnet_status(data_dir: Path = DATA_DIR) -> None:
    """Is the node up, where, at which block."""
    status = node_status(data_dir)
    for key, value in status.items():
        console.print(f"{key}: {value}")
    if not status.get("running"):
        raise typer.Exit(code=1)


@scenario_app.command("run")
def scenario_run(scenario: str = typer.Argument(..., help="Bundled name or YAML file."),
                 rpc: str | None = typer.Option(None, "--rpc", help="Node URL (default: the "
                                                "data dir's node)."),
                 data_dir: Path = DATA_DIR) -> None:
    """Run a scenario block by block against the node whose registry is in the data dir."""
    from contagion.devnet.runner import run_scenario

    try:
        spec, path = load_scenario(scenario)
        registry_path = data_dir / "registry.yaml"
        if not registry_path.exists():
            raise _fail(f"no registry at {registry_path}: start the devnet first "
                        f"(`contagion devnet up --data-dir {data_dir}`)")
        if rpc is None:
            info = NodeInfo.load(data_dir)
            if info is None:
                raise _fail(f"no node recorded in {data_dir}; pass --rpc or run "
                            "`contagion devnet up`")
            rpc = info.url
        result = run_scenario(spec, path, rpc, data_dir, progress=True)
    except (ScenarioError, RegistryError, NodeError) as exc:
        raise _fail(str(exc)) from None
    print_summary(result.summary)
    console.print(f"manifest: {result.manifest_path}")


@scenario_app.command("list")
def scenario_list() -> None:
    """The bundled scenarios."""
    for path in sorted(BUNDLED_SCENARIOS.glob("*.yaml")):
        spec, _ = load_scenario(path)
        console.print(f"[bold]{spec.name}[/]: {spec.description}")


@scenario_app.command("check")
def scenario_check(scenario: str) -> None:
    """Validate a scenario file without running it."""
    try:
        spec, path = load_scenario(scenario)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{path}: ok — {spec.blocks} blocks, {spec.accounts.total} accounts, "
                  f"{len(spec.shocks)} shocks")


@registry_app.command("show")
def registry_show(network: str = typer.Argument(..., help="Bundled network or registry file.")
                  ) -> None:
    """Print a registry's venues and tokens."""
    try:
        registry = load_registry(network)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{registry.network} (chain {registry.chain_id})")
    for col in ("venue", "protocol", "kind", "entry contract", "markets"):
        table.add_column(col)
    for v in registry.venues:
        table.add_row(v.id, v.protocol, v.kind, v.main_contract,
                      str(len(v.markets)))
    console.print(table)
    console.print(f"{len(registry.tokens)} tokens, {len(registry.feeds)} feeds, "
                  f"{len(registry.claims)} issued claims")


def _registry(registry: str | None, data_dir: Path) -> Registry:
    """The registry a command names, else the data dir's; a bad one is a clean error."""
    try:
        return load_registry(registry or data_dir / "registry.yaml")
    except RegistryError as exc:
        raise _fail(str(exc)) from None


def _database(db: Path | None, data_dir: Path) -> Path:
    """The database file a command names, else the data dir's."""
    return db or data_dir / "contagion.duckdb"


def _node_url(data_dir: Path) -> str:
    info = NodeInfo.load(data_dir)
    return info.url if info is not None else "http://127.0.0.1:8545"


@app.command("index")
def index(rpc: str | None = typer.Option(None, "--rpc", help="JSON-RPC URL (default: the data "
                                         "dir's devnet node)."),
          registry: str | None = REGISTRY,
          lake: str | None = typer.Option(None, "--lake", help="Lake root, path or URL "
                                          "(default: <data-dir>/lake)."),
          from_block: int | None = typer.Option(None, "--from-block", min=0,
                                                help="Default: the registry's deployment block."),
          to_block: int | None = typer.Option(None, "--to-block", min=0,
                                              help="Default: the safe head."),
          width: int = typer.Option(1_000, min=1, help="Blocks per partition."),
          confirmations: int | None = typer.Option(None, min=0, help="Blocks below the head "
                                                   "treated as final (default 0 on the devnet, "
                                                   "else 12)."),
          reorg_window: int = typer.Option(128, min=0, help="Deepest reorg repaired "
                                           "automatically."),
          max_in_flight: int = typer.Option(4, min=1, help="Concurrent requests to the "
                                            "endpoint."),
          chunk_blocks: int = typer.Option(2_000, min=1, help="Blocks per eth_getLogs request."),
          data_dir: Path = DATA_DIR) -> None:
    """Index chain logs into the lake: raw logs, headers, decoded events, by partition."""
    reg = _registry(registry, data_dir)
    summary = run_index(rpc or _node_url(data_dir), reg, lake or str(data_dir / "lake"),
                        first=from_block, last=to_block, width=width,
                        confirmations=(confirmations if confirmations is not None
                                       else 0 if reg.network == "devnet" else 12),
                        reorg_window=reorg_window, chunk_blocks=chunk_blocks,
                        max_in_flight=max_in_flight)
    print_index_summary(summary)


def run_index(url: str, reg: Registry, lake: str, **settings: Any) -> IndexSummary:
    """index_range with a progress bar (blocks/s, logs/s); a deep reorg is a clean error."""
    import time

    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from contagion.chain.logs import ChainReadError
    from contagion.chain.rpc import RpcClient, RpcError, RpcUnavailable, StatePruned
    from contagion.indexing import WindowResult, index_range
    from contagion.ingest import DeepReorgError
    from contagion.lake import Lake, PartitionFile

    client = RpcClient(url, max_in_flight=settings.get("max_in_flight", 4))
    counts = {"blocks": 0, "logs": 0}
    started = [time.monotonic()]
    with Progress(TextColumn("indexing"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.completed:,}/{task.total:,} blocks · {task.fields[rates]}"),
                  console=console) as progress:
        task = progress.add_task("index", total=0, rates="")

        def on_plan(parts: list[PartitionFile]) -> None:
            started[0] = time.monotonic()
            progress.update(task, total=sum(p.stop - p.start for p in parts))

        def on_window(w: WindowResult) -> None:
            counts["blocks"] += w.part.stop - w.part.start
            counts["logs"] += w.logs
            elapsed = max(time.monotonic() - started[0], 1e-9)
            progress.update(task, completed=counts["blocks"], rates=(
                f"{counts['blocks'] / elapsed:,.0f} blocks/s · {counts['logs'] / elapsed:,.0f} "
                f"logs/s · {counts['logs']:,} logs"))

        try:
            return index_range(client, Lake(lake), reg, on_plan=on_plan, on_window=on_window,
                               **settings)
        except (DeepReorgError, ValueError) as exc:
            raise _fail(str(exc)) from None
        except (RpcError, RpcUnavailable, ChainReadError) as exc:
            progress.stop()
            remedy = ("point --rpc at an archive node to go on." if isinstance(exc, StatePruned)
                      else "is --rpc an Ethereum JSON-RPC endpoint, up and answering?")
            raise _fail(f"indexing from {url} stopped: {exc} — {remedy} Partitions already "
                        "written stay in the lake; a rerun resumes after them") from None
        finally:
            client.close()


def print_index_summary(summary: IndexSummary) -> None:
    table = Table(title=f"indexed chain {summary.chain_id}, blocks {summary.first_block:,}–"
                        f"{summary.last_block:,} (safe head {summary.safe_head:,})")
    for col in ("partitions", "blocks", "logs", "decoded", "quarantined", "ignored", "seconds"):
        table.add_column(col, justify="right")
    w = summary.windows
    table.add_row(f"{len(w)}", f"{summary.blocks:,}",
                  f"{summary.logs:,}", f"{sum(x.decoded for x in w):,}",
                  f"{sum(x.quarantined for x in w):,}", f"{sum(x.ignored for x in w):,}",
                  f"{summary.seconds:,.1f}")
    console.print(table)
    if summary.skipped:
        console.print(f"{summary.skipped} partitions were already indexed")
    if summary.refetched:
        console.print(f"read {summary.refetched} indexed partitions again: they were read for "
                      "another registry or an older decoder, and could lack logs kept now")
    if summary.rederived:
        console.print(f"derived {summary.rederived} indexed partitions again from their raw logs: "
                      "they were decoded under another registry")
    if summary.outdated_elsewhere:
        parts = summary.outdated_elsewhere
        console.print(f"[yellow]{len(parts)} indexed partitions outside blocks "
                      f"{summary.first_block:,}–{summary.last_block:,} were read or decoded for "
                      "another registry or decoder; bring them up to date with `contagion index "
                      f"--from-block {parts[0].start} --to-block {parts[-1].stop - 1}`[/yellow]")
    if summary.reindexed_after_reorg:
        console.print(f"re-indexed {summary.reindexed_after_reorg} partitions after a reorg")
    if summary.removed_after_reorg:
        console.print(f"deleted {summary.removed_after_reorg} partitions a reorg invalidated "
                      f"beyond this run's last block {summary.last_block:,}")


@app.command("build")
def build(registry: str | None = REGISTRY,
          lake: str | None = typer.Option(None, "--lake", help="Lake root (default: "
                                          "<data-dir>/lake)."),
          db: Path | None = DATABASE,
          snapshot: list[int] = typer.Option([], "--snapshot", help="Another snapshot block "
                                             "(repeatable): one the lake has a header of (it "
                                             "logged, or ends a partition); the end of every "
                                             "partition always is one."),
          max_price_age: int = typer.Option(3_600, help="Seconds after which a price is stale "
                                            "(the prices_fresh check)."),
          data_dir: Path = DATA_DIR) -> None:
    """Build the analysts' DuckDB database from the lake: staging views, marts, snapshots; then
    run the checks of sql/checks (a failing error-severity check exits 1)."""
    reg = _registry(registry, data_dir)
    run_build(reg, lake or str(data_dir / "lake"), _database(db, data_dir),
              snapshot, max_price_age=max_price_age)


def run_build(reg: Registry, lake: str, db: Path, snapshots: Sequence[int] = (), *,
              max_price_age: int = 3_600) -> None:
    from contagion.lake import Lake
    from contagion.warehouse import build_database, connect_readonly, run_checks

    try:
        with console.status("building the database…"):
            models = build_database(db, Lake(lake), reg, extra_snapshots=snapshots)
    except (ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    with connect_readonly(db) as con:
        row = con.execute("select count(*), max(snapshot_block) from ref_snapshots").fetchone()
        positions = con.execute("select count(*) from fct_positions").fetchone()
        results = run_checks(con, max_price_age_seconds=max_price_age)
    assert row is not None and positions is not None
    console.print(f"database: {db} · {len(models)} models · {row[0]} snapshots (last block "
                  f"{row[1]}) · {positions[0]:,} positions")
    for result in results:
        mark = "✓" if result.passed else "✗" if result.check.severity == "error" else "!"
        line = f"  {mark} {result.check.name}"
        if not result.passed:
            line += f": {result.failing_rows} rows, e.g. {result.sample[:2]}"
        console.print(line, highlight=False, markup=False)
    if any(not r.passed and r.check.severity == "error" for r in results):
        raise typer.Exit(1)


@app.command("sql")
def sql(query: str = typer.Argument(..., help="A SELECT over the marts (docs/schema.md)."),
        db: Path | None = DATABASE,
        fmt: str = typer.Option("table", "--format", help="table, csv, json or parquet."),
        output: Path | None = typer.Option(None, "--output", help="Write to this file (needed "
                                           "for parquet)."),
        max_rows: int = typer.Option(50, help="Rows shown in table format."),
        data_dir: Path = DATA_DIR) -> None:
    """Run a query on the database, read-only; print a table or export csv/json/parquet."""
    import duckdb

    from contagion.warehouse import connect_readonly

    if fmt not in ("table", "csv", "json", "parquet"):
        raise _fail(f"--format {fmt}: choose table, csv, json or parquet")
    if fmt == "parquet" and output is None:
        raise _fail("--format parquet writes a file: give --output FILE")
    refusal = _not_a_query(query)
    if refusal:
        raise _fail(refusal)
    try:
        con = connect_readonly(_database(db, data_dir))
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    try:
        result = con.sql(query)
        if result is None:
            raise _fail("the statement returned no rows (the database is read-only: only "
                        "queries run)")
        table = result.arrow()
    except duckdb.Error as exc:
        raise _fail(f"query failed: {exc}") from None
    finally:
        con.close()
    if hasattr(table, "read_all"):  # a record batch reader
        table = table.read_all()
    _write_result(table, fmt, output, max_rows)


_EXPLAIN = re.compile(r"^\s*explain(?:\s*\([a-z_ ,]*\)|\s+analy[sz]e\b)?\s*", re.I)


def _not_a_query(query: str) -> str | None:
    """Why `contagion sql` refuses this text, or None: the database is read-only, and nothing
    else may change either (a lake file through COPY, another database through ATTACH, …), so
    exactly one SELECT (WITH … SELECT, FROM …, VALUES, SHOW, DESCRIBE and SUMMARIZE are
    SELECTs too), or EXPLAIN [ANALYZE] of one, runs."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        return f"query failed: {exc}"
    if len(statements) != 1:
        return (f"give exactly one SELECT statement, not {len(statements)} (the database is "
                "read-only: only queries run)")
    statement = statements[0]
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", statement.query, count=1)
        try:
            explained = duckdb.extract_statements(inner) if inner != statement.query else []
        except duckdb.Error:
            explained = []
        if len(explained) == 1 and explained[0].type == duckdb.StatementType.SELECT:
            return None
        return ("EXPLAIN only of a SELECT: the database is read-only, and EXPLAIN ANALYZE "
                "runs the statement it explains")
    if kind == duckdb.StatementType.SELECT:
        return None
    return (f"{kind.name} statements are refused: the database is read-only and only queries "
            "run (SELECT, WITH … SELECT, or EXPLAIN of one); nothing may be written, copied, "
            "attached or set")


def _write_result(table: Any, fmt: str, output: Path | None, max_rows: int) -> None:
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        assert output is not None
        pq.write_table(table, output)
        console.print(f"{table.num_rows:,} rows → {output}")
        return
    if fmt == "csv":
        import pyarrow as pa

        # CSV has no lists or structs: such a column is written as its JSON text
        for i, column in enumerate(table.columns):
            if pa.types.is_nested(column.type):
                text_column = pa.array([None if v is None else json.dumps(v, default=str)
                                        for v in column.to_pylist()], pa.string())
                table = table.set_column(i, table.field(i).name, text_column)
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        text = buffer.getvalue().decode()
    elif fmt == "json":
        text = json.dumps(table.to_pylist(), default=str, indent=1)
    else:
        shown = Table(*table.column_names, show_lines=False)
        for row in table.slice(0, max_rows).to_pylist():
            shown.add_row(*("" if v is None else str(v) for v in row.values()))
        if output is None:
            console.print(shown)
            if table.num_rows > max_rows:
                console.print(f"… {table.num_rows - max_rows:,} more rows (--max-rows, or "
                              "--format csv)")
            return
        text = "\n".join("\t".join(map(str, r.values())) for r in table.to_pylist())
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text)
        console.print(f"{table.num_rows:,} rows → {output}")


@app.command("stress")
def stress(shock: list[str] = typer.Option([], "--shock", help="TOKEN:CHANGE, e.g. "
                                          "\"stETH:-15%\" (symbol, address, or LST for every "
                                          "liquid-staking token; repeatable)."),
           fail: list[str] = typer.Option([], "--fail", help="A venue whose claims become "
                                          "worthless (repeatable)."),
           snapshot: int | None = typer.Option(None, "--snapshot", help="Snapshot block "
                                               "(default: the latest)."),
           paths: int = typer.Option(3, help="Strongest paths shown per affected venue."),
           write: bool = typer.Option(False, help="Also write fct_systemic_risk, "
                                      "fct_contagion_paths and fct_stress_results into the "
                                      "database."),
           registry: str | None = REGISTRY,
           db: Path | None = DATABASE,
           data_dir: Path = DATA_DIR) -> None:
    """Run the DeFi cascade on a shock: prices, liquidations and bad debt round by round, then
    the strongest contagion paths from what was shocked."""
    from contagion.graph.cascade import cascade
    from contagion.graph.load import ecosystem_at, graph_at, latest_snapshot
    from contagion.graph.marts import GRAPH_MIN_ACCOUNT_USD, write_graph_marts
    from contagion.graph.paths import strongest_paths
    from contagion.warehouse import connect_readonly

    reg = _registry(registry, data_dir)
    path = _database(db, data_dir)
    if not shock and not fail:
        raise _fail("give at least one --shock TOKEN:CHANGE or --fail VENUE")
    by_symbol = {t.symbol.lower(): t.address.lower() for t in reg.tokens}
    shocks: dict[str, float] = {}
    for item in shock:
        token, _, change = item.rpartition(":")
        try:
            value = float(change.strip().rstrip("%")) / (100 if change.strip().endswith("%")
                                                         else 1)
        except ValueError:
            raise _fail(f"--shock {item}: expected TOKEN:CHANGE such as stETH:-15%") from None
        if not math.isfinite(value) or value < -1:
            raise _fail(f"--shock {item}: the change must be a finite number of at least "
                        "-100% (a price cannot fall below zero), e.g. stETH:-15% or "
                        "stETH:-0.15")
        lsts = [t.address.lower() for t in reg.tokens if t.kind == "lst"]
        if token.lower() == "lst" and "lst" not in by_symbol:  # every liquid-staking token
            addresses = lsts
        else:
            addresses = [by_symbol.get(token.lower(), token.lower())]
        if not addresses or not all(a.startswith("0x") for a in addresses):
            raise _fail(f"--shock {item}: no token {token!r} in the registry")
        shocks.update(dict.fromkeys(addresses, value))
    venues = {v.id for v in reg.venues}
    unknown = [v for v in fail if v not in venues]
    if unknown:
        raise _fail(f"--fail: no venue {unknown[0]!r} (venues: {', '.join(sorted(venues))})")
    try:
        con = connect_readonly(path)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    with con:
        try:
            block = latest_snapshot(con)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if snapshot is not None:
            _check_snapshot(con, snapshot)
            block = snapshot
        eco = ecosystem_at(con, reg, block)
        graph = graph_at(con, block, min_account_usd=GRAPH_MIN_ACCOUNT_USD)
    try:
        rounds = cascade(eco, shocks, failed_venues=fail)
    except ValueError as exc:  # a token without a price, or a claim that follows its asset
        raise _fail(f"at block {block}: {exc}") from None
    name = eco.symbols.get
    if eco.left_out.groups:  # holding a token without a price: the cascade cannot decide them
        left = ", ".join(f"{v} {usd:,.0f}" for v, usd in sorted(eco.left_out.debt_usd.items()))
        console.print(f"[yellow]left out of the cascade: {len(eco.left_out.groups)} borrower "
                      f"group(s) holding a token without a price "
                      f"({', '.join(name(t) or t for t in eco.left_out.tokens)}); their debt "
                      f"(USD): {left}[/]")
    table = Table("round", "liquidations", "liquidated (USD)", "bad debt (USD)",
                  *(f"{name(t) or t} (USD)" for t in shocks), title=f"cascade at block {block}")
    for r in rounds:
        table.add_row(str(r.round), str(r.liquidations),
                      ", ".join(f"{v} {a:,.0f}" for v, a in sorted(r.liquidated_usd.items())),
                      ", ".join(f"{v} {a:,.0f}" for v, a in sorted(r.bad_debt_usd.items())),
                      *(f"{r.prices.get(t, float('nan')):,.2f}" for t in shocks))
    console.print(table)
    # the loss a path carries starts as what the shock takes from its source
    sources = {f"token:{t}": abs(change) for t, change in shocks.items()}
    sources.update({f"venue:{v}": 1.0 for v in fail})
    shown = Table("from", "to", "path", "transmission", "loss (USD)",
                  title="strongest contagion paths")
    for source, share in sources.items():
        if source not in graph.index_of:
            continue
        for p in strongest_paths(graph, source, k=paths,
                                 source_loss_usd=graph.node(source).value_usd * share):
            shown.add_row(graph.node(source).name, graph.node(p.target).name,
                          " → ".join(graph.node(n).name for n in p.nodes),
                          f"{p.transmission:.3f}", f"{p.loss_usd:,.0f}")
    console.print(shown)
    if write:
        marts = write_graph_marts(path, reg, snapshots=[block])
        console.print("wrote " + ", ".join(f"{n} ({t.num_rows} rows)"
                                           for n, t in marts.tables.items()))


def _check_snapshot(con: Any, block: int) -> None:
    """A --snapshot that the database does not hold is refused, naming the ones it does (the
    caller has found it has some)."""
    row = con.execute("select count(*), min(snapshot_block), max(snapshot_block), "
                      "count(*) filter (where snapshot_block = ?) from ref_snapshots",
                      [block]).fetchone()
    count, first, last, found = row
    if found:
        return
    raise _fail(f"--snapshot {block} is not a snapshot of this database; it has {count} "
                f"(first block {first}, last {last}; list them with `contagion sql \"select "
                "snapshot_block from ref_snapshots\"`, or add one with `contagion build "
                f"--snapshot {block}`)")


@app.command("decode")
def decode(logs: Path = typer.Argument(..., help="eth_getLogs JSON, ethereum-etl JSON lines, or "
                                       "raw_logs Parquet.", exists=True, dir_okay=False),
           out: Path = typer.Option(..., "--out", help="Folder for one Parquet file per table."),
           registry: str | None = typer.Option(None, "--registry", help="Registry file or bundled "
                                               "network: attributes venues, builds flows."),
           chain_id: int | None = typer.Option(None, "--chain-id", help="Chain of a JSON file "
                                               "(default: the registry's).")) -> None:
    """Decode a file of raw logs into the decoded-event tables (and quarantine), in an empty or
    new folder."""
    from contagion.lake import write_parquet
    from contagion.logfile import LogFileError, read_log_file
    from contagion.protocols.decode import decode_logs

    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} is a file: give a folder (new or empty)")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir())
        if held:
            raise _fail(f"--out {out} is not empty ({len(held)} entries, e.g. {held[0]}): "
                        "decode writes into a new or empty folder, so no earlier table is "
                        "left beside the new ones; remove them or give another folder")
    try:
        reg = load_registry(registry) if registry else None
        raw, times = read_log_file(logs, chain_id if chain_id is not None
                                   else reg.chain_id if reg else None)
    except (RegistryError, LogFileError) as exc:
        raise _fail(str(exc)) from None
    result = decode_logs(raw, blocks=times, registry=reg)
    written = {name: t for name, t in result.tables.items() if t.num_rows}
    written["quarantine"] = result.quarantine
    try:
        for name, table in written.items():
            write_parquet(table, str(out.absolute() / f"{name}.parquet"))
    except OSError as exc:  # pyarrow's errors are OSErrors too
        raise _fail(f"--out {out}: cannot write there ({exc})") from None
    console.print(f"{result.input_rows:,} logs in {logs}")
    summary = Table()
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    for name, table in written.items():
        summary.add_row(name, f"{table.num_rows:,}")
    for reason, count in result.ignored.items():
        summary.add_row(f"(ignored: {reason})", f"{count:,}")
    console.print(summary)
    console.print(f"wrote {len(written)} files to {out}")


def print_summary(summary: RunSummary) -> None:
    table = Table(title=f"scenario {summary.scenario} (seed {summary.seed})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [("accounts", f"{summary.accounts:,}"),
            ("blocks", f"{summary.blocks:,} (+{summary.setup_blocks} setup), "
                       f"{summary.first_block}–{summary.last_block}"),
            ("transactions", f"{summary.transactions:,} ({summary.setup_transactions:,} setup)"),
            ("reverted", f"{summary.reverted:,}"),
            ("seconds", f"{summary.seconds:,.1f}"),
            ("transactions per second", f"{summary.tx_per_second:,.1f}")]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    harm = Table(title="harm on chain (from events)")
    for col in ("venue", "liquidations", "bad-debt events", "bad debt (USD)"):
        harm.add_column(col, justify="right" if col != "venue" else "left")
    for venue, row in summary.venues.items():
        harm.add_row(venue, f"{row.liquidations:,}", f"{row.bad_debt_events:,}",
                     f"{row.bad_debt_usd:,.0f}")
    console.print(harm)


def print_truth_check(url: str, registry: Registry, db: Path) -> None:
    """Positions from events against the contracts at the last snapshot."""
    from contagion.chain.rpc import RpcClient
    from contagion.truth import truth_check
    from contagion.warehouse import connect_readonly

    with connect_readonly(db) as con:
        row = con.execute("select max(snapshot_block) from ref_snapshots").fetchone()
        if row is None or row[0] is None:
            return
        report = truth_check(RpcClient(url), con, registry, int(row[0]))
    console.print(("truth check ✓ " if report.ok else "truth check ✗ ") + report.summary())
    if not report.ok:
        raise typer.Exit(1)


def print_contagion(registry: Registry, db: Path) -> None:
    """Write the contagion marts and show the most important venues and the worst stresses."""
    from contagion.graph.marts import write_graph_marts

    with console.status("systemic risk, contagion paths, stress suite…"):
        write_graph_marts(db, registry)
    show_contagion(db)


def _rows(db: Path, query: str) -> list[dict[str, Any]]:
    from contagion.warehouse import connect_readonly

    with connect_readonly(db) as con:
        relation = con.sql(query)
        return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def show_contagion(db: Path) -> None:
    """The most important venues and the worst stresses at the latest snapshot."""
    latest = "(select max(snapshot_block) from fct_stress_results)"
    risk = Table("venue", "DebtRank of its failure", "nodes reached", "betweenness",
                 title="systemic importance (latest snapshot)")
    for row in _rows(db, f"select * from fct_systemic_risk where snapshot_block = {latest} "
                         "order by rank limit 5"):
        risk.add_row(row["name"], f"{row['debtrank']:.4f}", str(row["reached"]),
                     f"{row['betweenness']:.3f}")
    console.print(risk)
    worst = Table("scenario", "initial loss", "bad debt", "total loss", "amplification",
                  "failed venues", title="stress suite at the latest snapshot (worst first)")
    for r in _rows(db, f"select * from fct_stress_results where snapshot_block = {latest} "
                       "order by total_loss_usd desc limit 8"):
        worst.add_row(r["scenario"], f"{r['initial_loss_usd']:,.0f}",
                      f"{r['bad_debt_usd']:,.0f}", f"{r['total_loss_usd']:,.0f}",
                      "" if r["amplification"] is None else f"{r['amplification']:.2f}",
                      ", ".join(r["failed_venues"]))
    console.print(worst)


def _ratio(value: float | None) -> str:
    return "—" if value is None else "∞" if value == float("inf") else f"{value:.1f}×"


@app.command("warn")
def warn(registry: str | None = REGISTRY,
         db: Path | None = DATABASE,
         policy: str = typer.Option("default", help="Policy file, or a bundled policy's name."),
         data_dir: Path = DATA_DIR) -> None:
    """Early warning on a built database: the contagion marts, then anomaly scores per venue
    and window, the ecosystem score and level, and the policy's coordinated-freeze
    recommendations (docs/policy.md), written into the database."""
    from contagion.policy.model import PolicyError, load_policy

    reg = _registry(registry, data_dir)
    path = _database(db, data_dir)
    if not path.exists():
        raise _fail(f"no database at {path}: run `contagion build` first")
    try:
        rules = load_policy(policy)
        rules.check_against((t.symbol for t in reg.tokens), f"the {reg.network} registry")
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    _require_a_snapshot(path)  # before anything is written
    print_contagion(reg, path)
    print_early_warning(reg, path, rules)


def _require_a_snapshot(path: Path) -> None:
    """The marts are per snapshot: a database without one is refused before anything is
    written into it."""
    import duckdb

    from contagion.graph.load import latest_snapshot
    from contagion.warehouse import connect_readonly

    try:
        with connect_readonly(path) as con:
            latest_snapshot(con)
    except duckdb.Error as exc:
        raise _fail(f"{path} is not a built database ({exc}): run `contagion build`") from None
    except ValueError as exc:
        raise _fail(f"{path}: {exc}; nothing was written") from None


@app.command("evaluate")
def evaluate(scenarios: list[str] = typer.Argument(None, help="Bundled names or YAML files "
                                                   "(default: every bundled scenario)."),
             window: int = typer.Option(25, help="Blocks per window (one partition each)."),
             port: int = typer.Option(8645, help="First port for the fresh devnets."),
             output: Path = typer.Option(Path("evaluation.json"), help="Where the table is "
                                         "written (JSON)."),
             floor_margin: float = typer.Option(1.10, help="The static baseline's floor: "
                                                "this × the collateral ratio at the "
                                                "liquidation threshold."),
             policy: str = typer.Option("default", help="Policy file, or a bundled "
                                        "policy's name."),
             keep: bool = typer.Option(False, help="Keep each run's data folder.")) -> None:
    """Run each scenario on a fresh devnet, run the pipeline, and measure the early warning
    against a static collateral-ratio floor: first amber/red, first freeze, first bad debt,
    lead time and false alerts on calm windows."""
    from contagion.evaluate import evaluate_scenario, write_table
    from contagion.policy.model import PolicyError, load_policy

    try:
        rules = load_policy(policy)
    except PolicyError as exc:
        raise _fail(str(exc)) from None

    names = scenarios or sorted(p.stem for p in BUNDLED_SCENARIOS.glob("*.yaml"))
    results, failed = [], []
    for k, name in enumerate(names):
        workdir = Path(tempfile.mkdtemp(prefix=f"contagion-eval-{Path(name).stem}-"))
        try:
            console.print(f"[bold]{name}[/] — {workdir}")
            results.append(evaluate_scenario(name, workdir, port + k, window=window,
                                             floor_margin=floor_margin, policy=rules,
                                             progress=True))
        except (ScenarioError, NodeError) as exc:  # the others still run and are reported
            err.print(f"[bold red]error:[/] {name}: {exc}")
            failed.append(name)
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    table = Table("scenario", "detector", "first amber", "first red", "first freeze",
                  "first bad debt", "lead (blocks)", "lead (min)", "false alerts",
                  "lead ratio", "ceiling", title=f"early warning, windows of {window} blocks",
                  caption="∞: the floor did not alert before the bad debt · ceiling: the lead "
                  "ratio of an alert in the first window of the first shock, the most any "
                  "detector can show against this floor")

    def cell(value: object) -> str:
        return "—" if value is None else f"{value:,.0f}" if isinstance(value, float) \
            else str(value)

    for r in results:
        for label, d in (("ours", r.ours), ("floor", r.baseline)):
            table.add_row(r.scenario if label == "ours" else "", label, cell(d.first_amber),
                          cell(d.first_red), cell(d.first_freeze), cell(r.first_bad_debt_block),
                          cell(d.lead_blocks), cell(d.lead_minutes),
                          f"{d.false_alerts}/{d.calm_windows}",
                          _ratio(r.lead_ratio) if label == "ours" else "",
                          _ratio(r.ceiling_ratio) if label == "ours" else "")
    console.print(table)
    write_table(results, output)
    console.print(f"table: {output}")
    if failed:
        raise _fail(f"{len(failed)} scenario(s) could not run: {', '.join(failed)}")


def print_early_warning(registry: Registry, db: Path, policy: Policy | None = None) -> None:
    """Write the early-warning marts; show when the levels changed and what was recommended."""
    from contagion.risk.marts import write_risk_marts

    with console.status("anomaly scores, ecosystem score, freeze recommendations…"):
        write_risk_marts(db, registry, policy=policy)
    show_early_warning(registry, db)


def show_early_warning(registry: Registry, db: Path) -> None:
    """When the ecosystem level changed, and the first actions the policy recommended."""
    eco = _rows(db, "select * from fct_ecosystem_score order by snapshot_block")
    changes = [r for k, r in enumerate(eco) if k == 0 or r["level"] != eco[k - 1]["level"]]
    levels = Table("window ending at block", "level", "score", "driven by",
                   title="ecosystem level (changes only)")
    for r in changes[:12]:
        levels.add_row(str(r["snapshot_block"]), r["level"], f"{r['score']:.1f}",
                       r["driver"] or "")
    console.print(levels)
    recs = Table("block", "venue", "asset", "action", "simulated bad debt before → after",
                 title="coordinated-freeze recommendations (first 10 actions)")
    symbols = {t.address.lower(): t.symbol for t in registry.tokens}
    for r in _rows(db, "select * from fct_freeze_recommendations where action != 'watch' "
                       "order by snapshot_block, venue limit 10"):
        recs.add_row(str(r["snapshot_block"]), r["venue"],
                     symbols.get(r["asset"] or "", r["asset"] or "—"), r["action"],
                     f"{r['loss_before_usd']:,.0f} → {r['loss_after_usd']:,.0f}")
    console.print(recs)


@feed_app.command("new-key")
def feed_new_key(keystore: Path = typer.Argument(..., help="Keystore file to create."),
                 password_env: str = typer.Option(
                     "CONTAGION_FEED_KEYSTORE_PASSWORD", help="Read the password from this "
                     "environment variable instead of asking.")) -> None:
    """Create a signing key in an encrypted keystore file (never overwrites one)."""
    import os

    from contagion.feed.keys import SigningKeyError, create_keystore

    password = os.environ.get(password_env) or typer.prompt(
        "keystore password", hide_input=True, confirmation_prompt=True)
    try:
        address = create_keystore(keystore, password)
    except (SigningKeyError, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"signer {address}; keystore {keystore} (allowlist the address on the oracle)")


@feed_app.command("sign")
def feed_sign(registry: str | None = REGISTRY, db: Path | None = DATABASE,
              feed_dir: Path | None = FEED_DIR, rpc: str | None = RPC,
              keystore: Path | None = typer.Option(None, help="Encrypted keystore (default: "
                                                   "$CONTAGION_FEED_KEYSTORE, else "
                                                   "$CONTAGION_FEED_KEY)."),
              validity: int = typer.Option(3_600, help="Seconds a document stays valid."),
              max_age: int = typer.Option(3_600, help="Refuse data older than this (seconds "
                                          "of chain time behind the head)."),
              data_dir: Path = DATA_DIR) -> None:
    """Sign the latest snapshot's feed document into the feed folder — or refuse and say why
    (a blocking check failed, the data is stale, the chain reorganised)."""
    reg = _registry(registry, data_dir)
    path = sign_feed_document(reg, _database(db, data_dir), feed_dir or data_dir / "feed",
                              rpc or _node_url(data_dir), keystore, validity, max_age)
    console.print(f"signed: {path}")


def sign_feed_document(reg: Registry, db: Path, feed_dir: Path, url: str,
                       keystore: Path | None = None, validity: int = 3_600,
                       max_age: int = 3_600) -> Path:
    from contagion.chain.rpc import RpcClient, RpcError, RpcUnavailable
    from contagion.feed.keys import SigningKeyError, load_signer
    from contagion.feed.publisher import FeedRefused, FeedSettings, FeedStore, publish_feed

    try:
        signer = load_signer(keystore)
    except SigningKeyError as exc:
        raise _fail(str(exc)) from None
    if not db.exists():
        raise _fail(f"no database at {db}: run `contagion build` and `contagion warn` first")
    store = FeedStore(feed_dir)
    client = RpcClient(url)
    try:
        feed = publish_feed(db, reg, signer, store, client,
                            settings=FeedSettings(validity_seconds=validity,
                                                  max_data_age_seconds=max_age))
    except FeedRefused as exc:
        raise _fail("refusing to sign:\n  " + "\n  ".join(exc.reasons)) from None
    except (RpcError, RpcUnavailable) as exc:  # the head and the snapshot's hash come from it
        raise _fail(f"cannot sign without the chain at {url}: {exc}") from None
    finally:
        client.close()
    acted = [f"{a.action} {a.symbol or a.asset or ''} at {v.venue}".replace("  ", " ")
             for v in feed.venues for a in v.actions if a.action != "watch"]
    console.print(f"feed #{feed.nonce}: snapshot {feed.snapshot_block}, ecosystem "
                  f"{feed.ecosystem.level} ({feed.ecosystem.score:.1f}), signer "
                  f"{feed.signature.signer}, valid until {feed.valid_until}"
                  + (f"; actions: {', '.join(acted)}" if acted else ""))
    return feed_dir / f"feed-{feed.nonce:012d}.json"


@feed_app.command("publish")
def feed_publish(document: Path | None = typer.Argument(None, help="A signed document "
                                                        "(default: the newest in the feed "
                                                        "folder)."),
                 registry: str | None = REGISTRY, feed_dir: Path | None = FEED_DIR,
                 rpc: str | None = RPC,
                 keystore: Path | None = typer.Option(None, help="Encrypted keystore (default: "
                                                      "$CONTAGION_FEED_KEYSTORE, else "
                                                      "$CONTAGION_FEED_KEY)."),
                 data_dir: Path = DATA_DIR) -> None:
    """Push a signed document's actions to the RiskOracle on chain (docs/oracle.md), each as an
    update signed in the same domain; what the oracle already holds is skipped, what its
    guardrails reject is reported."""
    reg = _registry(registry, data_dir)
    relayed = publish_on_chain(reg, document, feed_dir or data_dir / "feed",
                               rpc or _node_url(data_dir), keystore)
    if any(not r.accepted for r in relayed):
        raise typer.Exit(1)


def publish_on_chain(reg: Registry, document: Path | None, feed_dir: Path, url: str,
                     keystore: Path | None = None) -> list[Any]:
    from contagion.chain.rpc import RpcClient
    from contagion.feed.document import SignedFeed, read_document
    from contagion.feed.keys import SigningKeyError, load_signer
    from contagion.feed.oracle import CapExceeded
    from contagion.feed.publisher import FeedStore
    from contagion.feed.relay import relay_feed

    try:
        signer = load_signer(keystore)
        feed = (SignedFeed.model_validate(read_document(document.read_bytes()), strict=True)
                if document else FeedStore(feed_dir).latest())
    except (SigningKeyError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if feed is None:
        raise _fail(f"nothing signed in {feed_dir}: run `contagion feed sign` first")
    client = RpcClient(url)
    try:
        relayed = relay_feed(client, reg, feed, signer)
    except (CapExceeded, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        client.close()
    symbols = {t.address.lower(): t.symbol for t in reg.tokens}
    venues = {v.main_contract.lower(): v.id for v in reg.venues}
    table = Table("venue", "asset", "action", "cut (bps)", "nonce", "result",
                  title=f"feed #{feed.nonce} (snapshot {feed.snapshot_block}) → RiskOracle "
                        f"{reg.risk_oracle}")
    for r in relayed:
        u = r.update
        table.add_row(venues.get(u.venue.lower(), u.venue), symbols.get(u.asset.lower(), u.asset),
                      u.action, str(u.margin_cut_bps), str(u.nonce),
                      f"[green]accepted[/] {r.tx_hash}" if r.accepted
                      else f"[red]rejected[/]: {r.reason}")
    console.print(table if relayed else "nothing to publish: the oracle already holds every "
                                        "action of this document")
    return relayed


@feed_app.command("serve")
def feed_serve(feed_dir: Path | None = FEED_DIR,
               host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
               port: int = typer.Option(8000, help="Port."),
               rpc: str | None = typer.Option(None, "--rpc", help="Tell /health the time from "
                                              "this chain's head (a devnet's clock is not the "
                                              "wall clock); default: the wall clock."),
               data_dir: Path = DATA_DIR) -> None:
    """Serve the signed documents over HTTP (latest, history, per venue, schema, health;
    OpenAPI at /openapi.json)."""
    import uvicorn

    from contagion.feed.publisher import FeedStore
    from contagion.feed.server import create_app

    store = FeedStore(feed_dir or data_dir / "feed")
    app_ = create_app(store, clock=_chain_clock(rpc)) if rpc else create_app(store)
    console.print(f"serving {store.root} on http://{host}:{port} (OpenAPI: /openapi.json)")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def _chain_clock(url: str) -> Any:
    from contagion.chain.rpc import RpcClient

    def now() -> int:
        client = RpcClient(url)
        try:
            return int(client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        finally:
            client.close()
    return now


@feed_app.command("verify")
def feed_verify(source: str = typer.Argument(..., help="A document file or an http(s) URL."),
                registry: str | None = typer.Option(None, "--registry", help="Pin the chain id "
                                                    "and oracle from this registry."),
                chain_id: int | None = typer.Option(None, help="The chain id you expect."),
                oracle: str | None = typer.Option(None, help="The RiskOracle you expect."),
                signer: list[str] = typer.Option([], "--signer", help="An allowed signer "
                                                 "(repeatable)."),
                rpc: str | None = typer.Option(None, "--rpc", help="Take the time from this "
                                               "chain's head (default: the wall clock)."),
                after_nonce: int | None = typer.Option(None, help="The last nonce you "
                                                       "accepted: replays are rejected."),
                proof: list[Path] = typer.Option([], "--proof", help="An inclusion proof "
                                                 "(`contagion prove`) to check against the "
                                                 "document's commitment (repeatable)."),
                data_dir: Path = DATA_DIR) -> None:
    """Verify a signed feed document: schema, content hash, EIP-712 signature in the domain you
    pin, allowed signer, expiry and nonce. Exit status 1 when any check fails."""
    import time

    import requests

    from contagion.feed.document import verify_feed

    if registry is not None:
        reg = _registry(registry, data_dir)
        chain_id = chain_id or reg.chain_id
        oracle = oracle or reg.risk_oracle
    if chain_id is None or oracle is None:
        raise _fail("pin the domain: --registry, or --chain-id and --oracle (never taken from "
                    "the document itself)")
    if not signer:
        raise _fail("name the allowed signer(s) with --signer")
    from eth_utils import is_address
    if bad := [a for a in [oracle, *signer] if not is_address(a)]:
        raise _fail(f"not an address (0x + 40 hex digits, checksummed if in mixed case): "
                    f"{', '.join(bad)}")
    try:
        if source.startswith(("http://", "https://")):
            response = requests.get(source, timeout=30)
            response.raise_for_status()
            document = response.content
        else:
            document = Path(source).read_bytes()  # bytes: the verifier says if not UTF-8
    except (OSError, requests.RequestException) as exc:
        raise _fail(f"cannot read {source}: {exc}") from None
    try:
        proofs = [p for path in proof for p in _proofs(json.loads(path.read_bytes()))]
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the proofs: {exc}") from None
    now = _chain_clock(rpc)() if rpc else int(time.time())
    feed, findings = verify_feed(document, chain_id=chain_id, oracle=oracle, signers=signer,
                                 now=now, after_nonce=after_nonce, proofs=proofs)
    table = Table("check", "result", "detail", title=f"feed {source}")
    for finding in findings:
        table.add_row(finding.name, "[green]ok[/]" if finding.passed else "[red]FAILED[/]",
                      finding.detail)
    console.print(table)
    if not all(f.passed for f in findings):
        raise _fail("the document does not verify; do not act on it")
    assert feed is not None
    console.print(f"verified: feed #{feed.nonce}, snapshot {feed.snapshot_block}, ecosystem "
                  f"{feed.ecosystem.level}")


def _proofs(data: Any) -> list[Any]:
    """A proof file holds one proof or a list of them (`contagion prove` writes a list)."""
    if not isinstance(data, dict | list):
        raise ValueError("a proof file holds a proof (a JSON object) or a list of them")
    return [data] if isinstance(data, dict) else data


@app.command("report")
def report(registry: str | None = REGISTRY, db: Path | None = DATABASE,
           out_dir: Path | None = typer.Option(None, "--out-dir", help="Where reports go "
                                               "(default: the data dir)."),
           rpc: str | None = typer.Option(None, "--rpc", help="Measure the lag to this chain's "
                                          "head (default: the data dir's devnet node, if up)."),
           data_dir: Path = DATA_DIR) -> None:
    """Write the ecosystem health report: one self-contained HTML file (charts inline) under
    reports/, the newest also as report.html. The daily Dagster schedule writes the same."""
    from contagion.chain.logs import ChainReadError, head_of
    from contagion.chain.rpc import RpcClient, RpcError, RpcUnavailable
    from contagion.lake import Lake
    from contagion.report.build import write_health_report

    reg = _registry(registry, data_dir)
    head = None
    url = rpc or (_node_url(data_dir) if NodeInfo.load(data_dir) else None)
    if url:
        client = RpcClient(url)
        try:
            head = head_of(client)
        except (RpcError, RpcUnavailable, ChainReadError) as exc:
            err.print(f"the chain head is unknown ({exc}); the report says so")
        finally:
            client.close()
    lake = Lake(str(data_dir / "lake")) if (data_dir / "lake").is_dir() else None
    try:
        written = write_health_report(_database(db, data_dir), reg, out_dir or data_dir,
                                      chain_head=head, lake=lake)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    missing = [f"{s.title}: {s.reason}" for s in written.sections if not s.available]
    console.print(f"report: {written.path} ({written.size_bytes:,} bytes; snapshot "
                  f"{written.snapshot_block}, ecosystem {written.level})")
    for line in missing:
        console.print(f"  not available — {line}")


@app.command("prove")
def prove(account: str = typer.Argument(..., help="The account (0x address)."),
          venue: str | None = typer.Option(None, help="Only this venue (default: every venue "
                                           "the account is in)."),
          snapshot: int | None = typer.Option(None, help="Snapshot block (default: latest)."),
          output: Path | None = typer.Option(None, "--output", "-o", help="Write the proofs "
                                             "here (default: print them)."),
          db: Path | None = DATABASE, data_dir: Path = DATA_DIR) -> None:
    """Inclusion proofs of an account's positions in each venue's Merkle sum tree: anyone can
    check them against the root and totals the signed feed carries (`contagion feed verify
    DOC --proof FILE`)."""
    from contagion.feed.commitment import prove_account

    path = _database(db, data_dir)
    try:
        proofs = prove_account(path, account, venue=venue, snapshot_block=snapshot)
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    text = json.dumps(proofs, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    for p in proofs:
        console.print(f"{p['venue']}: collateral {p['leaf']['collateral']} debt "
                      f"{p['leaf']['debt']} {p['unit']} at block {p['snapshot_block']}, under "
                      f"root {p['root']}")
    console.print(f"proofs: {output}")


@feed_app.command("schema")
def feed_schema() -> None:
    """Print the JSON Schema of a signed document (also docs/feed.schema.json)."""
    from contagion.feed.document import feed_json_schema

    sys.stdout.write(json.dumps(feed_json_schema(), indent=2) + "\n")


# The bundled crisis played up to block 774: two windows into the depeg, before the ETH crash
# and before any bad debt, so the demo's pipeline runs while the crisis unfolds, as it would live.
DEMO_BLOCKS = {"lst-depeg-cascade": 742}
DEMO_MARKER = ".contagion-demo"


@app.command("demo")
def demo(scenario: str = typer.Option("lst-depeg-cascade", help="Scenario to run."),
         blocks: int | None = typer.Option(None, help="Play only the scenario's first N blocks, "
                                           "as if the pipeline ran while it unfolds (default: "
                                           "742 for lst-depeg-cascade, two windows into the "
                                           "depeg; 0 plays it all)."),
         port: int = typer.Option(8545, help="Port on 127.0.0.1."),
         keep: bool = typer.Option(False, help="Leave the node running afterwards."),
         data_dir: Path = typer.Option(Path("data/demo"), "--data-dir",
                                       help="Where everything is written (a previous demo's "
                                            "folder is replaced).")) -> None:
    """The main job end to end on the embedded devnet: node up, deploy, crisis scenario, then
    the whole Dagster pipeline (index, database, marts, commitments, signed feed, report, the
    oracle updates on chain) and a summary of what was detected, when, along which paths, what
    was frozen, and where each output lies."""
    import os
    import time

    from contagion.devnet.deploy import deploy_ecosystem
    from contagion.devnet.risk_oracle import devnet_oracle_signer
    from contagion.devnet.runner import run_scenario
    from contagion.feed.keys import KEY_ENV, KEYSTORE_ENV
    from dagster_project.pipeline import run_pipeline

    started = time.monotonic()
    try:
        spec, path = load_scenario(scenario)
        spec = _played(spec, DEMO_BLOCKS.get(spec.name, 0) if blocks is None else blocks)
        _fresh_demo_dir(data_dir)
        info = start_node(data_dir, port)
    except (ScenarioError, NodeError) as exc:
        raise _fail(str(exc)) from None
    try:
        with console.status("deploying the ecosystem…"):
            deploy_ecosystem(info.url, data_dir)
        result = run_scenario(spec, path, info.url, data_dir, progress=True)
        print_summary(result.summary)
        registry = load_registry(data_dir / "registry.yaml")
        # the devnet's oracle allowlists anvil's public account #9: the demo signs with it,
        # never with a key (or keystore) the environment holds for real feeds
        os.environ[KEY_ENV] = "0x" + bytes(devnet_oracle_signer().key).hex()
        os.environ.pop(KEYSTORE_ENV, None)
        before = _head(info.url)
        with console.status("the Dagster pipeline: index → database → marts → commitments → "
                            "signed feed → report → oracle updates…"):
            run = run_pipeline(data_dir, info.url)
        _show_checks(run)
        db = data_dir / "contagion.duckdb"
        show_contagion(db)
        show_early_warning(registry, db)
        _show_outcome(registry, data_dir, run, result.summary, info.url, before,
                      time.monotonic() - started)
    finally:
        if not keep:
            stop_node(data_dir)


def _show_checks(run: Any) -> None:
    """The Dagster runs' asset checks: blocking ones, warnings, and the truth check's reach."""
    import dagster as dg

    checks = run.checks()
    blocking = [c for c in checks if c.severity == dg.AssetCheckSeverity.ERROR]
    failed = [c.check_name for c in blocking if not c.passed]
    warned = [c.check_name for c in checks
              if c.severity != dg.AssetCheckSeverity.ERROR and not c.passed]
    truth = next((c for c in checks if c.check_name == "positions_match_chain"), None)
    compared = truth.metadata.get("values_compared") if truth else None
    console.print(
        f"Dagster: {run.windows} block-range windows indexed in one run, then the build; "
        f"{len(blocking)} blocking checks "
        + (f"[red]failed: {', '.join(failed)}[/]" if failed else "passed")
        + (f" (positions equal the contracts' own state: {compared.value} values)"
           if compared is not None and truth and truth.passed else "")
        + (f"; warnings: {', '.join(warned)} (docs/schema.md)" if warned else ""))


def _played(spec: Any, blocks: int) -> Any:
    """The scenario cut to its first `blocks` blocks (0: all of it); shocks that would start
    later are left out, and the summary says so."""
    if not blocks or blocks >= spec.blocks:
        return spec
    shocks = [s for s in spec.shocks if s.start_block < blocks]
    console.print(f"playing blocks 0–{blocks - 1} of {spec.name} ({spec.blocks} blocks); "
                  f"{len(spec.shocks) - len(shocks)} later shock(s) not reached")
    return spec.model_validate({**spec.model_dump(), "blocks": blocks,
                                "shocks": [s.model_dump() for s in shocks]})


def _fresh_demo_dir(data_dir: Path) -> None:
    """Replace a previous demo's folder; never a folder the demo did not make."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / DEMO_MARKER).exists():
            raise NodeError(f"{data_dir} exists and is not a demo folder; pass another "
                            "--data-dir")
        stop_node(data_dir)
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text("made by `contagion demo`; replaced by the next one\n")


def _head(url: str) -> int:
    from contagion.chain.rpc import RpcClient

    client = RpcClient(url)
    try:
        return int(client.call("eth_blockNumber"), 16)
    finally:
        client.close()


def _show_outcome(registry: Registry, data_dir: Path, run: Any, summary: RunSummary, url: str,
                  before: int, seconds: float) -> None:
    """What was detected, when, along which paths, what went on chain and what the pool now
    does, the first bad debt, and where each output lies."""
    from contagion.feed.publisher import FeedStore

    db = data_dir / "contagion.duckdb"
    eco = _rows(db, "select * from fct_ecosystem_score order by snapshot_block")
    first = {lvl: next((r for r in eco if r["level"] in lvl), None)
             for lvl in (("amber", "red"), ("red",))}
    feed = FeedStore(data_dir / "feed").latest()
    updates = run.metadata("oracle_updates").get("updates") or []
    table = Table("", "", title="summary", show_header=False)
    for name, row in (("first amber", first[("amber", "red")]), ("first red", first[("red",)])):
        table.add_row(name, f"block {row['snapshot_block']}, driven by {row['driver']}"
                      if row else "never")
    symbols = {t.address.lower(): t.symbol for t in registry.tokens}
    names = {**{f"token:{a}": s for a, s in symbols.items()},
             **{f"venue:{v.id}": v.id for v in registry.venues}}
    # along which paths: from the asset acted on, else from the venue that drove the alert
    source = (symbols.get(updates[0]["asset"].lower()) if updates else None) or \
        (first[("amber", "red")] or {}).get("driver")
    paths = _rows(db, "select path, transmission from fct_contagion_paths where source_name = "
                      f"'{source}' and rank = 1 and snapshot_block = (select max(snapshot_block) "
                      "from fct_contagion_paths) order by transmission desc, target_name "
                      "limit 4") if source else []
    table.add_row("strongest paths", "\n".join(
        f"{' → '.join(names.get(n, n) for n in p['path'])} ({p['transmission']:.0%})"
        for p in paths) or "none")
    venues = {v.main_contract.lower(): v.id for v in registry.venues}
    table.add_row("published on chain", "\n".join(
        f"{u['action']} {symbols.get(u['asset'].lower(), u['asset'])} at "
        f"{venues.get(u['venue'].lower(), u['venue'])}"
        + (f" (−{u['margin_cut_bps']} bps)" if u["action"] == "raise_margin" else "")
        + ("" if u["tx_hash"] else f": rejected, {u['rejected']}") for u in updates)
        or "nothing (no action at the latest snapshot)")
    table.add_row("enforced by the pool", _enforcement(registry, db, url, before, updates))
    bad = [h.first_bad_debt_block for h in summary.venues.values() if h.first_bad_debt_block]
    table.add_row("first bad debt", f"block {min(bad)}" if bad else
                  f"none up to block {summary.last_block}")
    if feed is not None:
        table.add_row("signed feed", f"#{feed.nonce}, snapshot {feed.snapshot_block}, "
                                     f"{feed.ecosystem.level}, signer {feed.signature.signer}")
    report = data_dir / "report.html"
    for name, where in (("database", db), ("report", report),
                        ("feed", data_dir / "feed"), ("lake", data_dir / "lake"),
                        ("Dagster runs", data_dir / "dagster")):
        table.add_row(name, str(where))
    table.add_row("took", f"{seconds:.0f} s")
    console.print(table)
    console.print(f"look around: `make ui` (Dagster), `contagion sql --data-dir {data_dir} "
                  "'select …'`, `contagion feed serve --data-dir "
                  f"{data_dir} --rpc {url}` (with --keep)")


def _enforcement(registry: Registry, db: Path, url: str, before: int,
                 updates: list[dict[str, Any]]) -> str:
    """The devnet Aave pool's own view of the markets the oracle updated, before and after:
    a stETH borrower's LTV, threshold and health factor, or a new supply that now reverts."""
    from contagion.chain.rpc import RpcClient, RpcError
    from contagion.devnet.driver import DevnetDriver

    accepted = [u for u in updates if u["tx_hash"]]
    aave = registry.venue("aave_v3").main_contract
    at_aave = [u for u in accepted if u["venue"].lower() == aave.lower()]
    if not at_aave:
        return "no update at the Aave pool"
    client = RpcClient(url)
    try:
        pool = DevnetDriver(client).at("AavePool", aave)
        lines = []
        for u in at_aave:
            holder = _largest_holder(db, u["asset"])
            if holder is None:
                continue
            if u["action"] == "raise_margin":
                old = pool.call("getUserAccountData", holder, block=before)
                new = pool.call("getUserAccountData", holder)
                lines.append(f"{holder[:10]}…: LTV {old[4]}→{new[4]} bps, threshold "
                             f"{old[3]}→{new[3]} bps, health {old[5] / 1e18:.3f}→"
                             f"{new[5] / 1e18:.3f}")
            else:
                call = {"from": holder, "to": aave,
                        "data": pool.data("supply", u["asset"], 1, holder, 0)}
                try:
                    client.call("eth_call", [call, "latest"])
                    lines.append("a new supply still goes through")
                except RpcError as exc:
                    lines.append(f"a new supply of it reverts: {exc.message}")
        return "\n".join(lines) or "no holder to show"
    finally:
        client.close()


def _largest_holder(db: Path, asset: str) -> str | None:
    """The Aave account with the most of this collateral at the latest snapshot."""
    rows = _rows(db, "select account from fct_positions where venue = 'aave_v3' and side = "
                     f"'collateral' and token = '{asset.lower()}' and snapshot_block = "
                     "(select max(snapshot_block) from fct_positions) "
                     "order by amount_usd desc nulls last limit 1")
    return str(rows[0]["account"]) if rows else None


def _one_line_summaries(root: typer.Typer) -> None:
    """Each command's first docstring paragraph as its line in the command lists: in rich mode
    a list keeps the docstring's line breaks, which land mid-column."""
    for group in (root, *(g.typer_instance for g in root.registered_groups)):
        for command in [] if group is None else group.registered_commands:
            if command.short_help is None and command.callback is not None:
                doc = inspect.getdoc(command.callback) or ""
                command.short_help = " ".join(doc.split("\n\n")[0].split())


_one_line_summaries(app)

if __name__ == "__main__":
    app()
