-- grain: one row per snapshot × options vault (venue, owner, vault_id) × token × side with a move at or before the snapshot
-- What each options vault holds at each snapshot: collateral (margin) per asset and written
-- oTokens (debt) per series, from the vault's moves (int_options_vault_moves names their
-- tokens). A settled vault holds nothing (settlement pays its shorts into the series' pools
-- without an event per amount).
with resolved as (
    select * from int_options_vault_moves where kind <> 'settle'
),
running as (
    select
        *,
        concat_ws('|', coalesce(venue, ''), owner, vault_id, side, coalesce(token, ''))
            as holding_key,
        sum(delta) over (partition by chain_id, venue, owner, vault_id, side, token
                         order by ordinal rows between unbounded preceding and current row)
            as balance
    from resolved
),
holdings as (
    select distinct chain_id, holding_key from running
),
settled as (
    select chain_id, venue, owner, vault_id, min(ordinal) as settled_at
    from int_options_vault_moves
    where kind = 'settle'
    group by all
)
select
    s.snapshot_block,
    r.chain_id,
    r.venue,
    r.owner,
    r.vault_id,
    r.token,
    r.side,
    case when st.settled_at <= block_end_ordinal(s.snapshot_block) then 0
         else r.balance end::decimal(38, 0) as amount_raw
from ref_snapshots as s
join holdings as h on h.chain_id = s.chain_id
asof join running as r
    on r.holding_key = h.holding_key
    and r.ordinal <= block_end_ordinal(s.snapshot_block)
left join settled as st
    on st.chain_id = r.chain_id and st.venue is not distinct from r.venue
    and st.owner = r.owner and st.vault_id = r.vault_id
