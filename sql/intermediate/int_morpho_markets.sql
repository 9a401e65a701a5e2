-- grain: one row per event that moves a Morpho Blue market's totals (chain_id, block_number, log_index)
-- A Morpho Blue market's four totals after each event, as the contract's `market(id)` stores
-- them (MorphoBlue.vy, morpho-org/morpho-blue): total supply assets and shares, total borrow
-- assets and shares. Supply and Withdraw move the supply totals, Borrow and Repay the borrow
-- totals; a Liquidate repays (repaidAssets, repaidShares), then writes off the borrower's bad
-- debt (badDebtAssets, badDebtShares) against both the borrow totals and the total supply
-- assets, so every supply share is worth less. Morpho floors total borrow assets at zero on a
-- repay (a rounded-up repay may exceed it by one), which a running sum S does exactly as
-- total = S − min(0, min of S so far) (a floor at zero on every step: Lindley's recursion; the
-- other steps never cross zero); borrow_assets_floored is what the floor dropped so far
-- (repaid, held by the contract, owed by no position). int_morpho_shares values the
-- positions' shares at these totals with Morpho's virtual shares, int_liquidation_health_
-- morpho_blue a borrower's debt before its liquidation. Ordinals are block × 10^6 + log index
-- (as int_liquidations'). Interest: the devnet's markets accrue none; a mainnet market accrues
-- it in AccrueInterest events (and mints fee shares to the fee recipient), which the lake does
-- not decode, so there these totals lag the contract's.
with steps as (  -- each step of a market's totals; a liquidation repays, then writes off
    select chain_id, contract_address, id, block_number, log_index, 0 as step,
           assets::decimal(38, 0) as supply_assets, shares::decimal(38, 0) as supply_shares,
           0::decimal(38, 0) as borrow_assets, 0::decimal(38, 0) as borrow_shares
    from src_morpho_blue__supply
    union all
    select chain_id, contract_address, id, block_number, log_index, 0,
           -assets::decimal(38, 0), -shares::decimal(38, 0), 0, 0
    from src_morpho_blue__withdraw
    union all
    select chain_id, contract_address, id, block_number, log_index, 0,
           0, 0, assets::decimal(38, 0), shares::decimal(38, 0)
    from src_morpho_blue__borrow
    union all
    select chain_id, contract_address, id, block_number, log_index, 0,
           0, 0, -assets::decimal(38, 0), -shares::decimal(38, 0)
    from src_morpho_blue__repay
    union all
    select chain_id, contract_address, id, block_number, log_index, 0,
           0, 0, -repaid_assets::decimal(38, 0), -repaid_shares::decimal(38, 0)
    from src_morpho_blue__liquidate
    union all
    select chain_id, contract_address, id, block_number, log_index, 1,
           -bad_debt_assets::decimal(38, 0), 0, -bad_debt_assets::decimal(38, 0),
           -bad_debt_shares::decimal(38, 0)
    from src_morpho_blue__liquidate
),
running as (
    select
        chain_id, contract_address, id, block_number, log_index, step,
        sum(supply_assets) over w as total_supply_assets,
        sum(supply_shares) over w as total_supply_shares,
        sum(borrow_assets) over w as borrow_assets_sum,
        sum(borrow_shares) over w as total_borrow_shares
    from steps
    window w as (partition by chain_id, contract_address, id order by block_number, log_index,
                 step rows between unbounded preceding and current row)
),
floored as (
    select
        *,
        -least(0, min(borrow_assets_sum) over (
            partition by chain_id, contract_address, id order by block_number, log_index, step
            rows between unbounded preceding and current row)) as borrow_assets_floored
    from running
)
select
    f.chain_id,
    f.block_number,
    f.log_index,
    f.block_number::hugeint * 1000000 + f.log_index as ordinal,
    '0x' || lower(hex(f.contract_address)) as contract,
    c.venue,
    '0x' || lower(hex(f.id)) as market,
    f.total_supply_assets::decimal(38, 0) as total_supply_assets,
    f.total_supply_shares::decimal(38, 0) as total_supply_shares,
    (f.borrow_assets_sum + f.borrow_assets_floored)::decimal(38, 0) as total_borrow_assets,
    f.total_borrow_shares::decimal(38, 0) as total_borrow_shares,
    f.borrow_assets_floored::decimal(38, 0) as borrow_assets_floored
from floored as f
left join ref_venue_contracts as c
    on c.chain_id = f.chain_id and c.contract = '0x' || lower(hex(f.contract_address))
qualify row_number() over (partition by f.chain_id, f.contract_address, f.id, f.block_number,
                                        f.log_index order by f.step desc) = 1
