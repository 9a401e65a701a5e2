-- grain: one row per snapshot × priced token (chain_id, snapshot_block, token)
-- Every price a position can use: oracle answers (int_oracle_prices) and LP shares valued from
-- their pair's reserves (int_lp_share_prices).
select chain_id, snapshot_block, token, priced_as, price_usd, price_block, price_age_blocks,
       price_age_seconds, feed_id
from int_oracle_prices
union all
select chain_id, snapshot_block, token, priced_as, price_usd, price_block, price_age_blocks,
       price_age_seconds, feed_id
from int_lp_share_prices
where token not in (select token from int_oracle_prices)
