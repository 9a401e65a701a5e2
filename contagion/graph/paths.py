"""Contagion paths: the k strongest routes from a shock source to each affected venue.

A path's transmission is the product of the vulnerabilities along it (the share of each node's
buffer the previous node's loss erases); the strongest paths are the k shortest simple paths on
−log(transmission) (Yen 1971, over rustworkx's Dijkstra). A path carries the source's loss times
its transmission.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import rustworkx as rx

from contagion.graph.build import ExposureGraph

__all__ = ["ContagionPath", "strongest_paths"]


@dataclass(frozen=True)
class ContagionPath:
    source: str
    target: str
    nodes: tuple[str, ...]
    transmission: float  # product of edge vulnerabilities, in (0, 1]
    loss_usd: float  # the source's loss times the transmission

    @property
    def hops(self) -> int:
        return len(self.nodes) - 1


def _cost_graph(graph: ExposureGraph) -> tuple[rx.PyDiGraph, list[str]]:
    ids, v = graph.vulnerability()
    costs = rx.PyDiGraph()  # one edge per pair already: the vulnerability matrix sums them
    costs.add_nodes_from(ids)
    coo = v.tocoo()
    costs.add_edges_from([(int(j), int(i), max(0.0, -math.log(float(w))))
                          for i, j, w in zip(coo.row, coo.col, coo.data, strict=True)
                          if w > 0 and i != j])
    return costs, ids


def _shortest(costs: rx.PyDiGraph, source: int, target: int) -> list[int] | None:
    found = rx.digraph_dijkstra_shortest_paths(costs, source, target,
                                               weight_fn=lambda cost: float(cost))
    return list(found[target]) if target in found else None


def _length(costs: rx.PyDiGraph, path: list[int]) -> float:
    return sum(float(costs.get_edge_data(a, b)) for a, b in itertools.pairwise(path))


def _yen(costs: rx.PyDiGraph, source: int, target: int, k: int) -> list[list[int]]:
    first = _shortest(costs, source, target)
    if first is None:
        return []
    found = [first]
    candidates: list[tuple[float, list[int]]] = []
    while len(found) < k:
        last = found[-1]
        for spur_at in range(len(last) - 1):
            root = last[:spur_at + 1]
            pruned = costs.copy()
            for path in found:
                if path[:spur_at + 1] == root and pruned.has_edge(path[spur_at],
                                                                  path[spur_at + 1]):
                    pruned.remove_edge(path[spur_at], path[spur_at + 1])
            for node in root[:-1]:
                pruned.remove_node(node)
            spur = _shortest(pruned, root[-1], target)
            if spur is not None:
                candidate = root[:-1] + spur
                if candidate not in found and all(c != candidate for _, c in candidates):
                    candidates.append((_length(costs, candidate), candidate))
        if not candidates:
            break
        candidates.sort(key=lambda item: (item[0], len(item[1])))
        found.append(candidates.pop(0)[1])
    return found


def strongest_paths(graph: ExposureGraph, source: str, *, k: int = 3,
                    target_kind: str = "venue", source_loss_usd: float | None = None
                    ) -> list[ContagionPath]:
    """Up to k strongest paths from `source` to every node of `target_kind` it reaches,
    strongest first per target. The source's loss defaults to its economic value."""
    if source not in graph.index_of:
        raise KeyError(f"{source} is not a node of this graph")
    costs, ids = _cost_graph(graph)
    position = {node: i for i, node in enumerate(ids)}
    loss = graph.node(source).value_usd if source_loss_usd is None else source_loss_usd
    out = []
    reachable = rx.descendants(costs, position[source])
    for target in sorted(reachable):
        target_id = ids[target]
        if graph.node(target_id).kind != target_kind:
            continue
        for path in _yen(costs, position[source], target, k):
            transmission = math.exp(-_length(costs, path))
            out.append(ContagionPath(source, target_id, tuple(ids[i] for i in path),
                                     transmission, loss * transmission))
    return out
