"""Uniswap v2 pairs (and forks: Sushiswap, the devnet AMM)."""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import (
    Context,
    Tables,
    difference,
    exact_columns,
    normalized,
    token_decimals,
    with_venue,
)
from contagion.protocols.spec import event

PROTOCOL = "uniswap_v2"

SWAP = event(PROTOCOL,
             "Swap(address indexed sender, uint256 amount0In, uint256 amount1In, "
             "uint256 amount0Out, uint256 amount1Out, address indexed to)",
             "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822")
SYNC = event(PROTOCOL, "Sync(uint112 reserve0, uint112 reserve1)",
             "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1")
MINT = event(PROTOCOL, "Mint(address indexed sender, uint256 amount0, uint256 amount1)",
             "0x4c209b5fc8ad50758f13e2e1088ba56a560dff690a1c6fef26394f4c03821c4f")
BURN = event(PROTOCOL,
             "Burn(address indexed sender, uint256 amount0, uint256 amount1, address indexed to)",
             "0xdccd412f0b1252819cb1fd330b93224ca42612892bb3f4f789976e6d81936496")

EVENTS = (SWAP, SYNC, MINT, BURN)


# ---------------------------------------------------------------- canonical tables

def pair_tokens(ctx: Context) -> pl.DataFrame:
    """chain_id, pool, token0, token1 of the registry's AMM venues: a venue's first market with
    exactly two tokens, ordered as the pool orders them (token0 has the lower address)."""
    pairs = ctx.markets.filter(pl.col("collateral").list.len() == 2).unique(
        ["chain_id", "venue"], keep="first", maintain_order=True).join(
        ctx.contracts.filter(pl.col("venue_protocol").is_in(["uniswap_v2", "uniswap_v3"])),
        on=["chain_id", "venue"])
    ordered = pl.col("collateral").list.sort()
    return pairs.select("chain_id", pl.col("contract_address").alias("pool"),
                        ordered.list.get(0).alias("token0"), ordered.list.get(1).alias("token1"))


def swap_rows(frame: pl.DataFrame, ctx: Context, *, protocol: str, source: str,
              sender: pl.Expr, recipient: pl.Expr, amount0: pl.Expr, amount1: pl.Expr,
              sqrt_price_x96: pl.Expr, liquidity: pl.Expr, tick: pl.Expr) -> pl.DataFrame:
    """Swap rows of either version in AMM_SWAPS_SCHEMA's columns (amounts: exact decimal text
    of the pool's balance change)."""
    rows = frame.select(
        "chain_id", "block_number", "block_time", "transaction_hash", "log_index",
        "contract_address", pl.col("contract_address").alias("pool"),
        pl.lit(protocol).alias("protocol"), sender.alias("sender"),
        recipient.alias("recipient"), amount0.alias("_amount0"), amount1.alias("_amount1"),
        sqrt_price_x96.cast(pl.String).alias("sqrt_price_x96"),
        liquidity.cast(pl.String).alias("liquidity"), tick.cast(pl.Int32).alias("tick"),
        pl.lit(source).alias("source"))
    rows = with_venue(rows.join(pair_tokens(ctx), on=["chain_id", "pool"], how="left"), ctx)
    rows = token_decimals(token_decimals(rows, ctx, "token0", "_d0"), ctx, "token1", "_d1")
    rows = exact_columns(rows, {"amount0_delta": pl.col("_amount0"),
                                "amount1_delta": pl.col("_amount1")})
    return rows.with_columns(
        normalized(pl.col("amount0_delta"), pl.col("_d0")).alias("amount0"),
        normalized(pl.col("amount1_delta"), pl.col("_d1")).alias("amount1"),
    ).drop("_amount0", "_amount1", "_d0", "_d1")


def amm_swaps(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Uniswap v2 Swap rows (AMM_SWAPS_SCHEMA): amountN_delta = amountNIn - amountNOut, the
    pool's gain; no price or tick."""
    null = pl.lit(None, pl.String())
    return swap_rows(tables["uniswap_v2__swap"], ctx, protocol=PROTOCOL,
                     source="uniswap_v2__swap", sender=pl.col("sender"), recipient=pl.col("to"),
                     amount0=difference(pl.col("amount0_in"), pl.col("amount0_out")),
                     amount1=difference(pl.col("amount1_in"), pl.col("amount1_out")),
                     sqrt_price_x96=null, liquidity=null, tick=pl.lit(None, pl.Int32()))
