-- grain: one row per registry aToken or variable debt token with an underlying (chain_id, token)
-- The Aave tokens whose own events give positions their scaled balances (stg_aave_scaled_moves):
-- the registry's aTokens (side collateral) and variable debt tokens (side debt), with the venue
-- that issues them and the reserve they are claims on. A (venue, reserve, side) not here is
-- valued at the flows' principal (int_balances, int_liquidation_health_aave_v3). A token the
-- registry names no issuer for is left out: its moves could not be put at a venue (and a
-- null venue would make every row's `in` test against this list unknown).
select
    chain_id,
    token,
    issued_by as venue,
    underlying as reserve,
    case token_kind when 'atoken' then 'collateral' else 'debt' end as side
from ref_tokens
where token_kind in ('atoken', 'debt_token') and underlying is not null
  and issued_by is not null
