-- grain: one row per venue (chain_id, venue)
select
    v.chain_id,
    v.venue,
    v.protocol,
    v.venue_kind,
    v.name,
    v.main_contract,
    v.risk_oracle,
    (select count(*) from ref_markets as m where m.chain_id = v.chain_id and m.venue = v.venue)
        as collateral_markets,
    (select list(t.symbol order by t.symbol) from int_tokens as t
     where t.chain_id = v.chain_id and t.issued_by = v.venue) as issues
from ref_venues as v
