"""Anomaly scores: how far a venue's state vector sits from its own recent past.

The distance is Mahalanobis's, against a baseline of earlier windows (never the current one),
with a robust covariance: when the baseline has enough windows, the minimum covariance
determinant (Rousseeuw 1984, scikit-learn's MinCovDet) picks the windows that look alike, so a
crisis already under way in the baseline drops out of it, and Ledoit–Wolf shrinkage estimates
the covariance on those; with fewer windows, Ledoit–Wolf on all of them; a diagonal of variances
floored at `min_variance` when even that is singular. The squared distance is taken as χ² with
p degrees of freedom under the baseline, which gives the p-value. MCD's own covariance is not
used: from about half of 30–40 windows in up to 15 dimensions it is far too tight, and a window
drawn from the baseline's own distribution scored amber (p < 1e-4) about one time in eight
(tests/risk/test_early_warning.py measures both). Per-feature
contributions z_i · (Σ⁻¹ z)_i add up to the squared distance, so a reader sees which features
moved it (a negative contribution pulls towards the baseline).

Two options make it an early-warning score rather than a novelty detector: `floor`, per
feature, the smallest move that matters (its square is added to the covariance's diagonal, as
measurement noise would be), and `direction`, per feature, which way is adverse (+1 up, −1
down, 0 both): a move the favourable way counts as no move.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2
from sklearn.covariance import LedoitWolf, MinCovDet

__all__ = ["AnomalyScore", "anomaly_score"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AnomalyScore:
    distance: float  # Mahalanobis distance (not squared)
    p_value: float  # P(χ²_p ≥ distance²)
    contributions: Array  # per feature; they sum to distance²
    method: str  # mcd_ledoit_wolf | ledoit_wolf | diagonal | none
    baseline_windows: int


def anomaly_score(baseline: npt.ArrayLike, current: npt.ArrayLike, *,
                  min_variance: float = 1e-12, min_windows: int = 3,
                  floor: npt.ArrayLike | None = None, direction: npt.ArrayLike | None = None,
                  random_state: int = 0) -> AnomalyScore:
    """Score `current` (p features) against `baseline` (n earlier windows × p). With fewer than
    `min_windows` baseline windows there is no score (p-value 1, method 'none'). Rows with a
    non-finite value are left out of the baseline; a non-finite current value is an error."""
    x = np.asarray(baseline, dtype=np.float64)
    z0 = np.asarray(current, dtype=np.float64)
    if x.ndim != 2 or z0.ndim != 1 or x.shape[1] != z0.shape[0]:
        raise ValueError(f"baseline must be windows × features ({z0.shape[0]} features), "
                         f"got {x.shape}")
    if not np.isfinite(z0).all():
        raise ValueError("the current state vector has a missing or infinite value")
    x = x[np.isfinite(x).all(axis=1)]
    n, p = x.shape
    if n < min_windows:
        return AnomalyScore(0.0, 1.0, np.zeros(p), "none", n)
    spread = x.std(axis=0)
    scale = np.where(spread > np.sqrt(min_variance), spread, 1.0)  # well-conditioned fits
    xs, zs = x / scale, z0 / scale
    varying = spread > np.sqrt(min_variance)
    method, location, covariance = "diagonal", xs.mean(axis=0), np.diag(np.where(
        varying, xs.var(axis=0), min_variance / scale**2))
    moving = np.flatnonzero(varying)
    if len(moving) >= 2:  # a joint fit of the features that moved; the others stay diagonal
        block = xs[:, moving]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # rank warnings: the floor handles them
                alike = np.ones(n, dtype=bool)
                method = "ledoit_wolf"
                if n >= 2 * len(moving) + 2:  # enough windows for MCD to choose among them
                    alike = MinCovDet(random_state=random_state).fit(block).support_
                    method = "mcd_ledoit_wolf"
                fit = LedoitWolf().fit(block[alike])
            location[moving] = fit.location_
            covariance[np.ix_(moving, moving)] = fit.covariance_
        except (ValueError, np.linalg.LinAlgError):
            method = "diagonal"
    if floor is not None:
        covariance = covariance + np.diag((np.asarray(floor, dtype=np.float64) / scale) ** 2)
    if np.linalg.cond(covariance) > 1e12:
        method = "diagonal"
        covariance = np.diag(np.maximum(np.diag(covariance), min_variance / scale**2))
    # a feature that never moved in the baseline: any move is measured against min_variance
    centred = zs - location
    if direction is not None:
        sign = np.asarray(direction, dtype=np.float64)
        centred = np.where(sign * centred < 0, 0.0, centred)
    solved = np.linalg.solve(covariance, centred)
    contributions = centred * solved
    squared = float(max(contributions.sum(), 0.0))
    return AnomalyScore(float(np.sqrt(squared)), float(chi2.sf(squared, p)), contributions,
                        method, n)
