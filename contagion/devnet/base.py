"""The base layer every venue stands on: tokens, Chainlink-style feeds, AMM pairs, multicall."""

from __future__ import annotations

from dataclasses import dataclass, field

from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver

__all__ = ["FEED_DECIMALS", "TOKEN_SPECS", "BaseWorld", "deploy_base", "usd_feed_answer"]

FEED_DECIMALS = 8  # Chainlink USD feeds answer with 8 decimals

# symbol -> (name, decimals, initial USD price)
TOKEN_SPECS: dict[str, tuple[str, int, float]] = {
    "WETH": ("Wrapped Ether", 18, 2000.0),
    "USDC": ("USD Coin", 6, 1.0),
    "WBTC": ("Wrapped BTC", 8, 30000.0),
    "stETH": ("Liquid staked Ether (non-rebasing)", 18, 2000.0),
    "GOV": ("Governance token", 18, 10.0),
}
# Volatility feeds, in the same 8-decimal fixed point: 0.60 = 60% annualised.
VOL_FEEDS: dict[str, tuple[str, float]] = {
    "ETH_IV": ("ETH ATM implied volatility (30d)", 0.60),
    "ETH_RR25": ("ETH 25-delta risk reversal (30d)", -0.02),
}


def usd_feed_answer(value: float) -> int:
    return round(value * 10**FEED_DECIMALS)  # type: ignore[no-any-return]


@dataclass
class BaseWorld:
    tokens: dict[str, Contract] = field(default_factory=dict)
    feeds: dict[str, Contract] = field(default_factory=dict)  # by token symbol or vol feed name
    pairs: dict[str, Contract] = field(default_factory=dict)  # "WETH/USDC", "stETH/WETH"
    multicall: Contract | None = None


def deploy_base(driver: DevnetDriver, timestamp: int) -> tuple[BaseWorld, int]:
    """Deploy tokens, feeds, the two AMM pairs and multicall; returns the world and the time
    of the last mined block."""
    world = BaseWorld()
    for symbol, (name, decimals, _) in TOKEN_SPECS.items():
        if symbol == "stETH":
            continue
        world.tokens[symbol] = driver.deploy("ERC20", name, symbol, decimals, label=symbol)
    world.tokens["stETH"] = driver.deploy("LST", TOKEN_SPECS["stETH"][0], "stETH",
                                          world.tokens["WETH"].address, label="stETH")
    for symbol, (_, _, price) in TOKEN_SPECS.items():
        world.feeds[symbol] = driver.deploy("ChainlinkAggregator", 8, f"{symbol} / USD",
                                            usd_feed_answer(price), label=f"{symbol}/USD feed")
    for key, (description, value) in VOL_FEEDS.items():
        world.feeds[key] = driver.deploy("ChainlinkAggregator", 8, description,
                                         usd_feed_answer(value), label=key)
    for a, b in (("WETH", "USDC"), ("stETH", "WETH")):
        world.pairs[f"{a}/{b}"] = driver.deploy("UniswapV2Pair", world.tokens[a].address,
                                                world.tokens[b].address, label=f"{a}/{b} pair")
    world.multicall = driver.deploy("Multicall")
    _, timestamp = driver.mine_all(timestamp)
    return world, timestamp


def mint(world: BaseWorld, symbol: str, to: str, amount: int) -> None:
    """Queue a mint of `amount` raw units (the deployer is a minter of every base token).

    The LST is not minted but staked for, as a user would: WETH in at the redemption rate."""
    token = world.tokens[symbol]
    if symbol == "stETH":
        weth = world.tokens["WETH"]
        rate = int(token.call("stEthPerToken"))
        weth_needed = -(-amount * rate // 10**18)  # round up so the shares cover `amount`
        weth.tx(DEPLOYER, "mint", DEPLOYER, weth_needed)
        weth.tx(DEPLOYER, "approve", token.address, weth_needed)
        token.tx(DEPLOYER, "stake", weth_needed)
        token.tx(DEPLOYER, "transfer", to, amount)
    else:
        token.tx(DEPLOYER, "mint", to, amount)
