"""Leverage cycles: the same value looping through several nodes of the exposure graph (a
deposit lent out, borrowed, restaked and deposited again). A cycle can carry at most the value
of its weakest edge; cycles are found with Johnson's algorithm (rustworkx) up to a length."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import rustworkx as rx

from contagion.graph.build import ExposureGraph

__all__ = ["LeverageCycle", "leverage_cycles"]


@dataclass(frozen=True)
class LeverageCycle:
    nodes: tuple[str, ...]  # the cycle, starting at its first node in id order
    value_usd: float  # the smallest edge value along it: what can loop through all of it
    venues: tuple[str, ...]  # venues on the cycle


def leverage_cycles(graph: ExposureGraph, *, max_length: int = 6, limit: int = 10_000
                    ) -> list[LeverageCycle]:
    """Simple cycles of at most `max_length` nodes that pass through at least two venues,
    largest looping value first. Stops after `limit` cycles (Johnson's algorithm can find
    exponentially many)."""
    value: dict[tuple[int, int], float] = {}
    for src, dst, edge in graph.graph.weighted_edge_list():
        value[src, dst] = value.get((src, dst), 0.0) + edge.value_usd
    out = []
    for found, cycle in enumerate(rx.simple_cycles(graph.graph)):
        if found >= limit:
            break
        nodes = list(cycle)
        if len(nodes) > max_length:
            continue
        ids = [graph.graph[i].id for i in nodes]
        venues = tuple(sorted({graph.graph[i].id for i in nodes
                               if graph.graph[i].kind == "venue"}))
        if len(venues) < 2:
            continue
        start = ids.index(min(ids))
        ordered = tuple(ids[start:] + ids[:start])
        loop = min(value[a, b] for a, b in itertools.pairwise([*nodes, nodes[0]]))
        out.append(LeverageCycle(ordered, loop, venues))
    return sorted(out, key=lambda c: (-c.value_usd, c.nodes))
