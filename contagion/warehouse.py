"""The analysts' database: DuckDB views over the Parquet lake, and the SQL models under `sql/`.

`build_database(db_path, lake_root, registry)` writes `contagion.duckdb`:

- `src_<table>`: one view per lake table (every file of every partition, read where it lies),
  or an empty table with the table's schema while the lake holds no file of it;
- `ref_*`: reference tables from the registry and the pipeline's constants (tokens, venues,
  markets with their liquidation thresholds, risk parameters verbatim, feeds, claims, flow
  signs, snapshots);
- the models of `sql/staging`, `sql/intermediate` and `sql/marts`, one per file, run in
  dependency order. A model's header says its grain and, optionally, `materialized: view`
  (staging models are views by default, the others tables). The models may use the exact
  integer functions of `contagion.exact` (`mul_div_down`, …), `black_scholes_price`
  (`contagion.risk.greeks`), Aave's index between updates (`aave_index_at`,
  `contagion.protocols.aave_v3`) and a Comet index brought forward from a state read and a
  principal's worth at it (`comet_index_at`, `comet_present_value`,
  `contagion.protocols.compound_v3`), registered
  for the build, and the macros of `define_macros` (`log_ordinal`, `block_end_ordinal`,
  `ordinal_log_index`, `running_sums_at_snapshots`), stored in the database.

A snapshot is a block number: by default the last block of every indexed partition, plus any
block asked for. A lake with no complete partition of the registry's chain, a snapshot outside
the indexed blocks, or one inside them whose header the lake lacks (its time is needed), is
refused before anything is written. The database is built under a
temporary name and renamed into place, so a crash or a refusal leaves the previous one intact;
only the pipeline writes it, analysts open it read-only (`connect_readonly`, `contagion sql`).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs

from contagion import exact
from contagion.indexing import CANONICAL_TABLES, DECODED_TABLES, QUARANTINE
from contagion.ingest import BLOCKS, RAW_LOGS, indexed_partitions
from contagion.lake import BLOCKS_SCHEMA, QUARANTINE_SCHEMA, RAW_LOGS_SCHEMA, Lake, PartitionFile
from contagion.protocols import aave_v3, compound_v3
from contagion.protocols.canonical import CANONICAL_SCHEMAS, FLOW_SIGNS, USD, USD_DECIMALS
from contagion.protocols.decode import CATALOG
from contagion.registry import Registry
from contagion.risk import greeks
from contagion.states import STATE_SCHEMAS

__all__ = [
    "LAYERS",
    "SQL_DIR",
    "Check",
    "CheckResult",
    "Model",
    "build_database",
    "connect_readonly",
    "default_snapshots",
    "define_macros",
    "load_checks",
    "load_models",
    "replace_table",
    "run_checks",
]

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
LAYERS = ("staging", "intermediate", "marts")
_HEADER = re.compile(r"^--\s*(grain|materialized|asset|severity|description):\s*(.+?)\s*$",
                     re.MULTILINE)
DEFAULT_MAX_PRICE_AGE_SECONDS = 3_600

# Registry market parameters that hold a liquidation threshold, and their scale.
_THRESHOLDS = {"liquidation_threshold_bps": 10**4, "liquidate_collateral_factor": 10**18,
               "lltv": 10**18}


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    sql: str
    grain: str
    materialized: str  # view | table
    depends: tuple[str, ...]  # other models (and src_/ref_ relations) it reads


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every model under sql_dir's layers, in an order where each comes after what it reads."""
    found: dict[str, tuple[str, str, Path]] = {}
    for layer in LAYERS:
        for path in sorted((sql_dir / layer).glob("*.sql")):
            if path.stem in found:
                raise ValueError(f"two models are called {path.stem}: {found[path.stem][2]} "
                                 f"and {path}")
            found[path.stem] = (layer, path.read_text(), path)
    models = []
    for name, (layer, sql, path) in found.items():
        header = dict(_HEADER.findall(sql.split("\n\n", 1)[0]))
        if "grain" not in header:
            raise ValueError(f"{path}: the header must say the model's grain (-- grain: …)")
        depends = tuple(other for other in found if other != name
                        and re.search(rf"\b{re.escape(other)}\b", _strip_comments(sql)))
        models.append(Model(name, layer, sql, header["grain"],
                            header.get("materialized",
                                       "view" if layer == "staging" else "table"), depends))
    return _in_dependency_order(models)


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _in_dependency_order(models: list[Model]) -> list[Model]:
    by_name = {m.name: m for m in models}
    ordered: list[Model] = []
    state: dict[str, str] = {}

    def visit(model: Model, trail: tuple[str, ...]) -> None:
        if state.get(model.name) == "done":
            return
        if state.get(model.name) == "visiting":
            raise ValueError(f"models depend on each other in a cycle: "
                             f"{' -> '.join((*trail, model.name))}")
        state[model.name] = "visiting"
        for dep in model.depends:
            visit(by_name[dep], (*trail, model.name))
        state[model.name] = "done"
        ordered.append(model)

    for model in sorted(models, key=lambda m: (LAYERS.index(m.layer), m.name)):
        visit(model, ())
    return ordered


@dataclass(frozen=True)
class Check:
    """A query in sql/checks that returns the rows breaking a rule (none: the rule holds)."""

    name: str
    asset: str  # the model it guards
    severity: str  # error (blocking) | warn
    description: str
    sql: str


@dataclass(frozen=True)
class CheckResult:
    check: Check
    failing_rows: int
    sample: list[dict[str, object]]

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0


def load_checks(sql_dir: Path = SQL_DIR) -> list[Check]:
    checks = []
    for path in sorted((sql_dir / "checks").glob("*.sql")):
        sql = path.read_text()
        header = dict(_HEADER.findall(sql))
        missing = {"asset", "severity", "description"} - set(header)
        if missing or header["severity"] not in ("error", "warn"):
            raise ValueError(f"{path}: the header must give asset, severity (error|warn) and "
                             f"description; missing {sorted(missing)}")
        checks.append(Check(path.stem, header["asset"], header["severity"],
                            header["description"], sql))
    return checks


def run_checks(con: duckdb.DuckDBPyConnection, checks: Sequence[Check] | None = None, *,
               max_price_age_seconds: int = DEFAULT_MAX_PRICE_AGE_SECONDS,
               sample: int = 5) -> list[CheckResult]:
    """Run the checks on an open database (read-only is enough)."""
    con.execute(f"set variable max_price_age_seconds = {int(max_price_age_seconds)}")
    results = []
    for check in load_checks() if checks is None else checks:
        relation = con.sql(check.sql)
        names = relation.columns
        rows = relation.fetchall()
        results.append(CheckResult(check, len(rows), [
            dict(zip(names, r, strict=True)) for r in rows[:sample]]))
    return results


# ---------------------------------------------------------------- the lake as sources

def lake_schemas() -> dict[str, pa.Schema]:
    """Every table the indexer writes, with its schema."""
    return {RAW_LOGS: RAW_LOGS_SCHEMA, BLOCKS: BLOCKS_SCHEMA, QUARANTINE: QUARANTINE_SCHEMA,
            **{t: CATALOG.layout(t).schema for t in DECODED_TABLES},
            **{t: CANONICAL_SCHEMAS[t] for t in CANONICAL_TABLES},
            **STATE_SCHEMAS}


def _local_root(lake: Lake) -> str:
    root = lake.root
    if root.startswith("file://"):
        root = root[len("file://"):]
    if "://" in root:
        raise ValueError(f"the database reads the lake where it lies; {lake.root} is not a "
                         "local folder (object stores need DuckDB's httpfs, not wired yet)")
    return str(os.path.abspath(root))


def replace_table(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Write an Arrow table into the database as table `name`, replacing any of that name."""
    con.register("_arrow", table)
    try:
        con.execute(f"create or replace table {name} as select * from _arrow")
    finally:
        con.unregister("_arrow")


def _register_sources(con: duckdb.DuckDBPyConnection, lake: Lake, chain_id: int) -> None:
    root = _local_root(lake)
    for table, schema in lake_schemas().items():
        if lake.partitions(table, chain_id):
            pattern = f"{root}/{table}/chain_id={chain_id}/*.parquet".replace("'", "''")
            con.execute(f"create or replace view src_{table} as select * from read_parquet("
                        f"'{pattern}', hive_partitioning = false)")
        else:  # no file yet: the same columns, no rows
            replace_table(con, f"src_{table}", schema.empty_table())


# ---------------------------------------------------------------- reference tables

def default_snapshots(lake: Lake, chain_id: int) -> list[int]:
    """The last block of every indexed partition."""
    return [part.stop - 1 for part in lake.partitions(BLOCKS, chain_id)]


def _reference_tables(registry: Registry, snapshots: Sequence[int]) -> dict[str, pa.Table]:
    chain = registry.chain_id
    by_symbol = {t.symbol: t for t in registry.tokens}

    def address(symbol: str | None) -> str | None:
        return by_symbol[symbol].address.lower() if symbol in by_symbol else None

    tokens = [{"chain_id": chain, "token": t.address.lower(), "symbol": t.symbol,
               "decimals": t.decimals, "token_kind": t.kind, "issued_by": t.issued_by,
               "underlying": address(t.underlying)} for t in registry.tokens]
    tokens.append({"chain_id": chain, "token": USD, "symbol": "USD", "decimals": USD_DECIMALS,
                   "token_kind": "unit", "issued_by": None, "underlying": None})
    venues = [{"chain_id": chain, "venue": v.id, "protocol": v.protocol, "venue_kind": v.kind,
               "name": v.name, "main_contract": v.main_contract.lower(),
               "risk_oracle": registry.risk_oracle.lower()
               if v.obeys_risk_oracle and registry.risk_oracle else None}
              for v in registry.venues]
    contracts = [{"chain_id": chain, "venue": v.id, "role": role, "contract": a.lower()}
                 for v in registry.venues for role, a in v.contracts.items()]
    # a venue also holds what the contracts of the tokens it issues hold (aTokens hold the
    # underlying, the LST contract the staked asset, a pair its reserves)
    contracts += [{"chain_id": chain, "venue": t.issued_by, "role": f"issues {t.symbol}",
                   "contract": t.address.lower()} for t in registry.tokens
                  if t.issued_by and t.kind not in ("debt_token",)]
    markets = []
    for v in registry.venues:
        for m in v.markets:
            threshold = next((float(v_) / scale for key, scale in _THRESHOLDS.items()
                              if isinstance(v_ := m.params.get(key), int | float)), None)
            for symbol in m.collateral:
                collateral = address(symbol)
                # the key the flows use for this market: the reserve (Aave), the collateral
                # asset (Comet), the market id (Morpho), else the registry id
                key = {"aave_v3": collateral, "compound_v3": collateral,
                       "morpho_blue": m.id.lower()}.get(v.protocol, m.id)
                markets.append({"chain_id": chain, "venue": v.id, "market_id": m.id,
                                "market": key, "collateral_token": collateral,
                                "loan_token": address(m.loan),
                                "liquidation_threshold": threshold})
    claims = [{"chain_id": chain, "token": address(c.token), "issuer": c.issuer,
               "claim_kind": c.kind} for c in registry.claims]
    feeds = [{"chain_id": chain, "feed_id": f.id, "feed": f.address.lower(),
              "decimals": f.decimals, "feed_kind": f.kind, "feed_protocol": f.protocol,
              "base_token": address(f.base),
              "quote": f.quote, "quote_token": registry.quote_address(f)}
             for f in registry.feeds]
    # risk parameters verbatim (exact integers as text); market_id null: the venue's own
    params = [{"chain_id": chain, "venue": v.id, "market_id": m_id, "param": key,
               "value": str(value).lower() if isinstance(value, bool) else str(value)}
              for v in registry.venues
              for m_id, values in [(None, v.risk), *((m.id, m.params) for m in v.markets)]
              for key, value in values.items()]
    signs = [{"action": a, "side": s, "sign": sign} for (a, s), sign in FLOW_SIGNS.items()]
    snaps = [{"chain_id": chain, "snapshot_block": b} for b in sorted(set(snapshots))]
    schemas = {
        "ref_tokens": {"chain_id": pa.uint64(), "token": pa.string(), "symbol": pa.string(),
                       "decimals": pa.int32(), "token_kind": pa.string(),
                       "issued_by": pa.string(), "underlying": pa.string()},
        "ref_venues": {"chain_id": pa.uint64(), "venue": pa.string(), "protocol": pa.string(),
                       "venue_kind": pa.string(), "name": pa.string(),
                       "main_contract": pa.string(), "risk_oracle": pa.string()},
        "ref_venue_contracts": {"chain_id": pa.uint64(), "venue": pa.string(),
                                "role": pa.string(), "contract": pa.string()},
        "ref_markets": {"chain_id": pa.uint64(), "venue": pa.string(), "market_id": pa.string(),
                        "market": pa.string(), "collateral_token": pa.string(),
                        "loan_token": pa.string(), "liquidation_threshold": pa.float64()},
        "ref_claims": {"chain_id": pa.uint64(), "token": pa.string(), "issuer": pa.string(),
                       "claim_kind": pa.string()},
        "ref_feeds": {"chain_id": pa.uint64(), "feed_id": pa.string(), "feed": pa.string(),
                      "decimals": pa.int32(), "feed_kind": pa.string(),
                      "feed_protocol": pa.string(), "base_token": pa.string(),
                      "quote": pa.string(), "quote_token": pa.string()},
        "ref_risk_params": {"chain_id": pa.uint64(), "venue": pa.string(),
                            "market_id": pa.string(), "param": pa.string(),
                            "value": pa.string()},
        "ref_flow_signs": {"action": pa.string(), "side": pa.string(), "sign": pa.int8()},
        "ref_snapshots": {"chain_id": pa.uint64(), "snapshot_block": pa.uint64()},
    }
    rows = {"ref_tokens": tokens, "ref_venues": venues, "ref_venue_contracts": contracts,
            "ref_markets": markets, "ref_claims": claims, "ref_feeds": feeds,
            "ref_risk_params": params, "ref_flow_signs": signs,
            "ref_snapshots": snaps}
    return {name: pa.Table.from_pylist(rows[name], schema=pa.schema(schemas[name]))
            for name in schemas}


# ---------------------------------------------------------------- building

def _lake_chains(lake: Lake) -> list[int]:
    """The chains the lake holds blocks of (its `blocks/chain_id=<id>` folders)."""
    selector = pafs.FileSelector(f"{lake.root}/{BLOCKS}", allow_not_found=True)
    names = [i.base_name for i in lake.fs.get_file_info(selector)
             if i.type == pafs.FileType.Directory]
    return sorted(int(n.removeprefix("chain_id=")) for n in names
                  if n.startswith("chain_id=") and n.removeprefix("chain_id=").isdigit())


def _check_inputs(lake: Lake, registry: Registry, snapshots: Sequence[int]) -> None:
    """Refuse a lake with no complete partition (`indexed_partitions`) of the registry's chain,
    and a snapshot at a block the lake does not cover: the build would write a database of
    nothing, or state at a block whose events were never indexed, and call it good. Blocks
    before the first partition count as covered when it starts at the registry's deployment
    block (nothing happened there yet)."""
    chain = registry.chain_id
    parts = indexed_partitions(lake, chain)
    if not parts:
        others = [c for c in _lake_chains(lake) if c != chain]
        held = (f"it holds chain {', '.join(map(str, others))} only" if others
                else "it holds no indexed block")
        raise ValueError(f"the lake at {lake.root} has no complete partition of chain {chain} "
                         f"(the {registry.network} registry's): {held}. Index it first "
                         "(`contagion index`), or check --lake and --registry; nothing was "
                         "built")
    ranges: list[tuple[int, int]] = []  # the covered blocks, [start, stop), merged
    for p in parts:
        if ranges and p.start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], p.stop))
        else:
            ranges.append((p.start, p.stop))
    starts = [a for a, _ in ranges]
    before_ok = ranges[0][0] <= registry.deployed_at_block

    def covered(block: int) -> bool:
        k = bisect.bisect_right(starts, block) - 1
        return (k < 0 and before_ok) or (k >= 0 and block < ranges[k][1])

    outside = sorted({b for b in snapshots if not covered(b)})
    if outside:
        indexed = ", ".join(f"{a}–{b - 1}" for a, b in ranges)
        raise ValueError(f"snapshot {', '.join(map(str, outside))} is outside the indexed "
                         f"blocks of chain {chain} ({indexed}): index those blocks first, or "
                         "choose a block in range; nothing was built")
    headless = _snapshots_without_header(lake, parts, snapshots)
    if headless:
        named = "; ".join(f"{b} (nearest with one: {' or '.join(map(str, near))})"
                          for b, near in sorted(headless.items()))
        raise ValueError(f"the lake holds no header of snapshot {named}: no registered "
                         "contract logged in that block and no partition starts or ends there, "
                         "so its time is unknown, and interest, price ages and option marks "
                         "cannot be valued at it. Choose a block with a header; nothing was "
                         "built")


def _snapshots_without_header(lake: Lake, parts: Sequence[PartitionFile],
                              snapshots: Iterable[int]) -> dict[int, list[int]]:
    """The snapshots inside an indexed partition whose header its `blocks` file lacks, each
    with the nearest blocks of that partition that have one. The indexer keeps the headers of
    the blocks that logged and of both ends, so only blocks asked for can lack one."""
    starts = [p.start for p in parts]
    inside: dict[PartitionFile, set[int]] = {}
    for block in set(snapshots):
        k = bisect.bisect_right(starts, block) - 1
        if k >= 0 and parts[k].start < block < parts[k].stop - 1:
            inside.setdefault(parts[k], set()).add(block)
    headless: dict[int, list[int]] = {}
    for part, blocks in inside.items():
        held = sorted(set(lake.read(BLOCKS, part, ["block_number"])
                          .column("block_number").to_pylist()))
        for block in blocks:
            i = bisect.bisect_left(held, block)
            if i == len(held) or held[i] != block:
                headless[block] = held[max(i - 1, 0):i + 1]
    return headless


# A log's place in the chain as one number, block × 10^6 + log index (a block holds far fewer
# than a million logs), and the last place a block can hold: "at or before the end of block s"
# is `ordinal <= block_end_ordinal(s)`. running_sums_at_snapshots(deltas, snapshots): a
# relation of (chain_id, position_key, block_number, delta, …) with one delta per key and
# block, read at every (chain_id, snapshot_block) of `snapshots` as the running Σ delta up to
# it (`running_sum`, beside the row of the last block it includes); the keys without a delta
# by then are not there. Stored in the database
# (not temporary), so the views that use them work on the analysts' connections too.
MACROS = (
    "create or replace macro log_ordinal(block_number, log_index) as "
    "block_number::hugeint * 1000000 + log_index",
    "create or replace macro block_end_ordinal(block_number) as "
    "block_number::hugeint * 1000000 + 999999",
    "create or replace macro ordinal_log_index(ordinal) as ordinal % 1000000",
    """create or replace macro running_sums_at_snapshots(deltas, snapshots) as table
    with running as (
        select *, sum(delta) over (partition by position_key order by block_number
                                   rows between unbounded preceding and current row)
                  as running_sum
        from query_table(deltas)
    ),
    positions as (
        select distinct chain_id, position_key from query_table(deltas)
    )
    select s.snapshot_block, r.*
    from query_table(snapshots) as s
    join positions as p on p.chain_id = s.chain_id
    asof join running as r
        on r.position_key = p.position_key and r.block_number <= s.snapshot_block""",
)


def define_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The macros every model may use (log_ordinal, block_end_ordinal, ordinal_log_index,
    running_sums_at_snapshots)."""
    for statement in MACROS:
        con.execute(statement)


def build_database(db_path: Path, lake: Lake, registry: Registry, *,
                   snapshots: Iterable[int] | None = None, extra_snapshots: Iterable[int] = (),
                   sql_dir: Path = SQL_DIR, allow_empty_lake: bool = False) -> list[Model]:
    """(Re)build the database file from the lake; returns the models in the order they ran.

    `snapshots` replaces the default (the end of every indexed partition); `extra_snapshots`
    adds blocks to it. A lake without a complete partition of the registry's chain, or a
    snapshot outside the indexed blocks, is refused (ValueError) before the database file is
    touched; `allow_empty_lake` builds from a lake holding nothing of the chain all the same
    (the models over empty sources, at any snapshot: for tests).
    """
    models = load_models(sql_dir)
    chosen = list(default_snapshots(lake, registry.chain_id) if snapshots is None
                  else snapshots)
    chosen += list(extra_snapshots)
    if any(b < 0 for b in chosen):
        raise ValueError(f"a snapshot is a block number; got {min(chosen)}")
    if not (allow_empty_lake and not lake.partitions(BLOCKS, registry.chain_id)):
        _check_inputs(lake, registry, chosen)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.{uuid.uuid4().hex}.tmp")
    try:
        con = duckdb.connect(str(tmp))
        try:
            exact.register(con)  # mul_div_*: the venues' 256-bit arithmetic, for the models
            greeks.register(con)  # black_scholes_price: the oToken marks
            aave_v3.register(con)  # aave_index_at: an Aave index between its updates
            compound_v3.register(con)  # comet_index_at: a Comet index after a state read
            define_macros(con)  # log ordinals, running sums read at the snapshots
            _register_sources(con, lake, registry.chain_id)
            for name, table in _reference_tables(registry, chosen).items():
                replace_table(con, name, table)
            for model in models:
                try:
                    con.execute(f"create {model.materialized} {model.name} as\n{model.sql}")
                except duckdb.Error as exc:
                    raise RuntimeError(f"model {model.layer}/{model.name}.sql failed: {exc}"
                                       ) from exc
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(tmp, db_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with contextlib.suppress(FileNotFoundError):
            Path(f"{tmp}.wal").unlink()
    return models


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the database has a table or view of that name (marts written after the build
    may be missing)."""
    return bool(con.execute("select count(*) from information_schema.tables "
                            "where table_name = ?", [name]).fetchall()[0][0])


def connect_readonly(db_path: Path) -> duckdb.DuckDBPyConnection:
    """The analysts' connection: read-only, so nothing but the pipeline changes the file."""
    if not db_path.exists():
        raise FileNotFoundError(f"no database at {db_path}: build it with `contagion build` "
                                "(after `contagion index`)")
    return duckdb.connect(str(db_path), read_only=True)
