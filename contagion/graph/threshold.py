"""Threshold (default) cascade: Furfine (2003), Gai & Kapadia (2010). A node fails when what it
loses on failed counterparties exceeds its buffer; its failure is then a loss for those exposed
to it, round after round, until no new node fails."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CascadeResult", "threshold_cascade"]


@dataclass(frozen=True)
class CascadeResult:
    failed: npt.NDArray[np.bool_]
    failed_in_round: npt.NDArray[np.int64]  # 0 for the initial failures, -1 never
    losses: npt.NDArray[np.float64]  # what each node lost on failed counterparties
    rounds: int


def threshold_cascade(exposures: npt.ArrayLike, buffer: npt.ArrayLike,
                      initially_failed: npt.ArrayLike, *, loss_given_default: float = 1.0
                      ) -> CascadeResult:
    """`exposures[i, j]`: what i loses (times `loss_given_default`) if j fails."""
    e = np.asarray(exposures, dtype=np.float64)
    b = np.asarray(buffer, dtype=np.float64)
    n = e.shape[0]
    if e.shape != (n, n) or b.shape != (n,) or (e < 0).any():
        raise ValueError("exposures must be a non-negative square matrix, buffer one per node")
    if not 0 <= loss_given_default <= 1:
        raise ValueError("loss_given_default is a fraction in [0, 1]")
    failed = np.zeros(n, bool)
    failed[np.asarray(initially_failed, dtype=np.int64)] = True
    when = np.where(failed, 0, -1)
    rounds = 0
    while True:
        losses = loss_given_default * (e @ failed.astype(np.float64))
        newly = ~failed & (losses > b)
        if not newly.any():
            return CascadeResult(failed, when, losses, rounds)
        rounds += 1
        failed |= newly
        when[newly] = rounds
