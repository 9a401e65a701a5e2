-- grain: one row per AMM swap (chain_id, block_number, log_index)
-- Swaps seen from the pool: a positive amount is the token sold into it, a negative one the
-- token bought out of it (whole token units; null where the exact value did not fit, see the
-- lake's `unfit` column).
select
    chain_id,
    block_number,
    log_index,
    pool,
    venue,
    token0,
    token1,
    amount0,
    amount1
from src_amm_swaps
