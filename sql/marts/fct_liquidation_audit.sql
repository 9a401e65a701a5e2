-- grain: one row per liquidation (chain_id, block_number, log_index)
-- Was each liquidation allowed by its venue's own rule? The rule is replayed exactly, with the
-- venue's integer arithmetic and rounding, on the state just before the liquidation — every
-- log before its first one, so a borrower liquidated twice in a block is judged the second time
-- on what the first left — and on the oracle answers the venue read then (the latest before
-- that log: an answer updated earlier in the same block counts, a later one does not). One
-- int_liquidation_health_<protocol> model per venue family holds the rule (docs/schema.md).
-- valid is null when the rule cannot be decided (a risk parameter missing from the registry, no
-- oracle answer yet, …): reason says why. Otherwise it is false when any of the venue's
-- conditions fails, and reason lists which.
with judged as (
    select * from int_liquidation_health_aave_v3
    union all
    select * from int_liquidation_health_compound_v3
    union all
    select * from int_liquidation_health_morpho_blue
    union all
    select * from int_liquidation_health_gmx_v1
    union all
    select * from int_liquidation_health_opyn_gamma
)
select
    l.chain_id,
    l.block_number,
    l.block_time,
    l.transaction_hash,
    l.log_index,
    l.venue,
    l.protocol,
    l.market,
    l.borrower,
    l.liquidator,
    l.collateral_asset,
    l.collateral_amount_raw,
    l.collateral_seized,
    l.debt_asset,
    l.debt_amount_raw,
    ordinal_log_index(l.state_ordinal)::uinteger as state_before_log_index,
    j.health_measure,
    j.health_raw,
    j.threshold_raw,
    j.health_raw::double / nullif(j.threshold_raw::double, 0) as health,
    j.prices,
    case when j.chain_id is null or len(j.undecidable) > 0 then null
         when j.health_raw is null or j.threshold_raw is null then null
         else len(j.invalid) = 0 end as valid,
    case when j.chain_id is null then 'no rule for protocol ' || l.protocol
         when len(j.undecidable) > 0 then array_to_string(j.undecidable, '; ')
         when j.health_raw is null or j.threshold_raw is null
             then 'the health measure could not be computed'
         when len(j.invalid) > 0 then array_to_string(j.invalid, '; ') end as reason
from int_liquidations as l
left join judged as j using (chain_id, block_number, log_index)
order by l.chain_id, l.block_number, l.log_index
