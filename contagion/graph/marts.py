"""The contagion engine's marts, written into the analysts' database after it is built:
`fct_systemic_risk` (the DebtRank of each venue's failure), `fct_contagion_paths` (the k
strongest paths from every collateral token and every venue to each venue they reach) and
`fct_stress_results` (the stress suite through the DeFi cascade). Columns: docs/schema.md."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from contagion.graph.importance import systemic_importance
from contagion.graph.load import bad_debt_buffers, ecosystem_at, graph_at
from contagion.graph.paths import strongest_paths
from contagion.graph.stress import standard_scenarios, stress_suite
from contagion.registry import Registry
from contagion.warehouse import replace_table

__all__ = ["GRAPH_MARTS", "GRAPH_MIN_ACCOUNT_USD", "GraphMarts", "compute_graph_marts",
           "write_graph_marts"]

GRAPH_MARTS = ("fct_systemic_risk", "fct_contagion_paths", "fct_stress_results")
GRAPH_MIN_ACCOUNT_USD = 10_000.0  # accounts below this merge into one node (docs/schema.md)

_SCHEMAS = {
    "fct_systemic_risk": pa.schema([
        ("snapshot_block", pa.uint64()), ("node", pa.string()), ("node_type", pa.string()),
        ("name", pa.string()), ("debtrank", pa.float64()), ("defaulted", pa.int64()),
        ("reached", pa.int64()), ("betweenness", pa.float64()), ("rank", pa.int64())]),
    "fct_contagion_paths": pa.schema([
        ("snapshot_block", pa.uint64()), ("source", pa.string()), ("source_name", pa.string()),
        ("target", pa.string()), ("target_name", pa.string()), ("rank", pa.int64()),
        ("path", pa.list_(pa.string())), ("hops", pa.int64()), ("transmission", pa.float64()),
        ("loss_usd", pa.float64())]),
    "fct_stress_results": pa.schema([
        ("snapshot_block", pa.uint64()), ("scenario", pa.string()), ("kind", pa.string()),
        ("target", pa.string()), ("size", pa.float64()), ("rounds", pa.int64()),
        ("initial_loss_usd", pa.float64()), ("bad_debt_usd", pa.float64()),
        ("liquidated_usd", pa.float64()), ("penalties_usd", pa.float64()),
        ("total_loss_usd", pa.float64()), ("amplification", pa.float64()),
        ("failed_venues", pa.list_(pa.string()))]),
}


@dataclass(frozen=True)
class GraphMarts:
    tables: dict[str, pa.Table]


def compute_graph_marts(con: duckdb.DuckDBPyConnection, registry: Registry, *,
                        snapshots: Iterable[int] | None = None, k: int = 3,
                        min_account_usd: float = GRAPH_MIN_ACCOUNT_USD) -> GraphMarts:
    """The three marts for the given snapshots (default: every snapshot of the database)."""
    if snapshots is None:
        blocks = [int(b) for (b,) in con.execute(
            "select snapshot_block from ref_snapshots order by 1").fetchall()]
    else:
        blocks = list(snapshots)
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in GRAPH_MARTS}
    lsts = [t.address.lower() for t in registry.tokens if t.kind == "lst"]
    every_venue = [v.id for v in registry.venues]
    for block in blocks:
        graph = graph_at(con, block, min_account_usd=min_account_usd)
        for rank, item in enumerate(systemic_importance(graph), start=1):
            node = graph.node(item.node)
            rows["fct_systemic_risk"].append({
                "snapshot_block": block, "node": item.node, "node_type": node.kind,
                "name": node.name, "debtrank": item.debtrank, "defaulted": item.defaulted,
                "reached": item.reached, "betweenness": item.betweenness, "rank": rank})
        sources = sorted(n for n in graph.index_of if n.startswith("venue:") or (
            n.startswith("token:") and any(
                graph.graph[t].kind == "venue"
                for t in graph.graph.successor_indices(graph.index_of[n]))))
        for source in sources:
            per_target: dict[str, int] = {}
            for path in strongest_paths(graph, source, k=k):
                per_target[path.target] = per_target.get(path.target, 0) + 1
                rows["fct_contagion_paths"].append({
                    "snapshot_block": block, "source": source,
                    "source_name": graph.node(source).name, "target": path.target,
                    "target_name": graph.node(path.target).name,
                    "rank": per_target[path.target], "path": list(path.nodes),
                    "hops": path.hops, "transmission": path.transmission,
                    "loss_usd": path.loss_usd})
        eco = ecosystem_at(con, registry, block)
        buffers = bad_debt_buffers(con, int(block))
        for result in stress_suite(eco, standard_scenarios(eco, lsts=lsts, venues=every_venue),
                                   buffers):
            s = result.scenario
            rows["fct_stress_results"].append({
                "snapshot_block": block, "scenario": s.name, "kind": s.kind,
                "target": s.target, "size": s.size, "rounds": result.rounds,
                "initial_loss_usd": result.initial_loss_usd,
                "bad_debt_usd": sum(result.bad_debt_usd.values()),
                "liquidated_usd": result.liquidated_usd, "penalties_usd": result.penalties_usd,
                "total_loss_usd": result.total_loss_usd, "amplification": result.amplification,
                "failed_venues": list(result.failed_venues)})
    return GraphMarts({name: pa.Table.from_pylist(rows[name], schema=_SCHEMAS[name])
                       for name in GRAPH_MARTS})


def write_graph_marts(db_path: Path, registry: Registry, **options: object) -> GraphMarts:
    """Compute the marts from the database and write them into it (the pipeline's writer)."""
    with duckdb.connect(str(db_path)) as con:
        marts = compute_graph_marts(con, registry, **options)  # type: ignore[arg-type]
        for name, table in marts.tables.items():
            replace_table(con, name, table)
    return marts
