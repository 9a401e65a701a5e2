-- grain: one row per snapshot × venue (chain_id, snapshot_block, venue)
-- The state vector early warning scores (issue 6), one window per snapshot: the blocks since the
-- previous snapshot. Every venue gets the market signals of what it holds (exposure-weighted
-- from int_token_signals); each kind adds its own: the lending book, perps open interest,
-- options are completed with their greeks in Python (contagion.risk.state). Definitions, units
-- and sources: docs/schema.md.
with sheet as (
    select * from fct_venue_balance_sheet
),
held as (  -- what each venue holds, as the asset each position is priced as (a perps
           -- position's margin token too: aUSDC margin moves with USDC's signals)
    select p.snapshot_block, p.chain_id, p.venue,
           coalesce(b.priced_as, p.backing_token, p.priced_as, p.token) as asset,
           p.amount_usd as usd
    from int_positions as p
    left join int_oracle_prices as b
        on b.chain_id = p.chain_id and b.snapshot_block = p.snapshot_block
        and b.token = p.backing_token
    where p.side in ('collateral', 'margin', 'supply') and p.amount_usd > 0
    union all  -- pools and staking: the tokens of their markets, in equal parts
    select s.snapshot_block, s.chain_id, m.venue, m.token, 1.0
    from ref_snapshots as s
    join ref_venues as v on v.chain_id = s.chain_id and v.venue_kind in ('amm', 'staking')
    join (select chain_id, venue, collateral_token as token from ref_markets
          union select chain_id, venue, loan_token from ref_markets
          where loan_token is not null) as m
        on m.chain_id = v.chain_id and m.venue = v.venue
),
exposure as (
    select snapshot_block, chain_id, venue, asset,
           sum(usd) / sum(sum(usd)) over (partition by snapshot_block, chain_id, venue)
               as weight
    from held
    group by snapshot_block, chain_id, venue, asset
),
market as (
    select e.snapshot_block, e.chain_id, e.venue,
           sum(e.weight * abs(coalesce(g.oracle_drift, 0))) as oracle_drift,
           sum(e.weight * coalesce(g.order_flow_imbalance, 0)) as order_flow_imbalance,
           sum(e.weight * coalesce(g.implied_vol_change, 0)) as implied_vol_change,
           sum(e.weight * coalesce(g.risk_reversal_change, 0)) as skew_change,
           sum(e.weight * coalesce(g.price_return, 0)) as exposure_return
    from exposure as e
    left join (select *, ln(oracle_price_usd / lag(oracle_price_usd) over (
                   partition by chain_id, token order by snapshot_block)) as price_return
               from int_token_signals) as g
        on g.chain_id = e.chain_id and g.snapshot_block = e.snapshot_block
        and g.token = e.asset
    group by all
),
health as (  -- the groups whose health is decided (fct_venue_balance_sheet counts the others)
    select snapshot_block, chain_id, venue,
           sum(debt_usd) filter (where health_factor < 1.05) as debt_within_5pct,
           sum(debt_usd) filter (where health_factor < 1.10) as debt_within_10pct,
           sum(collateral_usd) filter (where debt_usd > 0) as borrower_collateral_usd,
           sum(threshold_collateral_usd) filter (where debt_usd > 0)
               as borrower_threshold_usd,
           sum(debt_usd) as borrower_debt_usd
    from int_account_health
    where undecided_reason is null
    group by all
),
group_collateral as (  -- each borrower group's largest collateral, as units of its asset
    select p.snapshot_block, p.chain_id, p.venue, p.account,
           case when p.protocol = 'morpho_blue' then p.market end as isolated_market,
           coalesce(p.priced_as, p.token) as asset, p.amount_usd
    from int_positions as p
    where p.venue_kind = 'lending' and p.side = 'collateral' and p.amount_usd > 0
    qualify row_number() over (
        partition by p.snapshot_block, p.chain_id, p.venue, p.account, isolated_market
        order by p.amount_usd desc, asset) = 1
),
under_margined as (  -- the 10 largest borrower groups within 50 % of their liquidation point
    select h.snapshot_block, h.chain_id, h.venue, h.debt_usd,
           least(greatest(1 - 1 / h.health_factor, 0)
                 / (g.volatility * sqrt(1 / 365.25)), 10) as sigmas,
           c.amount_usd / g.oracle_price_usd
               / (g.amm_depth_units + c.amount_usd / g.oracle_price_usd) as slippage
    from int_account_health as h
    join group_collateral as c
        on c.snapshot_block = h.snapshot_block and c.chain_id = h.chain_id
        and c.venue = h.venue and c.account = h.account
        and c.isolated_market is not distinct from h.isolated_market
    join int_token_signals as g
        on g.chain_id = c.chain_id and g.snapshot_block = c.snapshot_block
        and g.token = c.asset
    where h.debt_usd > 0 and h.health_factor < 1.5 and g.volatility > 0
    qualify row_number() over (partition by h.snapshot_block, h.chain_id, h.venue
                               order by h.debt_usd desc) <= 10
),
liquidation_distance as (
    select snapshot_block, chain_id, venue,
           sum(sigmas * debt_usd) / sum(debt_usd) as liquidation_distance_sigmas,
           sum(slippage * debt_usd) / sum(debt_usd) filter (where slippage is not null)
               as liquidation_slippage
    from under_margined
    group by all
),
window_flows as (
    select w.snapshot_block, f.chain_id, f.venue,
           sum(f.amount * p.price_usd) filter (where f.action = 'liquidation_repay')
               as liquidated_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'liquidation_seize'
                                                 and f.side = 'margin') as margin_seized_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'supply'
                                                 and f.side in ('collateral', 'supply'))
               as deposits_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'withdraw'
                                                 and f.side in ('collateral', 'supply'))
               as withdrawals_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'margin_in') as margin_in_usd,
           sum(f.amount * p.price_usd) filter (where f.action = 'margin_out') as margin_out_usd
    from stg_flows as f
    join int_windows as w
        on w.chain_id = f.chain_id and f.block_number > w.window_start
        and f.block_number <= w.snapshot_block
    left join int_token_prices as p
        on p.chain_id = f.chain_id and p.snapshot_block = w.snapshot_block and p.token = f.token
    group by all
),
holders as (
    select snapshot_block, chain_id, venue, account, sum(amount_usd) as usd
    from int_positions
    where side in ('collateral', 'margin') and amount_usd > 0
    group by snapshot_block, chain_id, venue, account
),
concentration as (
    select snapshot_block, chain_id, venue,
           sum(power(usd, 2)) / power(sum(usd), 2) as collateral_hhi
    from holders
    group by all
),
open_interest as (
    select snapshot_block, chain_id, venue,
           coalesce(sum(size_usd_raw::double) filter (where is_long), 0) / 1e30 as long_usd,
           coalesce(sum(size_usd_raw::double) filter (where not is_long), 0) / 1e30
               as short_usd
    from int_perp_margin
    group by all
),
state as (
    select
        s.snapshot_block,
        s.chain_id,
        s.venue,
        s.venue_kind,
        w.window_start,
        case when s.debt_usd > 0 then s.collateral_usd / s.debt_usd end as collateral_ratio,
        case when h.borrower_debt_usd > 0
             then h.borrower_collateral_usd / h.borrower_debt_usd end
            as borrower_collateral_ratio,
        case when h.borrower_threshold_usd > 0
             then h.borrower_collateral_usd / h.borrower_threshold_usd end
            as liquidation_collateral_ratio,
        case when s.cash_usd + s.debt_usd > 0 then s.debt_usd / (s.cash_usd + s.debt_usd)
        end as utilization,
        -- of the decided groups' debt: an undecided group's is neither near nor far; the
        -- options venues' written oTokens are debt of no borrower group
        case when s.venue_kind <> 'lending' and s.debt_usd > 0 then 0
             when h.borrower_debt_usd > 0
             then coalesce(h.debt_within_5pct, 0) / h.borrower_debt_usd end
            as debt_share_within_5pct,
        case when s.venue_kind <> 'lending' and s.debt_usd > 0 then 0
             when h.borrower_debt_usd > 0
             then coalesce(h.debt_within_10pct, 0) / h.borrower_debt_usd end
            as debt_share_within_10pct,
        case when s.venue_kind = 'lending'
             then coalesce(d.liquidation_distance_sigmas, 10) end
            as liquidation_distance_sigmas,
        case when s.venue_kind = 'lending' then coalesce(d.liquidation_slippage, 0) end
            as liquidation_slippage,
        case when s.debt_usd > 0 and s.venue_kind = 'lending'
                 then coalesce(f.liquidated_usd, 0) / s.debt_usd
             when s.margin_usd > 0 then coalesce(f.margin_seized_usd, 0) / s.margin_usd
        end as liquidated_share,
        case when coalesce(f.deposits_usd, 0) + coalesce(f.withdrawals_usd, 0) > 0
             then (coalesce(f.withdrawals_usd, 0) - coalesce(f.deposits_usd, 0))
                  / (coalesce(f.deposits_usd, 0) + coalesce(f.withdrawals_usd, 0))
             else 0 end as flow_asymmetry,
        coalesce(c.collateral_hhi, 0) as collateral_hhi,
        case when s.venue_kind = 'perps' then
            case when oi.long_usd + oi.short_usd > 0
                 then (oi.long_usd - oi.short_usd) / (oi.long_usd + oi.short_usd) else 0 end
        end as open_interest_imbalance,
        case when s.venue_kind = 'perps' then
            case when s.margin_usd > 0
                 then (coalesce(f.margin_in_usd, 0) - coalesce(f.margin_out_usd, 0))
                      / s.margin_usd else 0 end
        end as net_margin_flow,
        coalesce(m.oracle_drift, 0) as oracle_drift,
        coalesce(m.order_flow_imbalance, 0) as order_flow_imbalance,
        coalesce(m.implied_vol_change, 0) as implied_vol_change,
        coalesce(m.skew_change, 0) as skew_change,
        coalesce(m.exposure_return, 0) as exposure_return,
        s.unpriced_positions,
        s.undecided_accounts
    from sheet as s
    join int_windows as w using (chain_id, snapshot_block)
    left join health as h using (snapshot_block, chain_id, venue)
    left join liquidation_distance as d using (snapshot_block, chain_id, venue)
    left join window_flows as f using (snapshot_block, chain_id, venue)
    left join concentration as c using (snapshot_block, chain_id, venue)
    left join open_interest as oi using (snapshot_block, chain_id, venue)
    left join market as m using (snapshot_block, chain_id, venue)
)
select
    snapshot_block,
    chain_id,
    venue,
    venue_kind,
    window_start,
    collateral_ratio,
    collateral_ratio - lag(collateral_ratio) over per_venue as collateral_ratio_change,
    collateral_ratio - 2 * lag(collateral_ratio) over per_venue
        + lag(collateral_ratio, 2) over per_venue as collateral_ratio_acceleration,
    borrower_collateral_ratio,
    liquidation_collateral_ratio,
    utilization,
    debt_share_within_5pct,
    debt_share_within_10pct,
    liquidation_distance_sigmas,
    liquidation_slippage,
    liquidated_share,
    flow_asymmetry,
    collateral_hhi,
    open_interest_imbalance,
    net_margin_flow,
    oracle_drift,
    order_flow_imbalance,
    implied_vol_change,
    skew_change,
    exposure_return,
    unpriced_positions,
    undecided_accounts
from state
window per_venue as (partition by chain_id, venue order by snapshot_block)
