-- grain: one row per snapshot × priced token (chain_id, snapshot_block, token)
-- Every price a position can use: oracle answers (int_oracle_prices), LP shares valued from
-- their pair's reserves (int_lp_share_prices) and oTokens marked by Black–Scholes
-- (int_otoken_prices). Oracle prices carry the exact answer and its decimals; the others have
-- none (an LP share's exact value: int_lp_share_prices' reserves and shares).
select chain_id, snapshot_block, token, priced_as, price_usd, price_block, price_age_blocks,
       price_age_seconds, feed_id, answer_raw, answer_decimals
from int_oracle_prices
union all
select chain_id, snapshot_block, token, priced_as, price_usd, price_block, price_age_blocks,
       price_age_seconds, feed_id, null::decimal(38, 0), null::integer
from int_lp_share_prices
where token not in (select token from int_oracle_prices)
union all
select chain_id, snapshot_block, token, priced_as, price_usd, price_block, price_age_blocks,
       price_age_seconds, feed_id, null::decimal(38, 0), null::integer
from int_otoken_prices
where price_usd is not null
