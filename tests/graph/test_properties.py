"""Invariants of the contagion algorithms on random networks (hypothesis), and DebtRank against
an independent, deliberately plain implementation of Battiston et al.'s rules."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.graph.clearing import clear
from contagion.graph.debtrank import debtrank, linear_debtrank
from contagion.graph.measures import vulnerability_matrix
from contagion.graph.threshold import threshold_cascade


@st.composite
def networks(draw: st.DrawFn, max_nodes: int = 9) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, max_nodes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    exposures = rng.exponential(1.0, (n, n)) * (rng.random((n, n)) < draw(
        st.floats(0.1, 0.9)))
    np.fill_diagonal(exposures, 0.0)
    buffer = rng.exponential(1.0, n) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    buffer[rng.random(n) < 0.1] = 0.0  # some nodes without buffer
    return exposures, buffer


def reference_debtrank(v: np.ndarray, shock: np.ndarray) -> np.ndarray:
    """Battiston et al. (2012), node by node: U/D/I states, a distressed node passes its stress
    once, in the round after it became distressed."""
    n = len(shock)
    h = [float(x) for x in shock]
    state = ["D" if x > 0 else "U" for x in h]
    while "D" in state:
        new_h = list(h)
        for i in range(n):
            passed = sum(v[i][j] * h[j] for j in range(n) if state[j] == "D")
            new_h[i] = min(1.0, h[i] + passed)
        new_state = list(state)
        for i in range(n):
            if state[i] == "D":
                new_state[i] = "I"
            elif state[i] == "U" and new_h[i] > 0:
                new_state[i] = "D"
        h, state = new_h, new_state
    return np.array(h)


@settings(max_examples=120, deadline=None)
@given(networks(), st.data())
def test_debtrank_equals_the_plain_reference(net: tuple[np.ndarray, np.ndarray],
                                             data: st.DataObject) -> None:
    exposures, buffer = net
    n = len(buffer)
    v = vulnerability_matrix(exposures, buffer)
    shock = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0]), min_size=n,
                                        max_size=n)))
    result = debtrank(v, shock)
    assert np.allclose(result.stress, reference_debtrank(v, shock))
    assert np.allclose(debtrank(sp.csr_array(v), shock).stress, result.stress)  # sparse too


@settings(max_examples=120, deadline=None)
@given(networks(), st.integers(0, 8), st.floats(0.05, 1.0))
def test_stress_is_bounded_monotone_and_only_where_a_path_reaches(
        net: tuple[np.ndarray, np.ndarray], source: int, size: float) -> None:
    exposures, buffer = net
    n = len(buffer)
    source %= n
    v = vulnerability_matrix(exposures, buffer)
    small, large = np.zeros(n), np.zeros(n)
    small[source], large[source] = size / 2, size
    for algorithm in (debtrank, linear_debtrank):
        lo, hi = algorithm(v, small), algorithm(v, large)
        assert ((hi.stress >= 0) & (hi.stress <= 1)).all()
        assert (lo.stress <= hi.stress + 1e-12).all()  # more shock, never less stress
        assert 0 <= hi.debtrank <= 1
        # nodes no path of exposures reaches from the source stay untouched
        reach = {source}
        frontier = [source]
        while frontier:
            j = frontier.pop()
            for i in np.nonzero(v[:, j] > 0)[0]:
                if i not in reach:
                    reach.add(int(i))
                    frontier.append(int(i))
        unreached = [i for i in range(n) if i not in reach]
        assert (hi.stress[unreached] == 0).all()
    # linear DebtRank passes every increase on: it never ends below Battiston's
    assert (linear_debtrank(v, large).stress >= debtrank(v, large).stress - 1e-9).all()


@settings(max_examples=100, deadline=None)
@given(networks(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_clearing_pays_at_most_what_is_owed_and_is_a_fixed_point(
        net: tuple[np.ndarray, np.ndarray], cut: float, cost: float) -> None:
    liabilities, outside = net
    result = clear(liabilities, outside * cut, outside * 0.5)
    assert ((result.payments >= -1e-12) & (result.payments <= result.obligations + 1e-9)).all()
    again = clear(liabilities, outside * cut, outside * 0.5)
    assert np.allclose(again.payments, result.payments)
    solvent = ~result.defaulted
    assert np.allclose(result.payments[solvent], result.obligations[solvent])
    # bankruptcy costs only lower payments
    costly = clear(liabilities, outside * cut, outside * 0.5, alpha=cost, beta=cost)
    assert (costly.payments <= result.payments + 1e-9).all()


@settings(max_examples=100, deadline=None)
@given(networks(), st.integers(0, 8))
def test_threshold_cascade_grows_with_the_initial_failures(net: tuple[np.ndarray, np.ndarray],
                                                           first: int) -> None:
    exposures, buffer = net
    n = len(buffer)
    one = threshold_cascade(exposures, buffer, [first % n])
    two = threshold_cascade(exposures, buffer, [first % n, (first + 1) % n])
    assert (one.failed <= two.failed).all()
    assert (one.failed_in_round[one.failed] >= 0).all()
    # every failure beyond the first lost more than its buffer
    later = one.failed & (one.failed_in_round > 0)
    assert (one.losses[later] > buffer[later]).all()
