-- grain: one row per snapshot × token with an oracle price path (chain_id, snapshot_block, token)
-- The USD price of each token as of the snapshot: the latest answer at or before the end of
-- the snapshot block (ASOF join on the ordinal: the later of two answers in one block) of the
-- token's feed, else of the asset an aToken or debt token is a claim on (1:1 on the devnet; on
-- mainnet interest makes the claim worth slightly more); the USD unit is 1. The token's feed
-- is the one a venue reads for it (int_token_feeds: one USD feed per token), else one that
-- quotes it in another token (the lowest address), whose answer is multiplied by that token's
-- USD price as of the same snapshot (STETH / ETH × ETH / USD; a chain of such feeds multiplies
-- along). A latest answer the venues would reject (not above 0) leaves the price null, not the
-- answer before it (prices_usable names them), and so does every price composed from it.
-- The price's age is carried along, in blocks and seconds (a composed price is as old as its
-- oldest answer), and the exact answer with its decimals (price = answer_raw /
-- 10^answer_decimals; the unit: 1 / 10^0) for what must be valued without floats (the
-- solvency commitment): a composed one is the product of the answers with the sum of their
-- decimals, null past 38 digits. `feed_id` names the feeds of a composed price joined by ' × '.
with recursive
priced as (
    select distinct chain_id, token from stg_prices
),
quoted as (  -- per token, the feed quoting it in another token (the lowest address)
    select chain_id, base_token as token, min(feed) as feed,
           arg_min(quote_token, feed) as quote_token
    from ref_feeds
    where feed_kind = 'price' and base_token is not null and quote <> 'USD'
    group by all
),
routes as (  -- the feed each token is priced by, and the token its answers are in (USD: null)
    select chain_id, token, feed, null::varchar as quote_token
    from int_token_feeds
    union all
    select q.chain_id, q.token, q.feed, q.quote_token
    from quoted as q
    where not exists (select 1 from int_token_feeds as tf
                      where tf.chain_id = q.chain_id and tf.token = q.token)
),
answers as (  -- each route's latest answer at each snapshot
    select
        s.chain_id, s.snapshot_block, r.token, r.quote_token,
        case when pr.usable then pr.price end as price,
        pr.block_number as price_block, pr.block_time as price_time, pr.feed_id,
        case when pr.usable then pr.answer_raw end as answer_raw,
        f.decimals as answer_decimals
    from stg_snapshot_times as s
    join routes as r on r.chain_id = s.chain_id
    asof join stg_prices as pr
        on pr.chain_id = r.chain_id and pr.feed = r.feed
        and pr.ordinal <= block_end_ordinal(s.snapshot_block)
    left join ref_feeds as f on f.chain_id = pr.chain_id and f.feed_id = pr.feed_id
),
usd as (  -- answers in USD, then those in a token priced already; the registry has no circle
    select a.chain_id, a.snapshot_block, a.token, a.price as price_usd, a.price_block,
           a.price_time, a.feed_id, a.answer_raw, a.answer_decimals
    from answers as a
    where a.quote_token is null
    union all
    select
        a.chain_id, a.snapshot_block, a.token, a.price * q.price_usd,
        least(a.price_block, q.price_block), least(a.price_time, q.price_time),
        a.feed_id || ' × ' || q.feed_id,
        mul_div_down(a.answer_raw, q.answer_raw, 1),
        a.answer_decimals + q.answer_decimals
    from answers as a
    join usd as q
        on q.chain_id = a.chain_id and q.snapshot_block = a.snapshot_block
        and q.token = a.quote_token
),
paths as (
    select
        t.chain_id,
        t.token,
        case
            when t.token_kind = 'unit' then t.token
            when t.token in (select token from priced) then t.token
            when t.token_kind in ('atoken', 'debt_token')
                 and t.underlying in (select token from priced) then t.underlying
        end as priced_as,
        t.token_kind = 'unit' as is_unit
    from int_tokens as t
),
wanted as (
    select s.chain_id, s.snapshot_block, s.snapshot_time, p.token, p.priced_as, p.is_unit
    from stg_snapshot_times as s
    join paths as p on p.chain_id = s.chain_id
    where p.priced_as is not null
)
select
    w.chain_id, w.snapshot_block, w.token, w.priced_as, u.price_usd, u.price_block,
    (w.snapshot_block - u.price_block)::bigint as price_age_blocks,
    date_diff('second', u.price_time, w.snapshot_time) as price_age_seconds,
    u.feed_id, u.answer_raw, u.answer_decimals
from wanted as w
join usd as u
    on u.chain_id = w.chain_id and u.snapshot_block = w.snapshot_block
    and u.token = w.priced_as
where not w.is_unit
union all
select chain_id, snapshot_block, token, token, 1.0, null, 0, 0, 'unit', 1::decimal(38, 0), 0
from wanted
where is_unit
