-- asset: fct_liquidation_audit
-- severity: error
-- description: every liquidation the chain recorded was allowed by its venue's own rule, replayed on the state and oracle answers just before it (fct_liquidation_audit.valid is not false). A row is a liquidation the rule forbids, with the reason. Undecided ones (valid null: a risk parameter or a price missing) do not fail it, since they are no evidence of wrong data and a registry without risk parameters (the bundled mainnet ones) would block every build; liquidations_decidable lists them.
select block_number, transaction_hash, log_index, venue, borrower, health_measure, health_raw,
       threshold_raw, reason
from fct_liquidation_audit
where valid = false
order by block_number, log_index
