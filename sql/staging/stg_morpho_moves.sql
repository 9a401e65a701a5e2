-- grain: one row per step of a Morpho Blue event that moves shares or a market's totals (chain_id, block_number, log_index, step)
-- Every change Morpho Blue makes to a position's shares and to its market's four totals
-- (MorphoBlue.vy, morpho-org/morpho-blue), one source for int_morpho_markets (the totals) and
-- int_morpho_shares (the positions). Each step moves one position's shares on one side and the
-- market's shares on that side by the same count (shares_delta), and the total supply and
-- borrow assets by supply_assets_delta and borrow_assets_delta:
-- - Supply / Withdraw: the supplier's supply shares, the supply assets;
-- - Borrow / Repay: the borrower's debt shares, the borrow assets (a repay may take one unit
--   more than the total: int_morpho_markets floors it at zero as Morpho does);
-- - Liquidate, step 0: the borrower's repaid shares and assets; step 1: its bad debt, written
--   off against the borrow totals and the total supply assets (every supply share loses);
-- - AccrueInterest: `interest` onto both asset totals and `feeShares` minted to the fee
--   recipient of the moment (the latest SetFeeRecipient before it at that Morpho; the zero
--   address, Morpho's initial recipient, when the lake holds none). account is null only on
--   a step that names no position: an accrual that minted no fee shares.
-- Exact while the shares fit decimal(38,0) (they always do below 10^32 assets; Morpho's totals
-- are uint128, up to 3.4·10^38): a count or amount that does not is null here, and
-- int_morpho_markets / int_morpho_shares leave its market's totals and its position's shares
-- null from then on (no_negative_balances names the positions) rather than failing the build.
with fee_recipients as (
    select chain_id, contract_address, new_fee_recipient,
           log_ordinal(block_number, log_index) as ordinal
    from src_morpho_blue__set_fee_recipient
),
accruals as (
    select a.*, coalesce(r.new_fee_recipient, unhex(repeat('00', 20))) as recipient
    from src_morpho_blue__accrue_interest as a
    asof left join fee_recipients as r
        on r.chain_id = a.chain_id and r.contract_address = a.contract_address
        and r.ordinal < log_ordinal(a.block_number, a.log_index)
),
moves as (
    select chain_id, block_number, log_index, 0 as step, contract_address, id,
           on_behalf as account, 'supply' as side,
           try_cast(shares as decimal(38, 0)) as shares_delta,
           try_cast(assets as decimal(38, 0)) as supply_assets_delta,
           0::decimal(38, 0) as borrow_assets_delta
    from src_morpho_blue__supply
    union all
    select chain_id, block_number, log_index, 0, contract_address, id, on_behalf, 'supply',
           -try_cast(shares as decimal(38, 0)), -try_cast(assets as decimal(38, 0)), 0
    from src_morpho_blue__withdraw
    union all
    select chain_id, block_number, log_index, 0, contract_address, id, on_behalf, 'debt',
           try_cast(shares as decimal(38, 0)), 0, try_cast(assets as decimal(38, 0))
    from src_morpho_blue__borrow
    union all
    select chain_id, block_number, log_index, 0, contract_address, id, on_behalf, 'debt',
           -try_cast(shares as decimal(38, 0)), 0, -try_cast(assets as decimal(38, 0))
    from src_morpho_blue__repay
    union all
    select chain_id, block_number, log_index, 0, contract_address, id, borrower, 'debt',
           -try_cast(repaid_shares as decimal(38, 0)), 0,
           -try_cast(repaid_assets as decimal(38, 0))
    from src_morpho_blue__liquidate
    union all
    select chain_id, block_number, log_index, 1, contract_address, id, borrower, 'debt',
           -try_cast(bad_debt_shares as decimal(38, 0)),
           -try_cast(bad_debt_assets as decimal(38, 0)),
           -try_cast(bad_debt_assets as decimal(38, 0))
    from src_morpho_blue__liquidate
    union all
    select chain_id, block_number, log_index, 0, contract_address, id,
           -- fee shares that do not fit still go to the recipient, whose shares they make null
           case when try_cast(fee_shares as decimal(38, 0)) = 0 then null else recipient end,
           'supply', try_cast(fee_shares as decimal(38, 0)),
           try_cast(interest as decimal(38, 0)), try_cast(interest as decimal(38, 0))
    from accruals
)
select
    m.chain_id,
    m.block_number,
    m.log_index,
    m.step,
    log_ordinal(m.block_number, m.log_index) as ordinal,
    '0x' || lower(hex(m.contract_address)) as contract,
    c.venue,
    '0x' || lower(hex(m.id)) as market,
    '0x' || lower(hex(m.account)) as account,
    m.side,
    m.shares_delta,
    m.supply_assets_delta,
    m.borrow_assets_delta
from moves as m
left join ref_venue_contracts as c
    on c.chain_id = m.chain_id and c.contract = '0x' || lower(hex(m.contract_address))
