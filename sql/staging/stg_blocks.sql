-- grain: one row per indexed block header (chain_id, block_number)
select distinct
    chain_id,
    block_number,
    to_timestamp(timestamp::bigint) as block_time
from src_blocks
