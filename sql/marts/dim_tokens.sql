-- grain: one row per token (chain_id, token)
-- Every token a position can hold, with the venue that issues it (aTokens, debt tokens, the
-- LST, LP shares, oTokens) and the asset it is a claim on.
select
    t.chain_id,
    t.token,
    t.symbol,
    t.decimals,
    t.token_kind,
    t.issued_by as issuer_venue,
    t.underlying,
    u.symbol as underlying_symbol
from int_tokens as t
left join int_tokens as u on u.chain_id = t.chain_id and u.token = t.underlying
