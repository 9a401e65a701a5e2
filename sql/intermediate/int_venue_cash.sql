-- grain: one row per snapshot × venue × token the venue's contracts hold (chain_id, snapshot_block, venue, token)
-- Tokens held by each venue's contracts (and by the contracts of the claims it issues: aTokens
-- hold the underlying, the LST contract the staked asset, a pair its reserves), exactly, from
-- ERC-20 Transfers of registry tokens: Σ in − Σ out up to the snapshot. A venue's own claims
-- held by itself are not cash.
with contracts as (
    select distinct chain_id, venue, contract from ref_venue_contracts
),
moves as (
    select t.chain_id, c.venue, t.token, t.block_number, t.value_raw as delta
    from stg_erc20_transfers as t
    join contracts as c on c.chain_id = t.chain_id and c.contract = t.to_address
    union all
    select t.chain_id, c.venue, t.token, t.block_number, -t.value_raw
    from stg_erc20_transfers as t
    join contracts as c on c.chain_id = t.chain_id and c.contract = t.from_address
),
deltas as (
    select m.chain_id, m.venue, m.token, m.block_number, sum(m.delta) as delta,
           m.venue || '|' || m.token as position_key
    from moves as m
    join ref_tokens as rt on rt.chain_id = m.chain_id and rt.token = m.token
    where rt.issued_by is distinct from m.venue
    group by all
)
select snapshot_block, chain_id, venue, token, running_sum::decimal(38, 0) as amount_raw
from running_sums_at_snapshots(deltas, ref_snapshots)
