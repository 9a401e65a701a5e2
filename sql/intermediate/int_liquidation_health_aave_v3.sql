-- grain: one row per Aave v3 liquidation (chain_id, block_number, log_index)
-- The borrower's health factor as Pool.liquidationCall computes it, from the state just before
-- the liquidation (int_liquidations.state_ordinal): for every reserve, the aToken balance if it
-- is enabled as collateral (its last ReserveUsedAsCollateralEnabled/Disabled) and its
-- liquidation threshold is not zero, and the variable debt, each worth balance × price / 10^dec
-- (floor) at the reserve's oracle answer; collateral C = Σ worth, threshold LT = Σ worth × lt / C
-- (floor) with lt lowered by the RiskOracle's margin cut in force (int_margin_cuts), debt
-- D = Σ worth; health factor = wadDiv(percentMul(C, LT), D), both half up. The liquidation is
-- valid when it is below 1 (10^18), the collateral asset counts as collateral and
-- the borrower owes the debt asset.
-- Balances are what balanceOf returns at the liquidation's second, interest included: the
-- borrower's scaled balances (stg_aave_scaled_moves) times the reserve's index grown from its
-- last ReserveDataUpdated before the liquidation (as int_aave_balances values a snapshot).
-- The tokens log the liquidation's own burns and transfers before its LiquidationCall: the
-- borrower's moves in the same transaction after the Pool's previous action event there
-- (Supply, Withdraw, Borrow, Repay, LiquidationCall: each logs after its token moves) are
-- the liquidation's, not the state it judged. A reserve whose aToken or debt token the
-- registry does not list is valued at the flows' principal, exact only while its indexes are
-- 1 ray: once they left it, the liquidation is not decided.
with liq as (
    select * from int_liquidations where protocol = 'aave_v3'
),
pool_actions as (  -- events a Pool logs after the token moves of the same action
    select chain_id, transaction_hash, contract_address,
           log_ordinal(block_number, log_index) as ordinal
    from (select chain_id, transaction_hash, contract_address, block_number, log_index
          from src_aave_v3__supply
          union all
          select chain_id, transaction_hash, contract_address, block_number, log_index
          from src_aave_v3__withdraw
          union all
          select chain_id, transaction_hash, contract_address, block_number, log_index
          from src_aave_v3__borrow
          union all
          select chain_id, transaction_hash, contract_address, block_number, log_index
          from src_aave_v3__repay
          union all
          select chain_id, transaction_hash, contract_address, block_number, log_index
          from src_aave_v3__liquidation_call)
),
liq_start as (  -- the Pool's previous action in the liquidation's transaction, if any
    select l.chain_id, l.block_number, l.log_index, max(a.ordinal) as previous_action
    from liq as l
    left join pool_actions as a
        on a.chain_id = l.chain_id and '0x' || lower(hex(a.transaction_hash)) = l.transaction_hash
        and '0x' || lower(hex(a.contract_address)) = l.contract and a.ordinal < l.ordinal
    group by all
),
scaled as (
    select l.chain_id, l.block_number, l.log_index, m.reserve, m.side,
           sum(m.scaled_delta) as scaled_raw
    from liq as l
    join liq_start as st using (chain_id, block_number, log_index)
    join stg_aave_scaled_moves as m
        on m.chain_id = l.chain_id and m.venue = l.venue and m.account = l.borrower
        and m.ordinal < l.state_ordinal
        and not (m.transaction_hash = l.transaction_hash
                 and m.ordinal > coalesce(st.previous_action, -1))
    group by all
),
scaled_balances as (
    select
        s.chain_id, s.block_number, s.log_index, s.reserve, s.side,
        case when s.scaled_raw >= 0 then mul_div_half_up(
            s.scaled_raw,
            aave_index_at(s.side, u.liquidity_index, u.liquidity_rate, u.variable_borrow_index,
                          u.variable_borrow_rate, epoch(l.block_time) - epoch(u.updated_at)),
            '1' || repeat('0', 27)) end as amount_raw
    from scaled as s
    join liq as l using (chain_id, block_number, log_index)
    asof left join stg_aave_reserve_updates as u
        on u.chain_id = s.chain_id and u.venue = l.venue and u.reserve = s.reserve
        and u.ordinal < l.ordinal
),
principal as (  -- reserves without a registered aToken / debt token: the flows' principal
    select l.chain_id, l.block_number, l.log_index, f.token as reserve, f.side,
           sum(f.sign * f.amount_raw) as amount_raw
    from liq as l
    join stg_flows as f
        on f.chain_id = l.chain_id and f.venue = l.venue and f.account = l.borrower
        and f.side in ('collateral', 'debt')
        and log_ordinal(f.block_number, f.log_index) < l.state_ordinal
    where (f.chain_id, f.venue, f.token, f.side)
          not in (select chain_id, venue, reserve, side from stg_aave_tokens)
    group by all
),
balances as (
    select
        chain_id, block_number, log_index, reserve,
        coalesce(sum(amount_raw) filter (where side = 'collateral'), 0) as collateral_raw,
        coalesce(sum(amount_raw) filter (where side = 'debt'), 0) as debt_raw,
        count(*) filter (where amount_raw is null) as unvalued_balances
    from (select * from scaled_balances union all select * from principal)
    group by all
),
enabled as (
    select l.chain_id, l.block_number, l.log_index, s.reserve,
           arg_max(s.enabled, s.ordinal) as enabled
    from liq as l
    join stg_aave_collateral_switches as s
        on s.chain_id = l.chain_id and s.pool = l.contract and s.account = l.borrower
        and s.ordinal < l.state_ordinal
    group by all
),
accrued as (  -- principal-valued reserves whose index left 1 ray before the liquidation
    select l.chain_id, l.block_number, l.log_index,
           list(distinct coalesce(t.symbol, r.reserve)) as reserves
    from liq as l
    join principal as p using (chain_id, block_number, log_index)
    join stg_aave_reserve_updates as r
        on r.chain_id = l.chain_id and r.pool = l.contract and r.reserve = p.reserve
        and r.ordinal < l.state_ordinal
        and (r.liquidity_index <> ('1' || repeat('0', 27))::decimal(38, 0)
             or r.variable_borrow_index <> ('1' || repeat('0', 27))::decimal(38, 0))
    left join int_tokens as t on t.chain_id = r.chain_id and t.token = r.reserve
    group by all
),
legs as (
    select
        b.*,
        t.symbol,
        '1' || repeat('0', t.decimals) as unit,
        coalesce(e.enabled, false) as enabled,
        try_cast(p.value as decimal(38, 0)) as lt_bps,
        coalesce(mc.cut_bps, 0) as cut_bps,
        a.answer_raw, a.block_number as price_block, a.log_index as price_log_index,
        tf.feed
    from balances as b
    join liq as l using (chain_id, block_number, log_index)
    left join int_tokens as t on t.chain_id = b.chain_id and t.token = b.reserve
    left join enabled as e using (chain_id, block_number, log_index, reserve)
    left join ref_markets as m
        on m.chain_id = b.chain_id and m.venue = l.venue and m.market = b.reserve
    left join ref_risk_params as p
        on p.chain_id = m.chain_id and p.venue = m.venue and p.market_id = m.market_id
        and p.param = 'liquidation_threshold_bps'
    left join int_token_feeds as tf on tf.chain_id = b.chain_id and tf.token = b.reserve
    asof left join stg_oracle_answers as a
        on a.chain_id = b.chain_id and a.feed = tf.feed and a.ordinal < l.state_ordinal
    asof left join int_margin_cuts as mc
        on mc.chain_id = b.chain_id and mc.venue = l.venue and mc.asset = b.reserve
        and mc.ordinal < l.state_ordinal
),
valued as (  -- what the pool reads of each reserve: collateral counts when enabled and lt ≠ 0
    select
        *,
        enabled and collateral_raw > 0 and lt_bps is distinct from 0 as counts,
        (enabled and collateral_raw > 0 and lt_bps is distinct from 0) or debt_raw > 0 as read,
        case when enabled and collateral_raw > 0 and lt_bps > 0 and answer_raw > 0
             then mul_div_down(collateral_raw, answer_raw, unit) end as collateral_base,
        case when debt_raw > 0 and answer_raw > 0
             then mul_div_down(debt_raw, answer_raw, unit) end as debt_base
    from legs
),
account as (
    select
        chain_id, block_number, log_index,
        coalesce(sum(collateral_base) filter (where counts), 0) as collateral_base,
        -- a RiskOracle margin cut lowers the threshold (not below 0); the reserve still counts
        coalesce(sum(mul_div_down(collateral_base, lt_bps - least(cut_bps, lt_bps), 1))
                 filter (where counts), 0) as weighted_base,
        coalesce(sum(debt_base) filter (where debt_raw > 0), 0) as debt_base,
        -- every input there, yet no value: a product beyond 38 digits
        count(*) filter (where answer_raw > 0 and unit is not null
                         and (counts and lt_bps is not null and collateral_base is null
                              or debt_raw > 0 and debt_base is null)) as unvalued,
        list(coalesce(symbol, reserve) order by reserve) filter (where unvalued_balances > 0)
            as unknown_balances,
        list(symbol order by symbol) filter (where counts and lt_bps is null) as no_threshold,
        list(symbol order by symbol) filter (where read and answer_raw is null) as unpriced,
        list(symbol order by symbol) filter (where read and answer_raw <= 0) as nonpositive,
        list({'token': reserve, 'feed': feed, 'answer_raw': answer_raw,
              'price_block': price_block, 'price_log_index': price_log_index}
             order by reserve) filter (where read and answer_raw is not null) as prices
    from valued
    group by all
),
threshold as (  -- the borrower's liquidation threshold: the collateral-weighted mean, floor
    select *,
           case when collateral_base > 0 then mul_div_down(weighted_base, 1, collateral_base)
                else 0 end as threshold_bps
    from account
),
health as (
    select *,
           case when debt_base > 0
                then mul_div_half_up(mul_div_half_up(collateral_base, threshold_bps, 10000),
                                     '1' || repeat('0', 18), debt_base) end as health_factor
    from threshold
)
select
    l.chain_id,
    l.block_number,
    l.log_index,
    'health factor (1e18)' as health_measure,
    h.health_factor as health_raw,
    ('1' || repeat('0', 18))::decimal(38, 0) as threshold_raw,
    coalesce(h.prices, []) as prices,
    list_filter([
        case when c.reserves is not null
             then 'interest accrued on ' || array_to_string(c.reserves, ', ')
                  || ': the flows hold principal, not the balances' end,
        case when len(h.unknown_balances) > 0
             then 'no index of ' || array_to_string(h.unknown_balances, ', ')
                  || ' before the liquidation (no ReserveDataUpdated), or a scaled balance '
                  || 'below 0: the balance is not known' end,
        case when len(h.no_threshold) > 0
             then 'no liquidation_threshold_bps in the registry for '
                  || array_to_string(h.no_threshold, ', ') end,
        case when len(h.unpriced) > 0
             then 'no oracle answer before the liquidation for '
                  || array_to_string(h.unpriced, ', ') end,
        case when h.chain_id is null then 'no position before the liquidation' end,
        case when h.unvalued > 0 then 'a reserve''s value exceeds 38 digits' end
    ], lambda x: x is not null) as undecidable,
    list_filter([
        case when len(h.nonpositive) > 0
             then 'oracle answer not positive for ' || array_to_string(h.nonpositive, ', ')
                  || ': the pool reverts' end,
        case when coalesce(h.debt_base, 0) = 0 then 'the borrower owes nothing' end,
        case when not coalesce(coll.counts, false)
             then coalesce(coll.symbol, l.collateral_asset)
                  || ' is not the borrower''s collateral (not enabled, no balance or no '
                  || 'liquidation threshold)' end,
        case when coalesce(debt.debt_raw, 0) <= 0
             then 'the borrower owes no ' || coalesce(debt.symbol, l.debt_asset) end,
        case when h.health_factor >= ('1' || repeat('0', 18))::decimal(38, 0)
             then 'health factor ' || (h.health_factor / 1e18)::decimal(38, 6)
                  || ' is not below 1' end
    ], lambda x: x is not null) as invalid
from liq as l
left join health as h using (chain_id, block_number, log_index)
left join accrued as c using (chain_id, block_number, log_index)
left join valued as coll
    on coll.chain_id = l.chain_id and coll.block_number = l.block_number
    and coll.log_index = l.log_index and coll.reserve = l.collateral_asset
left join valued as debt
    on debt.chain_id = l.chain_id and debt.block_number = l.block_number
    and debt.log_index = l.log_index and debt.reserve = l.debt_asset
