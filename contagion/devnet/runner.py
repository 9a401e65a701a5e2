"""Run a scenario block by block: oracles push, arbitrageurs align the AMMs with the market,
liquidators liquidate what the contracts let them, agents act, and the block is mined.

Everything an agent decides comes from the scenario's paths (what the market knows) and from
the chain (one Multicall3 read of reserves and position health after every block); every
action is a real transaction, which the contracts accept or revert. Ground truth of harm is
read back from the chain's events at the end (`contagion.devnet.harm`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contagion.chain.logs import chain_id_of
from contagion.chain.rpc import RpcClient
from contagion.devnet.base import usd_feed_answer
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver, TxFailed
from contagion.devnet.harm import VenueHarm, harm_from_chain
from contagion.devnet.paths import ScenarioPaths, build_paths
from contagion.devnet.scenario import Scenario, ScenarioError
from contagion.devnet.state import (
    DECIMALS,
    INVENTORY,
    PRICED_AS,
    Agent,
    CallCache,
    ChainView,
    read_chain_view,
)
from contagion.devnet.venues.morpho_blue import liquidation_incentive
from contagion.devnet.world import Ecosystem, ecosystem_from_registry
from contagion.registry import Registry, load_registry

__all__ = ["RunResult", "RunSummary", "black_scholes", "run_scenario"]

MAX = 2**256 - 1
FEED_OF = {"ETH": "WETH", "BTC": "WBTC", "stETH": "stETH", "USDC": "USDC", "GOV": "GOV"}
STAKING_YIELD = 0.035  # the LST's redemption rate grows by this per year
OPTION_TENOR = 14 * 86_400  # series expire two weeks after the scenario's last block
AMM_OF = {"stETH": "stETH/WETH", "WETH": "WETH/USDC"}  # where liquidators sell collateral


def raw(amount: float, symbol: str) -> int:
    """A decimal amount of a token in its raw integer units (for amounts agents choose)."""
    return int(amount * 10 ** DECIMALS[symbol])


def black_scholes(spot: float, strike: float, tau: float, vol: float, is_put: bool) -> float:
    """European option value in USD per unit of ETH (zero rates)."""
    d1 = (math.log(spot / strike) + 0.5 * vol**2 * tau) / (vol * math.sqrt(tau))
    d2 = d1 - vol * math.sqrt(tau)

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    call = spot * cdf(d1) - strike * cdf(d2)
    return call - spot + strike if is_put else call


class Simulation:
    """The agents of one scenario and what they do each block."""

    def __init__(self, scenario: Scenario, eco: Ecosystem, driver: DevnetDriver,
                 paths: ScenarioPaths, registry: Registry) -> None:
        self.s, self.eco, self.driver, self.paths = scenario, eco, driver, paths
        # liquidation incentives, as the venues pay them
        self.aave_bonus = {m.id: int(m.params["liquidation_bonus_bps"]) / 10_000
                           for m in registry.venue("aave_v3").markets}
        self.morpho_incentive = {label: liquidation_incentive(p[4])
                                 for label, p in eco.morpho.markets.items()}
        self.rng = np.random.default_rng(scenario.seed + 1)
        self.agents: list[Agent] = []
        self.view = ChainView()
        self.calls: CallCache = {}
        self.last_push: dict[str, tuple[float, int]] = {}
        self.series: list[tuple[str, bool, int]] = []  # (oToken, is_put, strike USD)
        self.quotes: list[tuple[Agent, str]] = []  # (writer, oToken) with a standing quote
        self.lst_rate = 10**18
        self.pending_stakes: list[tuple[str, int]] = []
        self.block = 0  # the scenario block being built
        self.cex = self._address("cex", 0)  # where arbitrageurs settle their off-chain leg

    # -- helpers ------------------------------------------------------------------------------
    def price(self, asset: str, b: int | None = None) -> float:
        return float(self.paths.market[asset][self.block if b is None else b])

    def token(self, symbol: str) -> Contract:
        if symbol.startswith("a") and symbol[1:] in self.eco.atokens:
            return self.eco.atokens[symbol[1:]]
        return self.eco.base.tokens[symbol]

    def _address(self, kind: str, i: int) -> str:
        """Deterministic per seed, so the same scenario builds the same chain."""
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

    def stake(self, agent: Agent, weth: int) -> int:
        """Stake WETH into the LST; returns the LST amount the agent can count on (0.1 % under
        the quote, since a redemption-rate update may land first in the same block)."""
        self.eco.base.tokens["stETH"].tx(agent.address, "stake", weth)
        return weth * 10**18 // self.lst_rate * 999 // 1000

    def swap(self, who: str, pair_key: str, token_in: str, amount_in: int) -> int:
        """Swap on a pair; returns the output expected from the reserves known so far, which
        are moved as if the swap had happened, so later swaps in the block see its impact."""
        pair = self.eco.base.pairs[pair_key]
        r0, r1 = self.view.reserves.get(pair_key, (0, 0))
        first_is_token0 = self._token0_is_first(pair_key)
        in_is_token0 = (token_in == pair_key.split("/")[0]) == first_is_token0
        r_in, r_out = (r0, r1) if in_is_token0 else (r1, r0)
        out = amount_in * 997 * r_out // (r_in * 1000 + amount_in * 997) if r_in else 0
        pair.tx(who, "swap_exact_in", self.token(token_in).address, amount_in, 0, who)
        self.view.reserves[pair_key] = (r0 + amount_in, r1 - out) if in_is_token0 else \
            (r0 - out, r1 + amount_in)
        return out

    def _token0_is_first(self, pair_key: str) -> bool:
        a, b = pair_key.split("/")
        return int(self.token(a).address, 16) < int(self.token(b).address, 16)

    def read_chain(self) -> None:
        self.view = read_chain_view(self.eco, self.agents, self.price, self.calls)

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ts: int) -> int:
        """Fund and position every account; returns the timestamp of the last setup block.

        1. the deployer funds everyone; 2. they stake and approve; 3. liquidity arrives (AMMs,
        lending supply, the perps pool); 4. everyone else opens positions against it. Each
        phase is mined before the next, since only one sender's order is kept within a block.
        """
        eco, s = self.eco, self.s
        self.push_oracles(0, ts, force=True)
        spenders = [eco.aave.pool.address, eco.comet.comet.address, eco.morpho.morpho.address,
                    eco.perps.vault.address, eco.options.venue.address,
                    eco.base.tokens["stETH"].address,  # staking pulls WETH
                    *[p.address for p in eco.base.pairs.values()]]
        for kind in type(s.accounts).model_fields:
            spec = getattr(s.accounts, kind)
            for i in range(spec.count):
                lo, hi = spec.capital_eth if kind == "loopers" else spec.capital_usd
                self.agents.append(Agent(self._address(kind, i), kind,
                                         careful=bool(self.rng.random() < 0.5),
                                         capital=float(self.rng.uniform(lo, hi))))
        self.driver.load_nonces([a.address for a in self.agents])
        step = s.seconds_per_block
        for agent in self.agents:
            self._fund(agent)
        if any(a.kind == "arbitrageurs" for a in self.agents):
            for symbol, usd in (("WETH", 1e9), ("stETH", 1e9), ("USDC", 1e9)):
                self.mint(symbol, self.cex, raw(usd / self.price(PRICED_AS[symbol]), symbol))
        _, ts = self.driver.mine_all(ts, step)
        self.stake_pending()
        for agent in self.agents:
            for symbol in ("WETH", "USDC", "WBTC", "stETH", "aWETH", "aUSDC"):
                for spender in spenders:
                    self.token(symbol).tx(agent.address, "approve", spender, MAX)
        _, ts = self.driver.mine_all(ts + step, step)
        for agent in self.agents:
            if agent.kind == "liquidity_providers":
                self._provide_liquidity(agent)
        if s.accounts.option_writers.count:
            self._ensure_series()  # mined before writers quote on the series
        _, ts = self.driver.mine_all(ts + step, step)
        self.read_chain()
        for agent in self.agents:
            opener = getattr(self, f"_open_{agent.kind}", None)
            if opener is not None:
                opener(agent)
        try:
            _, ts = self.driver.mine_all(ts + step, step)
        except TxFailed as exc:
            raise ScenarioError(f"opening positions failed: {exc}. The venues cannot carry "
                                "the positions the scenario asks for; give the liquidity "
                                "providers more capital or the other accounts less") from None
        self.read_chain()
        for agent in self.agents:
            if agent.kind in ("liquidators", "arbitrageurs"):  # their float at the start
                agent.base_inventory = {sym: self.view.balances.get((agent.address, sym), 0)
                                        for sym in INVENTORY}
        return ts

    def _fund(self, agent: Agent) -> None:
        """Capital in the tokens each strategy starts from."""
        px = {"USDC": 1.0, "WETH": self.price("ETH"), "stETH": self.price("stETH"),
              "WBTC": self.price("BTC")}
        a, usd = agent.address, agent.capital
        if agent.kind in ("liquidity_providers", "arbitrageurs", "liquidators"):
            for symbol, share in (("USDC", 0.5), ("WETH", 0.42), ("stETH", 0.06), ("WBTC", 0.02)):
                self.mint(symbol, a, raw(usd * share / px[symbol], symbol))
        elif agent.kind == "loopers":
            self.mint("WETH", a, raw(usd, "WETH"))  # loopers' capital is in ETH
        elif agent.kind == "borrowers":
            agent.collateral = str(self.rng.choice(self.s.accounts.borrowers.collateral))
            underlying = agent.collateral.removeprefix("a")
            self.mint(underlying, a, raw(usd * 0.85 / px[underlying], underlying))
            agent.reserve = raw(usd * 0.15, "USDC")  # kept for repayments
            self.mint("USDC", a, agent.reserve)
        elif agent.kind == "option_writers":
            agent.vault_collateral = str(self.rng.choice(
                self.s.accounts.option_writers.collateral))
            if agent.vault_collateral == "WETH":
                self.mint("WETH", a, raw(usd / px["WETH"], "WETH"))
            else:
                self.mint("USDC", a, raw(usd, "USDC"))
        else:  # basis traders, option buyers
            self.mint("USDC", a, raw(usd, "USDC"))

    def _add_liquidity(self, who: str, pair_key: str, amounts: dict[str, int]) -> None:
        first, second = pair_key.split("/")
        ordered = (amounts[first], amounts[second]) if self._token0_is_first(pair_key) else \
            (amounts[second], amounts[first])
        self.eco.base.pairs[pair_key].tx(who, "add_liquidity", *ordered, who)

    def _provide_liquidity(self, agent: Agent) -> None:
        """Both AMMs, lending supply on every venue (most of the ETH the loopers borrow), and
        the perps pool that takes the other side of traders."""
        eth, st = self.price("ETH"), self.price("stETH")
        eco, a, usd = self.eco, agent.address, agent.capital
        self._add_liquidity(a, "WETH/USDC", {"WETH": raw(usd * 0.10 / eth, "WETH"),
                                             "USDC": raw(usd * 0.10, "USDC")})
        # the LST trades against ETH in a pool a tenth the size of the main one, as on mainnet
        self._add_liquidity(a, "stETH/WETH", {"stETH": raw(usd * 0.01 / st, "stETH"),
                                              "WETH": raw(usd * 0.01 / eth, "WETH")})
        agent.lent = raw(usd * 0.08, "USDC")
        eco.aave.pool.tx(a, "supply", self.token("USDC").address, agent.lent, a, 0)
        eco.aave.pool.tx(a, "supply", self.token("WETH").address, raw(usd * 0.15 / eth, "WETH"),
                         a, 0)
        eco.comet.supply(a, raw(usd * 0.15, "USDC"))
        eco.morpho.supply(a, "stETH/WETH", raw(usd * 0.10 / eth, "WETH"), 0, a)
        eco.morpho.supply(a, "WETH/USDC", raw(usd * 0.03, "USDC"), 0, a)
        eco.morpho.supply(a, "WBTC/USDC", raw(usd * 0.02, "USDC"), 0, a)
        eco.perps.deposit_liquidity(a, raw(usd * 0.10, "USDC"))
        agent.reserve = raw(usd * 0.02, "USDC")  # what is left of its USDC

    def _open_loopers(self, agent: Agent) -> None:
        """Stake, post the LST, borrow ETH (or USDC swapped to ETH on Comet), restake: `loops`
        times across a random subset of the venues."""
        spec = self.s.accounts.loopers
        eth, st = self.price("ETH"), self.price("stETH")
        n_venues = int(self.rng.integers(1, len(spec.venues) + 1))
        venues = list(self.rng.choice(spec.venues, size=n_venues, replace=False))
        target = float(self.rng.uniform(spec.target_ltv[0], spec.target_ltv[1]))
        capital = raw(agent.capital, "WETH")
        agent.reserve = capital // 5
        steth = self.stake(agent, capital - agent.reserve)
        a = agent.address
        for loop in range(spec.loops):
            venue = venues[loop % len(venues)]
            value_eth = steth * st / eth / 1e18
            if venue == "aave_v3":
                self.eco.aave.pool.tx(a, "supply", self.token("stETH").address, steth, a, 0)
                borrow = int(value_eth * 0.785 * target * 1e18)
                self.eco.aave.pool.tx(a, "borrow", self.token("WETH").address, borrow, 2, 0, a)
                agent.aave_collateral.append("stETH")
                agent.aave_debt = "WETH"
            elif venue == "morpho_blue":
                self.eco.morpho.supply_collateral(a, "stETH/WETH", steth, a)
                borrow = int(value_eth * 0.945 * target * 1e18)
                self.eco.morpho.borrow(a, "stETH/WETH", borrow, 0, a, a)
                agent.morpho_markets.append("stETH/WETH")
            else:
                self.eco.comet.supply_collateral(a, "stETH", steth)
                usdc = raw(value_eth * eth * 0.80 * target, "USDC")
                self.eco.comet.withdraw(a, usdc)
                agent.comet_collateral.append("stETH")
                agent.comet_borrows = True
                # other swaps in the block may land first: count on a little less
                borrow = self.swap(a, "WETH/USDC", "USDC", usdc) * 95 // 100
            steth = self.stake(agent, borrow * 98 // 100)
        agent.aave_collateral = list(dict.fromkeys(agent.aave_collateral))
        agent.morpho_markets = list(dict.fromkeys(agent.morpho_markets))
        agent.comet_collateral = list(dict.fromkeys(agent.comet_collateral))

    def _open_borrowers(self, agent: Agent) -> None:
        spec = self.s.accounts.borrowers
        target = float(self.rng.uniform(spec.target_ltv[0], spec.target_ltv[1]))
        underlying = agent.collateral.removeprefix("a")
        amount = raw(agent.capital * 0.85 / self.price(PRICED_AS[underlying]), underlying)
        choices = ["aave_v3", "compound_v3"] + (["morpho_blue"] if underlying in ("WETH", "WBTC")
                                                else [])
        # an aToken can only be posted on Comet: the cross-venue wire
        venue = "compound_v3" if agent.collateral == "aWETH" else str(self.rng.choice(choices))
        value = agent.capital * 0.85
        a = agent.address
        if agent.collateral == "aWETH":
            self.eco.aave.pool.tx(a, "supply", self.token("WETH").address, amount, a, 0)
        if venue == "aave_v3":
            self.eco.aave.pool.tx(a, "supply", self.token(underlying).address, amount, a, 0)
            self.eco.aave.pool.tx(a, "borrow", self.token("USDC").address,
                                  raw(value * 0.78 * target, "USDC"), 2, 0, a)
            agent.aave_collateral.append(underlying)
            agent.aave_debt = "USDC"
        elif venue == "compound_v3":
            self.eco.comet.supply_collateral(a, agent.collateral, amount)
            self.eco.comet.withdraw(a, raw(value * 0.80 * target, "USDC"))
            agent.comet_collateral.append(agent.collateral)
            agent.comet_borrows = True
        else:
            market = f"{underlying}/USDC"
            self.eco.morpho.supply_collateral(a, market, amount, a)
            self.eco.morpho.borrow(a, market, raw(value * 0.86 * target, "USDC"), 0, a, a)
            agent.morpho_markets.append(market)

    def _open_basis_traders(self, agent: Agent) -> None:
        """Short ETH perps against spot ETH (a few run it the other way), margined in USDC or
        in aUSDC: the Aave claim posted on the perps venue."""
        spec = self.s.accounts.basis_traders
        a = agent.address
        capital = raw(agent.capital, "USDC")
        margin = spec.margin if spec.margin != "mixed" else str(self.rng.choice(["aUSDC", "USDC"]))
        if margin == "aUSDC":
            self.eco.aave.pool.tx(a, "supply", self.token("USDC").address, capital // 2, a, 0)
        leverage = float(self.rng.uniform(spec.leverage[0], spec.leverage[1]))
        is_long = bool(self.rng.random() < 0.35)
        margin_amount = capital * 2 // 5
        size_usd = int(margin_amount / 1e6 * leverage) * 10**30
        self.eco.perps.increase(a, margin, "WETH", margin_amount, size_usd, is_long)
        agent.perp = (margin, "WETH", is_long)
        agent.reserve = capital // 10
        if not is_long:  # the spot leg
            self.swap(a, "WETH/USDC", "USDC", capital // 2 - capital // 10)

    def _open_liquidators(self, agent: Agent) -> None:
        """A USDC vault to mint the oTokens that options liquidations burn."""
        if self.s.accounts.option_writers.count == 0:
            return
        a = agent.address
        agent.vault_id = self.eco.options.open_vault(a, self.token("USDC").address)
        self.eco.options.deposit(a, agent.vault_id, raw(agent.capital * 0.1, "USDC"))

    def _ensure_series(self) -> None:
        if self.series:
            return
        spot, expiry = self.price("ETH"), int(self.paths.times[-1]) + OPTION_TENOR
        for is_put in (False, True):
            for moneyness in (0.8, 0.9, 1.0, 1.1, 1.2):
                strike = round(spot * moneyness / 50) * 50
                otoken = self.eco.options.create_series(is_put, usd_feed_answer(strike), expiry)
                self.series.append((otoken.address, is_put, strike))

    def _open_option_writers(self, agent: Agent) -> None:
        spec = self.s.accounts.option_writers
        self._ensure_series()
        a, collateral = agent.address, str(agent.vault_collateral)
        if collateral == "WETH":
            amount = raw(agent.capital / self.price("ETH"), "WETH")
        else:
            amount = raw(agent.capital, "USDC")
            if collateral == "aUSDC":
                self.eco.aave.pool.tx(a, "supply", self.token("USDC").address, amount, a, 0)
        agent.vault_id = self.eco.options.open_vault(a, self.token(collateral).address)
        self.eco.options.deposit(a, agent.vault_id, amount)
        low, high = spec.target_utilisation
        agent.utilisation = float(self.rng.uniform(low, high))
        self._requote(agent)

    def _requote(self, agent: Agent) -> None:
        """Quote two random series at Black-Scholes on the vol feed's smile, sized so the
        margin requirement stays within the writer's budget."""
        assert agent.vault_id is not None
        b = self.block
        spot, iv = self.price("ETH"), float(self.paths.implied_vol[b])
        rr = float(self.paths.risk_reversal[b])
        tau = max((int(self.paths.times[-1]) + OPTION_TENOR - int(self.paths.times[b])) /
                  (365 * 86_400), 1e-4)
        budget = agent.capital * agent.utilisation
        for idx in self.rng.choice(len(self.series), size=2, replace=False):
            otoken, is_put, strike = self.series[int(idx)]
            vol = max(iv + (-rr / 2 if is_put else rr / 2), 0.05)
            premium = black_scholes(spot, strike, tau, vol, is_put) * 1.02
            intrinsic = max(0.0, (strike - spot) if is_put else (spot - strike))
            requirement = min(strike if is_put else spot, intrinsic + 0.15 * spot)
            max_amount = int(budget / 2 / max(requirement, 1.0) * 1e8)
            self.eco.options.quote(agent.address, agent.vault_id, otoken,
                                   max(1, raw(premium, "USDC")), int(vol * 1e8), max_amount)
            self.quotes.append((agent, otoken))

    # -- per block ----------------------------------------------------------------------------
    def push_oracles(self, b: int, ts: int, force: bool = False) -> None:
        """Chainlink rules: a new round on deviation or heartbeat; vol feeds on a one-point
        move; the LST's redemption rate accrues staking yield hourly."""
        rule = self.s.oracle
        for asset, symbol in FEED_OF.items():
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
        if force or b % max(1, 3600 // self.s.seconds_per_block) == 0:
            years = (int(self.paths.times[b]) - int(self.paths.times[0])) / (365 * 86_400)
            rate = int(10**18 * (1 + STAKING_YIELD * years))
            if rate != self.lst_rate:
                self.eco.base.tokens["stETH"].tx(DEPLOYER, "set_redemption_rate", rate)
                self.lst_rate = rate

    def arbitrage(self) -> None:
        """Move each AMM half way to the market price (arbitrage capital is finite), with the
        arbitrageur holding the most of what the trade sells."""
        arbs = [a for a in self.agents if a.kind == "arbitrageurs"]
        if not arbs:
            return
        targets = {"WETH/USDC": self.price("ETH"),
                   "stETH/WETH": self.price("stETH") / self.price("ETH")}
        for key, target in targets.items():
            if key not in self.view.reserves:
                continue
            first, second = key.split("/")
            r0, r1 = self.view.reserves[key]
            if not self._token0_is_first(key):
                r0, r1 = r1, r0  # now r0 is `first`
            if r0 == 0 or r1 == 0:
                continue
            pool_price = (r1 / 10 ** DECIMALS[second]) / (r0 / 10 ** DECIMALS[first])
            if abs(pool_price / target - 1) < 0.003:
                continue
            goal = pool_price + (target - pool_price) * 0.5
            new_r0 = math.sqrt(r0 * r1 / (goal * 10 ** (DECIMALS[second] - DECIMALS[first])))
            sell, amount = (first, int((new_r0 - r0) / 0.997)) if new_r0 > r0 else \
                (second, int((r0 * r1 / new_r0 - r1) / 0.997))
            arb = max(arbs, key=lambda a: self.view.balances.get((a.address, sell), 0))
            held = self.view.balances.get((arb.address, sell), 0)
            amount = min(amount, held * 9 // 10)
            if amount <= 0:
                continue
            self.swap(arb.address, key, sell, amount)
            self.view.balances[(arb.address, sell)] = held - amount
            if held - amount < arb.base_inventory.get(sell, 0) // 4:
                self._rebalance_on_cex(arb, sell)

    def _rebalance_on_cex(self, arb: Agent, short_of: str) -> None:
        """The arbitrageur's other leg: it sends what it has piled up to a centralised exchange
        (one well-funded account) and gets back what it sells on chain, at the market price."""
        usd = {"WETH": self.price("ETH"), "stETH": self.price("stETH"), "USDC": 1.0}
        need = arb.base_inventory.get(short_of, 0) // 2
        value = need / 10 ** DECIMALS[short_of] * usd[short_of]
        surplus = max((s for s in INVENTORY if s != short_of),
                      key=lambda s: (self.view.balances.get((arb.address, s), 0) -
                                     arb.base_inventory.get(s, 0)) / 10 ** DECIMALS[s] * usd[s])
        pay = raw(value / usd[surplus], surplus)
        if pay > self.view.balances.get((arb.address, surplus), 0):
            return  # nothing to settle with: the arbitrageur waits
        self.token(surplus).tx(arb.address, "transfer", self.cex, pay)
        self.token(short_of).tx(self.cex, "transfer", arb.address, need)

    def liquidate(self) -> None:
        """Liquidate what the last block's view shows the contracts would allow, as far as it
        pays: seized collateral sold into its AMM must return at least the debt repaid."""
        liquidators = [a for a in self.agents if a.kind == "liquidators"]
        if not liquidators:
            return
        eco, view = self.eco, self.view
        for keeper_agent in liquidators:  # sell last block's seizures before seizing more
            self._sell_seized(keeper_agent)
        for n, agent in enumerate(self.agents):
            keeper = liquidators[n % len(liquidators)].address
            a = agent.address
            if agent.aave_debt and view.aave_health.get(a, 2.0) < 1.0:
                collateral = agent.aave_collateral[0]
                cover = self._paying_repay(collateral, agent.aave_debt,
                                           self.aave_bonus[collateral])
                if cover is None or cover > 0:
                    eco.aave.pool.tx(keeper, "liquidationCall",
                                     self.token(collateral).address,
                                     self.token(agent.aave_debt).address, a,
                                     MAX if cover is None else cover, False, gas=3_000_000)
            if agent.comet_borrows and a in view.comet_liquidatable:
                eco.comet.absorb(keeper, [a])  # the protocol takes the loss or the gain
                for symbol in agent.comet_collateral:
                    value = view.comet_collateral_usd.get((a, symbol), 0.0)
                    if value > 100:  # buy half the seized collateral at the storefront price
                        eco.comet.buy_collateral(keeper, symbol, raw(value * 0.5, "USDC"))
                agent.comet_borrows = False
            for market in agent.morpho_markets:
                self._liquidate_morpho(keeper, agent, market)
            if agent.perp and a in view.perps_liquidatable:
                margin, index, is_long = agent.perp
                eco.perps.liquidate(keeper, a, margin, index, is_long)
                agent.perp = None
            if agent.vault_id is not None and a in view.options_liquidatable:
                self._liquidate_vault(liquidators[n % len(liquidators)], agent)

    def _paying_repay(self, collateral: str, debt: str, bonus: float) -> int | None:
        """The most debt (raw units) a liquidator repays and still profits when it sells the
        seized collateral into the collateral's AMM; None when there is no AMM for it here
        (the liquidator sells elsewhere at the oracle price, so any size pays)."""
        pair = AMM_OF.get(collateral)
        if pair is None or pair not in self.view.reserves:
            return None
        quote = pair.split("/")[1]
        r0, r1 = self.view.reserves[pair]
        r_coll, r_quote = (r0, r1) if self._token0_is_first(pair) else (r1, r0)
        # raw collateral seized per raw quote-token of debt repaid, at the feeds' prices
        k = bonus * self.price(PRICED_AS[quote]) / self.price(PRICED_AS[collateral]) * \
            10 ** (DECIMALS[collateral] - DECIMALS[quote])
        # selling x = k*d returns 997*x*r_quote / (1000*r_coll + 997*x) >= d  <=>  d <= this
        most_quote = (997 * r_quote * k - 1000 * r_coll) / (997 * k)
        if most_quote <= 0:
            return 0
        most = most_quote * 0.9 / 10 ** DECIMALS[quote] * self.price(PRICED_AS[quote]) / \
            self.price(PRICED_AS[debt])
        return raw(most, debt)

    def _liquidate_morpho(self, keeper: str, agent: Agent, market: str) -> None:
        pos = self.view.morpho.get((market, agent.address))
        if pos is None or pos.health >= 1.0:
            return
        collateral, loan = market.split("/")
        cover = self._paying_repay(collateral, loan, self.morpho_incentive[market])
        if cover == 0:
            return
        # collateral per loan-token unit repaid, with the incentive
        per_unit = self.morpho_incentive[market] * self.price(PRICED_AS[loan]) / \
            self.price(PRICED_AS[collateral]) * 10 ** (DECIMALS[collateral] - DECIMALS[loan])
        covers_debt = int(pos.borrowed * per_unit * 0.999)  # seizing more would overpay
        if pos.repay_all and (cover is None or cover >= pos.borrowed):
            self.eco.morpho.liquidate(keeper, market, agent.address, 0, pos.borrow_shares)
            return
        seize = min(pos.collateral, covers_debt,
                    pos.collateral if cover is None else int(cover * per_unit))
        # when seizing everything, what stays unpaid becomes the market's bad debt
        self.eco.morpho.liquidate(keeper, market, agent.address, seize, 0)

    def _liquidate_vault(self, keeper: Agent, agent: Agent) -> None:
        """Options vaults are liquidated by burning the oTokens they are short. As on Opyn,
        the liquidator mints them in its own vault (quoting to itself and buying), then burns
        them against the failing vault and takes its collateral."""
        assert agent.vault_id is not None and keeper.vault_id is not None
        shorts = {o: self.view.option_shorts.get((agent.address, o), 0) for o in agent.shorts}
        otoken, amount = max(shorts.items(), key=lambda kv: kv[1], default=("", 0))
        if amount == 0:
            return
        options, k = self.eco.options, keeper.address
        # collateral for the keeper's own short: the venue's requirement with room to spare
        _, is_put, strike = next(x for x in self.series if x[0] == otoken)
        spot = self.price("ETH")
        per_option = min(strike if is_put else spot,
                         max(0.0, strike - spot if is_put else spot - strike) + 0.2 * spot)
        options.deposit(k, keeper.vault_id, raw(per_option * amount / 1e8 * 1.2, "USDC"))
        options.quote(k, keeper.vault_id, otoken, 1, 10**8, amount)
        options.buy(k, k, keeper.vault_id, otoken, amount, MAX)
        options.liquidate(k, agent.address, agent.vault_id, otoken, amount)

    def act(self) -> None:
        """Each agent acts with probability `activity`, by its strategy and what it sees."""
        active = self.rng.random(len(self.agents)) < self.s.activity
        for agent, go in zip(self.agents, active, strict=True):
            if go:
                getattr(self, f"_act_{agent.kind}")(agent)

    def _act_loopers(self, agent: Agent) -> None:
        """Careful loopers near liquidation stake part of their reserve as more collateral;
        healthy ones on Aave loop once more."""
        a, worst = agent.address, self.view.worst_health(agent)
        if agent.careful and worst < 1.08 and agent.reserve > 10**16:
            top_up = agent.reserve // 2
            agent.reserve -= top_up
            steth = self.stake(agent, top_up)
            if agent.aave_collateral:
                self.eco.aave.pool.tx(a, "supply", self.token("stETH").address, steth, a, 0)
            elif agent.morpho_markets:
                self.eco.morpho.supply_collateral(a, agent.morpho_markets[0], steth, a)
            else:
                self.eco.comet.supply_collateral(a, "stETH", steth)
        elif agent.aave_debt and worst > 1.3 and self.view.aave_available_usd.get(a, 0.0) > \
                agent.capital * 0.04 * self.price("ETH"):
            borrow = raw(agent.capital * 0.02, "WETH")
            self.eco.aave.pool.tx(a, "borrow", self.token("WETH").address, borrow, 2, 0, a)
            steth = self.stake(agent, borrow)
            self.eco.aave.pool.tx(a, "supply", self.token("stETH").address, steth, a, 0)

    def _spend(self, agent: Agent, amount: int) -> bool:
        """Take `amount` from the agent's reserve if it is there."""
        if amount <= 0 or agent.reserve < amount:
            return False
        agent.reserve -= amount
        return True

    def _act_borrowers(self, agent: Agent) -> None:
        """Careful borrowers repay from their reserve when close to liquidation; healthy Aave
        borrowers borrow a little more; Comet and Morpho borrowers pay down their debt."""
        a, usdc = agent.address, self.token("USDC").address
        hf = self.view.aave_health.get(a, 9.0)
        repay = raw(agent.capital * 0.02, "USDC")
        if agent.aave_debt and agent.careful and hf < 1.1:
            if self._spend(agent, repay):
                self.eco.aave.pool.tx(a, "repay", usdc, repay, 2, a)
        elif agent.aave_debt and hf > 1.3 and \
                self.view.aave_available_usd.get(a, 0.0) > agent.capital * 0.01:
            self.eco.aave.pool.tx(a, "borrow", usdc, raw(agent.capital * 0.005, "USDC"), 2, 0, a)
        elif agent.comet_borrows and self._spend(agent, repay):
            self.eco.comet.supply(a, repay)  # supplying base on Comet repays debt first
        elif agent.morpho_markets and self._spend(agent, repay):
            self.eco.morpho.repay(a, agent.morpho_markets[0], repay, 0, a)

    def _act_basis_traders(self, agent: Agent) -> None:
        """Careful traders add margin from their reserve, in the position's own margin token;
        the others adjust their spot hedge a little."""
        if agent.perp is None:
            return
        margin, index, is_long = agent.perp
        a = agent.address
        if agent.careful:
            add = agent.reserve // 3
            if add > 10**8 and self._spend(agent, add):
                if margin == "aUSDC":
                    self.eco.aave.pool.tx(a, "supply", self.token("USDC").address, add, a, 0)
                self.eco.perps.increase(a, margin, index, add, 0, is_long)
        else:
            trade = raw(agent.capital * 0.002, "USDC")
            if self._spend(agent, trade):
                self.swap(a, "WETH/USDC", "USDC", trade)

    def _act_option_writers(self, agent: Agent) -> None:
        if agent.vault_id is not None:
            self._requote(agent)

    def _act_option_buyers(self, agent: Agent) -> None:
        if not self.quotes:
            return
        writer, otoken = self.quotes[int(self.rng.integers(len(self.quotes)))]
        if writer.vault_id is None or writer.address in self.view.options_liquidatable:
            return
        amount = int(self.rng.uniform(0.5, 3.0) * 1e8)
        self.eco.options.buy(agent.address, writer.address, writer.vault_id, otoken, amount,
                             raw(agent.capital * 0.2, "USDC"))
        writer.shorts.add(otoken)  # it may be short now; the chain keeps the amount

    def _act_liquidators(self, agent: Agent) -> None:
        """Liquidators act every block, in `liquidate`."""

    def _sell_seized(self, agent: Agent) -> None:
        """Turn seized collateral back into stable value through the AMMs."""
        for symbol, pair, in_token in (("stETH", "stETH/WETH", "stETH"),
                                       ("WETH", "WETH/USDC", "WETH")):
            excess = self.view.balances.get((agent.address, symbol), 0) - \
                agent.base_inventory.get(symbol, 0)
            if excess > 10**15:
                self.swap(agent.address, pair, in_token, excess)

    def _act_liquidity_providers(self, agent: Agent) -> None:
        """When ETH has fallen over the last hour, lenders pull USDC from Aave (the flow
        asymmetry that precedes a run); otherwise they add a little."""
        a, usdc = agent.address, self.token("USDC").address
        hour = 3600 // self.s.seconds_per_block
        amount = raw(agent.capital * 0.002, "USDC")
        if self.block >= hour and self.price("ETH") < 0.97 * self.price("ETH", self.block - hour):
            if agent.lent >= amount:
                agent.lent -= amount
                self.eco.aave.pool.tx(a, "withdraw", usdc, amount, a)
        elif self._spend(agent, amount):
            agent.lent += amount
            self.eco.aave.pool.tx(a, "supply", usdc, amount, a, 0)

    def _act_arbitrageurs(self, agent: Agent) -> None:
        """Arbitrageurs act every block in `arbitrage`."""


@dataclass
class RunSummary:
    scenario: str
    seed: int
    blocks: int
    setup_blocks: int
    first_block: int
    last_block: int
    accounts: int
    transactions: int
    setup_transactions: int
    reverted: int
    seconds: float
    tx_per_second: float
    venues: dict[str, VenueHarm]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class RunResult:
    summary: RunSummary
    manifest_path: Path


def run_scenario(scenario: Scenario, scenario_file: Path, rpc_url: str, data_dir: Path,
                 progress: bool = False) -> RunResult:
    """Set the scenario's world up on the node whose registry is in `data_dir`, run it block by
    block, write the manifest to `data_dir/runs/` and read the harm back from the chain."""
    registry = load_registry(data_dir / "registry.yaml")
    client = RpcClient(rpc_url)
    started = time.monotonic()
    try:
        chain_id = chain_id_of(client)
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
        setup_time = max(first_time - scenario.seconds_per_block * 3, chain_time + 1)
        paths = build_paths(scenario, scenario_file, first_time)
        sim = Simulation(scenario, eco, driver, paths, registry)
        setup_start = int(client.call("eth_blockNumber"), 16) + 1
        last_ts = sim.setup(setup_time)
        setup_tx = driver.sent
        first_block = int(client.call("eth_blockNumber"), 16) + 1
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[tx]} tx"), TimeElapsedColumn(),
                       disable=not progress, transient=False)
        with bar:
            task = bar.add_task(f"scenario {scenario.name}", total=scenario.blocks, tx=0)
            for b in range(scenario.blocks):
                sim.block = b
                ts = max(int(paths.times[b]), last_ts + 1)  # a long setup may run past t0
                last_ts = ts
                sim.push_oracles(b, ts)
                sim.arbitrage()
                sim.liquidate()
                sim.act()
                driver.flush()
                driver.mine(ts)
                sim.read_chain()
                bar.update(task, advance=1, tx=driver.sent)
        last_block = int(client.call("eth_blockNumber"), 16)
        elapsed = time.monotonic() - started
        harm = harm_from_chain(client, registry, setup_start, last_block)
        reverted = _count_reverted(client, setup_start, last_block)
    finally:
        client.close()
    summary = RunSummary(
        scenario=scenario.name, seed=scenario.seed, blocks=scenario.blocks,
        setup_blocks=first_block - setup_start, first_block=first_block, last_block=last_block,
        accounts=len(sim.agents), transactions=driver.sent, setup_transactions=setup_tx,
        reverted=reverted,
        seconds=round(elapsed, 1), tx_per_second=round(driver.sent / elapsed, 1), venues=harm)
    manifest = {
        "scenario": scenario.name, "scenario_file": str(scenario_file), "seed": scenario.seed,
        "chain_id": registry.chain_id, "rpc_url": rpc_url,
        "setup_blocks": [setup_start, first_block - 1], "blocks": [first_block, last_block],
        "first_block_time": first_time, "seconds_per_block": scenario.seconds_per_block,
        "accounts": {k: getattr(scenario.accounts, k).count
                     for k in type(scenario.accounts).model_fields},
        "injections": [{"block": first_block + inj.block_offset, "kind": inj.kind,
                        "detail": inj.detail} for inj in paths.injections],
        "transactions": {"setup": setup_tx, "scenario": driver.sent - setup_tx},
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
