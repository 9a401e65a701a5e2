-- grain: one row per Morpho Blue liquidation (chain_id, block_number, log_index)
-- Morpho's _isHealthy, from the state just before the liquidation (int_liquidations.
-- state_ordinal): borrowed = toAssetsUp(borrow shares) = ⌈shares × (total borrow assets + 1) /
-- (total borrow shares + 10^6)⌉; max borrow = ⌊⌊collateral × oracle price / 10^36⌋ × LLTV /
-- 10^18⌋ (LLTV less the RiskOracle's margin cut in force), the oracle price being
-- MorphoChainlinkOracle's ⌊scale factor × base answer / quote answer⌋ (the registry market's
-- oracle_base_feed, oracle_quote_feed — zero address: none — and oracle_scale_factor). Valid
-- when borrowed > max borrow. The market's totals are int_morpho_markets' after its last event
-- before the liquidation (its events replayed, total borrow assets floored at zero as Morpho
-- does).
with liq as (
    select * from int_liquidations where protocol = 'morpho_blue'
),
position as (
    select
        l.chain_id, l.block_number, l.log_index,
        coalesce((select sum(s.shares_delta) from stg_morpho_moves as s
                  where s.chain_id = l.chain_id and s.venue = l.venue and s.market = l.market
                    and s.account = l.borrower and s.side = 'debt'
                    and s.ordinal < l.state_ordinal), 0)
            as borrow_shares,
        coalesce((select sum(f.sign * f.amount_raw) from stg_flows as f
                  where f.chain_id = l.chain_id and f.venue = l.venue and f.market = l.market
                    and f.account = l.borrower and f.side = 'collateral'
                    and log_ordinal(f.block_number, f.log_index) < l.state_ordinal), 0)
            as collateral_raw
    from liq as l
),
params as (
    select
        m.chain_id, m.venue, m.market, m.collateral_token, m.loan_token,
        try_cast(max(p.value) filter (where p.param = 'lltv') as decimal(38, 0)) as lltv,
        lower(max(p.value) filter (where p.param = 'oracle_base_feed')) as base_feed,
        lower(max(p.value) filter (where p.param = 'oracle_quote_feed')) as quote_feed,
        max(p.value) filter (where p.param = 'oracle_scale_factor') as scale_factor
    from ref_markets as m
    join ref_risk_params as p
        on p.chain_id = m.chain_id and p.venue = m.venue and p.market_id = m.market_id
    group by all
),
inputs as (
    select
        l.chain_id, l.block_number, l.log_index, l.market, l.state_ordinal,
        p.borrow_shares, p.collateral_raw,
        coalesce(t.total_borrow_assets, 0) as total_assets,
        coalesce(t.total_borrow_shares, 0) as total_shares,
        -- a RiskOracle margin cut on the collateral token (int_margin_cuts) lowers the LLTV,
        -- not below 0
        k.lltv - least(coalesce(mc.cut_wad, 0), k.lltv) as lltv,
        k.base_feed, k.scale_factor, k.collateral_token, k.loan_token,
        nullif(k.quote_feed, '0x0000000000000000000000000000000000000000') as quote_feed,
        k.market is not null as known
    from liq as l
    join position as p using (chain_id, block_number, log_index)
    left join params as k on k.chain_id = l.chain_id and k.venue = l.venue
        and k.market = l.market
    asof left join int_morpho_markets as t
        on t.chain_id = l.chain_id and t.contract = l.contract and t.market = l.market
        and t.ordinal < l.state_ordinal
    asof left join int_margin_cuts as mc
        on mc.chain_id = l.chain_id and mc.venue = l.venue and mc.asset = k.collateral_token
        and mc.ordinal < l.state_ordinal
),
priced as (
    select
        i.*,
        b.answer_raw as base_answer, b.block_number as base_block, b.log_index as base_log_index,
        q.answer_raw as quote_answer, q.block_number as quote_block,
        q.log_index as quote_log_index
    from inputs as i
    asof left join stg_oracle_answers as b
        on b.chain_id = i.chain_id and b.feed = i.base_feed and b.ordinal < i.state_ordinal
    asof left join stg_oracle_answers as q
        on q.chain_id = i.chain_id and q.feed = i.quote_feed and q.ordinal < i.state_ordinal
),
health as (
    select
        *,
        mul_div_up(borrow_shares, total_assets + 1, total_shares + 1000000) as borrowed,
        -- as text: with a 10^34 scale (WBTC/USDC) the price alone passes 38 digits
        case when base_answer > 0 and (quote_feed is null or quote_answer > 0)
             then exact_mul_div(scale_factor, base_answer::varchar,
                                (case when quote_feed is null then 1 else quote_answer end)
                                ::varchar, 'down')
        end as oracle_price
    from priced
),
judged as (
    select *,
           mul_div_down(mul_div_down(collateral_raw, oracle_price, '1' || repeat('0', 36)),
                        lltv, '1' || repeat('0', 18)) as max_borrow
    from health
)
select
    chain_id,
    block_number,
    log_index,
    'max borrow against borrowed (loan token units)' as health_measure,
    max_borrow as health_raw,
    borrowed as threshold_raw,
    list_filter([
        case when base_answer is not null
             then {'token': collateral_token, 'feed': base_feed, 'answer_raw': base_answer,
                   'price_block': base_block, 'price_log_index': base_log_index} end,
        case when quote_answer is not null
             then {'token': loan_token, 'feed': quote_feed, 'answer_raw': quote_answer,
                   'price_block': quote_block, 'price_log_index': quote_log_index} end
    ], lambda x: x is not null) as prices,
    list_filter([
        case when not known then 'market ' || market || ' is not in the registry' end,
        case when known and lltv is null then 'no lltv in the registry for market ' || market
        end,
        case when known and (base_feed is null or scale_factor is null)
             then 'no oracle_base_feed / oracle_scale_factor in the registry for market '
                  || market end,
        case when base_feed is not null and base_answer is null
                  or quote_feed is not null and quote_answer is null
             then 'no oracle answer before the liquidation for the market''s feeds' end,
        case when oracle_price is not null and lltv is not null and max_borrow is null
                  or borrowed is null
             then 'a value exceeds 38 digits' end
    ], lambda x: x is not null) as undecidable,
    list_filter([
        case when base_answer <= 0 or quote_answer <= 0
             then 'oracle answer not positive: the oracle reverts' end,
        case when max_borrow >= borrowed
             then 'max borrow ' || max_borrow || ' covers the debt of ' || borrowed
                  || ' (loan token units)' end
    ], lambda x: x is not null) as invalid
from judged
