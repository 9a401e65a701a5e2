"""DebtRank: how much of the system's economic value a shock puts under distress.

- `debtrank`: Battiston, Puliga, Kaushik, Tasca & Caldarelli (2012), Sci. Rep. 2:541. Every node
  is undistressed (U), distressed (D) or inactive (I). A node distressed in one round passes its
  stress once, in the next round, along the vulnerability matrix, then becomes inactive:
  h_i(t) = min(1, h_i(t−1) + Σ_{j ∈ D(t−1)} V[i, j] h_j(t−1)).
- `linear_debtrank`: Bardoscia, Battiston, Caccioli & Caldarelli (2015), PLOS ONE e0130406.
  Stress is passed every round as it grows: h(t+1) = min(1, h(t) + V (h(t) − h(t−1))), so a
  node hit again passes the new stress on too.

`V` is the vulnerability matrix of `contagion.graph.measures` (V[i, j]: the share of i's buffer
lost if j fails), dense or scipy-sparse. The DebtRank of a shock is the value-weighted stress
it adds beyond the initial one: R = Σ_i v_i h_i(T) − Σ_i v_i h_i(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

__all__ = ["DebtRankResult", "debtrank", "linear_debtrank"]

Vector = npt.NDArray[np.float64]
UNDISTRESSED, DISTRESSED, INACTIVE = 0, 1, 2


@dataclass(frozen=True)
class DebtRankResult:
    initial: Vector  # h(1)
    stress: Vector  # h(T), in [0, 1]
    rounds: int
    debtrank: float  # value-weighted stress added beyond the shock
    defaulted: npt.NDArray[np.bool_]  # h(T) = 1


def _inputs(vulnerability: npt.ArrayLike | sp.sparray | sp.spmatrix, shock: npt.ArrayLike,
            value: npt.ArrayLike | None) -> tuple[Any, Vector, Vector]:
    v = (sp.csr_array(vulnerability) if sp.issparse(vulnerability)
         else np.asarray(vulnerability, dtype=np.float64))
    n = v.shape[0]
    if v.shape != (n, n):
        raise ValueError(f"the vulnerability matrix must be square, got {v.shape}")
    h = np.asarray(shock, dtype=np.float64)
    if h.shape != (n,) or not np.isfinite(h).all() or (h < 0).any() or (h > 1).any():
        raise ValueError(f"the shock is a stress per node in [0, 1] ({n} values)")
    weights = np.full(n, 1.0 / n) if value is None else np.asarray(value, dtype=np.float64)
    if weights.shape != (n,) or (weights < 0).any():
        raise ValueError("value must be one non-negative weight per node")
    total = weights.sum()
    return v, h, weights / total if total > 0 else weights


def debtrank(vulnerability: npt.ArrayLike | sp.sparray | sp.spmatrix, shock: npt.ArrayLike,
             value: npt.ArrayLike | None = None, *, max_rounds: int = 10_000) -> DebtRankResult:
    """Battiston et al.'s DebtRank of an initial stress `shock` (per node, in [0, 1]); `value`
    weighs nodes (default: equally)."""
    v, h, weights = _inputs(vulnerability, shock, value)
    initial = h.copy()
    state = np.where(h > 0, DISTRESSED, UNDISTRESSED)
    rounds = 1
    while (state == DISTRESSED).any():
        if rounds >= max_rounds:
            raise RuntimeError(f"DebtRank did not settle in {max_rounds} rounds")
        spreading = np.where(state == DISTRESSED, h, 0.0)
        h_next = np.minimum(1.0, h + v @ spreading)
        state = np.where(state == DISTRESSED, INACTIVE,
                         np.where((h_next > 0) & (state == UNDISTRESSED), DISTRESSED, state))
        h = h_next
        rounds += 1
    return DebtRankResult(initial, h, rounds, float(weights @ h - weights @ initial), h >= 1.0)


def linear_debtrank(vulnerability: npt.ArrayLike | sp.sparray | sp.spmatrix,
                    shock: npt.ArrayLike, value: npt.ArrayLike | None = None, *,
                    tolerance: float = 1e-12, max_rounds: int = 100_000) -> DebtRankResult:
    """Bardoscia et al.'s linear DebtRank: every increase of stress propagates, until the
    increments fall below `tolerance`."""
    v, h, weights = _inputs(vulnerability, shock, value)
    initial = h.copy()
    previous = np.zeros_like(h)
    rounds = 1
    while np.abs(h - previous).max(initial=0.0) > tolerance:
        if rounds >= max_rounds:
            raise RuntimeError(f"linear DebtRank did not settle in {max_rounds} rounds")
        h, previous = np.minimum(1.0, h + v @ (h - previous)), h
        rounds += 1
    return DebtRankResult(initial, h, rounds, float(weights @ h - weights @ initial), h >= 1.0)
