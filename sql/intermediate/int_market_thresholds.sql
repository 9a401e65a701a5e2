-- grain: one row per snapshot × lending market × collateral token (chain_id, venue, market, collateral_token)
-- The liquidation threshold in force at each snapshot: the registry's (ref_markets), lowered
-- by the margin cut the RiskOracle had put in force for that collateral at that venue by the
-- end of the snapshot block (int_margin_cuts), none below 0 — Aave's threshold, Comet's
-- liquidate factor and Morpho's LLTV all fall by cut_bps / 10^4, as the venues apply it. The
-- risk marts and the contagion engine read thresholds here, so after a cut they see borrowers
-- as close to liquidation as the venues do.
select
    s.snapshot_block,
    m.chain_id,
    m.venue,
    m.market,
    m.collateral_token,
    m.liquidation_threshold as registry_threshold,
    coalesce(c.cut_bps, 0) as margin_cut_bps,
    case when m.liquidation_threshold is not null
         then greatest(m.liquidation_threshold - coalesce(c.cut_bps, 0) / 10000.0, 0.0)
    end as liquidation_threshold
from ref_snapshots as s
join ref_markets as m on m.chain_id = s.chain_id
asof left join int_margin_cuts as c
    on c.chain_id = m.chain_id and c.venue = m.venue and c.asset = m.collateral_token
    and c.ordinal <= block_end_ordinal(s.snapshot_block)
