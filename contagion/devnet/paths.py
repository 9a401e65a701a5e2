"""Exogenous paths for a scenario: the market price of each asset per block, what the oracles
report, implied vol and skew — and the list of what was injected where, for the manifest."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from contagion.devnet.scenario import (
    ASSETS,
    LstDepeg,
    OracleLag,
    PriceDrop,
    Replay,
    Scenario,
    ScenarioError,
    VolSpike,
    resolve_data_path,
)

__all__ = ["Injection", "ScenarioPaths", "build_paths", "load_replay_series"]

SECONDS_PER_YEAR = 365.0 * 86_400.0
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Injection:
    block_offset: int  # blocks after the scenario's first block
    kind: str
    detail: dict[str, object]


@dataclass
class ScenarioPaths:
    times: npt.NDArray[np.int64]  # unix seconds of each scenario block
    market: dict[str, Floats]  # USD price the wider market trades at (arbitrageurs' reference)
    oracle: dict[str, Floats]  # USD price the Chainlink feeds would report (market unless lagged)
    implied_vol: Floats
    risk_reversal: Floats
    injections: list[Injection] = field(default_factory=list)


def load_replay_series(replay: Replay, scenario_file: Path) -> tuple[Floats, Floats]:
    """Read (unix seconds, USD price) pairs, sorted by time."""
    path = resolve_data_path(replay.file, scenario_file)
    times: list[float] = []
    prices: list[float] = []
    if replay.format == "coingecko_csv":  # symbol,timestamp(ms),USD_price
        with path.open() as fh:
            for row in csv.DictReader(fh):
                times.append(float(row["timestamp"]) / 1000.0)
                prices.append(float(row["USD_price"]))
    elif replay.format == "stablesafe_json":  # {"data": [{"dt": iso, "c": close}, ...]}
        for candle in json.loads(path.read_text())["data"]:
            times.append(datetime.fromisoformat(candle["dt"].replace("Z", "+00:00")).timestamp())
            prices.append(float(candle["c"]))
    else:
        with path.open() as fh:
            for row in csv.DictReader(fh):
                times.append(float(row["timestamp"]))
                prices.append(float(row[replay.column]))
    if not times:
        raise ScenarioError(f"replay file {path} holds no prices")
    t, p = np.asarray(times), np.asarray(prices)
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ScenarioError(f"replay file {path} has non-positive or non-numeric prices")
    order = np.argsort(t, kind="stable")
    return t[order], p[order]


def _ramp(n_blocks: int, start: int, length: int) -> Floats:
    """0 before start, rising linearly to 1 over `length` blocks, then 1."""
    b = np.arange(n_blocks, dtype=np.float64)
    return np.clip((b - start + 1) / length, 0.0, 1.0)


def build_paths(scenario: Scenario, scenario_file: Path, first_time: int) -> ScenarioPaths:
    n, dt = scenario.blocks, scenario.seconds_per_block
    times = first_time + dt * np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(scenario.seed)
    # Correlated Gaussian shocks for ETH and BTC, independent for the rest.
    z = rng.standard_normal((len(ASSETS), n))
    rho = scenario.correlation
    z[1] = rho * z[0] + np.sqrt(1 - rho**2) * z[1]
    market: dict[str, Floats] = {}
    for i, asset in enumerate(ASSETS):
        spec = scenario.prices.get(asset)  # type: ignore[call-overload]
        if spec is None:
            continue
        if spec.gbm is not None:
            g, step = spec.gbm, dt / SECONDS_PER_YEAR
            increments = (g.drift - 0.5 * g.vol**2) * step + g.vol * np.sqrt(step) * z[i]
            increments[0] = 0.0
            market[asset] = g.start * np.exp(np.cumsum(increments))
        else:
            assert spec.replay is not None
            t, p = load_replay_series(spec.replay, scenario_file)
            start = spec.replay.start.timestamp()
            wanted = start + dt * np.arange(n, dtype=np.float64)
            if wanted[0] < t[0] or wanted[-1] > t[-1]:
                raise ScenarioError(
                    f"prices.{asset}.replay covers {datetime.utcfromtimestamp(t[0]):%Y-%m-%d} to "
                    f"{datetime.utcfromtimestamp(t[-1]):%Y-%m-%d}, but {n} blocks of {dt}s from "
                    f"{spec.replay.start:%Y-%m-%d %H:%M} need until "
                    f"{datetime.utcfromtimestamp(wanted[-1]):%Y-%m-%d %H:%M}")
            market[asset] = np.interp(wanted, t, p)
    if "stETH" not in market:
        market["stETH"] = market["ETH"].copy()  # at peg unless replayed or depegged
    if "GOV" not in market:
        market["GOV"] = np.full(n, 10.0)

    iv = np.full(n, scenario.volatility.implied_vol)
    rr = np.full(n, scenario.volatility.risk_reversal)
    injections: list[Injection] = []
    lags: list[OracleLag] = []
    for shock in scenario.shocks:
        ramp = _ramp(n, shock.start_block, shock.blocks)
        if isinstance(shock, PriceDrop):
            factor = np.exp(np.log(1 - shock.pct / 100) * ramp)
            targets = [shock.asset] + (["stETH"] if shock.asset == "ETH" else [])
            for asset in targets:
                market[asset] = market[asset] * factor
        elif isinstance(shock, LstDepeg):
            depth = ramp.copy()
            if shock.recover_blocks:
                end = shock.start_block + shock.blocks
                depth -= _ramp(n, end, shock.recover_blocks)
            market["stETH"] = market["stETH"] * (1 - shock.pct / 100 * depth)
        elif isinstance(shock, VolSpike):
            up = ramp.copy()
            up -= _ramp(n, shock.start_block + shock.blocks + shock.hold_blocks, shock.blocks)
            iv = iv + (shock.implied_vol - scenario.volatility.implied_vol) * up
            rr = rr + (shock.risk_reversal - scenario.volatility.risk_reversal) * up
        else:
            lags.append(shock)
        injections.append(Injection(shock.start_block, shock.type,
                                    shock.model_dump(mode="json", exclude={"type"})))

    oracle = {asset: path.copy() for asset, path in market.items()}
    for lag in lags:
        frozen_at = max(lag.start_block - 1, 0)
        end = min(lag.start_block + lag.blocks, n)
        targets = [lag.asset] + (["stETH"] if lag.asset == "ETH" else [])
        for asset in targets:
            oracle[asset][lag.start_block:end] = market[asset][frozen_at]
    return ScenarioPaths(times, market, oracle, iv, rr, injections)
