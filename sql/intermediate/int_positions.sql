-- grain: one row per snapshot × position (venue, market, account, token, side) that is not empty
-- Every position at each snapshot, exact and priced. Lending, supply and claim holdings come
-- from int_balances; perps margin from int_perp_margin (USD, with the token the margin is held
-- in as backing_token); options margin and written oTokens from int_options_vaults, summed
-- over each owner's vaults; Morpho supply and debt from int_morpho_shares: the shares the
-- contract keeps (shares_raw) and the assets they are worth at the market's totals (supply
-- rounded down, debt up, as the contract does); Aave collateral and debt from
-- int_aave_balances: the scaled balance (shares_raw) and its worth at the reserve's index, the
-- interest accrued to the snapshot included; Compound base supply and debt from
-- int_compound_balances: the principal (shares_raw) and its worth at the Comet's indexes,
-- likewise. priced_as is the token whose price values it (an aToken: its underlying). A
-- position is empty, and left out, when its amount is 0 and it holds no shares, or its
-- amount is unknown but its shares are 0.
with from_flows as (
    select snapshot_block, chain_id, venue, protocol, market, account, token, side,
           amount_raw, null::varchar as backing_token
    from int_balances
),
perps as (
    select
        m.snapshot_block, m.chain_id, m.venue, 'gmx_v1' as protocol, m.index_token as market,
        m.account, u.token, 'margin' as side, sum(m.collateral_usd_raw)::decimal(38, 0),
        m.collateral_token
    from int_perp_margin as m
    join ref_tokens as u on u.chain_id = m.chain_id and u.token_kind = 'unit'
    group by all
),
options as (
    select
        o.snapshot_block, o.chain_id, o.venue, 'opyn_gamma' as protocol,
        case when o.side = 'debt' then o.token end as market, o.owner as account, o.token,
        o.side, sum(o.amount_raw)::decimal(38, 0), null::varchar
    from int_options_vaults as o
    group by all
),
amounts as (
    select * from from_flows
    union all
    select * from perps
    union all
    select * from options
),
joined as (
    select *, null::decimal(38, 0) as shares_raw from amounts
    union all
    select snapshot_block, chain_id, venue, 'morpho_blue', market, account, loan_token, side,
           amount_raw, null::varchar, shares_raw
    from int_morpho_shares
    union all
    select snapshot_block, chain_id, venue, 'aave_v3', market, account, token, side,
           amount_raw, null::varchar, shares_raw
    from int_aave_balances
    union all
    select snapshot_block, chain_id, venue, 'compound_v3', market, account, token, side,
           amount_raw, null::varchar, shares_raw
    from int_compound_balances
)
select
    j.snapshot_block,
    j.chain_id,
    j.venue,
    j.protocol,
    v.venue_kind,
    j.market,
    j.account,
    j.token,
    t.symbol,
    j.side,
    j.amount_raw,
    j.shares_raw,
    j.backing_token,
    j.amount_raw::double / power(10, t.decimals) as amount,
    p.priced_as,
    p.price_usd,
    p.price_block,
    p.price_age_blocks,
    p.price_age_seconds,
    j.amount_raw::double / power(10, t.decimals) * p.price_usd as amount_usd
from joined as j
left join ref_venues as v on v.chain_id = j.chain_id and v.venue = j.venue
left join int_tokens as t on t.chain_id = j.chain_id and t.token = j.token
left join int_token_prices as p
    on p.chain_id = j.chain_id and p.snapshot_block = j.snapshot_block and p.token = j.token
-- an amount and shares both unknown (a failed read, a move too large to sum) is kept: the
-- position is there, unvalued, and no_negative_balances names it
where j.amount_raw <> 0 or coalesce(j.shares_raw, 0) <> 0
   or (j.amount_raw is null and j.shares_raw is null)
