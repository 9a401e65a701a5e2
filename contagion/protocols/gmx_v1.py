"""GMX v1 perpetuals (the Vault's position events) and the devnet's perps vault.

Declarations are the deployed Vault's (Arbitrum 0x489ee077994B6658eAfA855C308275EAd8097C4A):
no indexed parameters, and UpdatePosition WITHOUT the trailing `markPrice` that later source
revisions of gmx-contracts added (that variant's topic0, 0x20853733…, is not what the deployed
Vault emits). USD amounts and prices carry 30 decimals; the position key is
keccak256(abi.encodePacked(account, collateralToken, indexToken, isLong)).
"""

from contagion.protocols.spec import event

PROTOCOL = "gmx_v1"

INCREASE_POSITION = event(
    PROTOCOL,
    "IncreasePosition(bytes32 key, address account, address collateralToken, address indexToken, "
    "uint256 collateralDelta, uint256 sizeDelta, bool isLong, uint256 price, uint256 fee)",
    "0x2fe68525253654c21998f35787a8d0f361905ef647c854092430ab65f2f15022",
)
DECREASE_POSITION = event(
    PROTOCOL,
    "DecreasePosition(bytes32 key, address account, address collateralToken, address indexToken, "
    "uint256 collateralDelta, uint256 sizeDelta, bool isLong, uint256 price, uint256 fee)",
    "0x93d75d64d1f84fc6f430a64fc578bdd4c1e090e90ea2d51773e626d19de56d30",
)
LIQUIDATE_POSITION = event(
    PROTOCOL,
    "LiquidatePosition(bytes32 key, address account, address collateralToken, address indexToken, "
    "bool isLong, uint256 size, uint256 collateral, uint256 reserveAmount, int256 realisedPnl, "
    "uint256 markPrice)",
    "0x2e1f85a64a2f22cf2f0c42584e7c919ed4abe8d53675cff0f62bf1e95a1c676f",
)
UPDATE_POSITION = event(
    PROTOCOL,
    "UpdatePosition(bytes32 key, uint256 size, uint256 collateral, uint256 averagePrice, "
    "uint256 entryFundingRate, uint256 reserveAmount, int256 realisedPnl)",
    "0x25e8a331a7394a9f09862048843323b00bdbada258f524f5ce624a45bf00aabb",
)
CLOSE_POSITION = event(
    PROTOCOL,
    "ClosePosition(bytes32 key, uint256 size, uint256 collateral, uint256 averagePrice, "
    "uint256 entryFundingRate, uint256 reserveAmount, int256 realisedPnl)",
    "0x73af1d417d82c240fdb6d319b34ad884487c6bf2845d98980cc52ad9171cb455",
)

# Devnet-only: GMX leaves bad debt implicit (the pool silently absorbs it).
BAD_DEBT = event(
    PROTOCOL,
    "BadDebt(bytes32 key, address account, address collateralToken, uint256 amountUsd)",
    "0x6ce6649cba7d6b40ab14e94a265681110ba823079f09819a9f0e9e07aafc7a35",
    real=False,
    note="devnet perps vault: a liquidated position's losses beyond its margin, in USD (1e30)",
)
LIQUIDITY_DEPOSITED = event(
    PROTOCOL,
    "LiquidityDeposited(address indexed provider, uint256 amount)",
    "0x7ff07ce9a287649537e4b012e45cf012d90228b12e2b56bb03515a6b5436fcdf",
    real=False,
    note="devnet perps vault: USDC added to the counterparty pool (GMX mints GLP instead)",
)
LIQUIDITY_WITHDRAWN = event(
    PROTOCOL,
    "LiquidityWithdrawn(address indexed provider, uint256 amount)",
    "0xb1cce8684b4ffa8667b4577654e61ee3480d661ee9c27522ac80e211f6bd4d25",
    real=False,
    note="devnet perps vault: USDC taken out of the counterparty pool (GMX burns GLP instead)",
)

EVENTS = (
    INCREASE_POSITION,
    DECREASE_POSITION,
    LIQUIDATE_POSITION,
    UPDATE_POSITION,
    CLOSE_POSITION,
    BAD_DEBT,
    LIQUIDITY_DEPOSITED,
    LIQUIDITY_WITHDRAWN,
)
