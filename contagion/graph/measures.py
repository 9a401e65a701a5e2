"""Network risk measures on an exposure matrix: vulnerability and impact, communicability,
impact susceptibility, fluidity and diffusion (Silva, Souza & Tabak 2015; the conventions of
the NetworkRiskMeasures R package, whose published examples the tests reproduce).

Conventions, used by every algorithm in `contagion.graph`:
- `exposures[i, j]`: what i stands to lose if j fails (i's claim on j, an assets matrix);
- `buffer[i]`: what i can lose before its own creditors do;
- vulnerability `V[i, j] = min(1, exposures[i, j] / buffer[i])`, the share of i's buffer that j's
  failure erases (1 wherever i has an exposure and no buffer); impact is its transpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.linalg import expm

__all__ = [
    "ImpactDiffusion",
    "communicability",
    "impact_diffusion",
    "impact_fluidity",
    "impact_matrix",
    "impact_susceptibility",
    "vulnerability_matrix",
]

Matrix = npt.NDArray[np.float64]


def _square(exposures: npt.ArrayLike, buffer: npt.ArrayLike) -> tuple[Matrix, Matrix]:
    e = np.asarray(exposures, dtype=np.float64)
    b = np.asarray(buffer, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] != e.shape[1]:
        raise ValueError(f"exposures must be a square matrix, got shape {e.shape}")
    if b.shape != (e.shape[0],):
        raise ValueError(f"buffer must have one value per node ({e.shape[0]}), got {b.shape}")
    if not (np.isfinite(e).all() and np.isfinite(b).all()):
        raise ValueError("exposures and buffers must be finite numbers")
    if (e < 0).any():
        raise ValueError("exposures must be non-negative")
    return e, b


def vulnerability_matrix(exposures: npt.ArrayLike, buffer: npt.ArrayLike, *,
                         binary: bool = False) -> Matrix:
    """V[i, j] = min(1, exposures[i, j] / buffer[i]); with `binary`, 1 where the exposure
    reaches the buffer, else 0. A node without buffer (≤ 0) is fully vulnerable to every node it
    is exposed to."""
    e, b = _square(exposures, buffer)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b[:, None] > 0, e / np.where(b > 0, b, 1.0)[:, None],
                         np.where(e > 0, np.inf, 0.0))
    if binary:
        return (ratio >= 1).astype(np.float64)
    return np.minimum(ratio, 1.0)


def impact_matrix(exposures: npt.ArrayLike, buffer: npt.ArrayLike, *,
                  binary: bool = False) -> Matrix:
    """The transpose of the vulnerability matrix: M[j, i] is the impact of j's failure on i."""
    return vulnerability_matrix(exposures, buffer, binary=binary).T.copy()


def communicability(matrix: npt.ArrayLike) -> Matrix:
    """exp(M) (Estrada & Hatano 2008): the weighted count of walks between nodes, longer walks
    discounted by the factorial of their length."""
    return np.asarray(expm(np.asarray(matrix, dtype=np.float64)), dtype=np.float64)


def impact_susceptibility(exposures: npt.ArrayLike, buffer: npt.ArrayLike, *,
                          binary: bool = True) -> Matrix:
    """Per node: the walks of impact that reach it (communicability of the impact matrix, off
    the diagonal) over its direct impacts (in-degree). Above 1, a node is vulnerable beyond its
    neighbours; 0 for a node nothing reaches."""
    m = impact_matrix(exposures, buffer, binary=binary)
    c = communicability(m)
    np.fill_diagonal(c, 0.0)
    in_degree = m.sum(axis=0)
    reach = c.sum(axis=0)
    return np.where(in_degree > 0, reach / np.where(in_degree > 0, in_degree, 1.0), 0.0)


def impact_fluidity(exposures: npt.ArrayLike, buffer: npt.ArrayLike, *,
                    binary: bool = True) -> float:
    """The mean impact susceptibility of the network."""
    s = impact_susceptibility(exposures, buffer, binary=binary)
    return float(s.mean()) if len(s) else 0.0


@dataclass(frozen=True)
class ImpactDiffusion:
    start: Matrix  # what each node's own impacts carry, per unit of its out-degree
    intermediate: Matrix  # what it adds to the reach of impacts starting elsewhere
    total: Matrix


def impact_diffusion(exposures: npt.ArrayLike, buffer: npt.ArrayLike, *,
                     binary: bool = True) -> ImpactDiffusion:
    """How much each node's power to propagate matters: the communicability lost when its
    outgoing impacts are removed, split into walks that start at it and walks through it."""
    m = impact_matrix(exposures, buffer, binary=binary)
    c = communicability(m)
    np.fill_diagonal(c, 0.0)
    n = len(m)
    start, intermediate = np.zeros(n), np.zeros(n)
    out_degree = m.sum(axis=1)
    for q in np.nonzero(out_degree > 0)[0]:
        without = m.copy()
        without[q, :] = 0.0
        c_without = communicability(without)
        np.fill_diagonal(c_without, 0.0)
        lost = np.maximum(c - c_without, 0.0).sum(axis=1) / out_degree[q]
        start[q] = lost[q]
        intermediate[q] = lost.sum() - lost[q]
    return ImpactDiffusion(start, intermediate, start + intermediate)
