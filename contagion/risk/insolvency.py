"""Probability of insolvency: Monte Carlo over correlated price paths, each run through the DeFi
cascade, so the liquidations a move sets off and the prices they push further down count too,
not only whether a price crosses a level.

Each token moves as a driftless geometric Brownian motion over the horizon: log-return
σ√t·Z − σ²t/2 (the expected price is today's), the Z correlated through the Cholesky factor of
the tokens' correlation matrix (Glasserman, Monte Carlo Methods in Financial Engineering, 2003,
§2.3). A venue is insolvent on a path when the path leaves it more bad debt than it can absorb
(`fct_venue_balance_sheet.bad_debt_buffer_usd`: the bad debt is already net of each position's
own collateral, so a lending venue has its reserves to absorb it, a perps venue its LP liquidity).
The lending venues' bad debt is the cascade's; the derivatives venues' (perps positions, written
options: `contagion.risk.derivatives`) is their positions' shortfall at the prices the cascade
ends with on that path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contagion.graph.cascade import Ecosystem, cascade_batch
from contagion.risk.derivatives import DerivativeBook

__all__ = ["Insolvency", "insolvency_probability"]

Matrix = npt.NDArray[np.float64]
DAYS_PER_YEAR = 365.0  # crypto trades every day: an annualised vol is over 365 of them
DUST_USD = 1.0  # less bad debt than this is rounding, not insolvency


@dataclass(frozen=True)
class Insolvency:
    venues: list[str]
    probability: dict[str, float]  # venue -> share of paths leaving bad debt above its buffer
    stderr: dict[str, float]  # the probability's Monte Carlo standard error
    mean_bad_debt_usd: dict[str, float]
    q99_bad_debt_usd: dict[str, float]  # the 99 % quantile of bad debt over the paths
    horizon_days: float
    paths: int
    seed: int


def _factor(correlation: Matrix) -> Matrix:
    """L with L Lᵀ = correlation: the Cholesky factor, or, when the matrix is not positive
    definite (an estimate can be indefinite; a correlation of ±1 is singular), the factor of the
    nearest positive semidefinite matrix — negative eigenvalues clipped to 0 (Higham 1988) —
    with its rows rescaled so that every token keeps unit variance."""
    try:
        factor = np.linalg.cholesky(correlation)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(correlation)
        clipped = vectors * np.sqrt(np.clip(values, 0.0, None))
        # clipping only adds to the diagonal, so no row is zero
        factor = clipped / np.linalg.norm(clipped, axis=1, keepdims=True)
    return np.asarray(factor, dtype=np.float64)


def _correlation(correlation: npt.ArrayLike | None, n: int) -> Matrix:
    if correlation is None:
        return np.eye(n)
    matrix = np.asarray(correlation, dtype=np.float64)
    if matrix.shape != (n, n):
        raise ValueError(f"correlation must be {n} × {n} (the tokens of vols, in that order), "
                         f"not {matrix.shape}")
    if not np.isfinite(matrix).all() or (np.abs(matrix) > 1 + 1e-12).any():
        raise ValueError("correlations must be finite and between -1 and 1")
    if not np.allclose(matrix, matrix.T) or not np.allclose(np.diag(matrix), 1.0):
        raise ValueError("a correlation matrix must be symmetric with ones on its diagonal")
    return matrix


def insolvency_probability(eco: Ecosystem, *, vols: Mapping[str, float],
                           correlation: npt.ArrayLike | None = None, horizon_days: float = 1.0,
                           paths: int = 2000, seed: int = 0,
                           buffers_usd: Mapping[str, float] | None = None,
                           derivatives: DerivativeBook | None = None) -> Insolvency:
    """Per venue, the probability that `horizon_days` of price moves leave it more bad debt than
    `buffers_usd` (default 0; bad debt under $1 never counts), with the mean and the 99 %
    quantile of that bad debt. `vols`: token → annualised volatility (over 365 days); tokens
    with vol 0, or absent, keep their price. `correlation`: between the tokens of `vols`, in
    that order (None: independent); one that is not positive definite is replaced by the
    nearest positive semidefinite matrix (negative eigenvalues clipped to 0). `derivatives`:
    the perps positions and written options, valued at each path's final prices (every token
    of theirs needs a price in the ecosystem). The same seed gives the same answer."""
    tokens = list(vols)
    sigma = np.array([vols[t] for t in tokens], dtype=np.float64)
    if not np.isfinite(sigma).all() or (sigma < 0).any():
        raise ValueError("vols must be finite and non-negative")
    unknown = [t for t in tokens if t not in eco.prices]
    if unknown:
        raise ValueError(f"vols: no price for {unknown[0]}: it cannot move")
    if not np.isfinite(horizon_days) or horizon_days < 0:
        raise ValueError("horizon_days must be finite and non-negative")
    if paths < 1:
        raise ValueError("paths must be at least 1")
    factor = _factor(_correlation(correlation, len(tokens)))
    draws = np.random.default_rng(seed).standard_normal((paths, len(tokens))) @ factor.T
    years = horizon_days / DAYS_PER_YEAR
    moving = sigma > 0
    log_return = sigma * np.sqrt(years) * draws - sigma**2 * years / 2
    outcome = cascade_batch(eco, np.expm1(log_return[:, moving]),
                            [t for t, m in zip(tokens, moving, strict=True) if m])
    bad, venues = outcome.bad_debt_usd, list(outcome.venues)
    if derivatives is not None and (derivatives.perps or derivatives.options):
        unpriced = sorted(derivatives.tokens() - set(eco.prices))
        if unpriced:
            raise ValueError(f"derivatives: no price for {unpriced[0]}: the position cannot be "
                             "valued (DerivativeBook.priced leaves such positions out)")
        column = {t: k for k, t in enumerate(outcome.tokens)}
        final = {t: outcome.prices[:, column[t]] if t in column else eco.prices[t]
                 for t in derivatives.tokens()}
        extra = derivatives.bad_debt_usd(final, paths)
        for k, venue in enumerate(derivatives.venues):
            if venue in venues:
                bad[:, venues.index(venue)] += extra[:, k]
            else:
                venues.append(venue)
                bad = np.column_stack([bad, extra[:, k]])
    buffers = buffers_usd or {}
    limit = np.maximum(np.array([buffers.get(v, 0.0) for v in venues]), DUST_USD)
    probability = (bad > limit).mean(axis=0)
    stderr = np.sqrt(probability * (1 - probability) / paths)
    mean, q99 = bad.mean(axis=0), np.quantile(bad, 0.99, axis=0)

    def per_venue(values: Matrix) -> dict[str, float]:
        return {v: float(x) for v, x in zip(venues, values, strict=True)}

    return Insolvency(venues, per_venue(probability), per_venue(stderr), per_venue(mean),
                      per_venue(q99), horizon_days, paths, seed)
