-- grain: one row per Comet and read block (chain_id, contract, block_number)
-- A Comet's state at the end of the block (the lake's compound_v3__states, read with eth_call
-- at every block in which the Comet logged and at each partition's last block): its indexes
-- (1e15-scaled), principal totals, last accrual (unix seconds) and the eight rate parameters
-- (1e18-scaled, per second), null with unread_reason when a read failed. Comet logs none of
-- them. A balance grows from these to a later second: int_compound_balances and
-- int_liquidation_health_compound_v3 read the latest state before the moment they value,
-- through comet_index_at (contagion.protocols.compound_v3).
select
    s.chain_id,
    s.block_number,
    s.block_time,
    c.venue,
    c.contract,
    c.base_token,
    s.base_supply_index,
    s.base_borrow_index,
    s.total_supply_base,
    s.total_borrow_base,
    s.last_accrual_time::bigint as last_accrual_time,
    s.supply_kink,
    s.supply_slope_low,
    s.supply_slope_high,
    s.supply_base,
    s.borrow_kink,
    s.borrow_slope_low,
    s.borrow_slope_high,
    s.borrow_base,
    -- the indexes stand still whatever the time: no rate above 0 on either curve
    s.supply_base = 0 and s.supply_slope_low = 0 and s.supply_slope_high = 0
        and s.borrow_base = 0 and s.borrow_slope_low = 0 and s.borrow_slope_high = 0
        as rates_zero,
    s.unread_reason
from src_compound_v3__states as s
join stg_comets as c on c.chain_id = s.chain_id and c.contract = lower(s.contract_address)
