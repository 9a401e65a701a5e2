-- grain: one row per flow, unique on (chain_id, block_number, log_index, flow_index)
-- The lake's canonical flows (docs/canonical.md), with the sign of each (action, side).
select
    f.chain_id,
    f.block_number,
    f.block_time,
    f.transaction_hash,
    f.log_index,
    f.flow_index,
    f.protocol,
    f.venue,
    f.market,
    f.account,
    f.token,
    f.action,
    f.side,
    f.amount_raw::decimal(38, 0) as amount_raw,
    f.amount,
    coalesce(s.sign, 0)::tinyint as sign,
    f.source
from src_flows as f
left join ref_flow_signs as s using (action, side)
