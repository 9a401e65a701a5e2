-- grain: one row per snapshot × LP share token of a registry AMM pair with reserves and supply
-- An LP share is worth its part of the pair's reserves: (reserve0 × price0 + reserve1 × price1)
-- / shares outstanding, with the reserves of the latest Sync at or before the snapshot, the
-- oracle prices of both tokens as of the snapshot and the shares from the holdings
-- (int_amm_reserves). The age is the older of the two prices. The exact inputs (tokens,
-- reserves, shares) come along for what must be valued without floats.
with reserves as (
    select * from int_amm_reserves
),
supply as (
    select snapshot_block, chain_id, token as pair, sum(amount_raw) as shares
    from int_balances
    where side = 'holding'
    group by all
)
select
    r.chain_id,
    r.snapshot_block,
    r.pair as token,
    r.pair as priced_as,
    (r.reserve0::double / power(10, t0.decimals) * p0.price_usd
     + r.reserve1::double / power(10, t1.decimals) * p1.price_usd)
        / (s.shares::double / power(10, lp.decimals)) as price_usd,
    least(p0.price_block, p1.price_block) as price_block,
    greatest(p0.price_age_blocks, p1.price_age_blocks) as price_age_blocks,
    greatest(p0.price_age_seconds, p1.price_age_seconds) as price_age_seconds,
    'reserves' as feed_id,
    r.token0,
    r.token1,
    r.reserve0,
    r.reserve1,
    s.shares as shares_raw
from reserves as r
join supply as s
    on s.chain_id = r.chain_id and s.snapshot_block = r.snapshot_block and s.pair = r.pair
join int_tokens as t0 on t0.chain_id = r.chain_id and t0.token = r.token0
join int_tokens as t1 on t1.chain_id = r.chain_id and t1.token = r.token1
join int_tokens as lp on lp.chain_id = r.chain_id and lp.token = r.pair
join int_oracle_prices as p0
    on p0.chain_id = r.chain_id and p0.snapshot_block = r.snapshot_block and p0.token = r.token0
join int_oracle_prices as p1
    on p1.chain_id = r.chain_id and p1.snapshot_block = r.snapshot_block and p1.token = r.token1
where s.shares > 0
