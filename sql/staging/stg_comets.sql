-- grain: one row per registry Compound v3 Comet (chain_id, contract)
-- Each Comet (the `comet` contract of a Compound v3 venue, the ones contagion.states reads;
-- not its configurator, rewards or the tokens it issues) with its venue and base token: the
-- loan token of the venue's markets, null unless they name exactly one (as the flows'
-- compound_v3.base_tokens decides it).
select
    c.chain_id,
    c.contract,
    c.venue,
    case when count(distinct m.loan_token) = 1 then any_value(m.loan_token) end as base_token
from ref_venue_contracts as c
join ref_venues as v on v.chain_id = c.chain_id and v.venue = c.venue
left join ref_markets as m on m.chain_id = c.chain_id and m.venue = c.venue
where v.protocol = 'compound_v3' and c.role = 'comet'
group by c.chain_id, c.contract, c.venue
