-- grain: one row per Uniswap-v2 Sync (chain_id, block_number, log_index)
-- A pair's reserves after every change.
select
    chain_id,
    block_number,
    log_index,
    '0x' || lower(hex(contract_address)) as pair,
    reserve0::decimal(38, 0) as reserve0,
    reserve1::decimal(38, 0) as reserve1
from src_uniswap_v2__sync
