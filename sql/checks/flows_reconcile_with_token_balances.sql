-- asset: fct_venue_balance_sheet
-- severity: error
-- description: each lending venue's token balances from ERC-20 Transfers equal what the flows say it holds, per token, at every snapshot: collateral + supply − debt of its depositors and borrowers (Aave's and Compound's as Σ flows, not their balances: interest moves no token), plus what it owns itself (stg_protocol_owned_moves), minus the debt it wrote off as bad (not Morpho's: its suppliers' positions, valued from their shares, bear it), plus what a Morpho market holds that no position can take (its totals less its positions: the shares' rounding, repays the floor at zero dropped; also once no position is left). Where a Morpho market's totals are unknown (a count past decimal(38,0): no_negative_balances names its positions), the venue's balance of its loan token is not compared. A row is a (snapshot, venue, token) that does not add up.
with own_moves as (
    select chain_id, block_number, venue, token, delta from stg_protocol_owned_moves
    union all  -- debt written off is lost: the venue (its reserves or its suppliers) bears it
    select chain_id, block_number, venue, token, -amount_raw
    from stg_flows
    where action = 'bad_debt' and side = 'debt'
      and protocol <> 'morpho_blue'  -- lowers Morpho's total supply assets: in the positions
),
morpho_markets as (  -- each market with its loan token (the one its positions are in)
    select s.snapshot_block, m.chain_id, m.venue, m.market, l.loan_token as token,
           block_end_ordinal(s.snapshot_block) as block_end
    from ref_snapshots as s
    join (select distinct chain_id, venue, market from int_morpho_markets) as m
        on m.chain_id = s.chain_id
    left join (select distinct chain_id, venue, market, loan_token from int_morpho_shares) as l
        on l.chain_id = m.chain_id and l.venue = m.venue and l.market = m.market
),
morpho_held as (  -- what each Morpho market holds beyond what its positions can take; also
                  -- once every position has left (fct_positions has none), the rounding stays
    select k.snapshot_block, k.chain_id, k.venue, k.token,
           any_value(t.total_supply_assets)
           - coalesce(sum(p.amount_raw) filter (where p.side = 'supply'), 0)
           + coalesce(sum(p.amount_raw) filter (where p.side = 'debt'), 0)
           - any_value(t.total_borrow_assets) + any_value(t.borrow_assets_floored) as held
    from morpho_markets as k
    asof join int_morpho_markets as t
        on t.chain_id = k.chain_id and t.venue = k.venue and t.market = k.market
        and t.ordinal <= k.block_end
    left join fct_positions as p
        on p.snapshot_block = k.snapshot_block and p.chain_id = k.chain_id
        and p.venue = k.venue and p.market = k.market and p.side in ('supply', 'debt')
    group by k.snapshot_block, k.chain_id, k.venue, k.market, k.token
),
unknown as (  -- a Morpho market whose totals are unknown (a count past decimal(38,0)) cannot
              -- be reconciled; no_negative_balances names its positions
    select distinct snapshot_block, chain_id, venue, token from morpho_held where held is null
),
owned as (
    select snapshot_block, chain_id, venue, token, sum(owned) as owned
    from (
        select s.snapshot_block, o.chain_id, o.venue, o.token, o.delta as owned
        from own_moves as o
        join ref_snapshots as s on s.chain_id = o.chain_id and o.block_number <= s.snapshot_block
        union all
        select snapshot_block, chain_id, venue, token, held from morpho_held
    )
    group by all
),
owed as (  -- Aave's and Compound's positions grow with interest, which moves no token: Σ flows
    select snapshot_block, chain_id, venue, token,
           sum(case when side = 'debt' then -amount_raw else amount_raw end) as owed
    from (select snapshot_block, chain_id, venue, token, side, amount_raw
          from fct_positions
          where venue_kind = 'lending' and side in ('collateral', 'supply', 'debt')
            and protocol not in ('aave_v3', 'compound_v3')
          union all
          select s.snapshot_block, f.chain_id, f.venue, f.token, f.side, f.sign * f.amount_raw
          from stg_flows as f
          join ref_snapshots as s
              on s.chain_id = f.chain_id and f.block_number <= s.snapshot_block
          where f.protocol in ('aave_v3', 'compound_v3')
            and f.side in ('collateral', 'supply', 'debt'))
    group by all
),
cash as (
    select c.snapshot_block, c.chain_id, c.venue, c.token, c.amount_raw as cash
    from int_venue_cash as c
    join ref_venues as v on v.chain_id = c.chain_id and v.venue = c.venue
    where v.venue_kind = 'lending'
),
keys as (
    select snapshot_block, chain_id, venue, token from owed
    union
    select snapshot_block, chain_id, venue, token from cash
    union
    select snapshot_block, chain_id, venue, token from owned
)
select
    k.snapshot_block, k.venue, k.token,
    coalesce(c.cash, 0) as token_balance,
    coalesce(d.owed, 0) + coalesce(o.owned, 0) as from_flows,
    coalesce(c.cash, 0) - coalesce(d.owed, 0) - coalesce(o.owned, 0) as difference
from keys as k
left join cash as c using (snapshot_block, chain_id, venue, token)
left join owed as d using (snapshot_block, chain_id, venue, token)
left join owned as o using (snapshot_block, chain_id, venue, token)
where coalesce(c.cash, 0) <> coalesce(d.owed, 0) + coalesce(o.owned, 0)
  and not exists (select 1 from unknown as u
                  where u.snapshot_block = k.snapshot_block and u.chain_id = k.chain_id
                    and u.venue = k.venue and u.token = k.token)
order by k.snapshot_block, k.venue, k.token
