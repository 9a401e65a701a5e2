"""What the scenario's agents hold and what they can see of the chain.

After every block the runner reads, in one Multicall3 `aggregate3`, the AMM reserves and the
health of every open position, as a liquidation bot does. Agents and liquidators act only on
this view; the contracts decide whether an action succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contagion.chain.multicall import Call, aggregate3, words
from contagion.devnet.driver import Contract
from contagion.devnet.venues.morpho_blue import (
    ORACLE_PRICE_SCALE,
    WAD,
    liquidation_incentive,
    to_assets_up,
)
from contagion.devnet.world import Ecosystem

__all__ = ["Agent", "ChainReadError", "ChainView", "MorphoPosition", "read_chain_view"]

DECIMALS = {"WETH": 18, "USDC": 6, "WBTC": 8, "stETH": 18, "GOV": 18,
            "aWETH": 18, "aUSDC": 6}
INVENTORY = ("WETH", "stETH", "USDC")  # tokens liquidators and arbitrageurs trade
PRICED_AS = {"WETH": "ETH", "aWETH": "ETH", "WBTC": "BTC", "stETH": "stETH", "USDC": "USDC",
             "aUSDC": "USDC"}


@dataclass
class Agent:
    """One account and the positions it knows it holds (the chain holds the truth)."""

    address: str
    kind: str  # the strategy: a key of the scenario's `accounts`
    careful: bool  # tops up margin when close to liquidation instead of levering up
    capital: float  # USD, or ETH for loopers
    aave_collateral: list[str] = field(default_factory=list)
    aave_debt: str | None = None
    comet_collateral: list[str] = field(default_factory=list)
    comet_borrows: bool = False
    morpho_markets: list[str] = field(default_factory=list)
    perp: tuple[str, str, bool] | None = None  # (margin token, index token, is_long)
    vault_id: int | None = None
    vault_collateral: str | None = None
    shorts: set[str] = field(default_factory=set)  # oTokens it may be short (amounts: chain)
    reserve: int = 0  # raw units held back for top-ups (WETH for loopers, USDC for the rest)
    lent: int = 0  # liquidity providers: USDC supplied on Aave
    collateral: str = ""  # plain borrowers: the token they post
    utilisation: float = 0.0  # option writers: share of collateral they write against
    base_inventory: dict[str, int] = field(default_factory=dict)  # liquidators' and arbs' float


@dataclass(frozen=True)
class MorphoPosition:
    borrow_shares: int
    borrowed: int  # loan-token units, rounded up as Morpho does when judging health
    collateral: int
    health: float  # max borrow at the LLTV / debt; below 1 it can be liquidated
    repay_all: bool  # the collateral covers the whole debt plus the liquidation incentive


@dataclass
class ChainView:
    reserves: dict[str, tuple[int, int]] = field(default_factory=dict)  # pair -> (r0, r1)
    aave_health: dict[str, float] = field(default_factory=dict)
    aave_available_usd: dict[str, float] = field(default_factory=dict)  # borrowable at LTV
    comet_liquidatable: set[str] = field(default_factory=set)
    comet_collateral_usd: dict[tuple[str, str], float] = field(default_factory=dict)
    morpho: dict[tuple[str, str], MorphoPosition] = field(default_factory=dict)  # (market, acct)
    perps_liquidatable: set[str] = field(default_factory=set)
    options_liquidatable: set[str] = field(default_factory=set)
    balances: dict[tuple[str, str], int] = field(default_factory=dict)  # (account, symbol)
    option_shorts: dict[tuple[str, str], int] = field(default_factory=dict)  # (acct, oToken)

    def worst_health(self, agent: Agent) -> float:
        """The lowest health over the agent's Aave and Morpho positions (9 when it has none)."""
        return min([self.aave_health.get(agent.address, 9.0),
                    *[p.health for m in agent.morpho_markets
                      if (p := self.morpho.get((m, agent.address)))]])


CallCache = dict[tuple[str, str, tuple[Any, ...]], bytes]


class _Batch:
    """Calls, each with what it reads (a tag) and for whom (a key); call data is encoded once
    per distinct call and reused, since the same positions are checked block after block."""

    def __init__(self, cache: CallCache) -> None:
        self.cache = cache
        self.calls: list[Call] = []
        self.reads: list[tuple[str, tuple[str, ...]]] = []
        self.what: list[tuple[str, str, tuple[Any, ...]]] = []

    def add(self, contract: Contract, fn: str, args: tuple[Any, ...], tag: str,
            *key: str) -> None:
        what = (contract.address, fn, args)
        data = self.cache.get(what)
        if data is None:
            data = self.cache[what] = bytes.fromhex(contract.data(fn, *args)[2:])
        self.calls.append(Call(contract.address, data))
        self.reads.append((tag, key))
        self.what.append((contract.name, fn, args))

    def run(self, multicall: Contract) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
        """(tag, key, returned words) per call, in one aggregate3 at the latest block."""
        out = []
        results = aggregate3(multicall.driver.client, multicall.address, self.calls)
        for (tag, key), (name, fn, args), data in zip(self.reads, self.what, results,
                                                      strict=True):
            if data is None:
                raise ChainReadError(f"{name}.{fn}{args} reverted")
            out.append((tag, key, words(data)))
        return out


class ChainReadError(RuntimeError):
    """A view call the agents rely on reverted: the devnet is not in the state it should be."""


def read_chain_view(eco: Ecosystem, agents: list[Agent], price: Callable[[str], float],
                    cache: CallCache | None = None) -> ChainView:
    """Read reserves and every open position's health at the latest block.

    `price` gives the market's USD price of an asset ("ETH", "stETH", ...) for the values the
    contracts do not return in USD themselves; `cache` keeps encoded call data between blocks.
    """
    morpho = eco.morpho
    batch = _Batch(cache if cache is not None else {})
    # Market totals and oracle prices come first: Morpho positions are judged against them.
    for label in morpho.markets:
        batch.add(morpho.morpho, "market", (morpho.ids[label],), "morpho_market", label)
        batch.add(morpho.oracles[label], "price", (), "morpho_price", label)
    for pair_key, pair in eco.base.pairs.items():
        batch.add(pair, "getReserves", (), "reserves", pair_key)
    for agent in agents:
        a = agent.address
        if agent.aave_debt:
            batch.add(eco.aave.pool, "getUserAccountData", (a,), "aave", a)
        if agent.comet_borrows:
            batch.add(eco.comet.comet, "isLiquidatable", (a,), "comet", a)
            for symbol in dict.fromkeys(agent.comet_collateral):
                batch.add(eco.comet.comet, "collateralBalanceOf",
                          (a, eco.comet.collaterals[symbol]), "comet_collateral", a, symbol)
        for market in agent.morpho_markets:
            batch.add(morpho.morpho, "position", (morpho.ids[market], a), "morpho", market, a)
        if agent.perp:
            margin, index, is_long = agent.perp
            batch.add(eco.perps.vault, "liquidation_state",
                      (a, eco.perps.margin_tokens[margin], eco.perps.index_tokens[index],
                       is_long), "perps", a)
        if agent.vault_id is not None and agent.shorts:
            batch.add(eco.options.venue, "is_liquidatable", (a, agent.vault_id), "options", a)
        if agent.kind in ("liquidators", "arbitrageurs"):
            for symbol in INVENTORY:
                batch.add(eco.base.tokens[symbol], "balanceOf", (a,), "balance", a, symbol)

    view = ChainView()
    markets: dict[str, list[int]] = {}  # label -> [total borrow assets, shares, oracle price]
    for tag, key, w in batch.run(eco.multicall):
        if tag == "morpho_market":
            markets.setdefault(key[0], [0, 0, 0])[:2] = w[2], w[3]
        elif tag == "morpho_price":
            markets.setdefault(key[0], [0, 0, 0])[2] = w[0]
        elif tag == "reserves":
            view.reserves[key[0]] = (w[0], w[1])
        elif tag == "aave":
            view.aave_health[key[0]] = w[5] / 1e18
            view.aave_available_usd[key[0]] = w[2] / 1e8  # Aave's base currency: USD, 8 dp
        elif tag == "comet" and w[0]:
            view.comet_liquidatable.add(key[0])
        elif tag == "comet_collateral":
            symbol = key[1]
            view.comet_collateral_usd[(key[0], symbol)] = \
                w[0] / 10 ** DECIMALS[symbol] * price(PRICED_AS[symbol])
        elif tag == "morpho" and w[1] > 0:
            market, account = key
            total_assets, total_shares, oracle_price = markets[market]
            view.morpho[(market, account)] = _morpho_position(
                w[1], w[2], total_assets, total_shares, oracle_price, morpho.markets[market][4])
        elif tag == "perps" and w[0]:
            view.perps_liquidatable.add(key[0])
        elif tag == "options" and w[0]:
            view.options_liquidatable.add(key[0])
        elif tag == "balance":
            view.balances[(key[0], key[1])] = w[0]
    # What the vaults that can be liquidated are short: a liquidator burns exactly these.
    shorts = _Batch(batch.cache)
    for agent in agents:
        if agent.address in view.options_liquidatable:
            for otoken in agent.shorts:
                shorts.add(eco.options.venue, "short_amount", (agent.address, agent.vault_id,
                                                               otoken), "short", agent.address,
                           otoken)
    if shorts.calls:
        for _, (account, otoken), w in shorts.run(eco.multicall):
            view.option_shorts[(account, otoken)] = w[0]
    return view


def _morpho_position(borrow_shares: int, collateral: int, total_borrow_assets: int,
                     total_borrow_shares: int, oracle_price: int, lltv: int) -> MorphoPosition:
    """Health as Morpho judges it: debt rounded up, collateral at the oracle times LLTV."""
    borrowed = to_assets_up(borrow_shares, total_borrow_assets, total_borrow_shares)
    max_borrow = collateral * oracle_price // ORACLE_PRICE_SCALE * lltv // WAD
    incentive = liquidation_incentive(lltv)
    value = collateral * oracle_price / ORACLE_PRICE_SCALE
    return MorphoPosition(borrow_shares, borrowed, collateral, max_borrow / borrowed,
                          repay_all=value / incentive > borrowed * 1.001)
