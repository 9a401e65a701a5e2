"""Deploy the devnet ecosystem and describe it in a registry.

The wiring is the point: Aave's aWETH is collateral on Comet, aUSDC is margin on the perps
exchange and collateral on the options venue, the LST is looped on all three lending venues,
and liquidators sell into the two AMM pairs.
"""

from __future__ import annotations

from pathlib import Path

from contagion.chain.rpc import RpcClient
from contagion.devnet.base import TOKEN_SPECS, VOL_FEEDS, BaseWorld, deploy_base
from contagion.devnet.driver import Contract, DevnetDriver
from contagion.devnet.node import DEVNET_CHAIN_ID
from contagion.devnet.risk_oracle import deploy_risk_oracle
from contagion.devnet.venues.aave_v3 import deploy_aave_v3
from contagion.devnet.venues.compound_v3 import deploy_compound_v3
from contagion.devnet.venues.gmx_v1 import deploy_gmx_v1
from contagion.devnet.venues.morpho_blue import deploy_morpho_blue
from contagion.devnet.venues.opyn_gamma import deploy_opyn_gamma
from contagion.registry import Claim, Feed, Market, Registry, Token, Venue, save_registry

__all__ = ["AAVE_RESERVES", "COMET_COLLATERAL", "MORPHO_MARKETS", "deploy_ecosystem"]

WAD = 10**18
# symbol -> (LTV, liquidation threshold, liquidation bonus) in bps, close to Aave v3 Ethereum's.
AAVE_RESERVES: dict[str, tuple[int, int, int]] = {
    "WETH": (8050, 8300, 10500),
    "USDC": (7500, 7800, 10450),
    "WBTC": (7300, 7800, 10500),
    "stETH": (7850, 8100, 10600),
    "GOV": (4000, 5000, 11000),
}
# collateral -> (borrow CF, liquidate CF, liquidation factor) as cUSDCv3 stores them (1e18).
COMET_COLLATERAL: dict[str, tuple[float, float, float]] = {
    "WETH": (0.825, 0.895, 0.95),
    "WBTC": (0.70, 0.77, 0.95),
    "stETH": (0.80, 0.85, 0.90),
    "aWETH": (0.78, 0.83, 0.93),  # an Aave claim as collateral: the first cross-venue wire
}
# "collateral/loan" -> LLTV
MORPHO_MARKETS: dict[str, float] = {"stETH/WETH": 0.945, "WETH/USDC": 0.86, "WBTC/USDC": 0.86}
OPTION_COLLATERAL = {"USDC": 0, "aUSDC": 0, "WETH": 1000}  # haircut bps
SUPPLY_CAP = 2**127
# Risk parameters the registry records as the contracts hold them (read back after deployment),
# so the liquidation audit judges each venue by its own rule.
PERPS_RISK = ("maintenance_margin_bps", "liquidation_fee_usd", "margin_fee_bps")
OPTIONS_RISK = ("shock_bps", "penalty_bps")


def deploy_ecosystem(rpc_url: str, data_dir: Path) -> Registry:
    """Deploy everything on the node at rpc_url and write data_dir/registry.yaml."""
    client = RpcClient(rpc_url)
    try:
        client.call("evm_setAutomine", [False])
        driver = DevnetDriver(client)
        latest = client.call("eth_getBlockByNumber", ["latest", False])
        world, ts = deploy_base(driver, int(latest["timestamp"], 16) + 12)

        aave = deploy_aave_v3(driver, world, AAVE_RESERVES)
        atoken = {s: aave.atokens[s].address for s in AAVE_RESERVES}
        comet_cfg = {}
        for name, (bcf, lcf, lf) in COMET_COLLATERAL.items():
            underlying = name.removeprefix("a") if name.startswith("a") else name
            token = atoken[underlying] if name.startswith("a") else world.tokens[name].address
            comet_cfg[name] = (token, world.feeds[underlying].address, int(bcf * WAD),
                               int(lcf * WAD), int(lf * WAD), SUPPLY_CAP)
        comet = deploy_compound_v3(driver, world, comet_cfg)
        morpho = deploy_morpho_blue(driver, world, {
            key: (key.split("/")[0], key.split("/")[1], int(lltv * WAD))
            for key, lltv in MORPHO_MARKETS.items()})
        usdc_feed = world.feeds["USDC"].address
        perps = deploy_gmx_v1(driver, world,
                              {"USDC": (world.tokens["USDC"].address, usdc_feed, 6),
                               "aUSDC": (atoken["USDC"], usdc_feed, 6)}, ["WETH", "WBTC"])
        options = deploy_opyn_gamma(driver, world, {
            "USDC": (world.tokens["USDC"].address, usdc_feed, 6, OPTION_COLLATERAL["USDC"]),
            "aUSDC": (atoken["USDC"], usdc_feed, 6, OPTION_COLLATERAL["aUSDC"]),
            "WETH": (world.tokens["WETH"].address, world.feeds["WETH"].address, 18,
                     OPTION_COLLATERAL["WETH"]),
        })
        # Last, so every contract above keeps the address it had before the oracle existed.
        oracle = deploy_risk_oracle(driver, [aave.pool, comet.comet, morpho.morpho])
        driver.mine_all(ts + 12)
        # Indexing starts at the first deployment block: feeds' first answers and Morpho's
        # CreateMarket are logged there.
        first_block = int(latest["number"], 16) + 1
        registry = _describe(world, aave, comet, morpho, perps, options, first_block,
                             oracle.address)
        save_registry(registry, data_dir / "registry.yaml")
        return registry
    finally:
        client.close()


def _describe(world: BaseWorld, aave: object, comet: object, morpho: object, perps: object,
              options: object, block: int, risk_oracle: str) -> Registry:
    from contagion.devnet.venues.aave_v3 import AaveV3Venue
    from contagion.devnet.venues.compound_v3 import CompoundV3Venue
    from contagion.devnet.venues.gmx_v1 import GmxV1Venue
    from contagion.devnet.venues.morpho_blue import MorphoBlueVenue
    from contagion.devnet.venues.opyn_gamma import OptionsVenue

    assert isinstance(aave, AaveV3Venue) and isinstance(comet, CompoundV3Venue)
    assert isinstance(morpho, MorphoBlueVenue) and isinstance(perps, GmxV1Venue)
    assert isinstance(options, OptionsVenue)
    kinds = {"USDC": "stablecoin", "stETH": "lst", "GOV": "governance"}
    tokens = [Token(symbol=s, address=world.tokens[s].address, decimals=d, name=n,
                    kind=kinds.get(s, "asset"),  # type: ignore[arg-type]
                    issued_by="lido" if s == "stETH" else None,
                    underlying="WETH" if s == "stETH" else None)
              for s, (n, d, _) in TOKEN_SPECS.items()]
    claims = [Claim(token="stETH", issuer="lido", on=["WETH"], kind="lst")]
    for s in AAVE_RESERVES:
        decimals = TOKEN_SPECS[s][1]
        tokens.append(Token(symbol=f"a{s}", address=aave.atokens[s].address, decimals=decimals,
                            name=f"Aave devnet {s}", kind="atoken", issued_by="aave_v3",
                            underlying=s))
        tokens.append(Token(symbol=f"variableDebt{s}", address=aave.debt_tokens[s].address,
                            decimals=decimals, name=f"Aave devnet variable debt {s}",
                            kind="debt_token", issued_by="aave_v3", underlying=s))
        claims.append(Claim(token=f"a{s}", issuer="aave_v3", on=[s], kind="atoken"))
    for key, pair in world.pairs.items():
        symbol = "UNIV2-" + key.replace("/", "-")
        venue_id = "uniswap_v2_" + key.replace("/", "_").lower()
        tokens.append(Token(symbol=symbol, address=pair.address, decimals=18, kind="lp_share",
                            issued_by=venue_id, name=f"Uniswap v2 {key} LP"))
        claims.append(Claim(token=symbol, issuer=venue_id, on=key.split("/"), kind="lp_share"))

    feeds = [Feed(id=f"{s}/USD", address=world.feeds[s].address, decimals=8, base=s,
                  description=f"{s} / USD") for s in TOKEN_SPECS]
    feeds += [Feed(id=k, address=world.feeds[k].address, decimals=8,
                   kind="implied_vol" if k.endswith("IV") else "risk_reversal", base="WETH",
                   quote="vol", description=d) for k, (d, _) in VOL_FEEDS.items()]

    venues = [
        Venue(id="lido", protocol="lido", kind="staking", name="Devnet liquid staking",
              contracts={"lst": world.tokens["stETH"].address},
              markets=[Market(id="stETH", collateral=["WETH"], loan="stETH")]),
        Venue(id="aave_v3", protocol="aave_v3", kind="lending", name="Aave v3 (devnet)",
              contracts={"pool": aave.pool.address},
              markets=[Market(id=s, collateral=[s], loan=s,
                              params={"ltv_bps": ltv, "liquidation_threshold_bps": lt,
                                      "liquidation_bonus_bps": bonus})
                       for s, (ltv, lt, bonus) in AAVE_RESERVES.items()],
              risk={"close_factor_bps": 5000, "close_factor_full_below_hf_bps": 9500},
              obeys_risk_oracle=True),
        Venue(id="compound_v3_usdc", protocol="compound_v3", kind="lending",
              name="Compound v3 cUSDCv3 (devnet)", contracts={"comet": comet.comet.address},
              markets=[Market(id=name, collateral=[name], loan="USDC",
                              params={"borrow_collateral_factor": int(b * WAD),
                                      "liquidate_collateral_factor": int(lc * WAD),
                                      "liquidation_factor": int(lf * WAD)})
                       for name, (b, lc, lf) in COMET_COLLATERAL.items()],
              obeys_risk_oracle=True),
        Venue(id="morpho_blue", protocol="morpho_blue", kind="lending",
              name="Morpho Blue (devnet)",
              contracts={"morpho": morpho.morpho.address,
                         **{f"oracle {k}": o.address for k, o in morpho.oracles.items()}},
              markets=[Market(id="0x" + morpho.ids[k].hex(), collateral=[k.split("/")[0]],
                              loan=k.split("/")[1],
                              params={"lltv": int(MORPHO_MARKETS[k] * WAD), "label": k,
                                      "oracle": morpho.oracles[k].address,
                                      **_oracle_params(morpho.oracles[k]),
                                      "irm": morpho.markets[k][3]})
                       for k in morpho.markets],
              obeys_risk_oracle=True),
        Venue(id="gmx_v1", protocol="gmx_v1", kind="perps", name="Perps vault (GMX v1 events)",
              contracts={"vault": perps.vault.address},
              risk={name: int(perps.vault.call(name)) for name in PERPS_RISK},
              markets=[Market(id=f"{s}-PERP", collateral=["USDC", "aUSDC"], loan=s)
                       for s in ("WETH", "WBTC")]),
        Venue(id="opyn_gamma", protocol="opyn_gamma", kind="options",
              name="ETH options (Opyn Gamma events)",
              contracts={"controller": options.venue.address},
              risk={name: int(options.venue.call(name)) for name in OPTIONS_RISK},
              markets=[Market(id="ETH-options", collateral=list(OPTION_COLLATERAL), loan="WETH",
                              params={f"haircut_bps_{k}": v
                                      for k, v in OPTION_COLLATERAL.items()})]),
    ]
    venues += [Venue(id="uniswap_v2_" + k.replace("/", "_").lower(), protocol="uniswap_v2",
                     kind="amm", name=f"Uniswap v2 {k}", contracts={"pair": p.address},
                     markets=[Market(id=k, collateral=k.split("/"))])
               for k, p in world.pairs.items()]
    assert world.multicall is not None
    return Registry(network="devnet", chain_id=DEVNET_CHAIN_ID, deployed_at_block=block,
                    tokens=tokens, feeds=feeds, venues=venues, claims=claims,
                    multicall=world.multicall.address, risk_oracle=risk_oracle)


def _oracle_params(oracle: Contract) -> dict[str, int | str]:
    """A Morpho market's oracle as MorphoChainlinkOracle(V2) describes itself: price() is
    SCALE_FACTOR × base answer / quote answer (no quote feed: 1)."""
    return {"oracle_base_feed": str(oracle.call("BASE_FEED_1")),
            "oracle_quote_feed": str(oracle.call("QUOTE_FEED_1")),
            "oracle_scale_factor": int(oracle.call("SCALE_FACTOR"))}
