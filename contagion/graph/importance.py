"""Systemic importance: the DebtRank of each node's failure (Battiston et al. 2012): how much
of the system's economic value its default puts under distress, itself excluded. Betweenness
centrality adds what DebtRank does not show: how often a node lies on the shortest routes
between others, i.e. how much it bridges (an aToken between Aave and a perps venue)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rustworkx as rx

from contagion.graph.build import ExposureGraph
from contagion.graph.debtrank import debtrank

__all__ = ["Importance", "systemic_importance"]


@dataclass(frozen=True)
class Importance:
    node: str
    debtrank: float  # value-weighted stress its failure adds to the rest of the system
    defaulted: int  # nodes driven to full stress, itself excluded
    reached: int  # nodes that received any stress, itself excluded
    betweenness: float  # normalised betweenness centrality in the exposure graph


def systemic_importance(graph: ExposureGraph, *, kinds: tuple[str, ...] = ("venue",)
                        ) -> list[Importance]:
    """For every node of `kinds`: DebtRank with that node at full stress, nodes weighted by
    their economic value; most important first."""
    ids, v = graph.vulnerability()
    values = graph.values()
    centrality = rx.digraph_betweenness_centrality(graph.graph, normalized=True)
    out = []
    for k, node in enumerate(ids):
        if graph.node(node).kind not in kinds:
            continue
        shock = np.zeros(len(ids))
        shock[k] = 1.0
        result = debtrank(v, shock, values)
        others = np.arange(len(ids)) != k
        out.append(Importance(node, result.debtrank, int(result.defaulted[others].sum()),
                              int((result.stress[others] > 0).sum()),
                              float(centrality[graph.index_of[node]])))
    return sorted(out, key=lambda i: (-i.debtrank, i.node))
