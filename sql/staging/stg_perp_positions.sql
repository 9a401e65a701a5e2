-- grain: one row per perps position event (chain_id, block_number, log_index)
select
    chain_id,
    block_number,
    block_time,
    log_index,
    venue,
    vault,
    key,
    account,
    collateral_token,
    index_token,
    is_long,
    event,
    size_usd,
    collateral_usd
from src_perp_positions
