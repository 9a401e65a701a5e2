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
with running as (
    select
        chain_id, contract, venue, market, block_number, log_index, ordinal, step,
        sum(supply_assets_delta) over w as total_supply_assets,
        sum(shares_delta) filter (where side = 'supply') over w as total_supply_shares,
        sum(borrow_assets_delta) over w as borrow_assets_sum,
        sum(shares_delta) filter (where side = 'debt') over w as total_borrow_shares
    from stg_morpho_moves
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
    total_supply_assets::decimal(38, 0) as total_supply_assets,
    coalesce(total_supply_shares, 0)::decimal(38, 0) as total_supply_shares,
    (borrow_assets_sum + borrow_assets_floored)::decimal(38, 0) as total_borrow_assets,
    coalesce(total_borrow_shares, 0)::decimal(38, 0) as total_borrow_shares,
    borrow_assets_floored::decimal(38, 0) as borrow_assets_floored
from floored
qualify row_number() over (partition by chain_id, contract, market, ordinal
                           order by step desc) = 1
