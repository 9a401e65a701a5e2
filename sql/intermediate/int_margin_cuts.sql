-- grain: one row per RiskUpdateAccepted of a market (chain_id, venue, asset, ordinal)
-- The margin cut each update put in force at a venue that obeys the RiskOracle (registry
-- `obeys_risk_oracle`): the oracle stores the last accepted update's marginCutBps per (venue,
-- asset), freezes carrying the cut along, and the venue lowers the asset's liquidation
-- threshold by it, none below 0: Aave's bps by cut_bps, Comet's and Morpho's 1e18-scaled
-- factors by cut_wad = cut_bps × 10^14. The cut in force before a log is the row with the largest ordinal below it. Venue-
-- wide updates (halts, asset 0) carry no cut and are left out.
select
    u.chain_id,
    v.venue,
    '0x' || lower(hex(u.asset)) as asset,
    u.block_number::hugeint * 1000000 + u.log_index as ordinal,
    u.block_number,
    u.log_index,
    u.action,
    u.margin_cut_bps::integer as cut_bps,
    u.margin_cut_bps::decimal(38, 0) * 100000000000000 as cut_wad
from src_risk_oracle__risk_update_accepted as u
join ref_venues as v
    on v.chain_id = u.chain_id and v.main_contract = '0x' || lower(hex(u.venue))
    and v.risk_oracle = '0x' || lower(hex(u.contract_address))
where '0x' || lower(hex(u.asset)) <> '0x' || repeat('0', 40)
