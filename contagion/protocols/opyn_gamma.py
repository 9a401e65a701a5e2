"""Opyn Gamma (OtokenFactory + Controller v2, naked margin) and the devnet options venue.

Declarations are copied from opynfinance/GammaProtocol `contracts/core/OtokenFactory.sol` and
`contracts/core/Controller.sol` (v2, the implementation behind the mainnet Controller proxy).
Controller v1 declared `VaultOpened(address,uint256)` and `VaultSettled` with five fields; logs
from before the v2 upgrade carry those older topics and are not covered here.
"""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import (
    USD,
    USD_DECIMALS,
    ZERO_ADDRESS,
    Context,
    Tables,
    concat_flows,
    exact_columns,
    flow_frame,
    is_positive,
    normalized,
    preceding_transfer,
    scaled,
    token_decimals,
    with_venue,
)
from contagion.protocols.spec import event

PROTOCOL = "opyn_gamma"

OTOKEN_CREATED = event(
    PROTOCOL,
    "OtokenCreated(address tokenAddress, address creator, address indexed underlying, "
    "address indexed strike, address indexed collateral, uint256 strikePrice, uint256 expiry, "
    "bool isPut)",
    "0xedf283b0b3396dd34e23a917cb887ad557f18a593be3a2e9c069fd59f19a811a",
)
VAULT_OPENED = event(
    PROTOCOL,
    "VaultOpened(address indexed accountOwner, uint256 vaultId, uint256 indexed vaultType)",
    "0x5d66689e2c864b4f21efd3988c0ce5dc8a197981b68e81ce73660e92394fe25f",
)
COLLATERAL_ASSET_DEPOSITED = event(
    PROTOCOL,
    "CollateralAssetDeposited(address indexed asset, address indexed accountOwner, "
    "address indexed from, uint256 vaultId, uint256 amount)",
    "0xbfab88b861f171b7db714f00e5966131253918d55ddba816c3eb94657d102390",
)
COLLATERAL_ASSET_WITHDRAWED = event(  # sic: Opyn's spelling
    PROTOCOL,
    "CollateralAssetWithdrawed(address indexed asset, address indexed AccountOwner, "
    "address indexed to, uint256 vaultId, uint256 amount)",
    "0xfe86f7694b6c54a528acbe27be61dd4a85e9a89aeef7f650a1b439045ccee5a4",
)
SHORT_OTOKEN_MINTED = event(
    PROTOCOL,
    "ShortOtokenMinted(address indexed otoken, address indexed AccountOwner, "
    "address indexed to, uint256 vaultId, uint256 amount)",
    "0x4d7f96086c92b2f9a254ad21548b1c1f2d99502c7949508866349b96bb1a8d8a",
)
SHORT_OTOKEN_BURNED = event(
    PROTOCOL,
    "ShortOtokenBurned(address indexed otoken, address indexed AccountOwner, "
    "address indexed from, uint256 vaultId, uint256 amount)",
    "0xdd96b18f26fd9950581b9fd821fa907fc318845fc4d220b825a7b19bfdd174e8",
)
REDEEM = event(
    PROTOCOL,
    "Redeem(address indexed otoken, address indexed redeemer, address indexed receiver, "
    "address collateralAsset, uint256 otokenBurned, uint256 payout)",
    "0x18fd144d7dbcbaa6f00fd47a84adc7dc3cc64a326ffa2dc7691a25e3837dba03",
)
VAULT_SETTLED = event(
    PROTOCOL,
    "VaultSettled(address indexed accountOwner, address indexed oTokenAddress, address to, "
    "uint256 payout, uint256 vaultId, uint256 indexed vaultType)",
    "0x522cda7dd0677ee4c9512efd8aa92af93de64b4c2fe2f8bfe7a9234a655a9bf5",
)
VAULT_LIQUIDATED = event(
    PROTOCOL,
    "VaultLiquidated(address indexed liquidator, address indexed receiver, "
    "address indexed vaultOwner, uint256 auctionPrice, uint256 auctionStartingRound, "
    "uint256 collateralPayout, uint256 debtAmount, uint256 vaultId)",
    "0x93e59ec97820bb1ed9fb6ddc10619d1574e803b1f79b937414feb8f6b7051f9d",
)

OPTION_TRADED = event(
    PROTOCOL,
    "OptionTraded(address indexed otoken, address indexed buyer, address indexed seller, "
    "uint256 vaultId, bool isPut, uint256 strikePrice, uint256 expiry, uint256 amount, "
    "uint256 premium, uint256 impliedVol)",
    "0x2cc67d3bfa12ab6187e2057eeab06f0ee2a71586f3b389a672507b7ba209afdc",
    real=False,
    note="Devnet-only trade record (Opyn trades off-protocol, e.g. on 0x): every trade records "
    "strike, expiry, size, premium and the implied vol used.",
)
VAULT_BAD_DEBT = event(
    PROTOCOL,
    "VaultBadDebt(address indexed vaultOwner, uint256 vaultId, uint256 shortfallUsd)",
    "0x91cfc7c5802c78a358da16638d055f93072b0eec0d22ab7836bdb7b404a95beb",
    real=False,
    note="Devnet-only: a vault's collateral ran out while shorts remained (liquidation) or did "
    "not cover what its shorts owed at expiry; shortfall in USD, 8 decimals.",
)

EVENTS = (
    OTOKEN_CREATED,
    VAULT_OPENED,
    COLLATERAL_ASSET_DEPOSITED,
    COLLATERAL_ASSET_WITHDRAWED,
    SHORT_OTOKEN_MINTED,
    SHORT_OTOKEN_BURNED,
    REDEEM,
    VAULT_SETTLED,
    VAULT_LIQUIDATED,
    OPTION_TRADED,
    VAULT_BAD_DEBT,
)


# ---------------------------------------------------------------- canonical tables

OTOKEN_DECIMALS = 8  # Opyn oTokens (and the devnet's) always have 8 decimals
USD_DECIMALS_EVENTS = 8  # strike prices and VaultBadDebt's shortfall: USD with 8 decimals


def created_otokens(tables: Tables, ctx: Context) -> pl.DataFrame:
    """The oTokens OtokenCreated rows announce, as token rows (Context.tokens columns): kind
    otoken, 8 decimals, issued by the venue whose contract emitted the event."""
    created = with_venue(tables["opyn_gamma__otoken_created"], ctx)
    return created.select(
        "chain_id", pl.col("token_address").alias("token"), pl.lit(None, pl.String()).alias(
            "symbol"), pl.lit(OTOKEN_DECIMALS, pl.Int32()).alias("decimals"),
        pl.lit("otoken").alias("kind"), pl.col("venue").alias("issued_by"),
        pl.col("underlying"))


def vault_assets(tables: Tables) -> pl.DataFrame:
    """chain_id, contract_address, owner, vault_id → asset: a vault's collateral asset, from
    the deposits and withdrawals of that vault present in the input."""
    deposited = tables["opyn_gamma__collateral_asset_deposited"].select(
        "chain_id", "contract_address", pl.col("account_owner").alias("owner"), "vault_id",
        "asset")
    withdrawn = tables["opyn_gamma__collateral_asset_withdrawed"].select(
        "chain_id", "contract_address", pl.col("account_owner").alias("owner"), "vault_id",
        "asset")
    return pl.concat([deposited, withdrawn]).unique(
        ["chain_id", "contract_address", "owner", "vault_id"], keep="first", maintain_order=True)


def flows(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Options venue events as flows (docs/canonical.md, "Opyn Gamma"). Margin flows have no
    market; short positions are debt in oTokens (market = the oToken). A liquidation's oToken is
    not in VaultLiquidated: it is the token whose burn from the liquidator of exactly
    `debtAmount` precedes the event in its transaction; the seized collateral is the vault's
    asset (from its deposits/withdrawals in the input)."""
    P, t = PROTOCOL, tables
    assets = vault_assets(t)

    def with_asset(frame: pl.DataFrame, owner: str) -> pl.DataFrame:
        return frame.join(assets.rename({"owner": owner}),
                          on=["chain_id", "contract_address", owner, "vault_id"], how="left")

    liquidated = preceding_transfer(
        with_asset(t["opyn_gamma__vault_liquidated"], "vault_owner"), t["erc20__transfer"],
        sender=pl.col("liquidator"), receiver=pl.lit(ZERO_ADDRESS), value=pl.col("debt_amount"),
        alias="otoken")
    settled = with_asset(t["opyn_gamma__vault_settled"], "account_owner")
    otoken, asset = pl.col("otoken"), pl.col("asset")
    parts = [
        flow_frame(t["opyn_gamma__collateral_asset_deposited"],
                   source="opyn_gamma__collateral_asset_deposited", protocol=P,
                   action="margin_in", side="margin", account=pl.col("account_owner"),
                   token=asset, amount=pl.col("amount")),
        flow_frame(t["opyn_gamma__collateral_asset_withdrawed"],
                   source="opyn_gamma__collateral_asset_withdrawed", protocol=P,
                   action="margin_out", side="margin", account=pl.col("account_owner"),
                   token=asset, amount=pl.col("amount")),
        flow_frame(t["opyn_gamma__short_otoken_minted"], source="opyn_gamma__short_otoken_minted",
                   protocol=P, action="short_open", side="debt",
                   account=pl.col("account_owner"), token=otoken, market=otoken,
                   amount=pl.col("amount")),
        flow_frame(t["opyn_gamma__short_otoken_burned"], source="opyn_gamma__short_otoken_burned",
                   protocol=P, action="short_close", side="debt",
                   account=pl.col("account_owner"), token=otoken, market=otoken,
                   amount=pl.col("amount")),
        flow_frame(liquidated, source="opyn_gamma__vault_liquidated", protocol=P,
                   action="liquidation_repay", side="debt", account=pl.col("vault_owner"),
                   token=otoken, market=otoken, amount=pl.col("debt_amount")),
        flow_frame(liquidated, source="opyn_gamma__vault_liquidated", protocol=P,
                   action="liquidation_seize", side="margin", account=pl.col("vault_owner"),
                   token=asset, amount=pl.col("collateral_payout"), flow_index=1),
        flow_frame(t["opyn_gamma__vault_bad_debt"], source="opyn_gamma__vault_bad_debt",
                   protocol=P, action="bad_debt", side="margin", account=pl.col("vault_owner"),
                   token=pl.lit(USD), amount=scaled(pl.col("shortfall_usd"),
                                                    USD_DECIMALS - USD_DECIMALS_EVENTS),
                   decimals=pl.lit(USD_DECIMALS, pl.Int32())),
        flow_frame(settled.filter(is_positive(pl.col("payout"))),
                   source="opyn_gamma__vault_settled", protocol=P, action="margin_out",
                   side="margin", account=pl.col("account_owner"), token=asset,
                   amount=pl.col("payout")),
    ]
    return concat_flows(parts)


def option_trades(tables: Tables, ctx: Context) -> pl.DataFrame:
    """OptionTraded rows (OPTION_TRADES_SCHEMA). Units, from OptionsVenue.vy: strike USD with 8
    decimals, expiry Unix seconds, amount oTokens (8 decimals), premium the premium token's raw
    units (the token of the buyer → seller transfer of exactly the premium before the event;
    USDC on the devnet), impliedVol 1e8 fixed point (0.61e8 = 61 % annualised)."""
    trades = preceding_transfer(tables["opyn_gamma__option_traded"], tables["erc20__transfer"],
                                sender=pl.col("buyer"), receiver=pl.col("seller"),
                                value=pl.col("premium"), alias="premium_token")
    trades = token_decimals(trades, ctx, "premium_token", "_premium_decimals")
    expiry = pl.col("expiry").cast(pl.Int64, strict=False)
    trades = trades.with_columns(
        pl.col("vault_id").cast(pl.UInt64, strict=False).alias("_vault_id"),
        pl.when(expiry < 253402300800).then(expiry * 1000).cast(pl.Datetime("ms", "UTC"))
        .alias("_expiry"))
    trades = exact_columns(trades, {"strike_price": pl.col("strike_price"),
                                    "amount_raw": pl.col("amount"),
                                    "premium_raw": pl.col("premium"),
                                    "implied_vol_raw": pl.col("implied_vol")})
    bad_id = pl.col("_vault_id").is_null()
    bad_expiry = pl.col("_expiry").is_null()
    eight = pl.lit(USD_DECIMALS_EVENTS)
    trades = trades.with_columns(
        pl.concat_str([pl.col("unfit"), pl.when(bad_id).then(pl.lit("vault_id")),
                       pl.when(bad_expiry).then(pl.lit("expiry"))], separator=",",
                      ignore_nulls=True).alias("unfit"))
    out = trades.select(
        "chain_id", "block_number", "block_time", "transaction_hash", "log_index",
        "contract_address", "otoken", "buyer", "seller",
        pl.col("_vault_id").alias("vault_id"), "is_put", "strike_price",
        normalized(pl.col("strike_price"), eight).alias("strike_usd"),
        pl.col("_expiry").alias("expiry"), "amount_raw",
        normalized(pl.col("amount_raw"), pl.lit(OTOKEN_DECIMALS)).alias("amount"),
        "premium_raw", "premium_token",
        normalized(pl.col("premium_raw"), pl.col("_premium_decimals")).alias("premium"),
        "implied_vol_raw",
        normalized(pl.col("implied_vol_raw"), eight).alias("implied_vol"),
        pl.when(pl.col("unfit") == "").then(None).otherwise(pl.col("unfit")).alias("unfit"),
        pl.lit("opyn_gamma__option_traded").alias("source"))
    return with_venue(out, ctx).sort("chain_id", "block_number", "log_index")
