-- asset: fct_flows
-- severity: error
-- description: every flow is in the lake once: (chain_id, block_number, log_index, flow_index) is unique across all partition files. Two files holding the same blocks (a window left twice by an interrupted run) would count every position's flows twice. A row is a key held more than once, with how many times.
select chain_id, block_number, log_index, flow_index, count(*) as copies
from src_flows
group by all
having count(*) > 1
order by chain_id, block_number, log_index, flow_index
