-- grain: one row per change of an options vault (chain_id, block_number, log_index, side)
-- Every event that changes what an options vault (owner, vault id) holds: collateral deposited
-- and withdrawn, oTokens written (debt) and burned, a liquidation (collateral seized, oTokens
-- repaid; their tokens are resolved in int_options_vault_moves) and settlement, after which the
-- vault holds nothing.
with moves as (
    select chain_id, block_number, log_index, contract_address, account_owner as owner,
           vault_id, asset as token, 'margin' as side, amount::decimal(38, 0) as delta,
           'deposit' as kind
    from src_opyn_gamma__collateral_asset_deposited
    union all
    select chain_id, block_number, log_index, contract_address, account_owner, vault_id, asset,
           'margin', -amount::decimal(38, 0), 'withdraw'
    from src_opyn_gamma__collateral_asset_withdrawed
    union all
    select chain_id, block_number, log_index, contract_address, account_owner, vault_id, otoken,
           'debt', amount::decimal(38, 0), 'write'
    from src_opyn_gamma__short_otoken_minted
    union all
    select chain_id, block_number, log_index, contract_address, account_owner, vault_id, otoken,
           'debt', -amount::decimal(38, 0), 'burn'
    from src_opyn_gamma__short_otoken_burned
    union all
    select chain_id, block_number, log_index, contract_address, vault_owner, vault_id, null,
           'margin', -collateral_payout::decimal(38, 0), 'seize'
    from src_opyn_gamma__vault_liquidated
    union all
    select chain_id, block_number, log_index, contract_address, vault_owner, vault_id, null,
           'debt', -debt_amount::decimal(38, 0), 'repay'
    from src_opyn_gamma__vault_liquidated
    union all
    select chain_id, block_number, log_index, contract_address, account_owner, vault_id, null,
           null, 0, 'settle'
    from src_opyn_gamma__vault_settled
)
select
    m.chain_id,
    m.block_number,
    m.log_index,
    log_ordinal(m.block_number, m.log_index) as ordinal,
    c.venue,
    '0x' || lower(hex(m.owner)) as owner,
    m.vault_id::ubigint as vault_id,
    case when m.token is not null then '0x' || lower(hex(m.token)) end as token,
    m.side,
    m.delta,
    m.kind
from moves as m
left join ref_venue_contracts as c
    on c.chain_id = m.chain_id and c.contract = '0x' || lower(hex(m.contract_address))
