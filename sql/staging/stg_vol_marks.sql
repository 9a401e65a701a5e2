-- grain: one row per volatility-feed answer (chain_id, feed_id, block_number, log_index)
-- Implied-vol and risk-reversal marks (annualised, 0.6 = 60 %), with their place in the chain
-- (ordinal: block × 10^6 + log index). A mark that is not a finite number has a null value:
-- it replaces the mark before it, so a broken feed reads as no mark, not as a stale one.
select
    chain_id,
    block_number,
    block_time,
    log_index,
    log_ordinal(block_number, log_index) as ordinal,
    source as feed_id,
    kind,
    base,
    case when isfinite(value) then value end as value
from src_vol_marks
