-- grain: one row per perps position event (chain_id, block_number, log_index)
select
    chain_id,
    block_number,
    block_time,
    log_index,
    log_ordinal(block_number, log_index) as ordinal,
    venue,
    vault,
    key,
    account,
    collateral_token,
    index_token,
    is_long,
    event,
    size_usd,
    collateral_usd,
    average_price
from src_perp_positions
