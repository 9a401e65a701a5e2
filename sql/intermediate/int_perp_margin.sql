-- grain: one row per snapshot × perps position (venue, key) opened at or before the snapshot
-- A perps position's margin is the collateral the vault holds for it: the value its latest
-- UpdatePosition reports, zero after a close or liquidation. (Summing margin flows would not
-- give it: fees and losses leave the collateral without an event.) USD with 30 decimals; the
-- average (entry) price too, USD per index token with 30 decimals, for the position's pnl.
with states as (
    select
        chain_id, venue, key, account, collateral_token, index_token, is_long, block_number,
        ordinal,
        case when event = 'update' then collateral_usd else 0 end as collateral_usd,
        case when event = 'update' then size_usd else 0 end as size_usd,
        case when event = 'update' then average_price end as average_price
    from stg_perp_positions
    where event in ('update', 'close', 'liquidate')
),
positions as (
    select distinct chain_id, key from states
)
select
    s.snapshot_block,
    st.chain_id,
    st.venue,
    st.key,
    st.account,
    st.collateral_token,
    st.index_token,
    st.is_long,
    st.collateral_usd::decimal(38, 0) as collateral_usd_raw,
    st.size_usd::decimal(38, 0) as size_usd_raw,
    st.average_price::decimal(38, 0) as average_price_raw
from ref_snapshots as s
join positions as p on p.chain_id = s.chain_id
asof join states as st
    on st.chain_id = p.chain_id and st.key = p.key
    and st.ordinal <= block_end_ordinal(s.snapshot_block)
