"""The exposure graph of a snapshot as a rustworkx directed graph.

Edges come from the `fct_exposure_edges` mart (docs/schema.md), oriented the way a loss travels
(src's loss reaches dst). Nodes are `venue:<id>`, `token:<address>` and `account:<address>`;
this module keeps its own maps between those ids and rustworkx indices, because rustworkx
reuses the index of a removed node.

Small accounts may be aggregated: every account whose edges total less than
`min_account_usd` is merged into one node, `account:small`. Its edges carry the sums of the
merged edges (exact totals are kept: the graph's total edge value does not change) and its
buffer is the sum of their buffers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import rustworkx as rx
import scipy.sparse as sp

__all__ = ["SMALL_ACCOUNTS", "Edge", "ExposureGraph", "Node"]

SMALL_ACCOUNTS = "account:small"
_EDGE_COLUMNS = {"snapshot_block": pl.UInt64(), "src": pl.String(), "dst": pl.String(),
                 "src_type": pl.String(), "dst_type": pl.String(), "src_name": pl.String(),
                 "dst_name": pl.String(), "kind": pl.String(), "value_usd": pl.Float64(),
                 "dst_buffer_usd": pl.Float64()}


@dataclass
class Node:
    id: str
    kind: str  # venue | token | account
    name: str
    buffer_usd: float | None = None  # None: no buffer of its own (tokens)
    value_usd: float = 0.0  # economic value: what reaches it through its incoming edges


@dataclass
class Edge:
    kind: str  # collateral | margin | debt | issued_by | holds
    value_usd: float


@dataclass
class ExposureGraph:
    # a multigraph: edges of different kinds join the same pair, and rustworkx checks for
    # parallel edges on every insertion otherwise (slow around a venue with 10^5 neighbours)
    graph: rx.PyDiGraph = field(default_factory=rx.PyDiGraph)
    index_of: dict[str, int] = field(default_factory=dict)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_edges(cls, edges: pa.Table | Iterable[Mapping[str, Any]], *,
                   min_account_usd: float = 0.0) -> ExposureGraph:
        """From rows of `fct_exposure_edges` (one snapshot): src, dst, src_type, dst_type,
        src_name, dst_name, kind, value_usd, dst_buffer_usd. Whole-column (Polars): a million
        edges take seconds."""
        frame = pl.from_arrow(edges) if isinstance(edges, pa.Table) else pl.DataFrame(
            list(edges), schema=_EDGE_COLUMNS, strict=False)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                              for c, t in _EDGE_COLUMNS.items()])
        if frame.is_empty():
            return cls()
        if frame["snapshot_block"].n_unique() > 1:
            raise ValueError("edges of several snapshots: select one snapshot first")
        frame = frame.with_columns(pl.col("value_usd").fill_null(0.0))
        ends = pl.concat([
            frame.select(pl.col("src").alias("node"), pl.col("src_type").alias("type"),
                         "value_usd"),
            frame.select(pl.col("dst").alias("node"), pl.col("dst_type").alias("type"),
                         "value_usd")])
        small = (ends.filter(pl.col("type") == "account").group_by("node")
                 .agg(pl.col("value_usd").sum())
                 .filter(pl.col("value_usd") < min_account_usd)["node"])
        merge = {end: pl.when(pl.col(end).is_in(small.implode())).then(pl.lit(SMALL_ACCOUNTS))
                 .otherwise(pl.col(end)) for end in ("src", "dst")}
        frame = frame.with_columns(pl.col("dst").alias("original_dst"),
                                   merge["src"].alias("src"), merge["dst"].alias("dst"))
        named = pl.concat([
            frame.select(pl.col("src").alias("node"), pl.col("src_type").alias("type"),
                         pl.col("src_name").alias("name")),
            frame.select(pl.col("dst").alias("node"), pl.col("dst_type").alias("type"),
                         pl.col("dst_name").alias("name"))]).unique("node", keep="first",
                                                                     maintain_order=True)
        named = named.with_columns(pl.when(pl.col("node") == SMALL_ACCOUNTS)
                                   .then(pl.lit("small accounts")).otherwise(pl.col("name"))
                                   .alias("name"))
        # a node's buffer: the one its incoming edges give; the merged accounts' buffers summed
        buffers = pl.concat([
            frame.filter(pl.col("dst") != SMALL_ACCOUNTS).group_by("dst")
            .agg(pl.col("dst_buffer_usd").drop_nulls().last().alias("buffer")),
            frame.filter(pl.col("dst") == SMALL_ACCOUNTS)
            .unique("original_dst").group_by("dst")
            .agg(pl.col("dst_buffer_usd").fill_null(0.0).sum().alias("buffer"))])
        merged = (frame.filter(pl.col("src") != pl.col("dst"))  # inside the aggregate
                  .group_by("src", "dst", "kind", maintain_order=True)
                  .agg(pl.col("value_usd").sum()))
        incoming = merged.group_by("dst").agg(pl.col("value_usd").sum().alias("value"))
        nodes = (named.join(buffers, left_on="node", right_on="dst", how="left")
                 .join(incoming, left_on="node", right_on="dst", how="left"))
        out = cls()
        indices = out.graph.add_nodes_from([
            Node(node, kind, name, buffer, value or 0.0) for node, kind, name, buffer, value in
            nodes.select("node", "type", "name", "buffer", "value").iter_rows()])
        out.index_of = dict(zip(nodes["node"].to_list(), indices, strict=True))
        src = merged["src"].replace_strict(out.index_of, return_dtype=pl.Int64).to_list()
        dst = merged["dst"].replace_strict(out.index_of, return_dtype=pl.Int64).to_list()
        out.graph.add_edges_from([
            (a, b, Edge(kind, value)) for a, b, kind, value in
            zip(src, dst, merged["kind"].to_list(), merged["value_usd"].to_list(),
                strict=True)])
        return out

    def _node(self, node_id: str, kind: str, name: str) -> int:
        if node_id not in self.index_of:
            self.index_of[node_id] = self.graph.add_node(Node(node_id, kind, name))
        return self.index_of[node_id]

    # -- reading -----------------------------------------------------------------------------

    def node(self, node_id: str) -> Node:
        payload: Node = self.graph[self.index_of[node_id]]
        return payload

    @property
    def ids(self) -> list[str]:
        """Node ids in index order (the order of `vulnerability()` and vector results)."""
        return [self.graph[i].id for i in self.graph.node_indices()]

    def remove(self, node_id: str) -> None:
        self.graph.remove_node(self.index_of.pop(node_id))

    def total_value(self) -> float:
        return float(sum(e.value_usd for e in self.graph.edges()))

    def vulnerability(self) -> tuple[list[str], sp.csr_array]:
        """Node ids and the sparse vulnerability matrix V[i, j] = min(1, Σ value of the edges
        j → i / buffer of i), 1 where i has no buffer (a pass-through node)."""
        ids = self.ids
        indices = np.array(self.graph.node_indices(), dtype=np.int64)
        position = np.zeros(int(indices.max(initial=-1)) + 1, dtype=np.int64)
        position[indices] = np.arange(len(indices))
        pairs = np.array(self.graph.edge_list(), dtype=np.int64).reshape(-1, 2)
        values = np.fromiter((e.value_usd for e in self.graph.edges()), np.float64,
                             count=len(pairs))
        rows, cols = position[pairs[:, 1]], position[pairs[:, 0]]
        n = len(ids)
        exposure = sp.coo_array((values, (rows, cols)), shape=(n, n)).tocsr().tocoo()
        buffer = np.array([self.graph[self.index_of[i]].buffer_usd or 0.0 for i in ids])
        held = buffer[exposure.row]
        data = np.where(held > 0, np.minimum(exposure.data / np.where(held > 0, held, 1.0), 1.0),
                        (exposure.data > 0).astype(np.float64))
        return ids, sp.csr_array((data, (exposure.row, exposure.col)), shape=(n, n))

    def values(self) -> np.ndarray:
        """Economic value per node (index order): what reaches it through its incoming edges."""
        return np.array([self.graph[self.index_of[i]].value_usd for i in self.ids])
