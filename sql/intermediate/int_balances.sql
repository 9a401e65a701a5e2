-- grain: one row per snapshot × position (venue, market, account, token, side) with a flow at or before the snapshot
-- Exact balances: Σ sign × amount_raw of the flows up to the snapshot block, kept as a running
-- sum per position and read at each snapshot (ASOF join). Perps margin, options vaults, Morpho
-- supply and debt and Aave positions are not summed here: int_perp_margin, int_options_vaults,
-- int_morpho_shares and int_aave_balances take them from the positions' own state (Morpho's:
-- shares, worth what the market's totals say; a liquidation's bad debt lowers every
-- supplier's; Aave's: scaled balances, worth what the reserve's index says, interest
-- included). An Aave reserve whose aToken (or variable debt token) the registry does not list
-- has no scaled balances: its collateral (or debt) stays the flows' principal here.
with deltas as (
    select
        chain_id, venue, protocol, market, account, token, side, block_number,
        concat_ws('|', coalesce(venue, ''), protocol, coalesce(market, ''), account,
                  coalesce(token, ''), side) as position_key,
        sum(sign * amount_raw) as delta
    from stg_flows
    where not (protocol = 'gmx_v1' and side = 'margin')
      and not (protocol = 'opyn_gamma' and side in ('margin', 'debt'))
      and not (protocol = 'morpho_blue' and side in ('supply', 'debt'))
      and not (protocol = 'aave_v3' and (chain_id, venue, market, side)
               in (select chain_id, venue, reserve, side from stg_aave_tokens))
    group by all
),
running as (
    select
        *,
        sum(delta) over (partition by position_key order by block_number
                         rows between unbounded preceding and current row) as balance
    from deltas
),
positions as (
    select distinct chain_id, position_key from deltas
)
select
    s.snapshot_block,
    r.chain_id,
    r.venue,
    r.protocol,
    r.market,
    r.account,
    r.token,
    r.side,
    r.balance::decimal(38, 0) as amount_raw,
    r.block_number as last_flow_block
from ref_snapshots as s
join positions as p on p.chain_id = s.chain_id
asof join running as r
    on r.position_key = p.position_key and r.block_number <= s.snapshot_block
