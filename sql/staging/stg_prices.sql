-- grain: one row per oracle answer (chain_id, token, block_number, log_index)
-- Every price-feed answer (price = answer_raw / 10^decimals) in what the feed quotes (quote:
-- USD's address, or a token's, whose own USD price multiplies it in int_oracle_prices), with
-- its place in the chain (ordinal: block × 10^6 + log index, so two answers in one block keep
-- their order). An answer that is not a finite number above 0 is kept with `usable` false:
-- the venues revert on it, so it must hide the answers before it rather than let a stale one
-- stand in (the latest answer at a snapshot decides; the prices_usable check names such
-- tokens).
select
    chain_id,
    block_number,
    block_time,
    log_index,
    log_ordinal(block_number, log_index) as ordinal,
    feed,
    token,
    symbol,
    price,
    quote,
    price_usd,
    answer_raw,
    source as feed_id,
    coalesce(isfinite(price) and price > 0, false) as usable
from src_prices
