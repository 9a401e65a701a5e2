"""The contagion engine at scale, against a straightforward networkx DebtRank in the same run.

A synthetic ecosystem: ACCOUNTS accounts, VENUES venues, TOKENS tokens, about ten exposure edges
per account (deposits lent out, debts, claim holdings: over a million edges), and one
collateral and one debt position per account for the DeFi cascade. Timed: building the graph
from the edge table, the DebtRank of every venue's failure, the strongest paths from every token
(accounts under $1M merged), the stress suite through the cascade; then peak memory, and the
same DebtRank written plainly over networkx (bench-only dependency) for a sample of venues.
Target: the whole suite in seconds and DebtRank >= 100x the networkx reference.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from contagion.graph.build import ExposureGraph
from contagion.graph.cascade import Ecosystem, Leg, Pool
from contagion.graph.debtrank import debtrank
from contagion.graph.paths import strongest_paths
from contagion.graph.stress import standard_scenarios, stress_suite

ACCOUNTS = 100_000
VENUES = 30
TOKENS = 20
EDGES_PER_ACCOUNT = 10
REFERENCE_VENUES = 3  # networkx is slow: its rate is measured on a sample
# Paths run on the venue and token level: accounts under this are merged (Yen's algorithm
# copies the graph for every spur node, too slow with 10^5 account nodes)
PATHS_MIN_ACCOUNT_USD = 1_000_000


def synthetic_edges(seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    venue_buffer = rng.lognormal(17, 1, VENUES)
    account_buffer = rng.lognormal(9, 1.5, ACCOUNTS)
    account = np.repeat(np.arange(ACCOUNTS), EDGES_PER_ACCOUNT)
    role = rng.choice(3, account.size, p=[0.4, 0.3, 0.3])  # deposit, debt, claim held
    venue = rng.integers(0, VENUES, account.size)
    token = rng.integers(0, TOKENS, account.size)
    value = rng.lognormal(8, 1.5, account.size)
    acc = np.char.add("account:a", account.astype(str))
    ven = np.char.add("venue:v", venue.astype(str))
    tok = np.char.add("token:t", token.astype(str))
    src = np.where(role == 0, ven, np.where(role == 1, acc, tok))
    dst = np.where(role == 1, ven, acc)
    src_type = np.where(role == 0, "venue", np.where(role == 1, "account", "token"))
    dst_type = np.where(role == 1, "venue", "account")
    kind = np.where(role == 1, "debt", "holds")
    buffer = np.where(role == 1, venue_buffer[venue], account_buffer[account])
    # every token is collateral at every venue, and every venue issues a token
    pairs = [(f"token:t{t}", f"venue:v{v}", "collateral", float(rng.lognormal(14, 1)),
              float(venue_buffer[v])) for t in range(TOKENS) for v in range(VENUES)]
    pairs += [(f"venue:v{v}", f"token:t{v % TOKENS}", "issued_by", float(rng.lognormal(15, 1)),
               None) for v in range(VENUES)]
    n = account.size + len(pairs)
    return pa.table({
        "snapshot_block": pa.array(np.ones(n, np.uint64)),
        "src": pa.array([*src.tolist(), *(p[0] for p in pairs)]),
        "dst": pa.array([*dst.tolist(), *(p[1] for p in pairs)]),
        "src_type": pa.array([*src_type.tolist(), *(p[0].split(":")[0] for p in pairs)]),
        "dst_type": pa.array([*dst_type.tolist(), *(p[1].split(":")[0] for p in pairs)]),
        "src_name": pa.array([*src.tolist(), *(p[0] for p in pairs)]),
        "dst_name": pa.array([*dst.tolist(), *(p[1] for p in pairs)]),
        "kind": pa.array([*kind.tolist(), *(p[2] for p in pairs)]),
        "value_usd": pa.array([*value.tolist(), *(p[3] for p in pairs)], pa.float64()),
        "dst_buffer_usd": pa.array([*buffer.tolist(), *(p[4] for p in pairs)], pa.float64()),
    })


def synthetic_ecosystem(seed: int = 7) -> Ecosystem:
    rng = np.random.default_rng(seed)
    prices = {f"t{t}": float(rng.lognormal(3, 2)) for t in range(TOKENS)} | {"usd": 1.0}
    legs = []
    for a in range(ACCOUNTS):
        venue, token = f"v{a % VENUES}", f"t{a % TOKENS}"
        collateral = float(rng.lognormal(9, 1.5))
        legs.append(Leg(venue, f"a{a}", token, collateral / prices[token], "collateral", 0.8,
                        1.05))
        legs.append(Leg(venue, f"a{a}", "usd", collateral * rng.uniform(0.3, 0.78), "debt"))
    pools = [Pool(f"t{t}", "usd", 5e7 / prices[f"t{t}"], 5e7) for t in range(TOKENS)]
    return Ecosystem(prices, legs, pools, deposits_usd={f"v{v}": 1e9 for v in range(VENUES)},
                     symbols={t: t for t in prices})


def networkx_debtrank(nx_graph: object, source: object, value: dict[object, float]) -> float:
    """DebtRank node by node over networkx: stressed nodes pass their stress once, along
    each in-edge's vulnerability, to the nodes exposed to them."""
    g = nx_graph
    h = dict.fromkeys(g.nodes, 0.0)  # type: ignore[attr-defined]
    h[source] = 1.0
    state = dict.fromkeys(g.nodes, "U")  # type: ignore[attr-defined]
    state[source] = "D"
    while any(s == "D" for s in state.values()):
        new_h = dict(h)
        for j in [n for n, s in state.items() if s == "D"]:
            for i, data in g[j].items():  # type: ignore[index]
                new_h[i] = min(1.0, new_h[i] + data["weight"] * h[j])
        for n in state:
            if state[n] == "D":
                state[n] = "I"
            elif state[n] == "U" and new_h[n] > 0:
                state[n] = "D"
        h = new_h
    total = sum(value.values()) or 1.0
    return sum(value[n] * h[n] for n in h) / total - value[source] / total


def peak_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def main() -> None:
    import networkx as nx

    edges = synthetic_edges()
    timings = {}
    began = time.perf_counter()
    graph = ExposureGraph.from_edges(edges)
    timings["build"] = time.perf_counter() - began
    ids, v = graph.vulnerability()
    values = graph.values()
    venue_rows = [k for k, n in enumerate(ids) if n.startswith("venue:")]
    began = time.perf_counter()
    ranks = []
    for k in venue_rows:
        shock = np.zeros(len(ids))
        shock[k] = 1.0
        ranks.append(debtrank(v, shock, values).debtrank)
    timings["debtrank"] = time.perf_counter() - began
    small = ExposureGraph.from_edges(edges, min_account_usd=PATHS_MIN_ACCOUNT_USD)
    began = time.perf_counter()
    paths = sum(len(strongest_paths(small, n, k=3)) for n in small.index_of
                if n.startswith("token:"))
    timings["paths"] = time.perf_counter() - began
    eco = synthetic_ecosystem()
    began = time.perf_counter()
    results = stress_suite(eco, standard_scenarios(eco, venues=[f"v{k}" for k in range(5)]),
                           {f"v{k}": 1e7 for k in range(VENUES)})
    timings["stress"] = time.perf_counter() - began
    ours_peak = peak_mib()
    total = sum(timings.values())
    print(f"contagion: {ACCOUNTS:,} accounts, {graph.graph.num_nodes():,} nodes, "
          f"{graph.graph.num_edges():,} edges · build {timings['build']:.1f} s · DebtRank of "
          f"{len(venue_rows)} venue failures {timings['debtrank']:.2f} s · {paths} paths "
          f"{timings['paths']:.1f} s · {len(results)} stress scenarios "
          f"{timings['stress']:.1f} s · total {total:.1f} s · peak {ours_peak:,.0f} MiB")
    # the reference: the same vulnerability weights in a networkx graph, DebtRank node by node
    reference = nx.DiGraph()
    coo = v.tocoo()
    reference.add_weighted_edges_from(
        (ids[j], ids[i], float(w)) for i, j, w in zip(coo.row, coo.col, coo.data, strict=True))
    value_of = dict(zip(ids, (values / values.sum()).tolist(), strict=True))
    began = time.perf_counter()
    for k in venue_rows[:REFERENCE_VENUES]:
        reference_rank = networkx_debtrank(reference, ids[k], value_of)
        assert abs(reference_rank - ranks[venue_rows.index(k)]) < 1e-9, "DebtRank disagrees"
    per_run_nx = (time.perf_counter() - began) / REFERENCE_VENUES
    per_run_ours = timings["debtrank"] / len(venue_rows)
    print(f"DebtRank per venue failure: contagion {per_run_ours * 1e3:.1f} ms · networkx "
          f"{per_run_nx * 1e3:,.0f} ms (same results)")
    print(f"DebtRank ratio vs networkx: {per_run_nx / per_run_ours:,.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
