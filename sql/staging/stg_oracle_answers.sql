-- grain: one row per price-feed answer (chain_id, feed, block_number, log_index)
-- Every answer of every price feed, exactly as the feed reports it (answer_raw, in the feed's
-- decimals), with its place in the chain (ordinal: block × 10^6 + log index). Unlike
-- stg_prices nothing is left out: a venue that reads a zero or negative answer reverts, so
-- whoever replays a venue's rule must see that answer too.
select
    chain_id,
    block_number,
    log_index,
    log_ordinal(block_number, log_index) as ordinal,
    feed,
    source as feed_id,
    token,
    answer_raw
from src_prices
