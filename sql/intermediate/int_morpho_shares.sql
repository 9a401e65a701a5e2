-- grain: one row per snapshot × Morpho position (venue, market, account, side) with a share move at or before the snapshot
-- The shares a Morpho Blue position holds, exactly as the contract's `position` reports them,
-- and the assets they are worth at the snapshot, as the contract values them: the market's
-- totals after its last event at or before the snapshot (int_morpho_markets) with Morpho's
-- virtual shares (10^6) and assets (1). Supply: toAssetsDown, ⌊shares × (total supply assets
-- + 1) / (total supply shares + 10^6)⌋, what a withdrawal of every share pays; debt:
-- toAssetsUp, ⌈shares × (total borrow assets + 1) / (total borrow shares + 10^6)⌉, what the
-- contract counts as borrowed. Bad debt a liquidation writes off lowers the total supply
-- assets, so it lowers every supplier's amount. The product passes 128 bits (shares carry six
-- more digits than assets), so it goes through contagion.exact. amount_raw is null where the
-- replayed totals are negative (events missing from the lake: an index that starts after the
-- market's first event). Fee shares AccrueInterest mints are the fee recipient's supply
-- shares (stg_morpho_moves). loan_token: the registry market's, else the input's CreateMarket.
-- Once the market's totals are unknown (int_morpho_markets: a count past decimal(38,0)), a
-- position that moves there has its shares null too from then on, and every amount is null.
with moves as (
    select m.chain_id, m.venue, m.market, m.account, m.side, m.block_number,
           concat_ws('|', coalesce(m.venue, ''), m.market, m.account, m.side) as position_key,
           -- a step of a market whose totals are unknown makes the sum null (and stays out of
           -- it: its count may not fit)
           case when not bool_or(t.total_supply_shares is null)
                then sum(m.shares_delta) filter (where t.total_supply_shares is not null)
           end as delta
    from stg_morpho_moves as m
    join int_morpho_markets as t
        on t.chain_id = m.chain_id and t.contract = m.contract and t.market = m.market
        and t.ordinal = m.ordinal
    where m.account is not null  -- an accrual without fee shares moves no position
    group by all
),
deltas as (  -- the running sum skips nulls: whether one came by then goes alongside
    select *, bool_or(delta is null) over (partition by position_key order by block_number)
                  as unknown
    from moves
),
at_snapshot as (
    select snapshot_block, chain_id, venue, market, account, side,
           case when not unknown then running_sum::decimal(38, 0) end as shares_raw,
           block_end_ordinal(snapshot_block) as snapshot_end
    from running_sums_at_snapshots(deltas, ref_snapshots)
),
created as (
    select chain_id, '0x' || lower(hex(id)) as market,
           '0x' || lower(hex(arg_min(market_params_loan_token,
                                     log_ordinal(block_number, log_index)))) as loan_token
    from src_morpho_blue__create_market
    group by all
),
loan_tokens as (
    select chain_id, venue, market, any_value(loan_token) as loan_token
    from ref_markets
    group by all
),
valued as (
    select
        a.*,
        t.total_supply_assets, t.total_supply_shares, t.total_borrow_assets,
        t.total_borrow_shares
    from at_snapshot as a
    asof left join int_morpho_markets as t
        on t.chain_id = a.chain_id and coalesce(t.venue, '') = coalesce(a.venue, '')
        and t.market = a.market and t.ordinal <= a.snapshot_end
)
select
    v.snapshot_block,
    v.chain_id,
    v.venue,
    v.market,
    v.account,
    v.side,
    coalesce(l.loan_token, c.loan_token) as loan_token,
    v.shares_raw,
    case
        when v.shares_raw < 0 or v.total_supply_assets < 0 or v.total_supply_shares < 0
             or v.total_borrow_assets < 0 or v.total_borrow_shares < 0 then null
        when v.side = 'supply'
             then mul_div_down(v.shares_raw, v.total_supply_assets + 1,
                               v.total_supply_shares + 1000000)
        else mul_div_up(v.shares_raw, v.total_borrow_assets + 1, v.total_borrow_shares + 1000000)
    end as amount_raw
from valued as v
left join loan_tokens as l
    on l.chain_id = v.chain_id and l.venue = v.venue and l.market = v.market
left join created as c on c.chain_id = v.chain_id and c.market = v.market
