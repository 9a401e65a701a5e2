-- grain: one row per snapshot (chain_id, snapshot_block)
-- When each snapshot block was made: its header's time, null only before the first partition
-- (nothing happened yet; the build refuses a snapshot inside one whose header the lake lacks).
-- Prices' ages, option marks and Aave's and Compound's interest to the second read it.
select s.chain_id, s.snapshot_block, max(b.block_time) as snapshot_time
from ref_snapshots as s
left join stg_blocks as b on b.chain_id = s.chain_id and b.block_number = s.snapshot_block
group by all
