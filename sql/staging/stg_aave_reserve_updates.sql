-- grain: one row per Aave v3 ReserveDataUpdated (chain_id, block_number, log_index)
-- The state a Pool stores for a reserve at each update: its rates and indexes (RAY, exact;
-- null beyond decimal(38,0)) and when (updated_at, the block's time, what Aave keeps as
-- lastUpdateTimestamp). Between updates a balance grows from these: int_aave_balances and
-- int_liquidation_health_aave_v3 read the last update before the moment they value, through
-- aave_index_at (contagion.protocols.aave_v3).
select
    r.chain_id,
    r.block_number,
    r.log_index,
    log_ordinal(r.block_number, r.log_index) as ordinal,
    c.venue,
    '0x' || lower(hex(r.contract_address)) as pool,
    '0x' || lower(hex(r.reserve)) as reserve,
    r.block_time as updated_at,
    try_cast(r.liquidity_rate as decimal(38, 0)) as liquidity_rate,
    try_cast(r.variable_borrow_rate as decimal(38, 0)) as variable_borrow_rate,
    try_cast(r.liquidity_index as decimal(38, 0)) as liquidity_index,
    try_cast(r.variable_borrow_index as decimal(38, 0)) as variable_borrow_index
from src_aave_v3__reserve_data_updated as r
left join ref_venue_contracts as c
    on c.chain_id = r.chain_id and c.contract = '0x' || lower(hex(r.contract_address))
