-- grain: one row per event that moves a Morpho Blue market's totals (chain_id, block_number, log_index)
-- A Morpho Blue market's four totals after each event, as the contract's `market(id)` stores
-- them: the running sums of stg_morpho_moves' steps (Supply, Withdraw, Borrow, Repay,
-- Liquidate's repay and bad-debt write-off, AccrueInterest's interest and fee shares). Morpho
-- floors total borrow assets at zero on a repay (a rounded-up repay may exceed it by one),
-- which a running sum S does exactly as total = S − min(0, min of S so far) (a floor at zero
-- on every step: Lindley's recursion; the other steps never cross zero);
-- borrow_assets_floored is what the floor dropped so far (repaid, held by the contract, owed
-- by no position). int_morpho_shares values the positions' shares at these totals with
-- Morpho's virtual shares, int_liquidation_health_morpho_blue a borrower's debt before its
-- liquidation. Ordinals are block × 10^6 + log index (as int_liquidations'). Interest accrues
-- only in events (Morpho writes it on the market's next entry point), so between events the
-- totals are the contract's stored ones, not its view of interest owed up to now.
-- A step whose counts do not fit decimal(38,0) (stg_morpho_moves: null), or after which a
-- total would pass it (Morpho's are uint128), leaves the four totals null from then on, and
-- so the market's positions (int_morpho_shares): unknown, not the sum of the other steps.
with fitting as (  -- where a total would pass 10^38, found on doubles (an exact sum would fail)
    select
        *,
        shares_delta is null or supply_assets_delta is null or borrow_assets_delta is null
        or greatest(abs(sum(supply_assets_delta::double) over w),
                    abs(sum(borrow_assets_delta::double) over w),
                    abs(sum(shares_delta::double) filter (where side = 'supply') over w),
                    abs(sum(shares_delta::double) filter (where side = 'debt') over w))
           >= 9.9e37 as unfit
    from stg_morpho_moves
    window w as (partition by chain_id, contract, market order by ordinal, step
                 rows between unbounded preceding and current row)
),
steps as (
    select
        * exclude (shares_delta, supply_assets_delta, borrow_assets_delta),
        bool_or(unfit) over w as unknown,
        -- none of a step from the first unfit one on reaches the exact sums
        case when not bool_or(unfit) over w then shares_delta end as shares_delta,
        case when not bool_or(unfit) over w then supply_assets_delta end as supply_assets_delta,
        case when not bool_or(unfit) over w then borrow_assets_delta end as borrow_assets_delta
    from fitting
    window w as (partition by chain_id, contract, market order by ordinal, step
                 rows between unbounded preceding and current row)
),
running as (
    select
        chain_id, contract, venue, market, block_number, log_index, ordinal, step, unknown,
        sum(supply_assets_delta) over w as total_supply_assets,
        sum(shares_delta) filter (where side = 'supply') over w as total_supply_shares,
        sum(borrow_assets_delta) over w as borrow_assets_sum,
        sum(shares_delta) filter (where side = 'debt') over w as total_borrow_shares
    from steps
    window w as (partition by chain_id, contract, market order by ordinal, step
                 rows between unbounded preceding and current row)
),
floored as (
    select
        *,
        -least(0, min(borrow_assets_sum) over (
            partition by chain_id, contract, market order by ordinal, step
            rows between unbounded preceding and current row)) as borrow_assets_floored
    from running
)
select
    chain_id,
    block_number,
    log_index,
    ordinal,
    contract,
    venue,
    market,
    case when not unknown then total_supply_assets::decimal(38, 0) end as total_supply_assets,
    case when not unknown then coalesce(total_supply_shares, 0)::decimal(38, 0) end
        as total_supply_shares,
    case when not unknown then (borrow_assets_sum + borrow_assets_floored)::decimal(38, 0) end
        as total_borrow_assets,
    case when not unknown then coalesce(total_borrow_shares, 0)::decimal(38, 0) end
        as total_borrow_shares,
    case when not unknown then borrow_assets_floored::decimal(38, 0) end
        as borrow_assets_floored
from floored
qualify row_number() over (partition by chain_id, contract, market, ordinal
                           order by step desc) = 1
