-- grain: one row per snapshot × registry AMM pair with a Sync at or before the snapshot
-- Each pair's reserves as of the snapshot (the latest Sync at or before it), with its tokens
-- (token0 is the lower address, as Uniswap v2 orders them) and the LP share token it issues.
with pairs as (
    select m.chain_id, m.venue, min(m.collateral_token) as token0,
           max(m.collateral_token) as token1, t.token as pair
    from ref_markets as m
    join ref_venues as v on v.chain_id = m.chain_id and v.venue = m.venue
    join int_tokens as t
        on t.chain_id = m.chain_id and t.issued_by = m.venue and t.token_kind = 'lp_share'
    where v.venue_kind = 'amm'
    group by m.chain_id, m.venue, t.token
),
syncs as (
    select *, log_ordinal(block_number, log_index) as ordinal from stg_amm_reserves
)
select s.snapshot_block, p.chain_id, p.venue, p.pair, p.token0, p.token1, r.reserve0,
       r.reserve1
from ref_snapshots as s
join pairs as p on p.chain_id = s.chain_id
asof join syncs as r
    on r.chain_id = p.chain_id and r.pair = p.pair
    and r.ordinal <= block_end_ordinal(s.snapshot_block)
