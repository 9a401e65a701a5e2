"""Alert levels with hysteresis: green, amber, red. A level rises as soon as the score crosses
its threshold, and falls back only once the score has stayed below the threshold minus a margin
for `cooldown` consecutive windows (then to the level the score itself is at), so a level does
not flicker around a threshold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LEVELS", "Hysteresis", "levels"]

LEVELS = ("green", "amber", "red")


@dataclass(frozen=True)
class Hysteresis:
    amber: float  # score at or above which the level is at least amber
    red: float  # at or above which it is red
    margin: float = 0.0  # how far below a threshold the score must fall to count as calm
    cooldown: int = 3  # consecutive calm windows before a level falls

    def __post_init__(self) -> None:
        # scores are >= 0: with margin >= amber no score is calm enough to leave amber
        if not (0 <= self.margin < self.amber < self.red and self.cooldown >= 1):
            raise ValueError("need 0 <= margin < amber < red and cooldown >= 1")


def levels(scores: Iterable[float], rule: Hysteresis) -> list[str]:
    """The level after each score of a series."""
    thresholds = (float("-inf"), rule.amber, rule.red)
    level, calm, out = 0, 0, []
    for score in scores:
        raw = 2 if score >= rule.red else 1 if score >= rule.amber else 0
        if raw >= level:
            level, calm = raw, 0
        elif score < thresholds[level] - rule.margin:
            calm += 1
            if calm >= rule.cooldown:
                level, calm = raw, 0
        else:
            calm = 0
        out.append(LEVELS[level])
    return out
