-- grain: one row per oToken series created (chain_id, otoken)
select
    o.chain_id,
    o.block_number as created_block,
    '0x' || lower(hex(o.token_address)) as otoken,
    '0x' || lower(hex(o.contract_address)) as controller,
    '0x' || lower(hex(o.underlying)) as underlying,
    '0x' || lower(hex(o.strike)) as strike_asset,
    '0x' || lower(hex(o.collateral)) as collateral_asset,
    o.strike_price::decimal(38, 0) as strike_price_raw,  -- USD, 8 decimals
    o.strike_price::decimal(38, 0) / 1e8 as strike_price_usd,
    to_timestamp(o.expiry::bigint) as expiry,
    o.is_put
from src_opyn_gamma__otoken_created as o
