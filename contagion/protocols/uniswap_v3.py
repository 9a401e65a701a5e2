"""Uniswap v3 pools (UniswapV3Pool events). Not on the devnet; decoded wherever they appear, since
a v3 pool is where most on-chain liquidation selling ends up on mainnet and the L2s."""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import Context, Tables
from contagion.protocols.spec import event
from contagion.protocols.uniswap_v2 import swap_rows

PROTOCOL = "uniswap_v3"

SWAP = event(
    PROTOCOL,
    "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, "
    "uint160 sqrtPriceX96, uint128 liquidity, int24 tick)",
    "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67",
)
MINT = event(
    PROTOCOL,
    "Mint(address sender, address indexed owner, int24 indexed tickLower, "
    "int24 indexed tickUpper, uint128 amount, uint256 amount0, uint256 amount1)",
    "0x7a53080ba414158be7ec69b987b5fb7d07dee101fe85488f0853ae16239d0bde",
)
BURN = event(
    PROTOCOL,
    "Burn(address indexed owner, int24 indexed tickLower, int24 indexed tickUpper, "
    "uint128 amount, uint256 amount0, uint256 amount1)",
    "0x0c396cd989a39f4459b5fa1aed6a9a8dcdbc45908acfd67e028cd568da98982c",
)
COLLECT = event(
    PROTOCOL,
    "Collect(address indexed owner, address recipient, int24 indexed tickLower, "
    "int24 indexed tickUpper, uint128 amount0, uint128 amount1)",
    "0x70935338e69775456a85ddef226c395fb668b63fa0115f5f20610b388e6ca9c0",
)
COLLECT_PROTOCOL = event(
    PROTOCOL,
    "CollectProtocol(address indexed sender, address indexed recipient, uint128 amount0, "
    "uint128 amount1)",
    "0x596b573906218d3411850b26a6b437d6c4522fdb43d2d2386263f86d50b8b151",
)

EVENTS = (SWAP, MINT, BURN, COLLECT, COLLECT_PROTOCOL)


# ---------------------------------------------------------------- canonical tables

def amm_swaps(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Uniswap v3 Swap rows (AMM_SWAPS_SCHEMA): amount0/amount1 as emitted (signed, the pool's
    balance change), sqrtPriceX96 and liquidity as decimal text, tick."""
    return swap_rows(tables["uniswap_v3__swap"], ctx, protocol=PROTOCOL,
                     source="uniswap_v3__swap", sender=pl.col("sender"),
                     recipient=pl.col("recipient"), amount0=pl.col("amount0"),
                     amount1=pl.col("amount1"), sqrt_price_x96=pl.col("sqrt_price_x96"),
                     liquidity=pl.col("liquidity"), tick=pl.col("tick"))
