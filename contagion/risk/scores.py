"""Venue and ecosystem scores over the windows of a database.

Per venue and window: the anomaly score of its state vector against a rolling baseline of its
own earlier windows (the current one never included), as score = −log10(p-value), so 4 means
"this far from normal happens once in 10,000 windows". Per window, the ecosystem score is the
largest venue score weighed by how much that venue matters: 0.5 + 0.25 × the DebtRank of its
failure + 0.25 × the share of other venues its contagion paths reach. A venue that touches
nothing counts half; one whose failure spreads everywhere counts fully.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from contagion.risk.anomaly import anomaly_score
from contagion.risk.levels import Hysteresis, levels
from contagion.risk.state import features_of

__all__ = ["ScoreSettings", "ecosystem_scores", "venue_scores"]

MAX_SCORE = 50.0  # p-values below 1e-50 are all "certainly not normal"

VENUE_SCORES = pl.Schema({  # venue_scores' columns, also when there is nothing to score
    "snapshot_block": pl.UInt64(), "chain_id": pl.UInt64(), "venue": pl.String(),
    "venue_kind": pl.String(), "distance": pl.Float64(), "p_value": pl.Float64(),
    "score": pl.Float64(), "method": pl.String(), "baseline_windows": pl.Int64(),
    "top_feature": pl.String(),
    "features": pl.List(pl.Struct({"feature": pl.String(), "value": pl.Float64(),
                                   "baseline_median": pl.Float64(),
                                   "contribution": pl.Float64()})),
    "level": pl.String()})
ECOSYSTEM_SCORES = pl.Schema({"snapshot_block": pl.UInt64, "chain_id": pl.UInt64,
                              "score": pl.Float64, "driver": pl.String,
                              "venues_at_amber": pl.Int64, "level": pl.String})


@dataclass(frozen=True)
class ScoreSettings:
    baseline_windows: int = 40  # the rolling baseline: this many earlier windows
    min_windows: int = 8  # fewer earlier windows: no score yet
    levels: Hysteresis = field(default_factory=lambda: Hysteresis(amber=4.0, red=8.0,
                                                                  margin=1.0, cooldown=2))


def venue_scores(state: pl.DataFrame, settings: ScoreSettings = ScoreSettings()
                 ) -> pl.DataFrame:
    """One row per snapshot × venue: distance, p-value, score, level, the fit used and each
    feature's value, baseline median and contribution (they add up to distance²)."""
    rows: list[dict[str, object]] = []
    for (chain_id, venue), frame in state.sort("snapshot_block").group_by(
            ["chain_id", "venue"], maintain_order=True):
        kind = str(frame["venue_kind"][0])
        features = features_of(kind)
        names = [f.name for f in features]
        # a feature a window cannot define (no debt: no collateral ratio; an infinite value,
        # a logarithm of 0) counts as 0
        x = frame.select(pl.col(names).cast(pl.Float64)).to_numpy()
        x = np.where(np.isfinite(x), x, 0.0)
        floor = np.array([f.floor for f in features])
        direction = np.array([f.direction for f in features])
        blocks = frame["snapshot_block"].to_list()
        scores: list[float] = []
        for i, block in enumerate(blocks):
            base = x[max(0, i - settings.baseline_windows):i]
            result = anomaly_score(base, x[i], min_windows=settings.min_windows, floor=floor,
                                   direction=direction)
            score = float(min(max(-np.log10(max(result.p_value, 1e-300)), 0.0), MAX_SCORE))
            scores.append(score)
            median = np.median(base, axis=0) if len(base) else [None] * len(names)
            rows.append({
                "snapshot_block": block, "chain_id": chain_id, "venue": venue,
                "venue_kind": kind, "distance": result.distance, "p_value": result.p_value,
                "score": score, "method": result.method,
                "baseline_windows": result.baseline_windows,
                "top_feature": names[int(np.argmax(result.contributions))]
                if result.contributions.max(initial=0.0) > 0 else None,
                "features": [{"feature": n, "value": float(v),
                              "baseline_median": None if m is None else float(m),
                              "contribution": float(c)}
                             for n, v, m, c in zip(names, x[i], median, result.contributions,
                                                   strict=True)],
            })
        for row, level in zip(rows[-len(blocks):], levels(scores, settings.levels),
                              strict=True):
            row["level"] = level
    return pl.DataFrame(rows, schema=VENUE_SCORES)


def ecosystem_scores(scores: pl.DataFrame, importance: Mapping[tuple[int, str], float],
                     reach: Mapping[tuple[int, str], float],
                     settings: ScoreSettings = ScoreSettings()) -> pl.DataFrame:
    """One row per snapshot: the ecosystem score (see the module), the venue behind it, how
    many venues are at amber or above on their own, and the level with hysteresis.
    `importance` and `reach` are keyed by (snapshot, venue), both in [0, 1]."""
    if scores.is_empty():
        return pl.DataFrame(schema=ECOSYSTEM_SCORES)
    rows = []
    for (block,), frame in scores.sort("snapshot_block").group_by(["snapshot_block"],
                                                                   maintain_order=True):
        best, driver = 0.0, None
        for venue, score in zip(frame["venue"], frame["score"], strict=True):
            weight = 0.5 + 0.25 * importance.get((block, venue), 0.0) \
                + 0.25 * reach.get((block, venue), 0.0)
            if score * weight > best:
                best, driver = score * weight, venue
        rows.append({"snapshot_block": block, "chain_id": frame["chain_id"][0], "score": best,
                     "driver": driver,
                     "venues_at_amber": int((frame["level"] != "green").sum())})
    out = pl.DataFrame(rows, schema_overrides={"snapshot_block": pl.UInt64,
                                               "chain_id": pl.UInt64})
    if out.is_empty():
        return out
    return out.with_columns(level=pl.Series(levels(out["score"].to_list(), settings.levels)))
