-- grain: one row per flow (chain_id, block_number, log_index, flow_index)
-- materialized: view
-- The decoded, attributed flows with their sign, venue kind and token symbol.
select
    f.*,
    v.venue_kind,
    t.symbol
from stg_flows as f
left join ref_venues as v on v.chain_id = f.chain_id and v.venue = f.venue
left join int_tokens as t on t.chain_id = f.chain_id and t.token = f.token
