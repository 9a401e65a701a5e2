"""GMX v1 perpetuals (the Vault's position events) and the devnet's perps vault.

Declarations are the deployed Vault's (Arbitrum 0x489ee077994B6658eAfA855C308275EAd8097C4A):
no indexed parameters, and UpdatePosition WITHOUT the trailing `markPrice` that later source
revisions of gmx-contracts added (that variant's topic0, 0x20853733…, is not what the deployed
Vault emits). USD amounts and prices carry 30 decimals; the position key is
keccak256(abi.encodePacked(account, collateralToken, indexToken, isLong)).
"""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import (
    USD,
    USD_DECIMALS,
    Context,
    Tables,
    concat_flows,
    exact_columns,
    flow_frame,
    is_positive,
    preceding_transfer,
    with_venue,
)
from contagion.protocols.spec import event

PROTOCOL = "gmx_v1"

INCREASE_POSITION = event(
    PROTOCOL,
    "IncreasePosition(bytes32 key, address account, address collateralToken, address indexToken, "
    "uint256 collateralDelta, uint256 sizeDelta, bool isLong, uint256 price, uint256 fee)",
    "0x2fe68525253654c21998f35787a8d0f361905ef647c854092430ab65f2f15022",
)
DECREASE_POSITION = event(
    PROTOCOL,
    "DecreasePosition(bytes32 key, address account, address collateralToken, address indexToken, "
    "uint256 collateralDelta, uint256 sizeDelta, bool isLong, uint256 price, uint256 fee)",
    "0x93d75d64d1f84fc6f430a64fc578bdd4c1e090e90ea2d51773e626d19de56d30",
)
LIQUIDATE_POSITION = event(
    PROTOCOL,
    "LiquidatePosition(bytes32 key, address account, address collateralToken, address indexToken, "
    "bool isLong, uint256 size, uint256 collateral, uint256 reserveAmount, int256 realisedPnl, "
    "uint256 markPrice)",
    "0x2e1f85a64a2f22cf2f0c42584e7c919ed4abe8d53675cff0f62bf1e95a1c676f",
)
UPDATE_POSITION = event(
    PROTOCOL,
    "UpdatePosition(bytes32 key, uint256 size, uint256 collateral, uint256 averagePrice, "
    "uint256 entryFundingRate, uint256 reserveAmount, int256 realisedPnl)",
    "0x25e8a331a7394a9f09862048843323b00bdbada258f524f5ce624a45bf00aabb",
)
CLOSE_POSITION = event(
    PROTOCOL,
    "ClosePosition(bytes32 key, uint256 size, uint256 collateral, uint256 averagePrice, "
    "uint256 entryFundingRate, uint256 reserveAmount, int256 realisedPnl)",
    "0x73af1d417d82c240fdb6d319b34ad884487c6bf2845d98980cc52ad9171cb455",
)

# Devnet-only: GMX leaves bad debt implicit (the pool silently absorbs it).
BAD_DEBT = event(
    PROTOCOL,
    "BadDebt(bytes32 key, address account, address collateralToken, uint256 amountUsd)",
    "0x6ce6649cba7d6b40ab14e94a265681110ba823079f09819a9f0e9e07aafc7a35",
    real=False,
    note="devnet perps vault: a liquidated position's losses beyond its margin, in USD (1e30)",
)
LIQUIDITY_DEPOSITED = event(
    PROTOCOL,
    "LiquidityDeposited(address indexed provider, uint256 amount)",
    "0x7ff07ce9a287649537e4b012e45cf012d90228b12e2b56bb03515a6b5436fcdf",
    real=False,
    note="devnet perps vault: USDC added to the counterparty pool (GMX mints GLP instead)",
)
LIQUIDITY_WITHDRAWN = event(
    PROTOCOL,
    "LiquidityWithdrawn(address indexed provider, uint256 amount)",
    "0xb1cce8684b4ffa8667b4577654e61ee3480d661ee9c27522ac80e211f6bd4d25",
    real=False,
    note="devnet perps vault: USDC taken out of the counterparty pool (GMX burns GLP instead)",
)

EVENTS = (
    INCREASE_POSITION,
    DECREASE_POSITION,
    LIQUIDATE_POSITION,
    UPDATE_POSITION,
    CLOSE_POSITION,
    BAD_DEBT,
    LIQUIDITY_DEPOSITED,
    LIQUIDITY_WITHDRAWN,
)


# ---------------------------------------------------------------- canonical tables

_POSITION = ("account", "collateral_token", "index_token", "is_long")


def position_keys(tables: Tables) -> pl.DataFrame:
    """chain_id, contract_address, key → account, collateral_token, index_token, is_long, from
    every event that names them (the key is a hash of those four, so any one event suffices)."""
    named = [tables[name].select("chain_id", "contract_address", "key", *_POSITION)
             for name in ("gmx_v1__increase_position", "gmx_v1__decrease_position",
                          "gmx_v1__liquidate_position")]
    return pl.concat(named).unique(["chain_id", "contract_address", "key"], keep="first",
                                   maintain_order=True)


def pool_tokens(tables: Tables) -> pl.DataFrame:
    """LiquidityDeposited / LiquidityWithdrawn rows (`deposited` says which) with `pool_token`:
    the token of the ERC-20 transfer that moved the amount between provider and vault just
    before the event, else the token most such transfers of the same vault moved."""
    transfers = tables["erc20__transfer"]
    vault, provider = pl.col("contract_address"), pl.col("provider")
    deposits = preceding_transfer(tables["gmx_v1__liquidity_deposited"], transfers,
                                  sender=provider, receiver=vault, value=pl.col("amount"),
                                  alias="pool_token").with_columns(pl.lit(True).alias("deposited"))
    withdrawals = preceding_transfer(tables["gmx_v1__liquidity_withdrawn"], transfers,
                                     sender=vault, receiver=provider, value=pl.col("amount"),
                                     alias="pool_token").with_columns(
        pl.lit(False).alias("deposited"))
    both = pl.concat([deposits, withdrawals])
    usual = both.filter(pl.col("pool_token").is_not_null()).group_by(
        "chain_id", "contract_address").agg(pl.col("pool_token").mode().sort().first()
                                            .alias("_usual"))
    return both.join(usual, on=["chain_id", "contract_address"], how="left").with_columns(
        pl.coalesce("pool_token", "_usual").alias("pool_token")).drop("_usual")


def flows(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Perps vault events as flows (docs/canonical.md, "GMX v1"). Position amounts are USD with
    30 decimals: token = the USD pseudo-address, market = the index token. The devnet's
    liquidity events are `supply`/`withdraw` of the pool token (market = the pool token)."""
    P, t, usd = PROTOCOL, tables, pl.lit(USD)
    dec = pl.lit(USD_DECIMALS, pl.Int32())
    increase, decrease = t["gmx_v1__increase_position"], t["gmx_v1__decrease_position"]
    bad_debt = t["gmx_v1__bad_debt"].join(position_keys(t).select(
        "chain_id", "contract_address", "key", "index_token"),
        on=["chain_id", "contract_address", "key"], how="left")
    liquidity = pool_tokens(t)
    pool = pl.col("pool_token")
    delta = pl.col("collateral_delta")
    parts = [
        flow_frame(increase.filter(is_positive(delta)), source="gmx_v1__increase_position",
                   protocol=P, action="margin_in", side="margin", account=pl.col("account"),
                   token=usd, market=pl.col("index_token"), amount=delta, decimals=dec),
        flow_frame(decrease.filter(is_positive(delta)), source="gmx_v1__decrease_position",
                   protocol=P, action="margin_out", side="margin", account=pl.col("account"),
                   token=usd, market=pl.col("index_token"), amount=delta, decimals=dec),
        flow_frame(t["gmx_v1__liquidate_position"], source="gmx_v1__liquidate_position",
                   protocol=P, action="liquidation_seize", side="margin",
                   account=pl.col("account"), token=usd, market=pl.col("index_token"),
                   amount=pl.col("collateral"), decimals=dec),
        flow_frame(bad_debt, source="gmx_v1__bad_debt", protocol=P, action="bad_debt",
                   side="margin", account=pl.col("account"), token=usd,
                   market=pl.col("index_token"), amount=pl.col("amount_usd"), decimals=dec),
        flow_frame(liquidity.filter(pl.col("deposited")), source="gmx_v1__liquidity_deposited",
                   protocol=P, action="supply", side="supply", account=pl.col("provider"),
                   token=pool, market=pool, amount=pl.col("amount")),
        flow_frame(liquidity.filter(~pl.col("deposited")), source="gmx_v1__liquidity_withdrawn",
                   protocol=P, action="withdraw", side="supply", account=pl.col("provider"),
                   token=pool, market=pool, amount=pl.col("amount")),
    ]
    return concat_flows(parts)


def perp_positions(tables: Tables, ctx: Context) -> pl.DataFrame:
    """One row per Increase/Decrease/Liquidate/Update/ClosePosition (PERP_POSITIONS_SCHEMA).
    Update and Close carry only the key; the position's account, tokens and side come from any
    other event of the same key in the input (null if there is none)."""
    t = tables
    null = pl.lit(None, pl.String())
    keys = position_keys(t)

    def rows(name: str, event_name: str, **values: pl.Expr) -> pl.DataFrame:
        frame = t[name]
        if "account" not in frame.columns:
            frame = frame.join(keys, on=["chain_id", "contract_address", "key"], how="left")
        columns = {c: values.get(c, null) for c in
                   ("size_delta_usd", "collateral_delta_usd", "size_usd", "collateral_usd",
                    "average_price", "price", "fee", "realised_pnl", "mark_price",
                    "reserve_amount")}
        return frame.select(
            "chain_id", "block_number", "block_time", "transaction_hash", "log_index",
            "contract_address", pl.col("contract_address").alias("vault"), "key", *_POSITION,
            pl.lit(event_name).alias("event"), *(e.alias(c) for c, e in columns.items()),
            pl.lit(name).alias("source"))

    col = pl.col
    state = {"size_usd": col("size"), "collateral_usd": col("collateral"),
             "average_price": col("average_price"), "reserve_amount": col("reserve_amount"),
             "realised_pnl": col("realised_pnl")}
    frames = [
        rows("gmx_v1__increase_position", "increase", size_delta_usd=col("size_delta"),
             collateral_delta_usd=col("collateral_delta"), price=col("price"), fee=col("fee")),
        rows("gmx_v1__decrease_position", "decrease", size_delta_usd=col("size_delta"),
             collateral_delta_usd=col("collateral_delta"), price=col("price"), fee=col("fee")),
        rows("gmx_v1__liquidate_position", "liquidate", size_usd=col("size"),
             collateral_usd=col("collateral"), reserve_amount=col("reserve_amount"),
             realised_pnl=col("realised_pnl"), mark_price=col("mark_price")),
        rows("gmx_v1__update_position", "update", **state),
        rows("gmx_v1__close_position", "close", **state),
    ]
    out = pl.concat(frames).sort("chain_id", "block_number", "log_index")
    out = exact_columns(out, {c: pl.col(c) for c in (
        "size_delta_usd", "collateral_delta_usd", "size_usd", "collateral_usd", "average_price",
        "price", "fee", "realised_pnl", "mark_price", "reserve_amount")})
    return with_venue(out, ctx)
