"""Handles on a deployed devnet ecosystem, rebuilt from its registry (so a scenario can run
against any node whose registry it is given, not only the process that deployed it)."""

from __future__ import annotations

from dataclasses import dataclass

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import Contract, DevnetDriver
from contagion.devnet.venues.aave_v3 import AaveV3Venue
from contagion.devnet.venues.compound_v3 import CompoundV3Venue
from contagion.devnet.venues.gmx_v1 import GmxV1Venue
from contagion.devnet.venues.morpho_blue import MarketParams, MorphoBlueVenue
from contagion.devnet.venues.opyn_gamma import OptionsVenue
from contagion.registry import Registry

__all__ = ["Ecosystem", "ecosystem_from_registry"]


@dataclass
class Ecosystem:
    base: BaseWorld
    aave: AaveV3Venue
    comet: CompoundV3Venue
    morpho: MorphoBlueVenue
    perps: GmxV1Venue
    options: OptionsVenue
    atokens: dict[str, Contract]  # underlying symbol -> aToken
    multicall: Contract


def ecosystem_from_registry(driver: DevnetDriver, registry: Registry) -> Ecosystem:
    base = BaseWorld()
    for token in registry.tokens:
        if token.kind in ("asset", "stablecoin", "governance"):
            base.tokens[token.symbol] = driver.at("ERC20", token.address, token.symbol)
        elif token.kind == "lst":
            base.tokens[token.symbol] = driver.at("LST", token.address, token.symbol)
    for feed in registry.feeds:
        key = feed.base if feed.kind == "price" else feed.id
        base.feeds[key] = driver.at("ChainlinkAggregator", feed.address, feed.id)
    for venue in registry.venues:
        if venue.protocol == "uniswap_v2":
            base.pairs[venue.markets[0].id] = driver.at("UniswapV2Pair", venue.contracts["pair"])
    assert registry.multicall is not None
    multicall = driver.at("Multicall", registry.multicall)
    base.multicall = multicall

    atokens = {t.underlying: driver.at("AToken", t.address, t.symbol)
               for t in registry.tokens if t.kind == "atoken" and t.underlying}
    debt = {t.underlying: driver.at("VariableDebtToken", t.address, t.symbol)
            for t in registry.tokens if t.kind == "debt_token" and t.underlying}
    aave_v = registry.venue("aave_v3")
    aave = AaveV3Venue(pool=driver.at("AavePool", aave_v.contracts["pool"]),
                       underlying=dict(base.tokens), atokens=atokens, debt_tokens=debt)

    comet_v = registry.venue("compound_v3_usdc")
    collaterals = {}
    for m in comet_v.markets:
        symbol = m.collateral[0]
        collaterals[symbol] = (atokens[symbol[1:]].address if symbol.startswith("a")
                               else base.tokens[symbol].address)
    comet = CompoundV3Venue(driver.at("Comet", comet_v.contracts["comet"]), "USDC",
                            base.tokens["USDC"].address, collaterals)

    morpho_v = registry.venue("morpho_blue")
    markets: dict[str, MarketParams] = {}
    ids: dict[str, bytes] = {}
    oracles: dict[str, Contract] = {}
    for m in morpho_v.markets:
        label = str(m.params["label"])
        loan, coll = base.tokens[str(m.loan)].address, base.tokens[m.collateral[0]].address
        markets[label] = (loan, coll, str(m.params["oracle"]), str(m.params["irm"]),
                          int(m.params["lltv"]))
        ids[label] = bytes.fromhex(m.id[2:])
        oracles[label] = driver.at("MorphoChainlinkOracle", str(m.params["oracle"]))
    morpho = MorphoBlueVenue(driver.at("MorphoBlue", morpho_v.contracts["morpho"]), markets, ids,
                             oracles)

    perps = GmxV1Venue(driver.at("PerpsVault", registry.venue("gmx_v1").contracts["vault"]),
                       base.tokens["USDC"].address,
                       {"USDC": base.tokens["USDC"].address, "aUSDC": atokens["USDC"].address},
                       {s: base.tokens[s].address for s in ("WETH", "WBTC")})
    options_c = driver.at("OptionsVenue", registry.venue("opyn_gamma").contracts["controller"])
    options = OptionsVenue(options_c, driver.at("OToken", options_c.call("otoken_impl")))
    return Ecosystem(base, aave, comet, morpho, perps, options, atokens, multicall)
