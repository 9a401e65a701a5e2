-- asset: fct_positions
-- severity: warn
-- description: each Comet's principals as the lake read them add up to the totals the Comet keeps: at its latest state read at or before the latest snapshot, Σ of its accounts' latest positive principals equals totalSupplyBase and Σ of the negative ones totalBorrowBase (Comet moves both with every principal, exactly). A row is a Comet whose base positions are not all valued right: a principal changed without a base event naming the account (transferAsset of base from an account that only borrows, or to one that only repays: no Transfer names it), the lake starts after the Comet's first supply, a read failed, or the Comet has base flows but no state read at all (a lake indexed before the state reads: index it again).
with latest as (
    select chain_id, max(snapshot_block) as snapshot_block
    from ref_snapshots
    group by chain_id
),
state as (
    select s.*
    from stg_compound_states as s
    join latest as l on l.chain_id = s.chain_id and s.block_number <= l.snapshot_block
    qualify row_number() over (partition by s.chain_id, s.contract
                               order by s.block_number desc) = 1
),
principals as (  -- each account's latest read at or before the state's block
    select p.chain_id, p.contract, p.account,
           arg_max(p.principal, p.block_number) as principal,
           bool_or(p.unread_reason is not null) as unread
    from stg_compound_principals as p
    join state as s
        on s.chain_id = p.chain_id and s.contract = p.contract
        and p.block_number <= s.block_number
    group by all
),
sums as (
    select chain_id, contract,
           count(*) filter (where principal <> 0) as accounts,
           coalesce(sum(principal) filter (where principal > 0), 0) as supply_principals,
           coalesce(-sum(principal) filter (where principal < 0), 0) as borrow_principals,
           bool_or(unread) as any_unread
    from principals
    group by all
),
with_flows as (  -- Comets with base flows up to the latest snapshot
    select distinct c.chain_id, c.contract, c.venue
    from stg_flows as f
    join latest as l on l.chain_id = f.chain_id and f.block_number <= l.snapshot_block
    join stg_comets as c on c.chain_id = f.chain_id and c.venue = f.venue
    where f.protocol = 'compound_v3' and f.side in ('supply', 'debt')
),
compared as (
    select
        coalesce(s.chain_id, w.chain_id) as chain_id,
        coalesce(s.venue, w.venue) as venue,
        coalesce(s.contract, w.contract) as contract,
        s.block_number as state_block,
        s.total_supply_base,
        coalesce(p.supply_principals, 0) as supply_principals,
        s.total_borrow_base,
        coalesce(p.borrow_principals, 0) as borrow_principals,
        coalesce(p.accounts, 0) as accounts,
        case when s.contract is null
                 then 'base flows but no state read: index the lake again'
             when s.unread_reason is not null then 'state not read: ' || s.unread_reason
             when p.any_unread then 'a principal was not read'
             when s.total_supply_base <> coalesce(p.supply_principals, 0)
                  or s.total_borrow_base <> coalesce(p.borrow_principals, 0)
                 then 'the principals read do not add up to the totals'
        end as reason
    from state as s
    full join with_flows as w on w.chain_id = s.chain_id and w.contract = s.contract
    left join sums as p on p.chain_id = s.chain_id and p.contract = s.contract
)
select * exclude (chain_id)
from compared
where reason is not null
order by venue, contract
