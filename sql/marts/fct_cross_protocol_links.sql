-- grain: one row per snapshot × claim token × holder venue × side × account
-- The wires contagion travels on: a token issued by one venue (an aToken, the LST, an LP share,
-- an oToken) held as collateral, margin or supply at another venue, by whom and how much.
select
    p.snapshot_block,
    p.chain_id,
    t.issued_by as issuer_venue,
    t.token,
    t.symbol,
    t.token_kind,
    p.venue as holder_venue,
    p.side,
    p.account,
    case when p.backing_token is null then p.amount_raw end as amount_raw,
    case when p.backing_token is null then p.amount end as amount,
    p.amount_usd
from int_positions as p
join int_tokens as t
    on t.chain_id = p.chain_id and t.token = coalesce(p.backing_token, p.token)
where t.issued_by is not null
  and t.issued_by <> p.venue
  and p.side in ('collateral', 'margin', 'supply')
