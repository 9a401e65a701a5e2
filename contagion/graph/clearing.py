"""Clearing payments in a network of obligations.

`clear` finds the greatest clearing vector of Eisenberg & Noe (2001), with the bankruptcy costs
of Rogers & Veraart (2013): a bank that defaults realises only `alpha` of its external assets
and `beta` of what it is paid (1 and 1: no cost, Eisenberg–Noe). Obligations outside the
network either share pro rata with the network's (`external="pro_rata"`, as in Eisenberg–Noe
and the systemicrisk package) or come first (`external="senior"`: they are paid in full before
any bank in the network is, out of what a defaulting bank realises after its costs).

Iteration from full payment downwards: the clearing map is monotone, so the sequence decreases
to the greatest clearing vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["ClearingResult", "clear"]

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClearingResult:
    payments: Vector  # what each bank pays on the obligations that share in clearing
    obligations: Vector  # what it owes on them
    recovery: Vector  # payments / obligations (1 where nothing is owed)
    defaulted: npt.NDArray[np.bool_]
    equity: Vector  # assets after clearing minus all obligations (negative when defaulted)
    rounds: int


def clear(liabilities: npt.ArrayLike, external_assets: npt.ArrayLike,
          external_liabilities: npt.ArrayLike | None = None, *,
          external: Literal["pro_rata", "senior"] = "pro_rata", alpha: float = 1.0,
          beta: float = 1.0, tolerance: float = 1e-13, max_rounds: int = 100_000
          ) -> ClearingResult:
    """`liabilities[i, j]`: what bank i owes bank j; `external_assets[i]`: i's assets outside
    the network (after any shock); `external_liabilities[i]`: what i owes outside it."""
    owed = np.asarray(liabilities, dtype=np.float64)
    n = owed.shape[0]
    if owed.shape != (n, n) or (owed < 0).any() or not np.isfinite(owed).all():
        raise ValueError("liabilities must be a square matrix of finite non-negative amounts")
    if np.diag(owed).any():
        raise ValueError("a bank cannot owe itself")
    assets = np.asarray(external_assets, dtype=np.float64)
    debts = (np.zeros(n) if external_liabilities is None
             else np.asarray(external_liabilities, dtype=np.float64))
    for name, vector in (("external_assets", assets), ("external_liabilities", debts)):
        if vector.shape != (n,) or not np.isfinite(vector).all() or (vector < 0).any():
            raise ValueError(f"{name} must be {n} finite non-negative amounts")
    if not (0 <= alpha <= 1 and 0 <= beta <= 1):
        raise ValueError("alpha and beta are recovery fractions in [0, 1]")
    interbank = owed.sum(axis=1)
    obligations = interbank + debts if external == "pro_rata" else interbank
    # what comes before the network's share: nothing when external debt shares pro rata
    senior = np.zeros(n) if external == "pro_rata" else debts
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(obligations[:, None] > 0, owed / obligations[:, None], 0.0)

    def pay(p: Vector) -> tuple[Vector, Vector, npt.NDArray[np.bool_]]:
        inflow = shares.T @ p
        solvent = assets - senior + inflow >= obligations
        # Rogers & Veraart (2013, Management Science 59(4)), the clearing map with default
        # costs: a defaulting bank pays alpha × its external assets + beta × what it is paid.
        # Senior external debt is paid first out of that, not out of the assets before the
        # costs: the network gets max(0, alpha e − d + beta inflow)
        costly = alpha * assets - senior + beta * inflow
        paid = np.where(solvent, obligations, np.clip(costly, 0.0, obligations))
        return paid, inflow, ~solvent

    p = obligations.copy()
    rounds = 0
    while True:
        rounds += 1
        nxt, inflow, defaulted = pay(p)
        if np.abs(nxt - p).max(initial=0.0) <= tolerance * max(1.0, obligations.max(initial=0)):
            p = nxt
            break
        if rounds >= max_rounds:
            raise RuntimeError(f"clearing did not converge in {max_rounds} rounds")
        p = nxt
    _, inflow, defaulted = pay(p)
    recovery = np.where(obligations > 0, p / np.where(obligations > 0, obligations, 1.0), 1.0)
    equity = assets + inflow - interbank - debts
    return ClearingResult(p, obligations, recovery, defaulted, equity, rounds)
