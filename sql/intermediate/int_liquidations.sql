-- grain: one row per liquidation (chain_id, block_number, log_index)
-- Every liquidation the decoded tables hold: an Aave LiquidationCall, a Compound absorb of one
-- account (its AbsorbDebt), a Morpho Liquidate, a perps LiquidatePosition, an options
-- VaultLiquidated. Some write logs of their own before that one: an Aave liquidation its
-- DeficitCreated and ReserveUsedAsCollateralDisabled of the borrower, a Compound absorb one
-- AbsorbCollateral per asset. Those belong to it (the nearest liquidation of the same borrower
-- after them in the transaction), and state_ordinal is its first log: the state the venue
-- judged is every log before it. Ordinals are block × 10^6 + log index. Amounts come from the
-- flows of its logs (docs/canonical.md): the collateral seized, the debt repaid.
with events as (
    select chain_id, block_number, block_time, transaction_hash, log_index, contract_address,
           'aave_v3' as protocol, user as borrower, liquidator, null::blob as position_key,
           null::varchar as vault_id, null::blob as market
    from src_aave_v3__liquidation_call
    union all
    select chain_id, block_number, block_time, transaction_hash, log_index, contract_address,
           'compound_v3', borrower, absorber, null, null, null
    from src_compound_v3__absorb_debt
    union all
    select chain_id, block_number, block_time, transaction_hash, log_index, contract_address,
           'morpho_blue', borrower, caller, null, null, id
    from src_morpho_blue__liquidate
    union all  -- GMX v1 does not log the liquidator
    select chain_id, block_number, block_time, transaction_hash, log_index, contract_address,
           'gmx_v1', account, null, key, null, index_token
    from src_gmx_v1__liquidate_position
    union all
    select chain_id, block_number, block_time, transaction_hash, log_index, contract_address,
           'opyn_gamma', vault_owner, liquidator, null, vault_id, null
    from src_opyn_gamma__vault_liquidated
),
liquidations as (
    select
        e.chain_id, e.block_number, e.block_time,
        '0x' || lower(hex(e.transaction_hash)) as transaction_hash,
        e.log_index,
        log_ordinal(e.block_number, e.log_index) as ordinal,
        '0x' || lower(hex(e.contract_address)) as contract,
        c.venue, e.protocol,
        '0x' || lower(hex(e.market)) as market,
        '0x' || lower(hex(e.borrower)) as borrower,
        '0x' || lower(hex(e.liquidator)) as liquidator,
        '0x' || lower(hex(e.position_key)) as position_key,
        e.vault_id::ubigint as vault_id
    from events as e
    left join ref_venue_contracts as c
        on c.chain_id = e.chain_id and c.contract = '0x' || lower(hex(e.contract_address))
),
earlier_logs as (  -- logs a liquidation writes before its own
    select chain_id, transaction_hash, contract_address, user as borrower, block_number,
           log_index
    from src_aave_v3__deficit_created
    union all
    select chain_id, transaction_hash, contract_address, user, block_number, log_index
    from src_aave_v3__reserve_used_as_collateral_disabled
    union all
    select chain_id, transaction_hash, contract_address, borrower, block_number, log_index
    from src_compound_v3__absorb_collateral
),
own_logs as (
    select l.chain_id, l.block_number, l.log_index, o.block_number as own_block,
           o.log_index as own_log_index, log_ordinal(o.block_number, o.log_index)
               as own_ordinal
    from (select chain_id, '0x' || lower(hex(transaction_hash)) as transaction_hash,
                 '0x' || lower(hex(contract_address)) as contract,
                 '0x' || lower(hex(borrower)) as borrower, block_number, log_index,
                 log_ordinal(block_number, log_index) as ordinal
          from earlier_logs) as o
    asof join liquidations as l
        on l.chain_id = o.chain_id and l.transaction_hash = o.transaction_hash
        and l.contract = o.contract and l.borrower = o.borrower and o.ordinal < l.ordinal
),
logs as (  -- every log of each liquidation
    select chain_id, block_number, log_index, block_number as own_block,
           log_index as own_log_index, ordinal as own_ordinal
    from liquidations
    union all
    select * from own_logs
),
amounts as (
    select
        g.chain_id, g.block_number, g.log_index,
        min(g.own_ordinal) as state_ordinal,
        list({'token': f.token, 'amount_raw': f.amount_raw} order by f.log_index, f.flow_index)
            filter (where f.action = 'liquidation_seize') as collateral_seized,
        count(distinct f.token) filter (where f.action = 'liquidation_seize') as seized_tokens,
        any_value(f.token) filter (where f.action = 'liquidation_seize') as seized_token,
        sum(f.amount_raw) filter (where f.action = 'liquidation_seize') as seized_raw,
        any_value(f.token) filter (where f.action = 'liquidation_repay') as debt_asset,
        sum(f.amount_raw) filter (where f.action = 'liquidation_repay') as debt_amount_raw
    from logs as g
    left join stg_flows as f
        on f.chain_id = g.chain_id and f.block_number = g.own_block
        and f.log_index = g.own_log_index
        and f.action in ('liquidation_seize', 'liquidation_repay')
    group by g.chain_id, g.block_number, g.log_index
)
select
    l.chain_id,
    l.block_number,
    l.block_time,
    l.transaction_hash,
    l.log_index,
    l.ordinal,
    a.state_ordinal,
    l.contract,
    l.venue,
    l.protocol,
    coalesce(l.market, case when l.protocol = 'opyn_gamma' then a.debt_asset end) as market,
    l.borrower,
    l.liquidator,
    l.position_key,
    l.vault_id,
    -- one collateral asset (every venue but a Compound absorb of several): its amount here
    case when a.seized_tokens = 1 then a.seized_token end as collateral_asset,
    case when a.seized_tokens = 1 then a.seized_raw end as collateral_amount_raw,
    coalesce(a.collateral_seized, []) as collateral_seized,
    a.debt_asset,
    a.debt_amount_raw
from liquidations as l
join amounts as a using (chain_id, block_number, log_index)
