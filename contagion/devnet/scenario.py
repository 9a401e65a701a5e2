"""Scenario files: a declarative YAML description of who is in the world and what happens to it.

The schema is strict so a mistyped field is an error, not a silent default; every error names
the field and the problem. The format is documented in README.md ("Scenario files").
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contagion.schema import describe_validation_error, read_yaml

__all__ = [
    "BUNDLED_SCENARIOS",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "resolve_data_path",
]

BUNDLED_SCENARIOS = Path(__file__).parent / "scenarios"
ASSETS = ("ETH", "BTC", "stETH", "USDC", "GOV")
Asset = Literal["ETH", "BTC", "stETH", "USDC", "GOV"]
Range = Annotated[list[float], Field(min_length=2, max_length=2)]


class ScenarioError(ValueError):
    """A scenario file is missing or invalid; the message names the field and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered(name: str, pair: list[float]) -> None:
    if pair[0] > pair[1] or pair[0] < 0:
        raise ValueError(f"{name} must be [low, high] with 0 <= low <= high, got {pair}")


# -- accounts ------------------------------------------------------------------------------------
class Loopers(_Strict):
    """Stake ETH into the LST, post it as collateral, borrow WETH, restake, repeat."""

    count: int = Field(ge=0)
    capital_eth: Range = [5.0, 50.0]
    loops: int = Field(default=3, ge=1, le=8)
    target_ltv: Range = [0.6, 0.8]  # share of each venue's max LTV used per loop
    venues: list[Literal["aave_v3", "compound_v3", "morpho_blue"]] = [
        "aave_v3", "compound_v3", "morpho_blue"]


class BasisTraders(_Strict):
    """Supply USDC on Aave, post the aUSDC as perps margin, short ETH against spot holdings."""

    count: int = Field(ge=0)
    capital_usd: Range = [10_000.0, 60_000.0]
    leverage: Range = [2.0, 6.0]
    margin: Literal["aUSDC", "USDC", "mixed"] = "aUSDC"


class OptionWriters(_Strict):
    count: int = Field(ge=0)
    capital_usd: Range = [20_000.0, 300_000.0]
    collateral: list[Literal["USDC", "aUSDC", "WETH"]] = ["USDC", "aUSDC", "WETH"]
    target_utilisation: Range = [0.5, 0.9]  # share of collateral the margin requirement may use


class Borrowers(_Strict):
    count: int = Field(ge=0)
    capital_usd: Range = [5_000.0, 200_000.0]
    collateral: list[Literal["WETH", "WBTC", "stETH", "aWETH"]] = ["WETH", "WBTC"]
    target_ltv: Range = [0.4, 0.8]


class OptionBuyers(_Strict):
    count: int = Field(ge=0)
    capital_usd: Range = [5_000.0, 50_000.0]


class LiquidityProviders(_Strict):
    """Fund both AMMs, the lending markets and the perps pool."""

    count: int = Field(ge=0)
    capital_usd: Range = [2_000_000.0, 6_000_000.0]


class Liquidators(_Strict):
    count: int = Field(ge=0)
    capital_usd: Range = [2_000_000.0, 5_000_000.0]


class Arbitrageurs(_Strict):
    count: int = Field(ge=0)
    capital_usd: Range = [500_000.0, 2_000_000.0]


class AccountsSpec(_Strict):
    loopers: Loopers = Loopers(count=0)
    basis_traders: BasisTraders = BasisTraders(count=0)
    option_writers: OptionWriters = OptionWriters(count=0)
    borrowers: Borrowers = Borrowers(count=0)
    option_buyers: OptionBuyers = OptionBuyers(count=0)
    liquidity_providers: LiquidityProviders = LiquidityProviders(count=0)
    liquidators: Liquidators = Liquidators(count=0)
    arbitrageurs: Arbitrageurs = Arbitrageurs(count=0)

    @model_validator(mode="after")
    def _ranges(self) -> AccountsSpec:
        for name in type(self).model_fields:
            group = getattr(self, name)
            for field_name in type(group).model_fields:
                value = getattr(group, field_name)
                if field_name != "venues" and isinstance(value, list) and \
                        all(isinstance(v, float) for v in value):
                    _ordered(f"{name}.{field_name}", value)
        return self

    @property
    def total(self) -> int:
        return sum(getattr(self, n).count for n in type(self).model_fields)


# -- exogenous paths -----------------------------------------------------------------------------
class Gbm(_Strict):
    """Geometric Brownian motion; drift and vol annualised (0.6 = 60%)."""

    start: float = Field(gt=0)
    vol: float = Field(default=0.0, ge=0, le=10)
    drift: float = 0.0


class Replay(_Strict):
    """A real price path read from a file, mapped onto block times from `start`.

    `file` is relative to the scenario file, or `real:<path>` under the shared real-data folder
    ($CONTAGION_REAL_DATA, default ../shared/data/real beside the project)."""

    file: str
    format: Literal["coingecko_csv", "stablesafe_json", "csv"]
    start: datetime
    column: str = "price"  # for format "csv": columns timestamp (unix s) and this one


class AssetPath(_Strict):
    gbm: Gbm | None = None
    replay: Replay | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AssetPath:
        if (self.gbm is None) == (self.replay is None):
            raise ValueError("give exactly one of gbm or replay")
        return self


class VolSpec(_Strict):
    implied_vol: float = Field(default=0.6, gt=0, le=10)  # ETH ATM IV, annualised
    risk_reversal: float = Field(default=-0.02, ge=-2, le=2)  # 25-delta call IV minus put IV


class _ShockBase(_Strict):
    start_block: int = Field(ge=0)
    blocks: int = Field(default=1, ge=1)


class PriceDrop(_ShockBase):
    type: Literal["price_drop"]
    asset: Asset
    pct: float = Field(gt=0, lt=100)


class LstDepeg(_ShockBase):
    """The LST's market price falls below its redemption value (stETH/ETH < 1)."""

    type: Literal["lst_depeg"]
    pct: float = Field(gt=0, lt=100)
    recover_blocks: int | None = Field(default=None, ge=1)


class VolSpike(_ShockBase):
    """Implied vol and skew move first; a scripted crash typically follows."""

    type: Literal["vol_spike"]
    implied_vol: float = Field(gt=0, le=10)
    risk_reversal: float = Field(ge=-2, le=2)
    hold_blocks: int = Field(default=200, ge=0)


class OracleLag(_ShockBase):
    """The asset's Chainlink feed stops following the market for `blocks` blocks, then
    catches up: the AMM (kept at the market price by arbitrageurs) runs ahead of the oracle."""

    type: Literal["oracle_lag"]
    asset: Asset


Shock = Annotated[PriceDrop | LstDepeg | VolSpike | OracleLag, Field(discriminator="type")]


class OracleSpec(_Strict):
    """Chainlink push rules: a new round when the price moves by the deviation threshold or
    when the heartbeat has passed."""

    deviation_bps: int = Field(default=50, ge=0, le=10_000)
    heartbeat_seconds: int = Field(default=3600, ge=1)


class Scenario(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    blocks: int = Field(ge=1, le=1_000_000)
    seconds_per_block: int = Field(default=12, ge=1, le=86_400)
    start_time: datetime | None = None  # default: right after the chain's latest block
    accounts: AccountsSpec
    prices: dict[Asset, AssetPath]
    volatility: VolSpec = VolSpec()
    correlation: float = Field(default=0.7, ge=-1, le=1)  # between the GBM shocks of ETH and BTC
    oracle: OracleSpec = OracleSpec()
    shocks: list[Shock] = Field(default_factory=list)
    # Probability per block that each active agent acts (rebalances, trades); keeps flow steady.
    activity: float = Field(default=0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        missing = [a for a in ("ETH", "BTC", "USDC") if a not in self.prices]
        if missing:
            raise ValueError(f"prices must define {', '.join(missing)} (stETH and GOV default "
                             "to following ETH and a flat 10 USD)")
        for i, shock in enumerate(self.shocks):
            if shock.start_block >= self.blocks:
                raise ValueError(f"shocks[{i}].start_block {shock.start_block} is not before "
                                 f"the end of the scenario ({self.blocks} blocks)")
        return self


def load_scenario(name_or_path: str | Path) -> tuple[Scenario, Path]:
    """Load a bundled scenario by name or a YAML file; returns it with the file it came from."""
    data, path = read_yaml(name_or_path, BUNDLED_SCENARIOS, "scenario", ScenarioError)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of fields, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data), path
    except ValidationError as exc:
        raise ScenarioError(describe_validation_error(path, "scenario", exc)) from None


def real_data_dir() -> Path:
    env = os.environ.get("CONTAGION_REAL_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


def resolve_data_path(ref: str, scenario_file: Path) -> Path:
    if ref.startswith("real:"):
        path = real_data_dir() / ref.removeprefix("real:")
        if not path.exists():
            raise ScenarioError(f"replay data {path} not found: this scenario replays real "
                                "prices from the shared data folder; set CONTAGION_REAL_DATA to "
                                "the folder holding prices/")
        return path
    path = (scenario_file.parent / ref).resolve()
    if not path.exists():
        raise ScenarioError(f"replay file {path} not found (relative to {scenario_file})")
    return path
