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
import pyarrow as pa
import rustworkx as rx
import scipy.sparse as sp

__all__ = ["SMALL_ACCOUNTS", "Edge", "ExposureGraph", "Node"]

SMALL_ACCOUNTS = "account:small"


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
    graph: rx.PyDiGraph = field(default_factory=lambda: rx.PyDiGraph(multigraph=False))
    index_of: dict[str, int] = field(default_factory=dict)

    # -- building --------------------------------------------------------------------------

    @classmethod
    def from_edges(cls, edges: pa.Table | Iterable[Mapping[str, Any]], *,
                   min_account_usd: float = 0.0) -> ExposureGraph:
        """From rows of `fct_exposure_edges` (one snapshot): src, dst, src_type, dst_type,
        src_name, dst_name, kind, value_usd, dst_buffer_usd."""
        rows = edges.to_pylist() if isinstance(edges, pa.Table) else list(edges)
        if not rows:
            return cls()
        if len({r.get("snapshot_block") for r in rows}) > 1:
            raise ValueError("edges of several snapshots: select one snapshot first")
        size: dict[str, float] = {}
        for r in rows:
            for end in ("src", "dst"):
                if r[f"{end}_type"] == "account":
                    size[r[end]] = size.get(r[end], 0.0) + float(r["value_usd"] or 0.0)
        small = {a for a, total in size.items() if total < min_account_usd}
        out = cls()
        merged: dict[tuple[str, str, str], float] = {}
        buffers: dict[str, float | None] = {}
        counted: set[str] = set()
        for r in rows:
            src = SMALL_ACCOUNTS if r["src"] in small else r["src"]
            dst = SMALL_ACCOUNTS if r["dst"] in small else r["dst"]
            for node, kind, name in ((src, r["src_type"], r["src_name"]),
                                     (dst, r["dst_type"], r["dst_name"])):
                out._node(node, kind, "small accounts" if node == SMALL_ACCOUNTS else name)
            buffer = r.get("dst_buffer_usd")
            if dst == SMALL_ACCOUNTS:
                if r["dst"] not in counted:  # one buffer per merged account
                    counted.add(r["dst"])
                    buffers[dst] = (buffers.get(dst) or 0.0) + float(buffer or 0.0)
            elif buffer is not None:
                buffers[dst] = float(buffer)
            key = (src, dst, r["kind"])
            merged[key] = merged.get(key, 0.0) + float(r["value_usd"] or 0.0)
        for node, buffer in buffers.items():
            out.node(node).buffer_usd = buffer
        for (src, dst, kind), value in merged.items():
            if src == dst:  # small accounts exposed to small accounts: inside the aggregate
                continue
            out.graph.add_edge(out.index_of[src], out.index_of[dst], Edge(kind, value))
            out.node(dst).value_usd += value
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
        position = {self.index_of[n]: k for k, n in enumerate(ids)}
        rows, cols, values = [], [], []
        for src, dst, edge in self.graph.weighted_edge_list():
            rows.append(position[dst])
            cols.append(position[src])
            values.append(edge.value_usd)
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
