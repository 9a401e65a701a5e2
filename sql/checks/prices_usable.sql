-- asset: int_oracle_prices
-- severity: error
-- description: at the latest snapshot every token's latest oracle answer is one the venues accept (a finite number above 0); a venue reverts on any other, so the token is left unpriced rather than valued at the answer before it. A row is such a token with the rejected answer and its block (for a price composed of several feeds, the one that failed).
with unpriced as (
    select o.chain_id, o.snapshot_block, o.token, o.feed_id,
           unnest(string_split(o.feed_id, ' × ')) as one_feed
    from int_oracle_prices as o
    where o.snapshot_block = (select max(snapshot_block) from ref_snapshots)
      and o.price_usd is null and o.price_block is not null
)
select u.token, t.symbol, u.feed_id, a.block_number as price_block, a.answer_raw
from unpriced as u
asof join stg_prices as a
    on a.chain_id = u.chain_id and a.feed_id = u.one_feed
    and a.ordinal <= block_end_ordinal(u.snapshot_block)
left join int_tokens as t on t.chain_id = u.chain_id and t.token = u.token
where not a.usable
order by u.token, a.feed_id
