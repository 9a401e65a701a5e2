-- grain: one row per snapshot (chain_id, snapshot_block)
-- The window each snapshot closes: the blocks after the previous snapshot, up to and including
-- this one (window_start is 0 for the first). Early warning measures change per window.
select
    chain_id,
    snapshot_block,
    coalesce(lag(snapshot_block) over (partition by chain_id order by snapshot_block), 0)
        as window_start
from ref_snapshots
