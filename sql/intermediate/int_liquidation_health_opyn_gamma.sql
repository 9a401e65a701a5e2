-- grain: one row per options vault liquidation (chain_id, block_number, log_index)
-- OptionsVenue._is_liquidatable, from the vault just before the liquidation (its moves in
-- int_options_vault_moves): not settled, holding a short series that has not expired at the
-- block's time, and worth less than its margin requirement. Worth = ⌊collateral × price × (10^4
-- − haircut_bps) / (10^dec × 10^4)⌋ at the collateral's oracle answer; requirement = Σ over its
-- shorts of ⌈amount × min(full, intrinsic + ⌊spot × shock_bps / 10^4⌋) / 10^8⌉, full being the
-- spot for a call and the strike for a put, spot the oracle answer of the venue's underlying
-- (its market's loan token). USD with 8 decimals; shock_bps and haircut_bps_<symbol> are the
-- venue's registry risk parameters. The venue also refuses a vault with no collateral left.
with liq as (
    select * from int_liquidations where protocol = 'opyn_gamma'
),
moves as (
    select l.chain_id, l.block_number, l.log_index, m.side, m.kind, m.token, m.delta
    from liq as l
    join int_options_vault_moves as m
        on m.chain_id = l.chain_id and m.venue = l.venue and m.owner = l.borrower
        and m.vault_id = l.vault_id and m.ordinal < l.state_ordinal
),
vault as (
    select
        l.chain_id, l.block_number, l.log_index, l.state_ordinal, l.block_time, l.venue,
        coalesce(bool_or(m.kind = 'settle'), false) as settled,
        any_value(m.token) filter (where m.side = 'margin') as asset,
        coalesce(sum(m.delta) filter (where m.side = 'margin'), 0) as collateral_raw
    from liq as l
    left join moves as m using (chain_id, block_number, log_index)
    group by all
),
shorts as (
    select m.chain_id, m.block_number, m.log_index, m.token as otoken, sum(m.delta) as amount
    from moves as m
    where m.side = 'debt'
    group by all
    having sum(m.delta) > 0
),
params as (
    select
        v.chain_id, v.block_number, v.log_index,
        try_cast(max(p.value) filter (where p.market_id is null and p.param = 'shock_bps')
                 as decimal(38, 0)) as shock_bps,
        try_cast(max(p.value) filter (where p.param = 'haircut_bps_' || t.symbol)
                 as decimal(38, 0)) as haircut_bps,
        any_value(t.symbol) as asset_symbol,
        any_value(t.decimals) as asset_decimals
    from vault as v
    left join int_tokens as t on t.chain_id = v.chain_id and t.token = v.asset
    left join ref_risk_params as p on p.chain_id = v.chain_id and p.venue = v.venue
    group by all
),
underlying as (
    select chain_id, venue, min(loan_token) as token
    from ref_markets
    where loan_token is not null
    group by all
),
priced as (
    select
        v.*, k.shock_bps, k.haircut_bps, k.asset_symbol, k.asset_decimals,
        u.token as spot_token, sf.feed as spot_feed, s.answer_raw as spot,
        s.block_number as spot_block, s.log_index as spot_log_index,
        cf.feed as asset_feed, c.answer_raw as asset_price, c.block_number as asset_block,
        c.log_index as asset_log_index
    from vault as v
    join params as k using (chain_id, block_number, log_index)
    left join underlying as u on u.chain_id = v.chain_id and u.venue = v.venue
    left join int_token_feeds as sf on sf.chain_id = v.chain_id and sf.token = u.token
    left join int_token_feeds as cf on cf.chain_id = v.chain_id and cf.token = v.asset
    asof left join stg_oracle_answers as s
        on s.chain_id = v.chain_id and s.feed = sf.feed and s.ordinal < v.state_ordinal
    asof left join stg_oracle_answers as c
        on c.chain_id = v.chain_id and c.feed = cf.feed and c.ordinal < v.state_ordinal
),
requirement as (
    select
        p.chain_id, p.block_number, p.log_index,
        count(s.otoken) as shorts,
        count(s.otoken) filter (where o.otoken is null) as unknown_series,
        coalesce(bool_or(p.block_time < o.expiry), false) as live,
        sum(mul_div_up(s.amount, least(
            case when o.is_put then o.strike_price_raw else p.spot end,
            case when o.is_put then greatest(o.strike_price_raw - p.spot, 0)
                 else greatest(p.spot - o.strike_price_raw, 0) end
            + mul_div_down(p.spot, p.shock_bps, 10000)), 100000000)) as requirement_usd
    from priced as p
    left join shorts as s using (chain_id, block_number, log_index)
    left join stg_otokens as o on o.chain_id = s.chain_id and o.otoken = s.otoken
    group by all
),
health as (
    select
        p.*, r.shorts, r.unknown_series, r.live,
        case when r.shorts = 0 then 0::decimal(38, 0) else r.requirement_usd end
            as requirement_usd,
        case when p.collateral_raw = 0 then 0::decimal(38, 0)
             when p.asset_price > 0
             then mul_div_down(mul_div_down(p.collateral_raw, p.asset_price, 1),
                               10000 - p.haircut_bps,
                               '1' || repeat('0', p.asset_decimals + 4)) end as worth_usd
    from priced as p
    join requirement as r using (chain_id, block_number, log_index)
)
select
    chain_id,
    block_number,
    log_index,
    'collateral worth after haircut against margin requirement (USD 1e8)' as health_measure,
    worth_usd as health_raw,
    requirement_usd as threshold_raw,
    list_filter([
        case when spot is not null
             then {'token': spot_token, 'feed': spot_feed, 'answer_raw': spot,
                   'price_block': spot_block, 'price_log_index': spot_log_index} end,
        case when asset_price is not null and asset_feed is distinct from spot_feed
             then {'token': asset, 'feed': asset_feed, 'answer_raw': asset_price,
                   'price_block': asset_block, 'price_log_index': asset_log_index} end
    ], lambda x: x is not null) as prices,
    list_filter([
        case when shock_bps is null then 'no shock_bps in the registry for the venue' end,
        case when collateral_raw > 0 and haircut_bps is null
             then 'no haircut_bps_' || coalesce(asset_symbol, asset) || ' in the registry' end,
        case when shorts > 0 and spot is null
             then 'no oracle answer before the liquidation for the underlying' end,
        case when collateral_raw > 0 and asset_price is null
             then 'no oracle answer before the liquidation for the vault''s collateral' end,
        case when unknown_series > 0 then 'a short series has no OtokenCreated' end,
        case when spot > 0 and asset_price > 0 and shock_bps is not null
                  and haircut_bps is not null and (worth_usd is null or requirement_usd is null)
             then 'a value exceeds 38 digits' end
    ], lambda x: x is not null) as undecidable,
    list_filter([
        case when spot <= 0 or asset_price <= 0
             then 'oracle answer not positive: the venue reverts' end,
        case when settled then 'the vault is settled' end,
        case when not live then 'the vault has no unexpired short' end,
        case when collateral_raw <= 0 then 'the vault has no collateral left' end,
        case when worth_usd >= requirement_usd
             then 'collateral worth ' || (worth_usd / 1e8)::decimal(38, 2)
                  || ' USD covers the margin requirement of '
                  || (requirement_usd / 1e8)::decimal(38, 2) || ' USD' end
    ], lambda x: x is not null) as invalid
from health
