-- grain: one row per snapshot × Compound v3 base position (venue, base token, account) with a principal read at or before the snapshot
-- What Comet's balanceOf (side supply) or borrowBalanceOf (side debt) returns at the snapshot,
-- with the interest accrued to that second: the account's signed principal (its latest read at
-- or before the end of the snapshot block, stg_compound_principals; shares_raw is its size)
-- at the Comet's indexes brought forward from its latest state read at or before the block
-- (stg_compound_states) to the snapshot's time, as Comet's accruedInterestIndices and
-- presentValue do (comet_index_at once per Comet and snapshot, comet_present_value:
-- contagion.protocols.compound_v3), both sides rounded down; index_raw is that side's index at the snapshot,
-- state_block the read it grew from. The side is the principal's sign (supply when it is unknown). While every rate
-- of the Comet is 0 the indexes stand still and the snapshot's time is not needed. amount_raw
-- is null when a read failed, the lake holds no state of the Comet before the snapshot, or
-- the snapshot block has no header to give its time: the reason column says which.
-- Collateral earns nothing: it stays the flows' sum (int_balances).
with accounts as (
    select distinct chain_id, contract, account from stg_compound_principals
),
at_snapshot as (
    select s.snapshot_block, p.chain_id, p.venue, p.contract, p.base_token, p.account,
           p.principal, p.unread_reason as principal_unread
    from ref_snapshots as s
    join accounts as a on a.chain_id = s.chain_id
    asof join stg_compound_principals as p
        on p.chain_id = a.chain_id and p.contract = a.contract and p.account = a.account
        and p.block_number <= s.snapshot_block
),
state_at as (  -- each Comet's latest state at each snapshot, and the seconds since its accrual
    select
        s.snapshot_block, s.chain_id, k.contract,
        c.block_number as state_block,
        c.unread_reason as state_unread,
        coalesce(epoch(t.snapshot_time)::bigint - c.last_accrual_time,
                 case when c.rates_zero then 0 end) as seconds,
        c.base_supply_index, c.base_borrow_index, c.total_supply_base, c.total_borrow_base,
        c.supply_kink, c.supply_slope_low, c.supply_slope_high, c.supply_base,
        c.borrow_kink, c.borrow_slope_low, c.borrow_slope_high, c.borrow_base
    from ref_snapshots as s
    join stg_snapshot_times as t using (chain_id, snapshot_block)
    join stg_comets as k on k.chain_id = s.chain_id
    asof left join stg_compound_states as c
        on c.chain_id = s.chain_id and c.contract = k.contract
        and c.block_number <= s.snapshot_block
),
indexes as (  -- brought forward once per Comet and snapshot, not once per account
    select
        snapshot_block, chain_id, contract, state_block, state_unread, seconds,
        comet_index_at('supply', base_supply_index, base_borrow_index, total_supply_base,
                       total_borrow_base, supply_kink, supply_slope_low, supply_slope_high,
                       supply_base, borrow_kink, borrow_slope_low, borrow_slope_high,
                       borrow_base, seconds) as supply_index,
        comet_index_at('borrow', base_supply_index, base_borrow_index, total_supply_base,
                       total_borrow_base, supply_kink, supply_slope_low, supply_slope_high,
                       supply_base, borrow_kink, borrow_slope_low, borrow_slope_high,
                       borrow_base, seconds) as borrow_index
    from state_at
),
valued as (
    select
        a.*, i.state_block, i.state_unread, i.seconds,
        case when a.principal < 0 then i.borrow_index else i.supply_index end as index_raw,
        abs(comet_present_value(a.principal, i.supply_index, i.borrow_index)) as amount_raw
    from at_snapshot as a
    join indexes as i using (snapshot_block, chain_id, contract)
)
select
    snapshot_block,
    chain_id,
    venue,
    base_token as market,
    account,
    base_token as token,
    case when principal < 0 then 'debt' else 'supply' end as side,
    amount_raw,
    abs(principal) as shares_raw,
    index_raw,
    state_block,
    case when principal_unread is not null
             then 'the principal was not read: ' || principal_unread
         when state_block is null then 'no state of the Comet read before the snapshot'
         when state_unread is not null then 'the Comet''s state was not read: ' || state_unread
         when seconds is null then 'the snapshot block has no header: its time is unknown'
    end as unvalued_reason
from valued
