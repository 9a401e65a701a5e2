-- grain: one row per Aave v3 ReserveUsedAsCollateralEnabled / Disabled (chain_id, block_number, log_index)
-- A reserve switched on or off as a user's collateral at a Pool. Aave counts a supply in the
-- user's collateral (and health factor) only while its last switch is on; a user who never
-- switched it on does not have it as collateral (the Pool logs the switch at the first supply
-- that can be collateral). int_account_health and int_liquidation_health_aave_v3 read the last
-- switch before the moment they judge.
select
    s.chain_id,
    s.block_number,
    s.log_index,
    log_ordinal(s.block_number, s.log_index) as ordinal,
    c.venue,
    '0x' || lower(hex(s.contract_address)) as pool,
    '0x' || lower(hex(s.user)) as account,
    '0x' || lower(hex(s.reserve)) as reserve,
    s.enabled
from (select chain_id, block_number, log_index, contract_address, user, reserve,
             true as enabled
      from src_aave_v3__reserve_used_as_collateral_enabled
      union all
      select chain_id, block_number, log_index, contract_address, user, reserve, false
      from src_aave_v3__reserve_used_as_collateral_disabled) as s
left join ref_venue_contracts as c
    on c.chain_id = s.chain_id and c.contract = '0x' || lower(hex(s.contract_address))
