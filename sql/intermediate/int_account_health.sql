-- grain: one row per snapshot × lending venue × borrower position group (account; account and market at Morpho, whose markets are isolated)
-- Collateral at market value and weighted by each market's liquidation threshold in force at
-- the snapshot (int_market_thresholds: the registry's less a RiskOracle margin cut), against
-- debt, for every group that holds collateral or debt. A group is below its liquidation
-- threshold when debt > Σ collateral × threshold. An Aave supply is collateral only while
-- its owner has it switched on (stg_aave_collateral_switches). A leg with no USD value (no price, or no
-- amount: unvalued) leaves its side's sum null, and a collateral the registry gives no
-- threshold the threshold-weighted sum: a group that owes is then undecided (health null,
-- undecided_reason says why), neither healthy nor underwater; the marts leave it out of their
-- sums and count it apart.
with aave_switched as (  -- an Aave supply's last collateral switch by the snapshot
    select p.snapshot_block, p.chain_id, p.venue, p.account, p.market, s.enabled
    from (select *, block_end_ordinal(snapshot_block) as snapshot_end from int_positions
          where protocol = 'aave_v3' and side = 'collateral') as p
    asof join stg_aave_collateral_switches as s
        on s.chain_id = p.chain_id and s.venue = p.venue and s.account = p.account
        and s.reserve = p.market and s.ordinal <= p.snapshot_end
),
legs as (
    select
        p.snapshot_block, p.chain_id, p.venue, p.protocol, p.account,
        case when p.protocol = 'morpho_blue' then p.market end as isolated_market,
        p.side, p.amount_usd,
        p.amount_usd * m.liquidation_threshold as threshold_usd
    from int_positions as p
    left join int_market_thresholds as m
        on m.snapshot_block = p.snapshot_block and m.chain_id = p.chain_id
        and m.venue = p.venue and m.market = p.market and m.collateral_token = p.token
    left join aave_switched as w
        on w.snapshot_block = p.snapshot_block and w.chain_id = p.chain_id
        and w.venue = p.venue and w.account = p.account and w.market = p.market
    where p.venue_kind = 'lending' and p.side in ('collateral', 'debt')
      -- Aave counts a supply as collateral only while the user has it switched on (never
      -- switched on: a reserve without LTV, or a supply received while it was off)
      and (p.protocol <> 'aave_v3' or p.side = 'debt' or coalesce(w.enabled, false))
),
groups as (
    select
        snapshot_block, chain_id, venue, protocol, account, isolated_market,
        -- a sum over legs one of which is unknown is unknown, not the sum of the others
        case when count(*) filter (where side = 'collateral' and amount_usd is null) = 0
             then coalesce(sum(amount_usd) filter (where side = 'collateral'), 0)
        end as collateral_usd,
        case when count(*) filter (where side = 'collateral' and threshold_usd is null) = 0
             then coalesce(sum(threshold_usd) filter (where side = 'collateral'), 0)
        end as threshold_collateral_usd,
        case when count(*) filter (where side = 'debt' and amount_usd is null) = 0
             then coalesce(sum(amount_usd) filter (where side = 'debt'), 0)
        end as debt_usd,
        count(*) filter (where amount_usd is null) as unpriced_legs,
        case when count(*) filter (where side = 'debt') > 0 then nullif(concat_ws('; ',
            case when count(*) filter (where side = 'debt' and amount_usd is null) > 0
                 then 'a debt has no USD value' end,
            case when count(*) filter (where side = 'collateral' and amount_usd is null) > 0
                 then 'a collateral has no USD value' end,
            case when count(*) filter (where side = 'collateral' and amount_usd is not null
                                       and threshold_usd is null) > 0
                 then 'a collateral has no liquidation threshold' end), '')
        end as undecided_reason
    from legs
    group by all
)
select
    snapshot_block,
    chain_id,
    venue,
    protocol,
    account,
    isolated_market,
    collateral_usd,
    threshold_collateral_usd,
    debt_usd,
    unpriced_legs,
    case when undecided_reason is null and debt_usd > 0
         then threshold_collateral_usd / debt_usd
    end as health_factor,
    undecided_reason
from groups
