"""The report's charts: Matplotlib figures rendered to inline SVG (no file, no URL).

Figures are made with `matplotlib.figure.Figure` directly, not pyplot, so nothing global is
touched and no display backend is needed. Text stays text in the SVG (searchable, small) and
each chart gets its own id salt, so several SVGs share one HTML document without their ids
clashing, and the same data gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
import rustworkx as rx
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from rustworkx.visualization import mpl_draw

from contagion.risk.levels import LEVELS, Hysteresis

__all__ = ["LEVEL_COLOURS", "Flow", "anomaly_heatmap", "ecosystem_chart", "exposure_chart",
           "to_svg"]

LEVEL_COLOURS = {"green": "#2e7d32", "amber": "#e09b00", "red": "#c62828"}
_BANDS = {"green": "#e3f1e4", "amber": "#fdf0cf", "red": "#f9dcdc"}
_NODE_COLOURS = {"venue": "#27548a", "token": "#d08c1f"}
_EDGE_COLOURS = {"collateral": "#5b6b7a", "margin": "#8e44ad", "issued_by": "#16a085"}
_INK = "#263238"
assert set(LEVEL_COLOURS) == set(LEVELS)


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an `<svg>` element to inline in HTML (`salt` keeps its ids unique)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.patch.set_alpha(0.0)
    return fig


def ecosystem_chart(blocks: Sequence[int], scores: Sequence[float], levels: Sequence[str],
                    rule: Hysteresis) -> Figure:
    """The ecosystem score per window over the level bands; each point coloured by the level
    (with hysteresis, so a point below a threshold can still be amber or red)."""
    fig = _figure(9.5, 3.4)
    ax = fig.subplots()
    top = max(max(scores, default=0.0) * 1.25, rule.red * 1.5)
    for low, high, level in ((0.0, rule.amber, "green"), (rule.amber, rule.red, "amber"),
                             (rule.red, top, "red")):
        ax.axhspan(low, high, color=_BANDS[level], zorder=0)
    ax.plot(blocks, scores, color=_INK, linewidth=1.4, zorder=2)
    ax.scatter(blocks, scores, c=[LEVEL_COLOURS[v] for v in levels], s=26, zorder=3,
               edgecolors="white", linewidths=0.6)
    # a crisis scores in the tens while the thresholds sit at a few units: linear up to
    # the red threshold, logarithmic above, so both stay readable
    ax.set_yscale("symlog", linthresh=rule.red, linscale=2.0)
    ax.set_ylim(0.0, top)
    ax.set_yticks(sorted({0.0, rule.amber, rule.red, *(t for t in (20.0, 50.0) if t < top)}))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    low, high = min(blocks, default=0), max(blocks, default=0)
    pad = 0.5 if low == high else 0.0  # one window: a point in the middle
    ax.set_xlim(low - pad, high + pad)
    ax.set_xlabel("window ending at block")
    ax.set_ylabel("ecosystem score")
    ax.grid(axis="x", color="white", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.legend(handles=[Line2D([], [], marker="o", linestyle="", color=LEVEL_COLOURS[v],
                               label=f"level {v}") for v in LEVELS],
               loc="outside upper right", frameon=False, ncols=3, fontsize=8)
    return fig


def anomaly_heatmap(venues: Sequence[str], blocks: Sequence[int], scores: np.ndarray,
                    rule: Hysteresis) -> Figure:
    """Venues × windows coloured by anomaly score in bands around the level thresholds; NaN
    (no baseline yet) is grey."""
    top = max(float(np.nanmax(scores, initial=0.0)), rule.red * 2) + 1e-9
    bounds = [0.0, rule.amber / 2, rule.amber, (rule.amber + rule.red) / 2, rule.red,
              rule.red * 2, top]
    cmap = ListedColormap(["#e3f1e4", "#a5d6a7", "#ffe08a", "#f5b841", "#ef7b6c", "#b71c1c"]
                          ).with_extremes(bad="#dcdfe3")
    fig = _figure(9.5, 1.2 + 0.34 * len(venues))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(scores), aspect="auto", interpolation="nearest",
                      cmap=cmap, norm=BoundaryNorm(bounds, cmap.N))
    ax.set_yticks(range(len(venues)), labels=list(venues), fontsize=8)
    step = max(1, math.ceil(len(blocks) / 16))
    ticks = list(range(0, len(blocks), step))
    ax.set_xticks(ticks, labels=[str(blocks[i]) for i in ticks], fontsize=8)
    ax.set_xlabel("window ending at block")
    ax.set_xticks(np.arange(-0.5, len(blocks)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(venues)), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    bar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04, ticks=bounds[:-1])
    bar.ax.set_yticklabels([f"{b:g}" for b in bounds[:-1]], fontsize=7)
    bar.set_label("score", fontsize=8)
    return fig


@dataclass(frozen=True)
class Flow:
    """An edge of the exposure graph between a venue and a token."""

    src: str
    src_type: str
    src_name: str
    dst: str
    dst_type: str
    dst_name: str
    kind: str
    value_usd: float


def _layered(graph: rx.PyDiGraph, weight: Sequence[float]) -> dict[int, tuple[float, float]]:
    """Positions reading left to right the way a loss travels: a node's column is the longest
    chain of edges leading to it (cycles broken at their weakest edge), and within a column
    nodes sit near the mean height of their neighbours, so few edges cross."""
    dag = rx.PyDAG(check_cycle=True)
    dag.add_nodes_from(list(graph.node_indices()))
    for (a, b), _ in sorted(zip(graph.edge_list(), weight, strict=True),
                            key=lambda item: -item[1]):
        try:
            dag.add_edge(a, b, None)
        except rx.DAGWouldCycle:
            continue
    column: dict[int, int] = {}
    for n in rx.topological_sort(dag):
        column[n] = max((column[p] + 1 for p in dag.predecessor_indices(n)), default=0)
    columns = [sorted((n for n in column if column[n] == c), key=lambda n: str(graph[n]))
               for c in range(max(column.values(), default=-1) + 1)]
    height = {n: float(i) for col in columns for i, n in enumerate(col)}

    def sweep(order: Sequence[list[int]], neighbours: Any) -> None:
        for col in order:
            col.sort(key=lambda n: (np.mean([height[m] for m in neighbours(n)])
                                    if neighbours(n) else height[n]))
            offset = (len(col) - 1) / 2
            height.update({n: i - offset for i, n in enumerate(col)})

    for _ in range(2):
        sweep(columns[1:], dag.predecessor_indices)
        sweep(columns[-2::-1], dag.successor_indices)
    return {n: (float(column[n]), -height[n]) for n in column}


def exposure_chart(flows: Sequence[Flow]) -> Figure:
    """Venues and tokens as nodes, each edge as wide as the log of its USD value (so a $500M
    claim and a $5k deposit are both visible), coloured by kind; node size by the USD through
    it. Losses travel left to right."""
    graph: rx.PyDiGraph = rx.PyDiGraph(multigraph=False)
    index: dict[str, int] = {}
    kinds: dict[int, str] = {}
    for f in flows:
        for node, kind, name in ((f.src, f.src_type, f.src_name), (f.dst, f.dst_type,
                                                                   f.dst_name)):
            if node not in index:
                index[node] = graph.add_node(name)
                kinds[index[node]] = kind
        graph.add_edge(index[f.src], index[f.dst], f)
    through = np.zeros(len(index))
    for f in flows:
        through[index[f.src]] += f.value_usd
        through[index[f.dst]] += f.value_usd
    payloads: list[Flow] = list(graph.edges())
    pos = _layered(graph, [e.value_usd for e in payloads])
    scale = math.log10(1.0 + max(max(e.value_usd for e in payloads), 1.0))
    tallest = max(Counter(x for x, _ in pos.values()).values())
    fig = _figure(9.5, max(3.5, 0.62 * tallest + 1.2))
    ax = fig.subplots()
    nodes = list(graph.node_indices())
    sizes = [round(220 + 700 * math.log10(1.0 + through[i]) / scale) for i in nodes]
    # every node and edge in index order, the order of the size, colour and width lists
    mpl_draw(graph, pos=pos, ax=ax, node_list=nodes, node_size=sizes,
             node_color=[_NODE_COLOURS.get(kinds[i], "#888888") for i in nodes],
             width=[0.4 + 5.0 * math.log10(1.0 + max(e.value_usd, 0.0)) / scale  # type: ignore[call-arg]  # the stub omits width
                    for e in payloads],
             edge_color=[_EDGE_COLOURS.get(e.kind, "#999999") for e in payloads],
             alpha=0.85, arrow_size=9, connectionstyle="arc3,rad=0.06")
    for i, size in zip(nodes, sizes, strict=True):  # labels under the nodes
        x, y = pos[i]
        below = math.sqrt(size) / 2 + 2  # a marker's size is its diameter², in points²
        ax.annotate(str(graph[i]), (x, y), xytext=(0, -below), textcoords="offset points",
                    ha="center", va="top", fontsize=8, color=_INK,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                          "edgecolor": "none", "alpha": 0.85})
    ax.set_axis_off()
    ax.margins(x=0.06, y=0.16)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=k, markersize=8)
               for k, c in _NODE_COLOURS.items()]
    present = {e.kind for e in payloads}
    handles += [Line2D([], [], color=c, linewidth=2.5, label=k.replace("_", " "))
                for k, c in _EDGE_COLOURS.items() if k in present]
    fig.legend(handles=handles, loc="outside lower center", frameon=False, fontsize=8,
               ncols=len(handles))
    return fig
