-- grain: one row per snapshot × token with an oracle price path (chain_id, snapshot_block, token)
-- The USD price of each token as of the snapshot: the latest answer at or before the end of
-- the snapshot block (ASOF join on the ordinal: the later of two answers in one block) of the
-- feed a venue reads for the token itself (int_token_feeds: one feed per token), else for the
-- asset an aToken or debt token is a claim on (1:1 on the devnet; on mainnet interest makes
-- the claim worth slightly more); the USD unit is 1. A latest answer the venues would reject
-- (not above 0) leaves the price null, not the answer before it (prices_usable names them).
-- The price's age is carried along, in blocks and seconds, and the exact answer with the
-- feed's decimals (price = answer_raw / 10^answer_decimals; the unit: 1 / 10^0) for what must
-- be valued without floats (the solvency commitment).
with priced as (
    select distinct chain_id, token from stg_prices
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
    select s.chain_id, s.snapshot_block, s.snapshot_time, p.token, p.priced_as, p.is_unit,
           tf.feed
    from stg_snapshot_times as s
    join paths as p on p.chain_id = s.chain_id
    left join int_token_feeds as tf on tf.chain_id = p.chain_id and tf.token = p.priced_as
    where p.priced_as is not null
),
oracle as (
    select
        w.chain_id, w.snapshot_block, w.snapshot_time, w.token, w.priced_as,
        case when pr.usable then pr.price_usd end as price_usd,
        pr.block_number as price_block, pr.block_time as price_time, pr.feed_id,
        case when pr.usable then pr.answer_raw end as answer_raw,
        f.decimals as answer_decimals
    from wanted as w
    asof join stg_prices as pr
        on pr.chain_id = w.chain_id and pr.feed = w.feed
        and pr.ordinal <= block_end_ordinal(w.snapshot_block)
    left join ref_feeds as f on f.chain_id = pr.chain_id and f.feed_id = pr.feed_id
    where not w.is_unit
)
select
    chain_id, snapshot_block, token, priced_as, price_usd, price_block,
    (snapshot_block - price_block)::bigint as price_age_blocks,
    date_diff('second', price_time, snapshot_time) as price_age_seconds,
    feed_id, answer_raw, answer_decimals
from oracle
union all
select chain_id, snapshot_block, token, token, 1.0, null, 0, 0, 'unit', 1::decimal(38, 0), 0
from wanted
where is_unit
