-- grain: one row per snapshot (chain_id, snapshot_block)
-- When each snapshot block was made: its header's time, null when the lake holds no header of
-- it (a --snapshot inside a partition, at a block without logs). Prices' ages and Aave's
-- interest to the snapshot's second read it.
select s.chain_id, s.snapshot_block, max(b.block_time) as snapshot_time
from ref_snapshots as s
left join stg_blocks as b on b.chain_id = s.chain_id and b.block_number = s.snapshot_block
group by all
