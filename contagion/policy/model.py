"""The policy file: risk rules, actions and guardrails, validated strictly (a mistyped field, a
number that is not finite, a key given twice: each an error that names it). The bundled
`default.yaml` documents every field."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contagion.risk.state import FEATURES
from contagion.schema import describe_validation_error, read_yaml

__all__ = ["ACTIONS", "BUNDLED_POLICIES", "FEATURE_NAMES", "Guardrails", "Policy", "PolicyError",
           "Rule", "load_policy"]

BUNDLED_POLICIES = Path(__file__).parent
ACTIONS = ("normal", "watch", "raise_margin", "freeze_market", "halt")  # mildest first
Action = Literal["normal", "watch", "raise_margin", "freeze_market", "halt"]
Level = Literal["green", "amber", "red"]
# what `feature_above` can name: every feature of a venue's state vector, of any kind
FEATURE_NAMES = tuple(sorted({f.name for kind in FEATURES.values() for f in kind}))


def _named(unknown: Iterable[str], known: Iterable[str]) -> str:
    """Unknown names for a message, each with the closest known one as a hint."""
    choices = list(known)
    return ", ".join(f"{name!r} (did you mean {close[0]!r}?)" if (
        close := difflib.get_close_matches(name, choices, n=1)) else repr(name)
        for name in unknown)


class PolicyError(ValueError):
    """A policy file is missing or invalid; the message names the field and the problem."""


class _Strict(BaseModel):
    # NaN or infinity is never meant: `.nan` in feature_above is a rule that never fires,
    # `.inf` in min_loss_cut_usd a policy that never acts
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Condition(_Strict):
    venue_level: Level | None = None  # the anomalous venue's level, at least
    ecosystem_level: Level | None = None  # the ecosystem's level, at least
    feature_above: dict[str, float] = Field(default_factory=dict)  # the venue's features
    # normal only: the venue and the ecosystem have been green this many windows in a row
    calm_windows: int | None = Field(default=None, ge=1)

    @field_validator("feature_above")
    @classmethod
    def _known_features(cls, value: dict[str, float]) -> dict[str, float]:
        # an unknown feature would never be above anything: the rule would silently never fire
        unknown = sorted(set(value) - set(FEATURE_NAMES))
        if unknown:
            raise ValueError(f"unknown feature {_named(unknown, FEATURE_NAMES)}; the features "
                             f"are {', '.join(FEATURE_NAMES)}")
        return value


class RaiseMarginParams(_Strict):
    threshold_cut: float = Field(gt=0, lt=1)  # liquidation threshold lowered by this much


class Rule(_Strict):
    name: str
    doc: str = Field(min_length=1)
    when: Condition
    action: Action
    params: RaiseMarginParams | None = None

    @model_validator(mode="after")
    def _params(self) -> Rule:
        if (self.action == "raise_margin") != (self.params is not None):
            raise ValueError("raise_margin needs params {threshold_cut: …}; other actions "
                             "take none")
        if (self.action == "normal") != (self.when.calm_windows is not None):
            raise ValueError("normal (lifting what is in force) needs when {calm_windows: N}, "
                             "and only normal takes calm_windows")
        if self.action == "normal" and (self.when.venue_level or self.when.ecosystem_level
                                        or self.when.feature_above):
            raise ValueError("normal is conditioned on calm_windows alone")
        return self


class Guardrails(_Strict):
    max_threshold_cut: float = Field(default=0.10, gt=0, lt=1)
    cooldown_windows: int = Field(default=4, ge=0)
    exempt_assets: list[str] = Field(default_factory=list)  # symbols


class Policy(_Strict):
    version: Literal[1]
    horizon_windows: int = Field(ge=1, le=10_000)
    stress_quantile: float = Field(gt=0.5, lt=1)
    min_transmission: float = Field(ge=0, le=1)
    min_loss_cut_usd: float = Field(ge=0)
    rules: list[Rule] = Field(min_length=1)
    guardrails: Guardrails = Guardrails()

    @model_validator(mode="after")
    def _unique(self) -> Policy:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique, got {names}")
        return self

    def check_against(self, symbols: Iterable[str], where: str = "the registry") -> None:
        """Refuse a policy naming an asset the network does not have: the file alone cannot
        tell that `exempt_assets: [USCD]` is a typo, and with it USDC would not be exempt.
        Called where the policy meets a registry (the early-warning marts)."""
        known = sorted(set(symbols))
        unknown = [s for s in self.guardrails.exempt_assets if s not in known]
        if unknown:
            raise PolicyError(f"policy guardrails.exempt_assets: unknown token "
                              f"{_named(unknown, known)}: not in {where} (its tokens: "
                              f"{', '.join(known)})")


def _duplicate_key(node: yaml.Node | None, where: tuple[str, ...] = ()
                   ) -> tuple[str, int] | None:
    """The first key given twice in one mapping (dotted, as the validation errors name fields)
    and its line: YAML keeps the last of the two without a word."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = (*where, str(key.value))
            if (key.tag, key.value) in seen:
                return ".".join(name), key.start_mark.line + 1
            seen.add((key.tag, key.value))
            if found := _duplicate_key(value, name):
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            if found := _duplicate_key(item, (*where, str(index))):
                return found
    return None


def load_policy(name_or_path: str | Path = "default") -> Policy:
    data, path = read_yaml(name_or_path, BUNDLED_POLICIES, "policy", PolicyError)
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy is a mapping of fields, got {type(data).__name__}")
    # parsed fine above, so composing it again cannot fail
    if duplicate := _duplicate_key(yaml.compose(path.read_text(), Loader=yaml.SafeLoader)):
        key, line = duplicate
        raise PolicyError(f"{path}: duplicate key {key!r} (line {line}): a field is given once")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(describe_validation_error(path, "policy", exc)) from None
