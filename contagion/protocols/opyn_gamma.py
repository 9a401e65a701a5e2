"""Opyn Gamma (OtokenFactory + Controller v2, naked margin) and the devnet options venue.

Declarations are copied from opynfinance/GammaProtocol `contracts/core/OtokenFactory.sol` and
`contracts/core/Controller.sol` (v2, the implementation behind the mainnet Controller proxy).
Controller v1 declared `VaultOpened(address,uint256)` and `VaultSettled` with five fields; logs
from before the v2 upgrade carry those older topics and are not covered here.
"""

from contagion.protocols.spec import event

PROTOCOL = "opyn_gamma"

OTOKEN_CREATED = event(
    PROTOCOL,
    "OtokenCreated(address tokenAddress, address creator, address indexed underlying, "
    "address indexed strike, address indexed collateral, uint256 strikePrice, uint256 expiry, "
    "bool isPut)",
    "0xedf283b0b3396dd34e23a917cb887ad557f18a593be3a2e9c069fd59f19a811a",
)
VAULT_OPENED = event(
    PROTOCOL,
    "VaultOpened(address indexed accountOwner, uint256 vaultId, uint256 indexed vaultType)",
    "0x5d66689e2c864b4f21efd3988c0ce5dc8a197981b68e81ce73660e92394fe25f",
)
COLLATERAL_ASSET_DEPOSITED = event(
    PROTOCOL,
    "CollateralAssetDeposited(address indexed asset, address indexed accountOwner, "
    "address indexed from, uint256 vaultId, uint256 amount)",
    "0xbfab88b861f171b7db714f00e5966131253918d55ddba816c3eb94657d102390",
)
COLLATERAL_ASSET_WITHDRAWED = event(  # sic: Opyn's spelling
    PROTOCOL,
    "CollateralAssetWithdrawed(address indexed asset, address indexed AccountOwner, "
    "address indexed to, uint256 vaultId, uint256 amount)",
    "0xfe86f7694b6c54a528acbe27be61dd4a85e9a89aeef7f650a1b439045ccee5a4",
)
SHORT_OTOKEN_MINTED = event(
    PROTOCOL,
    "ShortOtokenMinted(address indexed otoken, address indexed AccountOwner, "
    "address indexed to, uint256 vaultId, uint256 amount)",
    "0x4d7f96086c92b2f9a254ad21548b1c1f2d99502c7949508866349b96bb1a8d8a",
)
SHORT_OTOKEN_BURNED = event(
    PROTOCOL,
    "ShortOtokenBurned(address indexed otoken, address indexed AccountOwner, "
    "address indexed from, uint256 vaultId, uint256 amount)",
    "0xdd96b18f26fd9950581b9fd821fa907fc318845fc4d220b825a7b19bfdd174e8",
)
REDEEM = event(
    PROTOCOL,
    "Redeem(address indexed otoken, address indexed redeemer, address indexed receiver, "
    "address collateralAsset, uint256 otokenBurned, uint256 payout)",
    "0x18fd144d7dbcbaa6f00fd47a84adc7dc3cc64a326ffa2dc7691a25e3837dba03",
)
VAULT_SETTLED = event(
    PROTOCOL,
    "VaultSettled(address indexed accountOwner, address indexed oTokenAddress, address to, "
    "uint256 payout, uint256 vaultId, uint256 indexed vaultType)",
    "0x522cda7dd0677ee4c9512efd8aa92af93de64b4c2fe2f8bfe7a9234a655a9bf5",
)
VAULT_LIQUIDATED = event(
    PROTOCOL,
    "VaultLiquidated(address indexed liquidator, address indexed receiver, "
    "address indexed vaultOwner, uint256 auctionPrice, uint256 auctionStartingRound, "
    "uint256 collateralPayout, uint256 debtAmount, uint256 vaultId)",
    "0x93e59ec97820bb1ed9fb6ddc10619d1574e803b1f79b937414feb8f6b7051f9d",
)

OPTION_TRADED = event(
    PROTOCOL,
    "OptionTraded(address indexed otoken, address indexed buyer, address indexed seller, "
    "uint256 vaultId, bool isPut, uint256 strikePrice, uint256 expiry, uint256 amount, "
    "uint256 premium, uint256 impliedVol)",
    "0x2cc67d3bfa12ab6187e2057eeab06f0ee2a71586f3b389a672507b7ba209afdc",
    real=False,
    note="Devnet-only trade record (Opyn trades off-protocol, e.g. on 0x): every trade records "
    "strike, expiry, size, premium and the implied vol used.",
)
VAULT_BAD_DEBT = event(
    PROTOCOL,
    "VaultBadDebt(address indexed vaultOwner, uint256 vaultId, uint256 shortfallUsd)",
    "0x91cfc7c5802c78a358da16638d055f93072b0eec0d22ab7836bdb7b404a95beb",
    real=False,
    note="Devnet-only: a vault's collateral ran out while shorts remained (liquidation) or did "
    "not cover what its shorts owed at expiry; shortfall in USD, 8 decimals.",
)

EVENTS = (
    OTOKEN_CREATED,
    VAULT_OPENED,
    COLLATERAL_ASSET_DEPOSITED,
    COLLATERAL_ASSET_WITHDRAWED,
    SHORT_OTOKEN_MINTED,
    SHORT_OTOKEN_BURNED,
    REDEEM,
    VAULT_SETTLED,
    VAULT_LIQUIDATED,
    OPTION_TRADED,
    VAULT_BAD_DEBT,
)
