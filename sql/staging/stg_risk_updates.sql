-- grain: one row per RiskUpdateAccepted at a venue that obeys the RiskOracle (chain_id, block_number, log_index)
-- Each update the RiskOracle accepted for a venue whose registry entry names it as the oracle
-- the venue obeys (`obeys_risk_oracle`; `setRiskOracle` leaves no log, so the registry says
-- it). action: 0 normal, 1 raise_margin, 2 freeze_market, 3 halt (asset 0: the whole venue);
-- cut_bps: the margin cut the market holds from then on.
select
    u.chain_id,
    u.block_number,
    u.log_index,
    log_ordinal(u.block_number, u.log_index) as ordinal,
    v.venue,
    '0x' || lower(hex(u.asset)) as asset,
    u.action,
    u.margin_cut_bps::integer as cut_bps
from src_risk_oracle__risk_update_accepted as u
join ref_venues as v
    on v.chain_id = u.chain_id and v.main_contract = '0x' || lower(hex(u.venue))
    and v.risk_oracle = '0x' || lower(hex(u.contract_address))
