-- grain: one row per Comet, read block and account (chain_id, contract, account, block_number)
-- An account's signed base principal at the end of the block (the lake's
-- compound_v3__principals: userBasic(account).principal, read with eth_call at every block in
-- which a base event of the Comet names it): supply above 0, debt below; null with
-- unread_reason when the read failed. Its latest read at or before a block is its principal
-- then, unless it changed without a base event naming the account: a transferAsset of base
-- logs no Transfer for a sender that only borrows or a receiver that only repays
-- (docs/canonical.md).
select
    p.chain_id,
    p.block_number,
    p.block_time,
    c.venue,
    c.contract,
    c.base_token,
    lower(p.account) as account,
    p.principal,
    p.unread_reason
from src_compound_v3__principals as p
join stg_comets as c on c.chain_id = p.chain_id and c.contract = lower(p.contract_address)
