-- grain: one row per perps liquidation (chain_id, block_number, log_index)
-- PerpsVault._liquidation_state (GMX v1's rule without funding), from the position as its last
-- UpdatePosition before the liquidation left it: at the index token's oracle price (the answer
-- × 10^(30 − feed decimals)), delta = ⌊size × |average price − price| / average price⌋, a loss
-- unless the position gains; the margin left, collateral − loss, must stay at least the
-- closing fee (size − ⌊size × (10^4 − margin_fee_bps) / 10^4⌋) plus max(⌊size ×
-- maintenance_margin_bps / 10^4⌋, liquidation_fee_usd), or the position is liquidatable. USD
-- with 30 decimals; the parameters are the venue's registry risk. The LiquidatePosition event
-- reports the size and collateral the vault read: a disagreement with the replayed position
-- leaves the result undecided.
with liq as (
    select * from int_liquidations where protocol = 'gmx_v1'
),
params as (
    select
        chain_id, venue,
        try_cast(max(value) filter (where param = 'maintenance_margin_bps') as decimal(38, 0))
            as maintenance_bps,
        try_cast(max(value) filter (where param = 'liquidation_fee_usd') as decimal(38, 0))
            as liquidation_fee,
        try_cast(max(value) filter (where param = 'margin_fee_bps') as decimal(38, 0))
            as fee_bps
    from ref_risk_params
    where market_id is null
    group by all
),
states as (
    select * from stg_perp_positions where event in ('update', 'close', 'liquidate')
),
inputs as (
    select
        l.chain_id, l.block_number, l.log_index, l.state_ordinal, l.position_key,
        ev.is_long, ev.index_token, ev.size_usd as event_size, ev.collateral_usd as event_collateral,
        st.event as last_event,
        case when st.event = 'update' then st.size_usd else 0 end as size,
        case when st.event = 'update' then st.collateral_usd else 0 end as collateral,
        case when st.event = 'update' then st.average_price else 0 end as average_price,
        k.maintenance_bps, k.liquidation_fee, k.fee_bps,
        tf.feed, f.decimals as feed_decimals
    from liq as l
    left join stg_perp_positions as ev
        on ev.chain_id = l.chain_id and ev.ordinal = l.ordinal and ev.event = 'liquidate'
    left join params as k on k.chain_id = l.chain_id and k.venue = l.venue
    left join int_token_feeds as tf on tf.chain_id = l.chain_id and tf.token = ev.index_token
    left join ref_feeds as f on f.chain_id = l.chain_id and f.feed = tf.feed
    asof left join states as st
        on st.chain_id = l.chain_id and st.key = l.position_key and st.ordinal < l.state_ordinal
),
priced as (
    select
        i.*, a.answer_raw, a.block_number as price_block, a.log_index as price_log_index,
        case when a.answer_raw > 0
             then mul_div_down(a.answer_raw, '1' || repeat('0', 30 - i.feed_decimals), 1)
        end as price
    from inputs as i
    asof left join stg_oracle_answers as a
        on a.chain_id = i.chain_id and a.feed = i.feed and a.ordinal < i.state_ordinal
),
delta as (
    select
        *,
        case when size = 0 or average_price = 0 then 0
             else mul_div_down(size, abs(average_price - price), average_price) end as delta,
        size > 0 and average_price > 0
            and case when is_long then price > average_price else average_price > price end
            as has_profit
    from priced
),
health as (
    select
        *,
        collateral - case when has_profit then 0 else delta end as margin_left,
        size - mul_div_down(size, 10000 - fee_bps, 10000)
            + greatest(mul_div_down(size, maintenance_bps, 10000), liquidation_fee)
            as margin_needed
    from delta
)
select
    chain_id,
    block_number,
    log_index,
    'margin left after losses against closing fee + maintenance (USD 1e30)' as health_measure,
    margin_left as health_raw,
    margin_needed as threshold_raw,
    case when answer_raw is not null
         then [{'token': index_token, 'feed': feed, 'answer_raw': answer_raw,
                'price_block': price_block, 'price_log_index': price_log_index}]
         else [] end as prices,
    list_filter([
        case when maintenance_bps is null or liquidation_fee is null or fee_bps is null
             then 'no maintenance_margin_bps / liquidation_fee_usd / margin_fee_bps in the '
                  || 'registry for the venue' end,
        case when feed is null then 'no price feed for the index token in the registry' end,
        case when feed is not null and answer_raw is null
             then 'no oracle answer before the liquidation for the index token' end,
        case when last_event is null
             then 'no UpdatePosition of the position before the liquidation' end,
        case when last_event is not null
                  and (size is distinct from event_size
                       or collateral is distinct from event_collateral)
             then 'the position replayed (size ' || size || ', collateral ' || collateral
                  || ') is not the one LiquidatePosition reports (size '
                  || coalesce(event_size::varchar, '?') || ', collateral '
                  || coalesce(event_collateral::varchar, '?') || ')' end,
        case when price is not null and fee_bps is not null
                  and (margin_left is null or margin_needed is null)
             then 'a value exceeds 38 digits' end
    ], lambda x: x is not null) as undecidable,
    list_filter([
        case when answer_raw <= 0 then 'oracle answer not positive: the vault reverts' end,
        case when size = 0 then 'no open position' end,
        case when size > 0 and margin_left >= margin_needed
             then 'margin left ' || (margin_left / 1e30)::decimal(38, 2)
                  || ' USD covers the ' || (margin_needed / 1e30)::decimal(38, 2)
                  || ' USD the position needs' end
    ], lambda x: x is not null) as invalid
from health
