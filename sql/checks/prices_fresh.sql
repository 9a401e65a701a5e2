-- asset: fct_positions
-- severity: warn
-- description: every token held in a position at the latest snapshot has a price no older than max_price_age_seconds (a build setting). A row names a token without a price, or with an older one.
select p.token, any_value(p.symbol) as symbol, count(*) as positions,
       max(p.price_age_seconds) as price_age_seconds,
       case when max(p.price_usd) is null then 'no price' else 'stale price' end as problem
from fct_positions as p
where p.snapshot_block = (select max(snapshot_block) from ref_snapshots)
  and (p.price_usd is null or p.price_age_seconds > getvariable('max_price_age_seconds'))
group by p.token
order by positions desc
