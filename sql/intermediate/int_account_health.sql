-- grain: one row per snapshot × lending venue × borrower position group (account; account and market at Morpho, whose markets are isolated)
-- Collateral at market value and weighted by each market's liquidation threshold in force at
-- the snapshot (int_market_thresholds: the registry's less a RiskOracle margin cut), against
-- debt, for every group that holds collateral or debt. A group is below its liquidation
-- threshold when debt > Σ collateral × threshold. Collateral the registry gives no threshold
-- counts as zero there.
with legs as (
    select
        p.snapshot_block, p.chain_id, p.venue, p.protocol, p.account,
        case when p.protocol = 'morpho_blue' then p.market end as isolated_market,
        p.side, p.amount_usd,
        p.amount_usd * coalesce(m.liquidation_threshold, 0) as threshold_usd
    from int_positions as p
    left join int_market_thresholds as m
        on m.snapshot_block = p.snapshot_block and m.chain_id = p.chain_id
        and m.venue = p.venue and m.market = p.market and m.collateral_token = p.token
    where p.venue_kind = 'lending' and p.side in ('collateral', 'debt')
)
select
    snapshot_block,
    chain_id,
    venue,
    protocol,
    account,
    isolated_market,
    coalesce(sum(amount_usd) filter (where side = 'collateral'), 0) as collateral_usd,
    coalesce(sum(threshold_usd) filter (where side = 'collateral'), 0) as threshold_collateral_usd,
    coalesce(sum(amount_usd) filter (where side = 'debt'), 0) as debt_usd,
    count(*) filter (where amount_usd is null) as unpriced_legs,
    case when coalesce(sum(amount_usd) filter (where side = 'debt'), 0) > 0
         then coalesce(sum(threshold_usd) filter (where side = 'collateral'), 0)
              / sum(amount_usd) filter (where side = 'debt')
    end as health_factor
from legs
group by all
