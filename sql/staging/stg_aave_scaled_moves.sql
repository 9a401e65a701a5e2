-- grain: one row per change of an Aave v3 scaled balance (chain_id, block_number, log_index, step)
-- materialized: table
-- Every change an aToken or variable debt token makes to a holder's scaled balance, from the
-- token's own events (Aave v3.0–v3.4 ScaledBalanceTokenBase and AToken; the devnet's copies):
-- - Mint(value, balanceIncrease, index): value = amount + balanceIncrease, so a mint adds
--   rayDiv(value − balanceIncrease, index). A burn smaller than the interest it realises logs
--   a Mint with value = balanceIncrease − amount (value < balanceIncrease): it takes
--   rayDiv(balanceIncrease − value, index). A Mint with value = balanceIncrease is the interest
--   a transfer realises: nothing moves.
-- - Burn(value, balanceIncrease, index): value = amount − balanceIncrease; it takes
--   rayDiv(value + balanceIncrease, index).
-- - BalanceTransfer(from, to, value, index): value is already scaled; step 0 takes it from
--   `from`, step 1 gives it to `to`.
-- rayDiv rounds half up, as the token does: the running sum is the token's scaledBalanceOf.
-- (Aave v3.5 rounds the scaled amount up or down by side and logs balance differences instead;
-- on its logs a step may be off by one scaled unit.) The token says venue, reserve and side
-- (stg_aave_tokens); a token the registry does not list moves nothing here. A value of 10^37 or more leaves scaled_delta
-- null (and the position's amount with it: no_negative_balances names it). A table, not a
-- view: rayDiv is contagion.exact's, which only the build's connection has.
with logged as (  -- values below 10^37 (any real balance), so that a sum of two fits hugeint
    select chain_id, block_number, log_index, transaction_hash, contract_address,
           on_behalf_of as account, 'mint' as kind,
           try_cast(value as decimal(37, 0))::hugeint as value,
           try_cast(balance_increase as decimal(37, 0))::hugeint as balance_increase, index
    from src_aave_v3__mint
    union all
    select chain_id, block_number, log_index, transaction_hash, contract_address, "from",
           'burn',
           try_cast(value as decimal(37, 0))::hugeint,
           try_cast(balance_increase as decimal(37, 0))::hugeint, index
    from src_aave_v3__burn
),
moves as (
    select chain_id, block_number, log_index, transaction_hash, 0 as step, contract_address,
           account,
           case when kind = 'burn'
                then -mul_div_half_up(value + balance_increase, '1' || repeat('0', 27), index)
                when value >= balance_increase
                then mul_div_half_up(value - balance_increase, '1' || repeat('0', 27), index)
                else -mul_div_half_up(balance_increase - value, '1' || repeat('0', 27), index)
           end as scaled_delta,
           index
    from logged
    union all
    select chain_id, block_number, log_index, transaction_hash, 0, contract_address, "from",
           -try_cast(value as decimal(38, 0)), index
    from src_aave_v3__balance_transfer
    union all
    select chain_id, block_number, log_index, transaction_hash, 1, contract_address, "to",
           try_cast(value as decimal(38, 0)), index
    from src_aave_v3__balance_transfer
)
select
    m.chain_id,
    m.block_number,
    m.log_index,
    m.step,
    '0x' || lower(hex(m.transaction_hash)) as transaction_hash,
    log_ordinal(m.block_number, m.log_index) as ordinal,
    t.venue,
    t.reserve,
    t.side,
    '0x' || lower(hex(m.contract_address)) as token_contract,
    '0x' || lower(hex(m.account)) as account,
    m.scaled_delta::decimal(38, 0) as scaled_delta,
    try_cast(m.index as decimal(38, 0)) as index
from moves as m
join stg_aave_tokens as t
    on t.chain_id = m.chain_id and t.token = '0x' || lower(hex(m.contract_address))
