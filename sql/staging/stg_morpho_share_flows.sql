-- grain: one row per change of a Morpho Blue position's shares (chain_id, block_number, log_index, side)
-- Morpho keeps supply and borrow positions in shares; the events carry both assets and shares.
-- Exact while the shares fit decimal(38,0) (they always do below 10^32 assets).
with moves as (
    select chain_id, block_number, log_index, contract_address, id, on_behalf as account,
           'supply' as side, shares, 1 as sign
    from src_morpho_blue__supply
    union all
    select chain_id, block_number, log_index, contract_address, id, on_behalf, 'supply',
           shares, -1
    from src_morpho_blue__withdraw
    union all
    select chain_id, block_number, log_index, contract_address, id, on_behalf, 'debt', shares, 1
    from src_morpho_blue__borrow
    union all
    select chain_id, block_number, log_index, contract_address, id, on_behalf, 'debt', shares,
           -1
    from src_morpho_blue__repay
    union all
    select chain_id, block_number, log_index, contract_address, id, borrower, 'debt',
           repaid_shares, -1
    from src_morpho_blue__liquidate
    union all
    select chain_id, block_number, log_index, contract_address, id, borrower, 'debt',
           bad_debt_shares, -1
    from src_morpho_blue__liquidate
)
select
    m.chain_id,
    m.block_number,
    m.log_index,
    c.venue,
    '0x' || lower(hex(m.id)) as market,
    '0x' || lower(hex(m.account)) as account,
    m.side,
    m.sign * m.shares::decimal(38, 0) as shares_delta
from moves as m
left join ref_venue_contracts as c
    on c.chain_id = m.chain_id and c.contract = '0x' || lower(hex(m.contract_address))
