-- grain: one row per snapshot × RiskOracle market (chain_id, venue, asset) with an accepted update at or before the snapshot
-- What the RiskOracle holds for each market of a venue that obeys it, at the end of each
-- snapshot block, as the oracle keeps it: frozen when the last update other than a
-- raise_margin was a freeze_market (or, for the venue-wide market, asset 0, a halt) and not a
-- normal; the margin cut of the last update. The policy lifts what is still in force here.
with markets as (
    select distinct chain_id, venue, asset from stg_risk_updates
),
freezing as (  -- the updates that set or clear the freeze
    select * from stg_risk_updates where action <> 1
)
select
    s.snapshot_block,
    m.chain_id,
    m.venue,
    m.asset,
    coalesce(f.action in (2, 3), false) as frozen,
    u.cut_bps as margin_cut_bps,
    u.block_number as last_update_block
from ref_snapshots as s
join markets as m on m.chain_id = s.chain_id
asof join stg_risk_updates as u
    on u.chain_id = m.chain_id and u.venue = m.venue and u.asset = m.asset
    and u.ordinal <= block_end_ordinal(s.snapshot_block)
asof left join freezing as f
    on f.chain_id = m.chain_id and f.venue = m.venue and f.asset = m.asset
    and f.ordinal <= block_end_ordinal(s.snapshot_block)
