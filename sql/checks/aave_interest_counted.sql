-- asset: fct_positions
-- severity: warn
-- description: every Aave position at the latest snapshot whose reserve pays or charges interest (its liquidity index, for collateral, or variable borrow index, for debt, moved off 1) is valued from the token's scaled balance, interest included. A row is a (venue, reserve, side) valued at the flows' principal instead, because the registry lists no aToken or variable debt token for it (or lists one without issued_by): its positions miss the interest the index says they have grown by.
with latest as (
    select chain_id, max(snapshot_block) as snapshot_block
    from ref_snapshots
    group by chain_id
),
principal as (
    -- Aave flows int_balances summed: those of reserves stg_aave_tokens does not cover
    select b.chain_id, b.venue, b.market as reserve, b.side, count(*) as positions,
           sum(b.amount_raw) as principal_raw
    from int_balances as b
    join latest as l on l.chain_id = b.chain_id and l.snapshot_block = b.snapshot_block
    where b.protocol = 'aave_v3' and b.side in ('collateral', 'debt') and b.amount_raw <> 0
    group by all
),
indexes as (
    select u.chain_id, u.venue, u.reserve,
           arg_max(u.liquidity_index, u.ordinal) as liquidity_index,
           arg_max(u.variable_borrow_index, u.ordinal) as variable_borrow_index
    from stg_aave_reserve_updates as u
    join latest as l on l.chain_id = u.chain_id and u.block_number <= l.snapshot_block
    group by all
)
select
    p.venue,
    p.reserve,
    p.side,
    p.positions,
    p.principal_raw,
    case p.side when 'collateral' then i.liquidity_index else i.variable_borrow_index end
        as index_ray
from principal as p
join indexes as i on i.chain_id = p.chain_id and i.venue = p.venue and i.reserve = p.reserve
where index_ray <> 1000000000000000000000000000
order by p.venue, p.reserve, p.side
