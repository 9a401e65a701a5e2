-- grain: one row per snapshot × position (account, venue, market, token, side), non-zero
-- amount_raw is exact (the token's smallest unit); amount_usd uses the price as of the snapshot.
select
    snapshot_block,
    chain_id,
    account,
    venue,
    protocol,
    venue_kind,
    market,
    token,
    symbol,
    side,
    amount_raw,
    shares_raw,
    backing_token,
    amount,
    price_usd,
    price_block,
    price_age_blocks,
    price_age_seconds,
    amount_usd
from int_positions
