-- grain: one row per RiskUpdateAccepted of a market (chain_id, venue, asset, ordinal)
-- The margin cut each update put in force at a venue that obeys the RiskOracle
-- (stg_risk_updates): the oracle stores the last accepted update's marginCutBps per (venue,
-- asset), freezes carrying the cut along, and the venue lowers the asset's liquidation
-- threshold by it, none below 0: Aave's bps by cut_bps, Comet's and Morpho's 1e18-scaled
-- factors by cut_wad = cut_bps × 10^14. The cut in force before a log is the row with the
-- largest ordinal below it. Venue-wide updates (halts, asset 0) carry no cut and are left out.
select
    chain_id,
    venue,
    asset,
    ordinal,
    block_number,
    log_index,
    action,
    cut_bps,
    cut_bps::decimal(38, 0) * 100000000000000 as cut_wad
from stg_risk_updates
where asset <> '0x' || repeat('0', 40)
