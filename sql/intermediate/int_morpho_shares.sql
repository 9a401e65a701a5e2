-- grain: one row per snapshot × Morpho position (venue, market, account, side) with a share move at or before the snapshot
-- The shares a Morpho Blue position holds, exactly as the contract's `position` reports them.
with deltas as (
    select chain_id, venue, market, account, side, block_number,
           concat_ws('|', coalesce(venue, ''), market, account, side) as position_key,
           sum(shares_delta) as delta
    from stg_morpho_share_flows
    group by all
),
running as (
    select *, sum(delta) over (partition by position_key order by block_number
                               rows between unbounded preceding and current row) as shares
    from deltas
),
positions as (
    select distinct chain_id, position_key from deltas
)
select
    s.snapshot_block,
    r.chain_id,
    r.venue,
    r.market,
    r.account,
    r.side,
    r.shares::decimal(38, 0) as shares_raw
from ref_snapshots as s
join positions as p on p.chain_id = s.chain_id
asof join running as r on r.position_key = p.position_key and r.block_number <= s.snapshot_block
