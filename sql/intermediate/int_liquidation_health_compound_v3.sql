-- grain: one row per Compound v3 absorb of one account (chain_id, block_number, log_index)
-- Comet.isLiquidatable, from the state just before the absorb (int_liquidations.state_ordinal):
-- the account borrows (its base balance is below zero) and the borrow's value, debt × base
-- price / base scale (truncated), exceeds Σ over its collateral of balance × price / scale
-- (floor) × liquidateCollateralFactor / 10^18 (floor), all in the feeds' 8-decimal USD; the
-- factor less the RiskOracle's margin cut in force. Comet stops adding collateral once the sum
-- covers the borrow, which does not change the outcome. The debt is Comet's: absorb accrues
-- first, then values the principal at the stored borrow index. Only an accrual writes the
-- indexes and a second one at the same second adds nothing, so the index the absorb used is
-- the one the Comet's state read at the end of the absorb's block holds (stg_compound_states,
-- read at every block the Comet logs in; comet_index_at, 0 seconds after its accrual;
-- comet_present_value). The principal is the borrower's latest read before the block
-- (stg_compound_principals), plus
-- its own base flows earlier in the block (present values: exact while rates are 0, else off
-- by Comet's rounding of the principal in between). A principal that changed without a base
-- event naming the account (a transferAsset: docs/canonical.md) is not what the reads say.
-- Collateral is the flows' sum.
with liq as (
    select * from int_liquidations where protocol = 'compound_v3'
),
collateral as (
    select l.chain_id, l.block_number, l.log_index, f.token,
           sum(f.sign * f.amount_raw) as collateral_raw
    from liq as l
    join stg_flows as f
        on f.chain_id = l.chain_id and f.venue = l.venue and f.account = l.borrower
        and f.side = 'collateral' and log_ordinal(f.block_number, f.log_index) < l.state_ordinal
    group by all
),
read_before as (  -- the borrower's principal before the block, and the absorb's index
    select
        l.chain_id, l.block_number, l.log_index,
        c.block_number as state_block, c.unread_reason as state_unread,
        p.unread_reason as principal_unread,
        case when p.block_number is null then 0 else p.principal end as principal,
        comet_index_at('supply', c.base_supply_index, c.base_borrow_index, c.total_supply_base,
                       c.total_borrow_base, c.supply_kink, c.supply_slope_low,
                       c.supply_slope_high, c.supply_base, c.borrow_kink, c.borrow_slope_low,
                       c.borrow_slope_high, c.borrow_base,
                       epoch(l.block_time)::bigint - c.last_accrual_time) as supply_index,
        comet_index_at('borrow', c.base_supply_index, c.base_borrow_index, c.total_supply_base,
                       c.total_borrow_base, c.supply_kink, c.supply_slope_low,
                       c.supply_slope_high, c.supply_base, c.borrow_kink, c.borrow_slope_low,
                       c.borrow_slope_high, c.borrow_base,
                       epoch(l.block_time)::bigint - c.last_accrual_time) as borrow_index
    from liq as l
    asof left join stg_compound_states as c
        on c.chain_id = l.chain_id and c.contract = l.contract
        and c.block_number <= l.block_number
    asof left join stg_compound_principals as p
        on p.chain_id = l.chain_id and p.contract = l.contract and p.account = l.borrower
        and p.block_number < l.block_number
),
in_block as (  -- the borrower's base flows earlier in the absorb's block
    select l.chain_id, l.block_number, l.log_index,
           sum(case f.side when 'supply' then f.sign * f.amount_raw
                           else -f.sign * f.amount_raw end) as moved_raw
    from liq as l
    join stg_flows as f
        on f.chain_id = l.chain_id and f.venue = l.venue and f.account = l.borrower
        and f.side in ('supply', 'debt') and f.block_number = l.block_number
        and log_ordinal(f.block_number, f.log_index) < l.state_ordinal
    group by all
),
base_balance as (
    select r.*,
           comet_present_value(r.principal, r.supply_index, r.borrow_index)
               + coalesce(i.moved_raw, 0) as base_raw
    from read_before as r
    left join in_block as i using (chain_id, block_number, log_index)
),
held as (  -- the tokens to read: every collateral with flows, and the base token in any case
    select chain_id, block_number, log_index, token from collateral
    union
    select l.chain_id, l.block_number, l.log_index, c.base_token
    from liq as l
    join stg_comets as c on c.chain_id = l.chain_id and c.contract = l.contract
    where c.base_token is not null
),
legs as (  -- the base position and every collateral, priced before the absorb
    select
        k.chain_id, k.block_number, k.log_index, k.token,
        k.token = bt.base_token as is_base,
        coalesce(b.collateral_raw, 0) as collateral_raw,
        bb.base_raw,
        t.symbol, '1' || repeat('0', t.decimals) as scale,
        -- a RiskOracle margin cut (int_margin_cuts) lowers the factor, not below 0
        try_cast(p.value as decimal(38, 0))
            - least(coalesce(mc.cut_wad, 0), try_cast(p.value as decimal(38, 0)))
            as liquidate_factor,
        tf.feed, a.answer_raw, a.block_number as price_block, a.log_index as price_log_index
    from held as k
    join liq as l using (chain_id, block_number, log_index)
    left join stg_comets as bt on bt.chain_id = l.chain_id and bt.contract = l.contract
    left join collateral as b using (chain_id, block_number, log_index, token)
    left join base_balance as bb using (chain_id, block_number, log_index)
    left join int_tokens as t on t.chain_id = k.chain_id and t.token = k.token
    left join ref_markets as m
        on m.chain_id = k.chain_id and m.venue = l.venue and m.market = k.token
    left join ref_risk_params as p
        on p.chain_id = m.chain_id and p.venue = m.venue and p.market_id = m.market_id
        and p.param = 'liquidate_collateral_factor'
    left join int_token_feeds as tf on tf.chain_id = k.chain_id and tf.token = k.token
    asof left join stg_oracle_answers as a
        on a.chain_id = k.chain_id and a.feed = tf.feed and a.ordinal < l.state_ordinal
    asof left join int_margin_cuts as mc
        on mc.chain_id = k.chain_id and mc.venue = l.venue and mc.asset = k.token
        and mc.ordinal < l.state_ordinal
),
valued as (
    select
        *,
        not is_base and collateral_raw > 0 as is_collateral,
        not is_base and collateral_raw > 0 or is_base and base_raw < 0 as read,
        case when not is_base and collateral_raw > 0 and answer_raw > 0
             then mul_div_down(mul_div_down(collateral_raw, answer_raw, scale),
                               liquidate_factor, '1' || repeat('0', 18)) end as factored_usd
    from legs
),
account as (
    select
        chain_id, block_number, log_index,
        coalesce(sum(factored_usd) filter (where is_collateral), 0) as collateral_usd,
        any_value(answer_raw) filter (where is_base) as base_price,
        any_value(scale) filter (where is_base) as base_scale,
        any_value(symbol) filter (where is_base) as base_symbol,
        bool_or(is_base) as base_known,
        count(*) filter (where is_collateral and answer_raw > 0 and liquidate_factor is not null
                         and scale is not null and factored_usd is null) as unvalued,
        list(symbol order by symbol) filter (where is_collateral and liquidate_factor is null)
            as no_factor,
        list(symbol order by symbol) filter (where read and answer_raw is null) as unpriced,
        list(symbol order by symbol) filter (where read and answer_raw <= 0) as nonpositive,
        list({'token': token, 'feed': feed, 'answer_raw': answer_raw,
              'price_block': price_block, 'price_log_index': price_log_index}
             order by token) filter (where read and answer_raw is not null) as prices
    from valued
    group by all
),
health as (
    select a.*, bb.base_raw, bb.state_block, bb.state_unread, bb.principal_unread,
           case when bb.base_raw >= 0 then 0::decimal(38, 0)
                when a.base_price > 0 then mul_div_down(-bb.base_raw, a.base_price, a.base_scale)
           end as borrow_usd
    from account as a
    join base_balance as bb using (chain_id, block_number, log_index)
)
select
    l.chain_id,
    l.block_number,
    l.log_index,
    'collateral × liquidate factor against borrow (USD 1e8)' as health_measure,
    h.collateral_usd as health_raw,
    h.borrow_usd as threshold_raw,
    coalesce(h.prices, []) as prices,
    list_filter([
        case when not coalesce(h.base_known, false)
             then 'no base token for ' || coalesce(l.venue, l.contract) || ' in the registry'
        end,
        case when h.state_block is null and h.base_known
             then 'no state of the Comet read before the absorb' end,
        case when h.state_unread is not null
             then 'the Comet''s state before the absorb was not read: ' || h.state_unread end,
        case when h.principal_unread is not null
             then 'the borrower''s principal before the absorb was not read: '
                  || h.principal_unread end,
        case when len(h.no_factor) > 0
             then 'no liquidate_collateral_factor in the registry for '
                  || array_to_string(h.no_factor, ', ') end,
        case when len(h.unpriced) > 0
             then 'no oracle answer before the absorb for '
                  || array_to_string(h.unpriced, ', ') end,
        case when h.unvalued > 0 then 'a collateral''s value exceeds 38 digits' end
    ], lambda x: x is not null) as undecidable,
    list_filter([
        case when len(h.nonpositive) > 0
             then 'oracle answer not positive for ' || array_to_string(h.nonpositive, ', ')
                  || ': Comet reverts' end,
        case when h.base_raw >= 0 then 'the account does not borrow' end,
        case when h.base_raw < 0 and h.collateral_usd >= h.borrow_usd
             then 'collateral × liquidate factor ' || (h.collateral_usd / 1e8)::decimal(38, 2)
                  || ' USD covers the borrow of ' || (h.borrow_usd / 1e8)::decimal(38, 2)
                  || ' USD' end
    ], lambda x: x is not null) as invalid
from liq as l
left join health as h using (chain_id, block_number, log_index)
