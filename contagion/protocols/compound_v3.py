"""Compound III (Comet) markets: one borrowable base token, collateral that only backs borrows.

Declarations are CometMainInterface's. Comet's `Transfer` is the ERC-20 event (same topic0):
it tracks the base-supply claim, so a decoder tells it from a token transfer by the emitter.
"""

from contagion.protocols.spec import event

PROTOCOL = "compound_v3"

SUPPLY = event(
    PROTOCOL,
    "Supply(address indexed from, address indexed dst, uint amount)",
    "0xd1cf3d156d5f8f0d50f6c122ed609cec09d35c9b9fb3fff6ea0959134dae424e",
)
TRANSFER = event(
    PROTOCOL,
    "Transfer(address indexed from, address indexed to, uint amount)",
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
)
WITHDRAW = event(
    PROTOCOL,
    "Withdraw(address indexed src, address indexed to, uint amount)",
    "0x9b1bfa7fa9ee420a16e124f794c35ac9f90472acc99140eb2f6447c714cad8eb",
)
SUPPLY_COLLATERAL = event(
    PROTOCOL,
    "SupplyCollateral(address indexed from, address indexed dst, address indexed asset, "
    "uint amount)",
    "0xfa56f7b24f17183d81894d3ac2ee654e3c26388d17a28dbd9549b8114304e1f4",
)
TRANSFER_COLLATERAL = event(
    PROTOCOL,
    "TransferCollateral(address indexed from, address indexed to, address indexed asset, "
    "uint amount)",
    "0x29db89d45e1a802b4d55e202984fce9faf1d30aedf86503ff1ea0ed9ebb64201",
)
WITHDRAW_COLLATERAL = event(
    PROTOCOL,
    "WithdrawCollateral(address indexed src, address indexed to, address indexed asset, "
    "uint amount)",
    "0xd6d480d5b3068db003533b170d67561494d72e3bf9fa40a266471351ebba9e16",
)
# basePaidOut is the rise of the borrower's base balance (debt wiped + excess credited), which
# is also what the protocol's reserves fall by; usdValue prices it with the base feed (8 dp).
ABSORB_DEBT = event(
    PROTOCOL,
    "AbsorbDebt(address indexed absorber, address indexed borrower, uint basePaidOut, "
    "uint usdValue)",
    "0x1547a878dc89ad3c367b6338b4be6a65a5dd74fb77ae044da1e8747ef1f4f62f",
)
ABSORB_COLLATERAL = event(
    PROTOCOL,
    "AbsorbCollateral(address indexed absorber, address indexed borrower, address indexed asset, "
    "uint collateralAbsorbed, uint usdValue)",
    "0x9850ab1af75177e4a9201c65a2cf7976d5d28e40ef63494b44366f86b2f9412e",
)
BUY_COLLATERAL = event(
    PROTOCOL,
    "BuyCollateral(address indexed buyer, address indexed asset, uint baseAmount, "
    "uint collateralAmount)",
    "0xf891b2a411b0e66a5f0a6ff1368670fefa287a13f541eb633a386a1a9cc7046b",
)
WITHDRAW_RESERVES = event(
    PROTOCOL,
    "WithdrawReserves(address indexed to, uint amount)",
    "0xec4431f2ba1a9382f6b0c4352b888cba6f7db91667d9f776abe5ad8ddc5401b6",
)

EVENTS = (
    SUPPLY,
    TRANSFER,
    WITHDRAW,
    SUPPLY_COLLATERAL,
    TRANSFER_COLLATERAL,
    WITHDRAW_COLLATERAL,
    ABSORB_DEBT,
    ABSORB_COLLATERAL,
    BUY_COLLATERAL,
    WITHDRAW_RESERVES,
)
