-- asset: fct_positions
-- severity: error
-- description: no position holds less than nothing: a negative balance or share count means a flow was missed or mis-signed, and no amount at all that events are missing (a Morpho market whose replayed totals went below zero), a count is too large to sum exactly (a Morpho market's past decimal(38,0), an Aave scaled move's) or state could not be read (an Aave or Compound position int_aave_balances or int_compound_balances could not value: its unvalued_reason says why). A row is such a position.
select snapshot_block, venue, account, token, side, amount_raw, shares_raw
from fct_positions
where amount_raw < 0 or shares_raw < 0 or amount_raw is null
order by snapshot_block, venue, account
