-- grain: one row per snapshot × position (venue, market, account, token, side) with a flow at or before the snapshot
-- Exact balances: Σ sign × amount_raw of the flows up to the snapshot block, a running sum per
-- position read at each snapshot (running_sums_at_snapshots). Perps margin, options vaults,
-- Morpho supply and debt, Aave positions and Compound base supply and debt are not summed
-- here: int_perp_margin, int_options_vaults, int_morpho_shares, int_aave_balances and
-- int_compound_balances take them from the positions' own state (Morpho's: shares, worth what
-- the market's totals say; a liquidation's bad debt lowers every supplier's; Aave's: scaled
-- balances, worth what the reserve's index says, interest included; Compound's: principals,
-- worth what the Comet's indexes say). An Aave reserve whose aToken (or variable debt token)
-- the registry does not list has no scaled balances: its collateral (or debt) stays the flows'
-- principal here. Compound collateral earns no interest: its flows' sum is its balance.
with deltas as (
    select
        chain_id, venue, protocol, market, account, token, side, block_number,
        concat_ws('|', coalesce(venue, ''), protocol, coalesce(market, ''), account,
                  coalesce(token, ''), side) as position_key,
        sum(sign * amount_raw) as delta
    from stg_flows
    where not (protocol = 'gmx_v1' and side = 'margin')
      and not (protocol = 'opyn_gamma' and side in ('margin', 'debt'))
      and not (protocol in ('morpho_blue', 'compound_v3') and side in ('supply', 'debt'))
      and not (protocol = 'aave_v3' and (chain_id, venue, market, side)
               in (select chain_id, venue, reserve, side from stg_aave_tokens))
    group by all
)
select
    snapshot_block,
    chain_id,
    venue,
    protocol,
    market,
    account,
    token,
    side,
    running_sum::decimal(38, 0) as amount_raw,
    block_number as last_flow_block
from running_sums_at_snapshots(deltas, ref_snapshots)
