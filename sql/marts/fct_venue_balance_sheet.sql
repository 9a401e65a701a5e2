-- grain: one row per snapshot × venue (chain_id, snapshot_block, venue)
-- What each venue holds and owes at each snapshot, in USD as of the snapshot:
--   cash: tokens its contracts hold; collateral, supply, margin: what depositors can take
--   back; debt: what borrowers owe it; claims outstanding: claims it issued held in wallets;
--   reserves = cash + debt − collateral − supply − margin − claims outstanding.
-- The loss-absorbing buffer (docs/schema.md): lending = max(reserves, 0) + the collateral in
-- excess of debt over indebted positions (what prices can erase before bad debt); perps = the
-- LP liquidity (supply); options = the margin posted; staking and AMMs = 0 (losses pass
-- straight to the holders of their claims). The exposure graph divides by it.
-- The bad-debt buffer: what a venue can absorb of bad debt that is already net of each
-- position's own collateral (the cascade's, the insolvency paths'): lending = max(reserves, 0)
-- (one borrower's excess collateral cannot cover another's shortfall); perps = the LP
-- liquidity; options = 0 (a vault's collateral is already netted against what it owes; its
-- shortfall falls on the holders of the series); staking and AMMs = 0.
with sides as (
    select
        snapshot_block, chain_id, venue,
        sum(amount_usd) filter (where side = 'collateral') as collateral_usd,
        sum(amount_usd) filter (where side = 'supply') as supply_usd,
        sum(amount_usd) filter (where side = 'margin') as margin_usd,
        sum(amount_usd) filter (where side = 'debt') as debt_usd,
        sum(amount_usd) filter (where side = 'holding') as claims_outstanding_usd,
        count(*) as positions,
        count(*) filter (where amount_usd is null) as unpriced_positions
    from int_positions
    group by all
),
cash as (
    select c.snapshot_block, c.chain_id, c.venue,
           sum(c.amount_raw::double / power(10, t.decimals) * p.price_usd) as cash_usd,
           count(*) filter (where p.price_usd is null) as unpriced_cash
    from int_venue_cash as c
    join int_tokens as t on t.chain_id = c.chain_id and t.token = c.token
    left join int_token_prices as p
        on p.chain_id = c.chain_id and p.snapshot_block = c.snapshot_block
        and p.token = c.token
    group by all
),
health as (  -- over the groups whose health is decided; the undecided are only counted
    select
        snapshot_block, chain_id, venue,
        count(*) filter (where undecided_reason is null and debt_usd > 0
                         and threshold_collateral_usd < debt_usd)
            as accounts_below_liquidation_threshold,
        count(*) filter (where undecided_reason is not null) as undecided_accounts,
        sum(greatest(collateral_usd - debt_usd, 0))
            filter (where undecided_reason is null and debt_usd > 0) as excess_collateral_usd,
        sum(greatest(debt_usd - collateral_usd, 0))
            filter (where undecided_reason is null and debt_usd > 0) as underwater_debt_usd
    from int_account_health
    group by all
),
bad_debt as (
    select s.snapshot_block, f.chain_id, f.venue,
           sum(f.amount_raw::double / power(10, t.decimals) * p.price_usd) as bad_debt_usd
    from stg_flows as f
    join ref_snapshots as s on s.chain_id = f.chain_id and f.block_number <= s.snapshot_block
    join int_tokens as t on t.chain_id = f.chain_id and t.token = f.token
    left join int_token_prices as p
        on p.chain_id = f.chain_id and p.snapshot_block = s.snapshot_block and p.token = f.token
    where f.action = 'bad_debt'
    group by all
),
sheet as (
    select
        s.snapshot_block,
        v.chain_id,
        v.venue,
        v.protocol,
        v.venue_kind,
        coalesce(c.cash_usd, 0) as cash_usd,
        coalesce(x.collateral_usd, 0) as collateral_usd,
        coalesce(x.supply_usd, 0) as supply_usd,
        coalesce(x.margin_usd, 0) as margin_usd,
        coalesce(x.debt_usd, 0) as debt_usd,
        coalesce(x.claims_outstanding_usd, 0) as claims_outstanding_usd,
        coalesce(h.accounts_below_liquidation_threshold, 0)
            as accounts_below_liquidation_threshold,
        coalesce(h.undecided_accounts, 0) as undecided_accounts,
        coalesce(h.excess_collateral_usd, 0) as excess_collateral_usd,
        coalesce(h.underwater_debt_usd, 0) as underwater_debt_usd,
        coalesce(b.bad_debt_usd, 0) as bad_debt_usd,
        coalesce(x.positions, 0) as positions,
        coalesce(x.unpriced_positions, 0) + coalesce(c.unpriced_cash, 0) as unpriced_positions
    from ref_snapshots as s
    join ref_venues as v on v.chain_id = s.chain_id
    left join sides as x
        on x.chain_id = v.chain_id and x.venue = v.venue and x.snapshot_block = s.snapshot_block
    left join cash as c
        on c.chain_id = v.chain_id and c.venue = v.venue and c.snapshot_block = s.snapshot_block
    left join health as h
        on h.chain_id = v.chain_id and h.venue = v.venue and h.snapshot_block = s.snapshot_block
    left join bad_debt as b
        on b.chain_id = v.chain_id and b.venue = v.venue and b.snapshot_block = s.snapshot_block
),
with_reserves as (
    select
        *,
        cash_usd + debt_usd - collateral_usd - supply_usd - margin_usd - claims_outstanding_usd
            as reserves_usd
    from sheet
)
select
    *,
    case venue_kind
        when 'lending' then greatest(reserves_usd, 0) + excess_collateral_usd
        when 'perps' then supply_usd
        when 'options' then margin_usd
        else 0
    end as buffer_usd,
    case venue_kind
        when 'lending' then 'max(reserves, 0) + collateral in excess of debt'
        when 'perps' then 'LP liquidity'
        when 'options' then 'margin posted'
        else 'none: losses pass through to claim holders'
    end as buffer_basis,
    case venue_kind
        when 'lending' then greatest(reserves_usd, 0)
        when 'perps' then supply_usd
        else 0
    end as bad_debt_buffer_usd
from with_reserves
