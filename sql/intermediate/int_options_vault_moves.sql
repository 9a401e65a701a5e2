-- grain: one row per change of an options vault (chain_id, block_number, log_index, side)
-- The moves of stg_options_vault_moves with every token named: a liquidation's seized
-- collateral is in the vault's asset (its deposits name it); its repaid series is the oToken the
-- flows resolved (the liquidator's burn in the same transaction). A settlement keeps its row
-- (kind settle, no token): after it the vault holds nothing.
with vault_assets as (
    select chain_id, venue, owner, vault_id, any_value(token) as asset
    from stg_options_vault_moves
    where kind = 'deposit'
    group by all
)
select
    m.chain_id, m.venue, m.owner, m.vault_id, m.side, m.kind, m.block_number, m.log_index,
    m.ordinal, m.delta,
    case m.kind when 'seize' then va.asset when 'repay' then f.token else m.token end as token
from stg_options_vault_moves as m
left join vault_assets as va using (chain_id, venue, owner, vault_id)
left join stg_flows as f
    on m.kind = 'repay' and f.chain_id = m.chain_id and f.block_number = m.block_number
    and f.log_index = m.log_index and f.source = 'opyn_gamma__vault_liquidated'
    and f.action = 'liquidation_repay'
