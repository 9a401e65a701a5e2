-- grain: one row per snapshot × token with a volatility feed (chain_id, snapshot_block, token)
-- The implied volatility and 25-delta risk reversal (annualised, 0.6 = 60 %) in force at each
-- snapshot: the latest mark at or before it (ASOF join on the ordinal, so the later of two
-- marks in one block; null if that mark is not a number) of the feed whose base is the token's
-- symbol, else its underlying's (an aToken or an LST is marked with its asset's feed). The
-- early-warning signals (int_token_signals) and the oToken marks (int_otoken_prices) read them.
with marks as (
    select w.chain_id, w.snapshot_block, f.base, f.kind, f.value
    from int_windows as w
    join (select distinct chain_id, base, kind from stg_vol_marks) as k
        on k.chain_id = w.chain_id
    asof join stg_vol_marks as f
        on f.chain_id = k.chain_id and f.base = k.base and f.kind = k.kind
        and f.ordinal <= block_end_ordinal(w.snapshot_block)
),
vol_base as (
    select t.chain_id, t.token,
           case when t.symbol in (select base from stg_vol_marks) then t.symbol
                else u.symbol end as base
    from int_tokens as t
    left join int_tokens as u on u.chain_id = t.chain_id and u.token = t.underlying
)
select
    m.chain_id,
    m.snapshot_block,
    v.token,
    v.base,
    max(m.value) filter (where m.kind = 'implied_vol') as implied_vol,
    max(m.value) filter (where m.kind = 'risk_reversal') as risk_reversal
from vol_base as v
join marks as m on m.chain_id = v.chain_id and m.base = v.base
group by all
