-- grain: one row per change of what a venue owns itself (chain_id, block_number, log_index, token)
-- Tokens a lending venue comes to own, or gives up, outside any depositor's position. Compound
-- v3: collateral it absorbs from liquidated borrowers (+) and sells (BuyCollateral: − the
-- collateral, + the base paid for it), base it pays to absorb debt (−) and reserves withdrawn
-- (−). The base token is the loan token of the venue's markets (stg_comets).
with moves as (
    select chain_id, block_number, log_index, contract_address,
           '0x' || lower(hex(asset)) as token, collateral_absorbed::decimal(38, 0) as delta,
           false as in_base
    from src_compound_v3__absorb_collateral
    union all
    select chain_id, block_number, log_index, contract_address,
           '0x' || lower(hex(asset)), -collateral_amount::decimal(38, 0), false
    from src_compound_v3__buy_collateral
    union all
    select chain_id, block_number, log_index, contract_address, null,
           base_amount::decimal(38, 0), true
    from src_compound_v3__buy_collateral
    union all
    select chain_id, block_number, log_index, contract_address, null,
           -amount::decimal(38, 0), true
    from src_compound_v3__withdraw_reserves
    union all
    select chain_id, block_number, log_index, contract_address, null,
           -base_paid_out::decimal(38, 0), true
    from src_compound_v3__absorb_debt
)
select
    m.chain_id,
    m.block_number,
    m.log_index,
    c.venue,
    case when m.in_base then c.base_token else m.token end as token,
    m.delta
from moves as m
join stg_comets as c
    on c.chain_id = m.chain_id and c.contract = '0x' || lower(hex(m.contract_address))
