-- asset: fct_venue_balance_sheet
-- severity: error
-- description: every ERC-20 Transfer of a registry token fits decimal(38,0), so venue token balances are exact sums. A row is a Transfer whose value does not fit.
select t.block_number, t.log_index, t.token, t.value_text
from stg_erc20_transfers as t
join ref_tokens as r on r.chain_id = t.chain_id and r.token = t.token
where t.value_raw is null
order by t.block_number, t.log_index
