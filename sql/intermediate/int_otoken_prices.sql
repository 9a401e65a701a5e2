-- grain: one row per snapshot × oToken series created by then (chain_id, snapshot_block, token)
-- What one oToken (one unit of the underlying) is worth at each snapshot: its Black–Scholes
-- price (zero rate; contagion/risk/greeks.py) from the underlying's oracle price, the years
-- left to expiry and the vol at its strike on the smile of the underlying's feed: its ATM vol
-- and 25-delta risk reversal, by Malz's quadratic in delta (greeks.smile_vol), one vol per
-- strike for puts and calls alike, so the marks keep put–call parity. A series past expiry
-- is worth its intrinsic value at the price the venue settles it at: the venue freezes that
-- price at the series' first settlement (a vault settled or an oToken redeemed) after expiry,
-- from the underlying's latest answer before it; until then the latest answer at the snapshot,
-- what a settlement would freeze now. (Opyn on mainnet takes the first round at or after
-- expiry, which its pricer posts before anyone settles.) Null without a price or a vol above 0.
with series as (
    select
        s.chain_id, s.snapshot_block, b.block_time as snapshot_time, o.otoken, o.underlying,
        o.strike_price_usd, o.is_put, o.expiry
    from ref_snapshots as s
    join stg_otokens as o on o.chain_id = s.chain_id and o.created_block <= s.snapshot_block
    join stg_blocks as b on b.chain_id = s.chain_id and b.block_number = s.snapshot_block
),
first_settlement as (
    select chain_id, otoken, min(ordinal) as ordinal
    from (
        select chain_id, '0x' || lower(hex(o_token_address)) as otoken,
               log_ordinal(block_number, log_index) as ordinal
        from src_opyn_gamma__vault_settled
        union all
        select chain_id, '0x' || lower(hex(otoken)),
               log_ordinal(block_number, log_index)
        from src_opyn_gamma__redeem
    )
    group by all
),
settled as (
    select x.chain_id, x.otoken, x.ordinal,
           case when p.usable then p.price_usd end as expiry_price_usd
    from (select f.*, tf.feed
          from first_settlement as f
          join (select distinct chain_id, otoken, underlying from series) as u
              on u.chain_id = f.chain_id and u.otoken = f.otoken
          left join int_token_feeds as tf
              on tf.chain_id = u.chain_id and tf.token = u.underlying) as x
    asof join stg_prices as p
        on p.chain_id = x.chain_id and p.feed = x.feed and p.ordinal < x.ordinal
),
inputs as (
    select
        x.*,
        u.price_usd as spot_usd,
        u.price_block,
        u.price_age_blocks,
        u.price_age_seconds,
        date_diff('second', x.snapshot_time, x.expiry) / 31557600.0 as years,
        -- null without a usable mark (no vol, or not above 0; no spot)
        case when v.implied_vol > 0 then smile_vol(
            u.price_usd, x.strike_price_usd, years, v.implied_vol,
            coalesce(v.risk_reversal, 0)) end as smile,
        case when d.ordinal <= block_end_ordinal(x.snapshot_block)
             then d.expiry_price_usd else u.price_usd end as expiry_price_usd
    from series as x
    left join int_oracle_prices as u
        on u.chain_id = x.chain_id and u.snapshot_block = x.snapshot_block
        and u.token = x.underlying
    left join int_implied_vols as v
        on v.chain_id = x.chain_id and v.snapshot_block = x.snapshot_block
        and v.token = x.underlying
    left join settled as d on d.chain_id = x.chain_id and d.otoken = x.otoken
),
marked as (
    -- at least 0.01; a missing smile stays null, which greatest() alone would make 0.01
    select *, case when smile is not null then greatest(smile, 0.01) end as vol from inputs
)
select
    chain_id,
    snapshot_block,
    otoken as token,
    otoken as priced_as,
    case
        when years <= 0 then case when expiry_price_usd is not null then greatest(
            case when is_put then strike_price_usd - expiry_price_usd
                 else expiry_price_usd - strike_price_usd end, 0) end
        else black_scholes_price(spot_usd, strike_price_usd, years, vol, is_put)
    end as price_usd,
    price_block,
    price_age_blocks,
    price_age_seconds,
    'black_scholes' as feed_id,
    spot_usd,
    strike_price_usd,
    years,
    vol,
    is_put,
    expiry_price_usd
from marked
