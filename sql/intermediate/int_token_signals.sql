-- grain: one row per snapshot × asset with its own oracle price (chain_id, snapshot_block, token)
-- What the market says about each asset at a snapshot, for the early-warning state vectors:
-- the AMM's price against the oracle's, the order flow through the AMM in the window, realised
-- and implied volatility and the skew. A window is the span since the previous snapshot.
-- Definitions and units: docs/schema.md (int_token_signals).
with assets as (
    select p.chain_id, p.snapshot_block, p.token, t.symbol, t.underlying, p.price_usd,
           b.snapshot_time
    from int_oracle_prices as p
    join int_tokens as t on t.chain_id = p.chain_id and t.token = p.token
    left join stg_snapshot_times as b
        on b.chain_id = p.chain_id and b.snapshot_block = p.snapshot_block
    where p.priced_as = p.token and t.token_kind <> 'unit' and p.price_usd > 0
),
pair_sides as (
    select r.snapshot_block, r.chain_id, r.pair, s.token, s.other,
           s.units, s.other_units, o.price_usd as other_price
    from int_amm_reserves as r
    join int_tokens as t0 on t0.chain_id = r.chain_id and t0.token = r.token0
    join int_tokens as t1 on t1.chain_id = r.chain_id and t1.token = r.token1
    cross join lateral (
        select r.token0 as token, r.token1 as other,
               r.reserve0::double / power(10, t0.decimals) as units,
               r.reserve1::double / power(10, t1.decimals) as other_units
        union all
        select r.token1, r.token0, r.reserve1::double / power(10, t1.decimals),
               r.reserve0::double / power(10, t0.decimals)
    ) as s
    join int_token_prices as o
        on o.chain_id = r.chain_id and o.snapshot_block = r.snapshot_block and o.token = s.other
    -- a pair with one side empty (drained, or a donation synced) prices nothing: its price
    -- would be 0 or infinite, and its drift ln(0)
    where s.units > 0 and s.other_units > 0 and o.price_usd > 0
),
deepest as (
    select *, other_units * other_price / units as amm_price_usd
    from pair_sides
    qualify row_number() over (partition by chain_id, snapshot_block, token
                               order by other_units * other_price desc, pair) = 1
),
swaps as (
    select w.chain_id, w.snapshot_block, s.token, s.amount
    from stg_amm_swaps as x
    join int_windows as w
        on w.chain_id = x.chain_id and x.block_number > w.window_start
        and x.block_number <= w.snapshot_block
    cross join lateral (select x.token0 as token, x.amount0 as amount
                        union all select x.token1, x.amount1) as s
),
flow as (
    select chain_id, snapshot_block, token,
           coalesce(sum(amount) filter (where amount > 0), 0) as sold_units,
           coalesce(-sum(amount) filter (where amount < 0), 0) as bought_units
    from swaps
    group by all
),
returns as (
    select *,
           ln(price_usd / lag(price_usd) over per_token) as log_return,
           date_diff('second', lag(snapshot_time) over per_token, snapshot_time) as seconds
    from assets
    window per_token as (partition by chain_id, token order by snapshot_block)
),
realised as (
    select *,
           sum(log_return * log_return) over recent as squared_returns,
           sum(seconds) over recent as trailing_seconds,
           count(log_return) over recent as trailing_windows
    from returns
    window recent as (partition by chain_id, token order by snapshot_block
                        rows between 19 preceding and current row)
),
signals as (
    select
        a.snapshot_block,
        a.chain_id,
        a.token,
        a.symbol,
        a.price_usd as oracle_price_usd,
        d.amm_price_usd,
        ln(d.amm_price_usd / a.price_usd) as oracle_drift,
        d.units as amm_depth_units,
        coalesce(f.sold_units, 0) * a.price_usd as amm_sold_usd,
        coalesce(f.bought_units, 0) * a.price_usd as amm_bought_usd,
        case when a.trailing_windows >= 5 and a.trailing_seconds > 0
             then sqrt(a.squared_returns / a.trailing_seconds * 31557600) end as realised_vol,
        v.implied_vol,
        v.risk_reversal
    from realised as a
    left join deepest as d
        on d.chain_id = a.chain_id and d.snapshot_block = a.snapshot_block
        and d.token = a.token
    left join flow as f
        on f.chain_id = a.chain_id and f.snapshot_block = a.snapshot_block
        and f.token = a.token
    left join int_implied_vols as v
        on v.chain_id = a.chain_id and v.snapshot_block = a.snapshot_block
        and v.token = a.token
)
select
    *,
    case when amm_sold_usd + amm_bought_usd > 0
         then (amm_sold_usd - amm_bought_usd) / (amm_sold_usd + amm_bought_usd)
         else 0 end as order_flow_imbalance,
    implied_vol - lag(implied_vol) over per_token as implied_vol_change,
    risk_reversal - lag(risk_reversal) over per_token as risk_reversal_change,
    coalesce(realised_vol, implied_vol) as volatility
from signals
window per_token as (partition by chain_id, token order by snapshot_block)
