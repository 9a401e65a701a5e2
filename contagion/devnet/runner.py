"""Run a scenario block by block: oracles push, arbitrageurs align the AMMs with the market,
agents act on chain, liquidators liquidate when the contracts allow it and it pays.

Everything an agent decides comes from the scenario's paths (what the market knows) and from
the chain (one multicall of health checks and reserves per block); every action is a real
transaction. Ground truth of harm is read back from the chain's events at the end.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_abi import decode
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contagion.chain.rpc import RpcClient
from contagion.devnet.base import usd_feed_answer
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.devnet.paths import ScenarioPaths, build_paths
from contagion.devnet.scenario import Scenario, ScenarioError
from contagion.devnet.world import Ecosystem, ecosystem_from_registry
from contagion.protocols import aave_v3, compound_v3, gmx_v1, morpho_blue, opyn_gamma
from contagion.protocols.spec import EventSpec
from contagion.registry import load_registry

__all__ = ["RunResult", "run_scenario"]

MAX = 2**256 - 1
ASSET_TOKEN = {"ETH": "WETH", "BTC": "WBTC", "stETH": "stETH", "USDC": "USDC", "GOV": "GOV"}
DECIMALS = {"WETH": 18, "USDC": 6, "WBTC": 8, "stETH": 18, "GOV": 18}
STAKING_YIELD = 0.035  # the LST's redemption rate grows by this per year


def raw(amount: float, symbol: str) -> int:
    return int(amount * 10 ** DECIMALS[symbol])


@dataclass
class Agent:
    address: str
    kind: str
    rng_seed: int
    careful: bool
    capital: float
    # positions the agent knows it holds: venue -> details
    aave_collateral: list[str] = field(default_factory=list)
    aave_debt: str | None = None
    comet_collateral: list[str] = field(default_factory=list)
    comet_borrows: bool = False
    morpho_markets: list[str] = field(default_factory=list)
    perp: tuple[str, str, bool] | None = None  # (margin, index, is_long)
    vault_id: int | None = None
    vault_collateral: str | None = None
    shorts: dict[str, int] = field(default_factory=dict)  # otoken -> amount
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    summary: dict[str, Any]
    manifest_path: Path


class Simulation:
    def __init__(self, scenario: Scenario, eco: Ecosystem, driver: DevnetDriver,
                 paths: ScenarioPaths) -> None:
        self.s, self.eco, self.driver, self.paths = scenario, eco, driver, paths
        self.rng = np.random.default_rng(scenario.seed + 1)
        self.agents: list[Agent] = []
        self.last_push: dict[str, tuple[float, int]] = {}
        self.health: dict[tuple[str, str], float] = {}  # (venue, account) -> HF-like (<1 bad)
        self.flags: dict[tuple[str, str], bool] = {}  # (venue, key) -> liquidatable
        self.reserves: dict[str, tuple[int, int]] = {}
        self.series: list[tuple[str, bool, int]] = []  # (otoken, is_put, strike_usd8)
        self.quotes: list[tuple[Agent, str]] = []  # (writer, otoken) with a live quote
        self.lst_rate = 10**18
        self.pending_stakes: list[tuple[str, int]] = []

    # -- helpers ------------------------------------------------------------------------------
    def price(self, asset: str, b: int) -> float:
        return float(self.paths.market[asset][b])

    def token(self, symbol: str) -> Contract:
        if symbol.startswith("a") and symbol[1:] in self.eco.atokens:
            return self.eco.atokens[symbol[1:]]
        return self.eco.base.tokens[symbol]

    def _address(self, kind: str, i: int) -> str:
        from eth_utils.address import to_checksum_address
        from eth_utils.crypto import keccak

        return to_checksum_address(keccak(text=f"contagion/{self.s.seed}/{kind}/{i}")[12:])

    def mint(self, symbol: str, to: str, amount: int) -> None:
        """Queue a deployer mint. Anvil keeps queue order per sender only, so anything the
        receiver does with the funds must go in a later block; the LST is funded as WETH that
        the receiver stakes itself (`stake_pending`)."""
        if symbol == "stETH":
            need = -(-amount * self.lst_rate // 10**18)
            self.eco.base.tokens["WETH"].tx(DEPLOYER, "mint", to, need)
            self.pending_stakes.append((to, need))
        else:
            self.eco.base.tokens[symbol].tx(DEPLOYER, "mint", to, amount)

    def stake_pending(self) -> None:
        lst = self.eco.base.tokens["stETH"]
        for who, weth in self.pending_stakes:
            self.eco.base.tokens["WETH"].tx(who, "approve", lst.address, MAX)
            lst.tx(who, "stake", weth)
        self.pending_stakes.clear()

    def approve_all(self, agent: Agent, symbols: list[str], spenders: list[str]) -> None:
        for symbol in symbols:
            for spender in spenders:
                self.token(symbol).tx(agent.address, "approve", spender, MAX)

    def stake(self, agent: Agent, weth: int) -> int:
        self.eco.base.tokens["stETH"].tx(agent.address, "stake", weth)
        return weth * 10**18 // self.lst_rate

    def swap(self, who: str, pair_key: str, token_in: str, amount_in: int) -> int:
        """Swap on a pair; returns the output expected from the last known reserves."""
        pair = self.eco.base.pairs[pair_key]
        r0, r1 = self.reserves.get(pair_key, (0, 0))
        t0 = pair_key.split("/")[0] if self._token0_is_first(pair_key) else pair_key.split("/")[1]
        r_in, r_out = (r0, r1) if token_in == t0 else (r1, r0)
        out = amount_in * 997 * r_out // (r_in * 1000 + amount_in * 997) if r_in else 0
        pair.tx(who, "swap_exact_in", self.token(token_in).address, amount_in, 0, who)
        # keep the local view of reserves moving so later swaps in the block see the impact
        if token_in == t0:
            self.reserves[pair_key] = (r0 + amount_in, r1 - out)
        else:
            self.reserves[pair_key] = (r0 - out, r1 + amount_in)
        return out

    def _token0_is_first(self, pair_key: str) -> bool:
        a, b = pair_key.split("/")
        return int(self.token(a).address, 16) < int(self.token(b).address, 16)

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ts: int) -> int:
        """Fund and position every account; returns the timestamp of the last setup block."""
        eco, s = self.eco, self.s
        b0 = 0
        self.push_oracles(b0, ts, force=True)
        spenders = [eco.aave.pool.address, eco.comet.comet.address, eco.morpho.morpho.address,
                    eco.perps.vault.address, eco.options.venue.address,
                    *[p.address for p in eco.base.pairs.values()]]
        groups = s.accounts
        counter = 0
        for kind in type(groups).model_fields:
            spec = getattr(groups, kind)
            for i in range(spec.count):
                lo, hi = spec.capital_eth if kind == "loopers" else spec.capital_usd
                agent = Agent(self._address(kind, i), kind, s.seed * 1000 + counter,
                              careful=bool(self.rng.random() < 0.5),
                              capital=float(self.rng.uniform(lo, hi)))
                counter += 1
                self.agents.append(agent)
        self.driver.load_nonces([a.address for a in self.agents])
        step = s.seconds_per_block // 4 or 1
        # 1. the deployer funds everyone; 2. liquidity arrives (LPs, AMMs, lending supply);
        # 3. everyone else opens positions against it. Each phase is mined before the next.
        for agent in self.agents:
            self._fund(agent, b0)
        _, ts = self.driver.mine_all(ts)
        self.stake_pending()
        for agent in self.agents:
            self.approve_all(agent, ["WETH", "USDC", "WBTC", "stETH", "aWETH", "aUSDC"],
                             spenders)
        _, ts = self.driver.mine_all(ts + step)
        for agent in self.agents:
            if agent.kind == "liquidity_providers":
                self._provide_liquidity(agent, b0)
        _, ts = self.driver.mine_all(ts + step)
        self.snapshot(b0)
        for agent in self.agents:
            opener = getattr(self, f"_open_{agent.kind}", None)
            if opener is not None:
                opener(agent, b0)
        _, ts = self.driver.mine_all(ts + step, check=False)
        return ts

    def _fund(self, agent: Agent, b: int) -> None:
        """Capital in the tokens each strategy starts from."""
        eth, btc, st = self.price("ETH", b), self.price("BTC", b), self.price("stETH", b)
        a, usd = agent.address, agent.capital
        if agent.kind in ("liquidity_providers", "arbitrageurs", "liquidators"):
            for symbol, share in (("USDC", 0.5), ("WETH", 0.3), ("stETH", 0.1), ("WBTC", 0.1)):
                px = {"USDC": 1.0, "WETH": eth, "stETH": st, "WBTC": btc}[symbol]
                self.mint(symbol, a, raw(usd * share / px, symbol))
        elif agent.kind == "loopers":
            self.mint("WETH", a, raw(usd, "WETH"))
        elif agent.kind == "borrowers":
            spec = self.s.accounts.borrowers
            symbol = str(self.rng.choice(spec.collateral))
            agent.extra["collateral"] = symbol
            underlying = "WETH" if symbol == "aWETH" else symbol
            px = {"WETH": eth, "WBTC": btc, "stETH": st}[underlying]
            self.mint(underlying, a, raw(usd * 0.85 / px, underlying))
            self.mint("USDC", a, raw(usd * 0.15, "USDC"))  # repay buffer
        elif agent.kind == "option_writers":
            collateral = str(self.rng.choice(self.s.accounts.option_writers.collateral))
            agent.vault_collateral = collateral
            if collateral == "WETH":
                self.mint("WETH", a, raw(usd / eth, "WETH"))
            else:
                self.mint("USDC", a, raw(usd, "USDC"))
        else:  # basis traders, option buyers
            self.mint("USDC", a, raw(usd, "USDC"))

    def _provide_liquidity(self, agent: Agent, b: int) -> None:
        eth, st = self.price("ETH", b), self.price("stETH", b)
        eco, a, usd = self.eco, agent.address, agent.capital
        weth_usdc = self.eco.base.pairs["WETH/USDC"]
        usdc_amt, weth_amt = raw(usd * 0.15, "USDC"), raw(usd * 0.15 / eth, "WETH")
        first = self._token0_is_first("WETH/USDC")
        weth_usdc.tx(a, "add_liquidity", *((weth_amt, usdc_amt) if first else
                                           (usdc_amt, weth_amt)), a)
        st_amt, w2 = raw(usd * 0.05 / st, "stETH"), raw(usd * 0.05 / eth, "WETH")
        first = self._token0_is_first("stETH/WETH")
        eco.base.pairs["stETH/WETH"].tx(a, "add_liquidity", *((st_amt, w2) if first else
                                                            (w2, st_amt)), a)
        eco.aave.pool.tx(a, "supply", self.token("USDC").address, raw(usd * 0.1, "USDC"), a, 0)
        eco.aave.pool.tx(a, "supply", self.token("WETH").address, raw(usd * 0.05 / eth, "WETH"),
                         a, 0)
        eco.comet.supply(a, raw(usd * 0.1, "USDC"))
        eco.morpho.supply(a, "stETH/WETH", raw(usd * 0.02 / eth, "WETH"), 0, a)
        eco.morpho.supply(a, "WETH/USDC", raw(usd * 0.03, "USDC"), 0, a)
        eco.morpho.supply(a, "WBTC/USDC", raw(usd * 0.02, "USDC"), 0, a)
        eco.perps.deposit_liquidity(a, raw(usd * 0.05, "USDC"))

    def _open_loopers(self, agent: Agent, b: int) -> None:
        spec = self.s.accounts.loopers
        eth, st = self.price("ETH", b), self.price("stETH", b)
        venues = list(self.rng.choice(spec.venues, size=int(self.rng.integers(1, len(spec.venues)
                                                                            + 1)), replace=False))
        target = float(self.rng.uniform(spec.target_ltv[0], spec.target_ltv[1]))
        capital = raw(agent.capital, "WETH")
        agent.extra["reserve_weth"] = capital // 5
        steth = self.stake(agent, capital - capital // 5)
        for loop in range(spec.loops):
            venue = venues[loop % len(venues)]
            value_eth = steth * st / eth / 1e18
            if venue == "aave_v3":
                self.eco.aave.pool.tx(agent.address, "supply", self.token("stETH").address, steth,
                                      agent.address, 0)
                borrow = int(value_eth * 0.785 * target * 1e18)
                self.eco.aave.pool.tx(agent.address, "borrow", self.token("WETH").address, borrow,
                                      2, 0, agent.address)
                agent.aave_collateral.append("stETH")
                agent.aave_debt = "WETH"
            elif venue == "morpho_blue":
                self.eco.morpho.supply_collateral(agent.address, "stETH/WETH", steth,
                                                  agent.address)
                borrow = int(value_eth * 0.945 * target * 1e18)
                self.eco.morpho.borrow(agent.address, "stETH/WETH", borrow, 0, agent.address,
                                       agent.address)
                agent.morpho_markets.append("stETH/WETH")
            else:
                self.eco.comet.supply_collateral(agent.address, "stETH", steth)
                usdc = raw(value_eth * eth * 0.80 * target, "USDC")
                self.eco.comet.withdraw(agent.address, usdc)
                agent.comet_collateral.append("stETH")
                agent.comet_borrows = True
                borrow = self.swap(agent.address, "WETH/USDC", "USDC", usdc)
            steth = self.stake(agent, borrow * 98 // 100)
        agent.extra["idle_steth"] = steth

    def _open_borrowers(self, agent: Agent, b: int) -> None:
        spec = self.s.accounts.borrowers
        symbol = str(agent.extra["collateral"])
        target = float(self.rng.uniform(spec.target_ltv[0], spec.target_ltv[1]))
        underlying = "WETH" if symbol == "aWETH" else symbol
        px = self.price({"WETH": "ETH", "WBTC": "BTC", "stETH": "stETH"}[underlying], b)
        amount = raw(agent.capital * 0.85 / px, underlying)
        choices = ["aave_v3", "compound_v3"] + (["morpho_blue"] if underlying in ("WETH", "WBTC")
                                                else [])
        venue = "compound_v3" if symbol == "aWETH" else str(self.rng.choice(choices))
        value = agent.capital * 0.85
        a = agent.address
        if symbol == "aWETH":  # Aave claim posted on Comet: the cross-venue wire
            self.eco.aave.pool.tx(a, "supply", self.token("WETH").address, amount, a, 0)
        if venue == "aave_v3":
            self.eco.aave.pool.tx(a, "supply", self.token(underlying).address, amount, a, 0)
            self.eco.aave.pool.tx(a, "borrow", self.token("USDC").address,
                                  raw(value * 0.78 * target, "USDC"), 2, 0, a)
            agent.aave_collateral.append(underlying)
            agent.aave_debt = "USDC"
        elif venue == "compound_v3":
            self.eco.comet.supply_collateral(a, symbol, amount)
            self.eco.comet.withdraw(a, raw(value * 0.80 * target, "USDC"))
            agent.comet_collateral.append(symbol)
            agent.comet_borrows = True
        else:
            market = f"{underlying}/USDC"
            self.eco.morpho.supply_collateral(a, market, amount, a)
            self.eco.morpho.borrow(a, market, raw(value * 0.86 * target, "USDC"), 0, a, a)
            agent.morpho_markets.append(market)

    def _open_basis_traders(self, agent: Agent, b: int) -> None:
        spec = self.s.accounts.basis_traders
        a, eth = agent.address, self.price("ETH", b)
        capital = raw(agent.capital, "USDC")
        margin = spec.margin if spec.margin != "mixed" else str(self.rng.choice(["aUSDC", "USDC"]))
        if margin == "aUSDC":
            self.eco.aave.pool.tx(a, "supply", self.token("USDC").address, capital // 2, a, 0)
        leverage = float(self.rng.uniform(spec.leverage[0], spec.leverage[1]))
        is_long = bool(self.rng.random() < 0.35)  # some run the trade the other way round
        margin_amount = capital * 2 // 5
        size_usd = int(margin_amount / 1e6 * leverage) * 10**30
        self.eco.perps.increase(a, margin, "WETH", margin_amount, size_usd, is_long)
        agent.perp = (margin, "WETH", is_long)
        agent.extra["reserve_usdc"] = capital // 10
        if not is_long:  # the spot leg of the basis trade
            self.swap(a, "WETH/USDC", "USDC", capital // 2 - capital // 10)
        _ = eth

    def _ensure_series(self, b: int, expiry: int) -> None:
        if self.series:
            return
        spot = self.price("ETH", b)
        for is_put in (False, True):
            for m in (0.8, 0.9, 1.0, 1.1, 1.2):
                strike = round(spot * m / 50) * 50
                otoken = self.eco.options.create_series(is_put, usd_feed_answer(strike), expiry)
                self.series.append((otoken.address, is_put, strike))

    def _open_option_writers(self, agent: Agent, b: int) -> None:
        spec = self.s.accounts.option_writers
        self._ensure_series(b, int(self.paths.times[-1]) + 14 * 86_400)
        a, eth = agent.address, self.price("ETH", b)
        collateral = str(agent.vault_collateral)
        if collateral == "WETH":
            amount = raw(agent.capital / eth, "WETH")
        else:
            amount = raw(agent.capital, "USDC")
            if collateral == "aUSDC":
                self.eco.aave.pool.tx(a, "supply", self.token("USDC").address, amount, a, 0)
        agent.vault_id = self.eco.options.open_vault(a, self.token(collateral).address)
        self.eco.options.deposit(a, agent.vault_id, amount)
        low, high = spec.target_utilisation
        agent.extra["utilisation"] = float(self.rng.uniform(low, high))
        self._requote(agent, b)

    def _requote(self, agent: Agent, b: int) -> None:
        assert agent.vault_id is not None
        spot, iv = self.price("ETH", b), float(self.paths.implied_vol[b])
        rr = float(self.paths.risk_reversal[b])
        tau = max((int(self.paths.times[-1]) + 14 * 86_400 - int(self.paths.times[b])) /
                  (365 * 86_400), 1e-4)
        budget = agent.capital * agent.extra["utilisation"]
        picks = self.rng.choice(len(self.series), size=2, replace=False)
        for idx in picks:
            otoken, is_put, strike = self.series[int(idx)]
            vol = max(iv + (rr / 2 if not is_put else -rr / 2), 0.05)
            premium = black_scholes(spot, strike, tau, vol, is_put) * 1.02
            requirement = min(spot if not is_put else strike,
                              max(0.0, (strike - spot) if is_put else (spot - strike))
                              + 0.15 * spot)
            max_amount = int(budget / 2 / max(requirement, 1.0) * 1e8)
            self.eco.options.quote(agent.address, agent.vault_id, otoken,
                                   max(1, raw(premium, "USDC")), int(vol * 1e8), max_amount)
            self.quotes.append((agent, otoken))

    # -- per block ----------------------------------------------------------------------------
    def push_oracles(self, b: int, ts: int, force: bool = False) -> None:
        rule = self.s.oracle
        for asset, symbol in ASSET_TOKEN.items():
            value = float(self.paths.oracle[asset][b])
            last = self.last_push.get(symbol)
            stale = last is None or ts - last[1] >= rule.heartbeat_seconds
            moved = last is not None and abs(value / last[0] - 1) * 1e4 >= rule.deviation_bps
            if force or stale or moved:
                self.eco.base.feeds[symbol].tx(DEPLOYER, "transmit", usd_feed_answer(value))
                self.last_push[symbol] = (value, ts)
        for key, series in (("ETH_IV", self.paths.implied_vol),
                            ("ETH_RR25", self.paths.risk_reversal)):
            value = float(series[b])
            last = self.last_push.get(key)
            if force or last is None or abs(value - last[0]) >= 0.01 or \
                    ts - last[1] >= rule.heartbeat_seconds:
                self.eco.base.feeds[key].tx(DEPLOYER, "transmit", usd_feed_answer(value))
                self.last_push[key] = (value, ts)
        # staking rewards raise the LST's redemption rate a little every hour
        if force or b % max(1, 3600 // self.s.seconds_per_block) == 0:
            years = (int(self.paths.times[b]) - int(self.paths.times[0])) / (365 * 86_400)
            rate = int(10**18 * (1 + STAKING_YIELD * years))
            if rate != self.lst_rate:
                self.eco.base.tokens["stETH"].tx(DEPLOYER, "set_redemption_rate", rate)
                self.lst_rate = rate

    def arbitrage(self, b: int) -> None:
        arbs = [a for a in self.agents if a.kind == "arbitrageurs"]
        if not arbs:
            return
        targets = {"WETH/USDC": self.price("ETH", b),
                   "stETH/WETH": self.price("stETH", b) / self.price("ETH", b)}
        for i, (key, target) in enumerate(targets.items()):
            if key not in self.reserves:
                continue
            agent = arbs[(b + i) % len(arbs)]
            first, second = key.split("/")
            r0, r1 = self.reserves[key]
            if not self._token0_is_first(key):
                r0, r1 = r1, r0  # now r0 is `first`
            if r0 == 0 or r1 == 0:
                continue
            pool_price = (r1 / 10 ** DECIMALS[second]) / (r0 / 10 ** DECIMALS[first])
            if abs(pool_price / target - 1) < 0.003:
                continue
            k = r0 * r1
            # move half of the way each block: arbitrage capital is finite and cautious
            goal = pool_price + (target - pool_price) * 0.5
            new_r0 = math.sqrt(k / (goal * 10 ** (DECIMALS[second] - DECIMALS[first])))
            if new_r0 > r0:
                self.swap(agent.address, key, first, int((new_r0 - r0) / 0.997))
            else:
                new_r1 = k / new_r0
                self.swap(agent.address, key, second, int((new_r1 - r1) / 0.997))

    def liquidate(self, b: int) -> None:
        liquidators = [a for a in self.agents if a.kind == "liquidators"]
        if not liquidators:
            return
        eco = self.eco
        for n, agent in enumerate(self.agents):
            keeper = liquidators[n % len(liquidators)].address
            a = agent.address
            if agent.aave_debt and self.health.get(("aave", a), 2.0) < 1.0:
                collateral = agent.aave_collateral[0]
                eco.aave.pool.tx(keeper, "liquidationCall", self.token(collateral).address,
                                 self.token(agent.aave_debt).address, a, MAX, False,
                                 gas=3_000_000)
            if agent.comet_borrows and self.flags.get(("comet", a)):
                eco.comet.absorb(keeper, [a])
                for symbol in set(agent.comet_collateral):
                    value = self.health.get(("comet_collateral_usd", f"{a}:{symbol}"), 0.0)
                    if value > 100:
                        eco.comet.buy_collateral(keeper, symbol, raw(value * 0.5, "USDC"))
                agent.comet_borrows = False
            for market in agent.morpho_markets:
                state = self.health.get((f"morpho:{market}", a))
                if state is not None and state < 1.0:
                    full = self.flags.get((f"morpho_full:{market}", a), False)
                    shares = int(self.health.get((f"morpho_shares:{market}", a), 0))
                    coll = int(self.health.get((f"morpho_coll:{market}", a), 0))
                    if full:
                        eco.morpho.liquidate(keeper, market, a, 0, shares)
                    else:
                        eco.morpho.liquidate(keeper, market, a, coll, 0)
            if agent.perp and self.flags.get(("perps", a)):
                margin, index, is_long = agent.perp
                eco.perps.liquidate(keeper, a, margin, index, is_long)
                agent.perp = None
            if agent.vault_id is not None and self.flags.get(("options", a)) and agent.shorts:
                otoken, amount = max(agent.shorts.items(), key=lambda kv: kv[1])
                seller = next((w for w, o in self.quotes if o == otoken and w is not agent
                               and not self.flags.get(("options", w.address))), None)
                if seller is not None and seller.vault_id is not None:
                    buy = max(1, amount // 2)
                    eco.options.buy(keeper, seller.address, seller.vault_id, otoken, buy, MAX)
                    seller.shorts[otoken] = seller.shorts.get(otoken, 0) + buy
                    eco.options.liquidate(keeper, a, agent.vault_id, otoken, buy)
                    agent.shorts[otoken] = amount - buy

    def act(self, b: int) -> None:
        """Each agent acts with probability `activity`: top up, lever up, trade, requote."""
        active = self.rng.random(len(self.agents)) < self.s.activity
        eth = self.price("ETH", b)
        for agent, go in zip(self.agents, active, strict=True):
            if not go:
                continue
            a = agent.address
            if agent.kind == "loopers":
                reserve = agent.extra.get("reserve_weth", 0)
                worst = min([self.health.get(("aave", a), 9.0),
                             *[self.health.get((f"morpho:{m}", a), 9.0)
                               for m in agent.morpho_markets]])
                if agent.careful and worst < 1.08 and reserve > 10**16:
                    top_up = reserve // 2
                    agent.extra["reserve_weth"] = reserve - top_up
                    steth = self.stake(agent, top_up)
                    if agent.aave_collateral:
                        eco_pool = self.eco.aave.pool
                        eco_pool.tx(a, "supply", self.token("stETH").address, steth, a, 0)
                    elif agent.morpho_markets:
                        self.eco.morpho.supply_collateral(a, agent.morpho_markets[0], steth, a)
                    else:
                        self.eco.comet.supply_collateral(a, "stETH", steth)
                elif agent.aave_debt and worst > 1.3:
                    self.eco.aave.pool.tx(a, "borrow", self.token("WETH").address,
                                          raw(agent.capital * 0.02, "WETH"), 2, 0, a)
                else:
                    self.eco.base.tokens["WETH"].tx(a, "transfer", a, 1)  # a heartbeat no-op
            elif agent.kind == "borrowers":
                hf = self.health.get(("aave", a), 9.0)
                if agent.aave_debt and agent.careful and hf < 1.1:
                    self.eco.aave.pool.tx(a, "repay", self.token("USDC").address,
                                          raw(agent.capital * 0.05, "USDC"), 2, a)
                elif agent.aave_debt:
                    self.eco.aave.pool.tx(a, "borrow", self.token("USDC").address,
                                          raw(agent.capital * 0.005, "USDC"), 2, 0, a)
                elif agent.comet_borrows:
                    self.eco.comet.supply(a, raw(agent.capital * 0.01, "USDC"))
                elif agent.morpho_markets:
                    self.eco.morpho.repay(a, agent.morpho_markets[0],
                                          raw(agent.capital * 0.01, "USDC"), 0, a)
            elif agent.kind == "basis_traders" and agent.perp:
                margin, index, is_long = agent.perp
                reserve = agent.extra.get("reserve_usdc", 0)
                if agent.careful and reserve > 10**8:
                    add = reserve // 3
                    agent.extra["reserve_usdc"] = reserve - add
                    self.eco.perps.increase(a, "USDC", index, add, 0, is_long)
                    agent.perp = ("USDC", index, is_long) if margin == "USDC" else agent.perp
                else:
                    self.swap(a, "WETH/USDC", "USDC", raw(agent.capital * 0.002, "USDC"))
            elif agent.kind == "option_writers" and agent.vault_id is not None:
                self._requote(agent, b)
            elif agent.kind == "option_buyers" and self.quotes:
                writer, otoken = self.quotes[int(self.rng.integers(len(self.quotes)))]
                if writer.vault_id is None or self.flags.get(("options", writer.address)):
                    continue
                amount = int(self.rng.uniform(0.5, 3.0) * 1e8)
                self.eco.options.buy(a, writer.address, writer.vault_id, otoken, amount,
                                     raw(agent.capital * 0.2, "USDC"))
                writer.shorts[otoken] = writer.shorts.get(otoken, 0) + amount
            elif agent.kind == "liquidators":
                self._sell_inventory(agent, b)
            elif agent.kind == "liquidity_providers":
                self.eco.aave.pool.tx(a, "supply", self.token("USDC").address,
                                      raw(agent.capital * 0.001, "USDC"), a, 0)
        _ = eth

    def _sell_inventory(self, agent: Agent, b: int) -> None:
        """Liquidators turn seized collateral into stable value through the AMMs."""
        balances = agent.extra.get("balances", {})
        base = agent.extra.setdefault("base_balances", dict(balances))
        for symbol, pair, token_in in (("stETH", "stETH/WETH", "stETH"),
                                       ("WETH", "WETH/USDC", "WETH")):
            excess = balances.get(symbol, 0) - base.get(symbol, 0)
            if excess > 10**15:
                self.swap(agent.address, pair, token_in, excess)

    # -- reading the chain --------------------------------------------------------------------
    def snapshot(self, b: int) -> None:
        """One multicall: AMM reserves and every open position's health."""
        eco = self.eco
        calls: list[tuple[str, bytes]] = []
        decoders: list[Any] = []

        def add(contract: Contract, fn: str, args: tuple[Any, ...], sink: Any) -> None:
            calls.append((contract.address, bytes.fromhex(contract.data(fn, *args)[2:])))
            decoders.append((contract, fn, len(args), sink))

        for key, pair in eco.base.pairs.items():
            add(pair, "getReserves", (), lambda r, k=key: self.reserves.__setitem__(k, r[:2]))
        for agent in self.agents:
            a = agent.address
            if agent.aave_debt:
                add(eco.aave.pool, "getUserAccountData", (a,),
                    lambda r, a=a: self.health.__setitem__(("aave", a), r[5] / 1e18))
            if agent.comet_borrows:
                add(eco.comet.comet, "isLiquidatable", (a,),
                    lambda r, a=a: self.flags.__setitem__(("comet", a), bool(r[0])))
                for symbol in set(agent.comet_collateral):
                    add(eco.comet.comet, "collateralBalanceOf",
                        (a, eco.comet.collaterals[symbol]),
                        lambda r, a=a, s=symbol, b=b: self.health.__setitem__(
                            ("comet_collateral_usd", f"{a}:{s}"),
                            r[0] / 10 ** DECIMALS[s.removeprefix("a") if s == "aWETH" else s]
                            * self.price({"WETH": "ETH", "aWETH": "ETH", "WBTC": "BTC",
                                          "stETH": "stETH"}[s], b)))
            for market in agent.morpho_markets:
                add(eco.morpho.morpho, "position", (eco.morpho.ids[market], a),
                    lambda r, a=a, m=market: self._morpho_health(m, a, r))
            if agent.perp:
                margin, index, is_long = agent.perp
                add(eco.perps.vault, "liquidation_state",
                    (a, eco.perps.margin_tokens[margin], eco.perps.index_tokens[index], is_long),
                    lambda r, a=a: self.flags.__setitem__(("perps", a), r[0] != 0))
            if agent.vault_id is not None and agent.shorts:
                add(eco.options.venue, "is_liquidatable", (a, agent.vault_id),
                    lambda r, a=a: self.flags.__setitem__(("options", a), bool(r[0])))
            if agent.kind == "liquidators":
                bal = agent.extra.setdefault("balances", {})
                for symbol in ("stETH", "WETH"):
                    add(self.token(symbol), "balanceOf", (a,),
                        lambda r, bal=bal, s=symbol: bal.__setitem__(s, r[0]))
        for market in eco.morpho.markets:
            add(eco.morpho.morpho, "market", (eco.morpho.ids[market],),
                lambda r, m=market: self.health.update({(f"morpho_market:{m}", "b"): r[2],
                                                        (f"morpho_market:{m}", "s"): r[3]}))
            add(eco.morpho.oracles[market], "price", (),
                lambda r, m=market: self.health.__setitem__((f"morpho_price:{m}", ""), r[0]))
        results = []
        for start in range(0, len(calls), 1500):
            chunk = calls[start:start + 1500]
            raw_out = eco.multicall.call("aggregate", [list(c) for c in chunk])
            results.extend(raw_out)
        # markets and prices first, so morpho positions can be judged
        order = sorted(range(len(calls)), key=lambda i: decoders[i][1] not in ("market", "price"))
        for i in order:
            ok, data = results[i]
            contract, fn, arity, sink = decoders[i]
            if ok:
                sink(contract.abi.decode_result(fn, arity, "0x" + bytes(data).hex()))

    def _morpho_health(self, market: str, account: str, r: tuple[Any, ...]) -> None:
        _, borrow_shares, collateral = r
        total_b = self.health.get((f"morpho_market:{market}", "b"), 0)
        total_s = self.health.get((f"morpho_market:{market}", "s"), 0)
        price = self.health.get((f"morpho_price:{market}", ""), 0)
        if borrow_shares == 0:
            self.health.pop((f"morpho:{market}", account), None)
            return
        borrowed = -(-borrow_shares * (int(total_b) + 1) // (int(total_s) + 10**6))
        lltv = self.eco.morpho.markets[market][4]
        max_borrow = collateral * int(price) // 10**36 * lltv // 10**18
        self.health[(f"morpho:{market}", account)] = max_borrow / borrowed
        self.health[(f"morpho_shares:{market}", account)] = borrow_shares
        self.health[(f"morpho_coll:{market}", account)] = collateral
        incentive = min(1.15, 1 / (1 - 0.3 * (1 - lltv / 1e18)))
        value = collateral * int(price) / 10**36
        self.flags[(f"morpho_full:{market}", account)] = value / incentive > borrowed * 1.001


def black_scholes(spot: float, strike: float, tau: float, vol: float, is_put: bool) -> float:
    """European option value in USD per unit of ETH (zero rates)."""
    d1 = (math.log(spot / strike) + 0.5 * vol**2 * tau) / (vol * math.sqrt(tau))
    d2 = d1 - vol * math.sqrt(tau)
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    call = spot * cdf(d1) - strike * cdf(d2)
    return call - spot + strike if is_put else call


HARM_EVENTS: dict[str, tuple[EventSpec, ...]] = {
    "aave_v3": (aave_v3.LIQUIDATION_CALL, aave_v3.DEFICIT_CREATED),
    "compound_v3_usdc": (compound_v3.ABSORB_DEBT, compound_v3.ABSORB_COLLATERAL),
    "morpho_blue": (morpho_blue.LIQUIDATE,),
    "gmx_v1": (gmx_v1.LIQUIDATE_POSITION, gmx_v1.BAD_DEBT),
    "opyn_gamma": (opyn_gamma.VAULT_LIQUIDATED, opyn_gamma.VAULT_BAD_DEBT),
}


def _decode_data(spec: EventSpec, data: str) -> dict[str, Any]:
    params = [p for p in spec.params if not p.indexed]
    values = decode([p.type for p in params], bytes.fromhex(data[2:]))
    return {p.name: v for p, v in zip(params, values, strict=True)}


def harm_from_chain(client: RpcClient, registry_venues: dict[str, str], first: int, last: int,
                    eth_price: float) -> dict[str, dict[str, Any]]:
    """Liquidations and bad debt per venue, read from the chain's own events."""
    out: dict[str, dict[str, Any]] = {}
    for venue_id, specs in HARM_EVENTS.items():
        address = registry_venues[venue_id]
        logs = client.call("eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last),
                                            "address": address,
                                            "topics": [[s.topic0 for s in specs]]}])
        row: dict[str, Any] = {"liquidations": 0, "bad_debt_events": 0, "bad_debt_usd": 0.0}
        comet_collateral: dict[tuple[str, str], int] = {}
        for log in logs:
            spec = next(s for s in specs if s.topic0 == log["topics"][0])
            fields = _decode_data(spec, log["data"])
            if spec is compound_v3.ABSORB_COLLATERAL:
                key = (log["transactionHash"], log["topics"][2])
                comet_collateral[key] = comet_collateral.get(key, 0) + fields["usdValue"]
                continue
            if spec in (aave_v3.LIQUIDATION_CALL, compound_v3.ABSORB_DEBT, morpho_blue.LIQUIDATE,
                        gmx_v1.LIQUIDATE_POSITION, opyn_gamma.VAULT_LIQUIDATED):
                row["liquidations"] += 1
            if spec is aave_v3.DEFICIT_CREATED:
                row["bad_debt_events"] += 1
                # deficits are in the debt asset; devnet debt is USDC or WETH
                asset = "0x" + log["topics"][2][-40:]
                is_usdc = asset.lower() == registry_venues["USDC"].lower()
                row["bad_debt_usd"] += fields["amountCreated"] / (1e6 if is_usdc else 1e18) * \
                    (1.0 if is_usdc else eth_price)
            elif spec is morpho_blue.LIQUIDATE and fields["badDebtAssets"] > 0:
                row["bad_debt_events"] += 1
                row["bad_debt_usd"] += fields["badDebtAssets"] / 1e6 if \
                    log["topics"][1] in registry_venues.get("morpho_usdc_ids", "") else \
                    fields["badDebtAssets"] / 1e18 * eth_price
            elif spec is gmx_v1.BAD_DEBT:
                row["bad_debt_events"] += 1
                row["bad_debt_usd"] += fields["amountUsd"] / 1e30
            elif spec is opyn_gamma.VAULT_BAD_DEBT:
                row["bad_debt_events"] += 1
                row["bad_debt_usd"] += fields["shortfallUsd"] / 1e8
            elif spec is compound_v3.ABSORB_DEBT:
                key = (log["transactionHash"], log["topics"][2])
                row.setdefault("_absorbs", []).append((key, fields["usdValue"]))
        for key, debt_usd in row.pop("_absorbs", []):
            # Comet credits collateral × liquidation factor (≤ 1); debt beyond the collateral's
            # value is a loss the protocol's reserves absorb.
            shortfall = debt_usd - comet_collateral.get(key, 0)
            if shortfall > 0:
                row["bad_debt_events"] += 1
                row["bad_debt_usd"] += shortfall / 1e8
        out[venue_id] = row
    return out


def run_scenario(scenario: Scenario, scenario_file: Path, rpc_url: str, data_dir: Path,
                 progress: bool = False) -> RunResult:
    registry = load_registry(data_dir / "registry.yaml")
    client = RpcClient(rpc_url)
    started = time.monotonic()
    try:
        chain_id = int(client.call("eth_chainId"), 16)
        if chain_id != registry.chain_id:
            raise ScenarioError(f"{rpc_url} is chain {chain_id}, but the registry in {data_dir} "
                                f"describes chain {registry.chain_id}")
        client.call("evm_setAutomine", [False])
        driver = DevnetDriver(client)
        eco = ecosystem_from_registry(driver, registry)
        latest = client.call("eth_getBlockByNumber", ["latest", False])
        chain_time = int(latest["timestamp"], 16)
        first_time = int(scenario.start_time.timestamp()) if scenario.start_time else \
            chain_time + scenario.seconds_per_block * 4
        if first_time <= chain_time:
            raise ScenarioError(f"start_time {scenario.start_time} is not after the chain's "
                                f"latest block time ({chain_time}); start a fresh devnet")
        setup_time = first_time - scenario.seconds_per_block * 3
        if setup_time <= chain_time:
            setup_time = chain_time + 1
        paths = build_paths(scenario, scenario_file, first_time)
        sim = Simulation(scenario, eco, driver, paths)
        setup_start = int(client.call("eth_blockNumber"), 16) + 1
        last_ts = sim.setup(setup_time)
        first_block = int(client.call("eth_blockNumber"), 16) + 1
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[tx]} tx"), TimeElapsedColumn(),
                       disable=not progress, transient=False)
        with bar:
            task = bar.add_task(f"scenario {scenario.name}", total=scenario.blocks, tx=0)
            for b in range(scenario.blocks):
                ts = max(int(paths.times[b]), last_ts + 1)  # setup may have run long
                last_ts = ts
                sim.push_oracles(b, ts)
                sim.arbitrage(b)
                sim.liquidate(b)
                sim.act(b)
                driver.flush()
                driver.mine(ts)
                sim.snapshot(b)
                bar.update(task, advance=1, tx=driver.sent)
        last_block = int(client.call("eth_blockNumber"), 16)
        elapsed = time.monotonic() - started
        venues = {v.id: next(iter(v.contracts.values())) for v in registry.venues}
        venues["USDC"] = registry.token("USDC").address
        harm = harm_from_chain(client, venues, setup_start, last_block,
                               float(paths.market["ETH"][-1]))
        reverted = _count_reverted(client, setup_start, last_block)
    finally:
        client.close()
    summary = {
        "scenario": scenario.name, "seed": scenario.seed, "blocks": scenario.blocks,
        "setup_blocks": first_block - setup_start, "first_block": first_block,
        "last_block": last_block, "accounts": len(sim.agents),
        "transactions": driver.sent, "reverted": reverted, "seconds": round(elapsed, 1),
        "tx_per_second": round(driver.sent / elapsed, 1), "venues": harm,
    }
    manifest = {
        "scenario": scenario.name, "scenario_file": str(scenario_file), "seed": scenario.seed,
        "chain_id": registry.chain_id, "rpc_url": rpc_url,
        "setup_blocks": [setup_start, first_block - 1], "blocks": [first_block, last_block],
        "first_block_time": first_time, "seconds_per_block": scenario.seconds_per_block,
        "accounts": {k: getattr(scenario.accounts, k).count
                     for k in type(scenario.accounts).model_fields},
        "injections": [{"block": first_block + inj.block_offset, "kind": inj.kind,
                        "detail": inj.detail} for inj in paths.injections],
        "transactions": driver.sent,
        "note": "Injections say what was pushed into the world; harm is read from the chain.",
    }
    runs = data_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    manifest_path = runs / f"{scenario.name}-{first_block}-{last_block}.json"
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(manifest_path)
    return RunResult(summary, manifest_path)


def _count_reverted(client: RpcClient, first: int, last: int) -> int:
    reverted = 0
    for start in range(first, last + 1, 200):
        blocks = client.batch_strict([("eth_getBlockReceipts", [hex(n)])
                                      for n in range(start, min(start + 200, last + 1))])
        reverted += sum(1 for receipts in blocks for r in receipts or []
                        if r.get("status") == "0x0")
    return reverted
