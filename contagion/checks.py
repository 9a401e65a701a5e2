"""The blocking checks that are not SQL files, said once: Dagster reports them as asset checks,
and the feed publisher re-runs them (with the SQL checks) on the database it is about to sign,
refusing when any fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from contagion.policy.model import Policy
from contagion.warehouse import DEFAULT_MAX_PRICE_AGE_SECONDS, load_checks, run_checks, table_exists

__all__ = ["Outcome", "actions_carry_evidence", "blocking_failures", "scores_add_up",
           "stress_losses_consistent"]


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)


def scores_add_up(scores: pl.DataFrame) -> Outcome:
    """Every venue scored every window, p-values in [0, 1], contributions summing to distance²."""
    gaps = [abs(r["distance"] ** 2 - sum(f["contribution"] for f in r["features"]))
            for r in scores.iter_rows(named=True) if r["method"] != "none"]
    per_window = scores.group_by("snapshot_block").len()["len"].unique().to_list()
    passed = scores.is_empty() or (bool(scores["p_value"].is_between(0, 1).all())
                                   and max(gaps, default=0.0) < 1e-6 and len(per_window) == 1)
    return Outcome("scores_add_up", passed, {"largest_gap": max(gaps, default=0.0),
                                             "venues_per_window": str(per_window)})


def actions_carry_evidence(recs: pl.DataFrame, policy: Policy) -> Outcome:
    """Every action beyond watch cut the simulated loss by the policy's minimum and names its
    paths."""
    acted = recs.filter(pl.col("action") != "watch")
    weak = [f"{r['snapshot_block']}:{r['venue']}:{r['action']}"
            for r in acted.iter_rows(named=True)
            if r["loss_cut_usd"] < policy.min_loss_cut_usd or '"paths"' not in r["evidence"]]
    return Outcome("actions_carry_evidence", not weak,
                   {"actions": acted.height, "weak": ", ".join(weak[:10])})


def stress_losses_consistent(stress: Sequence[dict[str, Any]]) -> Outcome:
    """Every stress scenario's total loss is at least its initial loss, amplification ≥ 1."""
    broken = [r["scenario"] for r in stress
              if r["total_loss_usd"] < r["initial_loss_usd"] - 1e-6
              or (r["amplification"] is not None and r["amplification"] < 1 - 1e-9)]
    return Outcome("stress_losses_consistent", not broken,
                   {"scenarios": len(stress), "inconsistent": ", ".join(broken[:10])})


def _table(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame | None:
    return con.sql(f"select * from {name}").pl() if table_exists(con, name) else None


def blocking_failures(con: duckdb.DuckDBPyConnection, policy: Policy, *,
                      max_price_age_seconds: int = DEFAULT_MAX_PRICE_AGE_SECONDS) -> list[str]:
    """Why the database must not be published: every blocking check that fails, and every mart
    those checks need that is missing. Empty when all pass."""
    reasons = [f"check {r.check.name} failed on {r.failing_rows} row(s)"
               for r in run_checks(con, [c for c in load_checks() if c.severity == "error"],
                                   max_price_age_seconds=max_price_age_seconds)
               if not r.passed]
    stress = _table(con, "fct_stress_results")
    scores = _table(con, "fct_anomaly_scores")
    recs = _table(con, "fct_freeze_recommendations")
    missing = [n for n, t in [("fct_stress_results", stress), ("fct_anomaly_scores", scores),
                              ("fct_freeze_recommendations", recs)] if t is None]
    reasons += [f"mart {name} is missing (write the contagion and early-warning marts)"
                for name in missing]
    outcomes = []
    if stress is not None:
        outcomes.append(stress_losses_consistent(stress.to_dicts()))
    if scores is not None:
        outcomes.append(scores_add_up(scores))
    if recs is not None:
        outcomes.append(actions_carry_evidence(recs, policy))
    reasons += [f"check {o.name} failed: {o.metadata}" for o in outcomes if not o.passed]
    return reasons
