-- grain: one row per ERC-20 Transfer log (chain_id, block_number, log_index)
-- Addresses as lowercase 0x text; the value exact (null when it exceeds decimal(38,0)).
select
    chain_id,
    block_number,
    log_index,
    '0x' || lower(hex(contract_address)) as token,
    '0x' || lower(hex("from")) as from_address,
    '0x' || lower(hex("to")) as to_address,
    try_cast(value as decimal(38, 0)) as value_raw,
    value as value_text
from src_erc20__transfer
