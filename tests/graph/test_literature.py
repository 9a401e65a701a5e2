"""The contagion engine against published values: the NetworkRiskMeasures R package's examples,
the systemicrisk package's clearing example, and Barucca's Eisenberg–Noe exercise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from contagion.graph.clearing import clear
from contagion.graph.measures import (
    communicability,
    impact_diffusion,
    impact_fluidity,
    impact_matrix,
    impact_susceptibility,
    vulnerability_matrix,
)

# NetworkRiskMeasures, tests/testthat/test_1_risk_com.R: nodes A, B, C, E, F, D; the
# liabilities matrix (column-major in R) and buffers; assets = its transpose.
NAMES = ["A", "B", "C", "E", "F", "D"]
LIABILITIES_COLUMNS: list[list[float]] = [
    [0, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 2], [0, 3, 0, 0, 2, 2],
    [0, 0, 4, 0, 5, 0], [10, 2, 0, 0, 5, 0], [2, 0, 0, 0, 0, 0]]
BUFFER6 = [10, 2, 2, 1, 10, 4]
# its published impact matrix (capped at 1), column-major as well
IMPACT6_COLUMNS: list[list[float]] = [
    [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 1, 1],
    [0, 0, 1, 0, 1, 0], [1, 0.2, 0, 0, 0.5, 0], [0.5, 0, 0, 0, 0, 0]]
# and the communicability of the binary impact matrix
COMMUNICABILITY6 = [1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1.5, 0.833333333333333,
                    0.5, 1, 1, 1.5, 0.666666666666667, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]

# The 3-node example of the package's documentation: assets rows a, b, c and buffers.
ASSETS3 = [[0, 1, 0], [10, 0, 3], [3, 2, 0]]
BUFFER3 = [2, 5, 2]


def columns(cols: Sequence[Sequence[float]]) -> np.ndarray:
    return np.array(cols, dtype=float).T


def test_vulnerability_and_impact_matrices_of_the_six_node_example() -> None:
    assets = columns(LIABILITIES_COLUMNS).T
    impact = columns(IMPACT6_COLUMNS)
    assert np.allclose(impact_matrix(assets, BUFFER6), impact)
    assert np.allclose(vulnerability_matrix(assets, BUFFER6), impact.T)
    assert np.array_equal(impact_matrix(assets, BUFFER6, binary=True), (impact >= 1) * 1.0)


def test_communicability_of_the_six_node_example() -> None:
    assets = columns(LIABILITIES_COLUMNS).T
    got = communicability(impact_matrix(assets, BUFFER6, binary=True))
    assert np.allclose(got, np.array(COMMUNICABILITY6).reshape(6, 6).T)


def test_impact_susceptibility_fluidity_and_diffusion_of_the_three_node_example() -> None:
    assert np.allclose(impact_susceptibility(ASSETS3, BUFFER3), [0, 1, 1.25])
    assert impact_fluidity(ASSETS3, BUFFER3) == pytest.approx(0.75)
    assert np.allclose(impact_diffusion(ASSETS3, BUFFER3).total, [1.25, 1.5, 0])


def test_clearing_vector_of_the_systemicrisk_example() -> None:
    """systemicrisk's default_cascade example: x = 0.5, every bank owes each other 0.5,
    external assets (1/2, 5/8, 3/4) and external liabilities (3/2, 1/2, 1/2), sharing pro
    rata."""
    x = 0.5
    liabilities = columns([[0, x, 1 - x], [1 - x, 0, x], [x, 1 - x, 0]])
    result = clear(liabilities, [1 / 2, 5 / 8, 3 / 4], [3 / 2, 1 / 2, 1 / 2])
    assert np.allclose(result.payments, [1.473214, 1.419643, 1.5], atol=1e-6)
    assert result.defaulted.tolist() == [True, True, False]


def test_barucca_exercise_two() -> None:
    """External assets shocked by 10 %, external liabilities senior: interbank payments
    (3, 3, 2) and bank 1 recovers 0.75."""
    liabilities = [[0, 4, 0], [0, 0, 3], [2, 0, 0]]
    assets = np.array([20, 20, 10]) * 0.9
    result = clear(liabilities, assets, [17, 18, 8], external="senior")
    assert np.allclose(result.payments, [3, 3, 2])
    assert result.recovery[0] == pytest.approx(0.75)
    assert result.defaulted.tolist() == [True, False, False]


def test_bankruptcy_costs_with_senior_external_debt() -> None:
    """Rogers & Veraart (2013): a defaulting bank realises alpha of its external assets and beta
    of what it is paid. With external debt senior, that is paid first out of what is realised,
    and the network gets what is left: max(0, alpha e - d + beta inflow)."""
    liabilities = np.array([[0, 20.0], [0, 0]])  # bank 0 owes bank 1 20 and 8 outside
    result = clear(liabilities, [20.0, 0.0], [8.0, 0.0], external="senior", alpha=0.5)
    assert result.payments.tolist() == [2.0, 0.0]  # 0.5 × 20 realised, 8 of it to the seniors
    assert result.defaulted.tolist() == [True, False]
    poorer = clear(liabilities, [10.0, 0.0], [8.0, 0.0], external="senior", alpha=0.5)
    assert poorer.payments.tolist() == [0.0, 0.0]  # 5 realised < 8 senior: nothing left
    # what the bank is paid counts at beta, after the seniors too
    chain = np.array([[0, 20.0, 0], [0, 0, 20.0], [0, 0, 0]])
    paid = clear(chain, [20.0, 4.0, 0.0], [8.0, 8.0, 0.0], external="senior", alpha=0.5,
                 beta=0.5)
    assert paid.payments.tolist() == [2.0, 0.0, 0.0]  # bank 1: 0.5 × 4 + 0.5 × 2 < 8
    # without costs the senior and the plain clearing agree with Eisenberg–Noe
    assert clear(liabilities, [20.0, 0.0], [8.0, 0.0], external="senior").payments.tolist() \
        == [12.0, 0.0]
