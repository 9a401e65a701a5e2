-- grain: one row per snapshot × lending venue (chain_id, snapshot_block, venue)
-- The state vector early warning scores (issue 6), one window per snapshot: the blocks since the
-- previous snapshot. Definitions, units and sources: docs/schema.md.
with sheet as (
    select * from fct_venue_balance_sheet where venue_kind = 'lending'
),
windows as (
    select chain_id, snapshot_block,
           coalesce(lag(snapshot_block) over (partition by chain_id order by snapshot_block),
                    0) as window_start
    from ref_snapshots
),
health as (
    select snapshot_block, chain_id, venue,
           sum(debt_usd) filter (where health_factor < 1.05) as debt_within_5pct,
           sum(debt_usd) filter (where health_factor < 1.10) as debt_within_10pct
    from int_account_health
    group by all
),
window_flows as (
    select w.snapshot_block, f.chain_id, f.venue,
           sum(f.amount * p.price_usd) filter (where f.action = 'liquidation_repay')
               as liquidated_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'supply'
                                                 and f.side in ('collateral', 'supply'))
               as deposits_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'withdraw'
                                                 and f.side in ('collateral', 'supply'))
               as withdrawals_usd
    from stg_flows as f
    join windows as w
        on w.chain_id = f.chain_id and f.block_number > w.window_start
        and f.block_number <= w.snapshot_block
    left join int_token_prices as p
        on p.chain_id = f.chain_id and p.snapshot_block = w.snapshot_block and p.token = f.token
    group by all
),
holders as (
    select snapshot_block, chain_id, venue, account, sum(amount_usd) as usd
    from int_positions
    where side = 'collateral' and amount_usd > 0
    group by snapshot_block, chain_id, venue, account
),
concentration as (
    select h.snapshot_block, h.chain_id, h.venue,
           sum(power(h.usd / t.total, 2)) as collateral_hhi
    from holders as h
    join (select snapshot_block, chain_id, venue, sum(usd) as total from holders
          group by snapshot_block, chain_id, venue) as t
        on t.snapshot_block = h.snapshot_block and t.chain_id = h.chain_id
        and t.venue = h.venue
    group by h.snapshot_block, h.chain_id, h.venue
),
state as (
    select
        s.snapshot_block,
        s.chain_id,
        s.venue,
        w.window_start,
        case when s.debt_usd > 0 then s.collateral_usd / s.debt_usd end as collateral_ratio,
        case when s.cash_usd + s.debt_usd > 0 then s.debt_usd / (s.cash_usd + s.debt_usd)
        end as utilization,
        case when s.debt_usd > 0 then coalesce(h.debt_within_5pct, 0) / s.debt_usd end
            as debt_share_within_5pct,
        case when s.debt_usd > 0 then coalesce(h.debt_within_10pct, 0) / s.debt_usd end
            as debt_share_within_10pct,
        case when s.debt_usd > 0 then coalesce(f.liquidated_usd, 0) / s.debt_usd end
            as liquidated_share,
        case when coalesce(f.deposits_usd, 0) + coalesce(f.withdrawals_usd, 0) > 0
             then (coalesce(f.withdrawals_usd, 0) - coalesce(f.deposits_usd, 0))
                  / (coalesce(f.deposits_usd, 0) + coalesce(f.withdrawals_usd, 0))
             else 0 end as flow_asymmetry,
        coalesce(c.collateral_hhi, 0) as collateral_hhi,
        s.unpriced_positions
    from sheet as s
    join windows as w on w.chain_id = s.chain_id and w.snapshot_block = s.snapshot_block
    left join health as h
        on h.snapshot_block = s.snapshot_block and h.chain_id = s.chain_id
        and h.venue = s.venue
    left join window_flows as f
        on f.snapshot_block = s.snapshot_block and f.chain_id = s.chain_id
        and f.venue = s.venue
    left join concentration as c
        on c.snapshot_block = s.snapshot_block and c.chain_id = s.chain_id
        and c.venue = s.venue
)
select
    snapshot_block,
    chain_id,
    venue,
    window_start,
    collateral_ratio,
    collateral_ratio - lag(collateral_ratio) over per_venue as collateral_ratio_change,
    collateral_ratio - 2 * lag(collateral_ratio) over per_venue
        + lag(collateral_ratio, 2) over per_venue as collateral_ratio_acceleration,
    utilization,
    debt_share_within_5pct,
    debt_share_within_10pct,
    liquidated_share,
    flow_asymmetry,
    collateral_hhi,
    unpriced_positions
from state
window per_venue as (partition by chain_id, venue order by snapshot_block)
