-- asset: fct_liquidation_audit
-- severity: warn
-- description: the audit could decide every liquidation (fct_liquidation_audit.valid is not null). A row is one it could not, with the reason: a risk parameter missing from the registry, no oracle answer before it, interest the flows do not carry, …
select block_number, transaction_hash, log_index, venue, borrower, reason
from fct_liquidation_audit
where valid is null
order by block_number, log_index
