-- grain: one row per snapshot × Aave v3 position (venue, reserve, account, side) with a scaled move at or before the snapshot
-- What an Aave v3 aToken or variable debt token's balanceOf returns at the snapshot, with the
-- interest accrued to that second: the holder's scaled balance (shares_raw, summed exactly from
-- the tokens' events in stg_aave_scaled_moves: the token's scaledBalanceOf) times the reserve's
-- index at the snapshot's time (rayMul, half up). The index grows from the Pool's last
-- ReserveDataUpdated before the end of the snapshot block (stg_aave_reserve_updates): the
-- liquidity index by linear interest for the aToken, the variable borrow index compounded for
-- the debt (Pool.getReserveNormalizedIncome / getReserveNormalizedVariableDebt, through
-- aave_index_at). While a rate is 0 the index is the stored one and the snapshot's time is
-- not needed. amount_raw is null
-- when the lake holds no update of the reserve before the snapshot, or the rate is not 0 and
-- the snapshot block has no header (a --snapshot inside a partition without logs): the
-- reason column says which. A scaled move too large to compute (stg_aave_scaled_moves: null)
-- leaves the scaled balance and the amount null from its block on, not the sum of the others.
with moves as (
    select chain_id, venue, reserve, account, side, block_number,
           concat_ws('|', venue, reserve, account, side) as position_key,
           case when bool_or(scaled_delta is null) then null else sum(scaled_delta) end
               as delta
    from stg_aave_scaled_moves
    group by all
),
deltas as (  -- the running sum skips nulls: whether one came by then goes alongside
    select *, bool_or(delta is null) over (partition by position_key order by block_number)
                  as unknown
    from moves
),
at_snapshot as (
    select snapshot_block, chain_id, venue, reserve, account, side,
           case when not unknown then running_sum::decimal(38, 0) end as shares_raw,
           block_end_ordinal(snapshot_block) as snapshot_end
    from running_sums_at_snapshots(deltas, ref_snapshots)
),
indexed as (
    select
        a.*,
        u.block_number as index_block,
        aave_index_at(a.side, u.liquidity_index, u.liquidity_rate, u.variable_borrow_index,
                      u.variable_borrow_rate, epoch(t.snapshot_time) - epoch(u.updated_at))
            as index_raw
    from at_snapshot as a
    join stg_snapshot_times as t using (chain_id, snapshot_block)
    asof left join stg_aave_reserve_updates as u
        on u.chain_id = a.chain_id and u.venue = a.venue and u.reserve = a.reserve
        and u.ordinal <= a.snapshot_end
)
select
    snapshot_block,
    chain_id,
    venue,
    reserve as market,
    account,
    reserve as token,
    side,
    case when shares_raw >= 0  -- below 0: events are missing (no_negative_balances says so)
         then mul_div_half_up(shares_raw, index_raw, '1' || repeat('0', 27))
         else -mul_div_half_up(-shares_raw, index_raw, '1' || repeat('0', 27))
    end as amount_raw,
    shares_raw,
    index_raw,
    index_block,
    case when shares_raw is null
             then 'a scaled move of the position does not fit decimal(38,0)'
         when index_block is null then 'no ReserveDataUpdated of the reserve before the snapshot'
         when index_raw is null then 'the snapshot block has no header: its time is unknown'
    end as unvalued_reason
from indexed
