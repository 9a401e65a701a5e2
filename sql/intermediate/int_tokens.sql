-- grain: one row per token (chain_id, token)
-- The registry's tokens (with the USD unit of USD-valued flows) and every oToken series the
-- options venues created: 8 decimals, issued by the venue whose controller created it.
select chain_id, token, symbol, decimals, token_kind, issued_by, underlying
from ref_tokens
union all
select
    o.chain_id,
    o.otoken,
    'oToken ' || case when o.is_put then 'P' else 'C' end
        || regexp_replace(o.strike_price_usd::varchar, '\.0+$', '')
        || ' ' || strftime(o.expiry, '%Y-%m-%d'),
    8,
    'otoken',
    c.venue,
    o.underlying
from stg_otokens as o
left join ref_venue_contracts as c on c.chain_id = o.chain_id and c.contract = o.controller
where o.otoken not in (select token from ref_tokens)
