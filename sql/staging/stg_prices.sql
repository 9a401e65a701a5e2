-- grain: one row per oracle answer (chain_id, token, block_number, log_index)
-- Price-feed answers with a usable value: a NaN, infinite or negative answer is left out here
-- and counted by the prices_usable check.
select
    chain_id,
    block_number,
    block_time,
    log_index,
    token,
    symbol,
    price_usd,
    answer_raw,
    source as feed_id
from src_prices
where isfinite(price_usd) and price_usd >= 0
