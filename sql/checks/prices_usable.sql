-- asset: int_oracle_prices
-- severity: error
-- description: at the latest snapshot every token's latest oracle answer is one the venues accept (a finite number above 0); a venue reverts on any other, so the token is left unpriced rather than valued at the answer before it. A row is such a token, with the answer and its block.
select o.token, t.symbol, o.feed_id, o.price_block, a.answer_raw
from int_oracle_prices as o
left join int_tokens as t on t.chain_id = o.chain_id and t.token = o.token
left join stg_prices as a
    on a.chain_id = o.chain_id and a.feed_id = o.feed_id and a.block_number = o.price_block
    and not a.usable
where o.snapshot_block = (select max(snapshot_block) from ref_snapshots)
  and o.price_usd is null and o.price_block is not null
order by o.token
