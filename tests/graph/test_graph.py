"""The exposure graph built from the marts, contagion paths and systemic importance."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import rustworkx as rx
from conftest import World
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.graph.build import SMALL_ACCOUNTS, ExposureGraph
from contagion.graph.importance import systemic_importance
from contagion.graph.paths import strongest_paths


def edge(src: str, dst: str, value: float, buffer: float | None, kind: str = "holds"
         ) -> dict[str, Any]:
    kind_of = {"v": "venue", "t": "token", "a": "account"}  # by the id's first letter
    return {"snapshot_block": 1, "src": src, "dst": dst, "src_type": kind_of[src[0]],
            "dst_type": kind_of[dst[0]], "src_name": src, "dst_name": dst, "kind": kind,
            "value_usd": value, "dst_buffer_usd": buffer}


def test_strongest_paths_rank_by_transmission() -> None:
    # v:a -> v:b (0.5 of b's buffer) -> v:d (all of it); v:a -> v:c (0.9) -> v:d (0.9)
    graph = ExposureGraph.from_edges([
        edge("v:a", "v:b", 5, 10), edge("v:b", "v:d", 20, 10), edge("v:a", "v:c", 9, 10),
        edge("v:c", "v:d", 9, 10)])
    paths = [p for p in strongest_paths(graph, "v:a", k=3, source_loss_usd=100)
             if p.target == "v:d"]
    assert [p.nodes for p in paths] == [("v:a", "v:c", "v:d"), ("v:a", "v:b", "v:d")]
    assert [round(p.transmission, 6) for p in paths] == [0.81, 0.5]
    assert paths[0].loss_usd == pytest.approx(81.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 7), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_yen_equals_brute_force_over_all_simple_paths(n: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    rows = [edge(f"v:{i}", f"v:{j}", float(rng.uniform(0.1, 5)), float(rng.uniform(1, 5)))
            for i, j in itertools.permutations(range(n), 2) if rng.random() < 0.5]
    graph = ExposureGraph.from_edges(rows)
    if "v:0" not in graph.index_of:  # no edge touches the source
        return
    ids, v = graph.vulnerability()
    dense = v.toarray()
    found = strongest_paths(graph, "v:0", k=k, source_loss_usd=1.0)
    plain = rx.PyDiGraph()
    plain.add_nodes_from(ids)
    plain.add_edges_from([(j, i, None) for i, j in zip(*np.nonzero(dense), strict=True)
                          if i != j])
    start = ids.index("v:0")
    for target in {p.target for p in found}:
        every = rx.digraph_all_simple_paths(plain, start, ids.index(target))
        strengths = sorted((math.prod(dense[b, a] for a, b in itertools.pairwise(path))
                            for path in every), reverse=True)
        mine = [p.transmission for p in found if p.target == target]
        assert mine == pytest.approx(strengths[:k])


def test_small_accounts_merge_and_totals_are_kept() -> None:
    rows = [edge("v:lend", "a:big", 1000, 500), edge("v:lend", "a:s1", 3, 1),
            edge("v:lend", "a:s2", 4, 2), edge("a:s1", "v:lend", 2, 50, "debt"),
            edge("t:x", "v:lend", 100, 50, "collateral")]
    graph = ExposureGraph.from_edges(rows, min_account_usd=10)
    assert set(graph.index_of) == {"v:lend", "a:big", SMALL_ACCOUNTS, "t:x"}
    assert graph.total_value() == pytest.approx(sum(r["value_usd"] for r in rows))
    assert graph.node(SMALL_ACCOUNTS).buffer_usd == pytest.approx(3.0)
    # rustworkx reuses a removed node's index; our ids never point at the wrong node
    graph.remove("a:big")
    graph._node("a:new", "account", "a:new")
    assert graph.node("a:new").id == "a:new" and graph.node("t:x").id == "t:x"


@pytest.mark.devnet
def test_the_crisis_graph_paths_and_importance(world: World) -> None:
    from contagion.warehouse import connect_readonly

    with connect_readonly(world.db) as con:
        edges = con.sql("select * from fct_exposure_edges where snapshot_block = "
                        "(select max(snapshot_block) from ref_snapshots)").to_arrow_table()
    graph = ExposureGraph.from_edges(edges, min_account_usd=1_000)
    assert graph.total_value() == pytest.approx(sum(edges["value_usd"].to_pylist()))
    steth = next(n for n in graph.index_of if graph.node(n).name == "stETH")
    paths = strongest_paths(graph, steth, k=2)
    reached = {p.target for p in paths}
    assert {"venue:aave_v3", "venue:morpho_blue", "venue:compound_v3_usdc"} <= reached
    assert all(0 < p.transmission <= 1 and p.nodes[0] == steth for p in paths)
    ranking = systemic_importance(graph)
    assert {r.node for r in ranking} == {n for n in graph.index_of if n.startswith("venue:")}
    assert all(0 <= r.debtrank <= 1 for r in ranking)
    assert ranking[0].debtrank > 0


def test_leverage_cycles_carry_their_weakest_edge() -> None:
    from contagion.graph.cycles import leverage_cycles

    # a loop: lido's claim posted at aave, aave lends to an account that restakes at lido
    graph = ExposureGraph.from_edges([
        edge("v:lido", "t:steth", 100, None, "issued_by"),
        edge("t:steth", "v:aave", 80, 10, "collateral"),
        edge("v:aave", "a:looper", 60, 5),
        edge("a:looper", "v:lido", 50, 0, "debt"),
        edge("v:aave", "a:other", 30, 5)])
    cycles = leverage_cycles(graph)
    assert len(cycles) == 1
    assert cycles[0].value_usd == 50
    assert set(cycles[0].venues) == {"v:aave", "v:lido"}
    assert set(cycles[0].nodes) == {"v:lido", "t:steth", "v:aave", "a:looper"}
