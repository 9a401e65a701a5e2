-- grain: one row per volatility-feed answer (chain_id, feed_id, block_number, log_index)
-- Implied-vol and risk-reversal marks (annualised, 0.6 = 60 %) with a usable value.
select
    chain_id,
    block_number,
    block_time,
    log_index,
    source as feed_id,
    kind,
    base,
    value
from src_vol_marks
where isfinite(value)
