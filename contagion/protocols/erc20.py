"""ERC-20 tokens (also aTokens, LP tokens, the LST) and ERC-4626 vault shares."""

from contagion.protocols.spec import event

PROTOCOL = "erc20"

TRANSFER = event(PROTOCOL, "Transfer(address indexed from, address indexed to, uint256 value)",
                 "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
APPROVAL = event(PROTOCOL,
                 "Approval(address indexed owner, address indexed spender, uint256 value)",
                 "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925")
ERC4626_DEPOSIT = event(
    "erc4626",
    "Deposit(address indexed sender, address indexed owner, uint256 assets, uint256 shares)",
    "0xdcbc1c05240f31ff3ad067ef1ee35ce4997762752e3a095284754544f4c709d7")
ERC4626_WITHDRAW = event(
    "erc4626",
    "Withdraw(address indexed sender, address indexed receiver, address indexed owner, "
    "uint256 assets, uint256 shares)",
    "0xfbde797d201c681b91056529119e0b02407c7bb96a4a2c75c01fc9667232c8db")
# Lido's stETH submission; the devnet LST emits it when staking.
LST_SUBMITTED = event("lido", "Submitted(address indexed sender, uint256 amount, address referral)",
                      "0x96a25c8ce0baabc1fdefd93e9ed25d8e092a3332f3aa9a41722b5697231d1d1a")

LST_RATE_UPDATED = event("lido", "RedemptionRateUpdated(uint256 rate)",
                         "0xcb505eb4841d5e2273dccaff5e53d23e263e5ca97c72458c2b68a9ca652b70dd",
                         real=False,
                         note="devnet LST: stETH per ETH redeemable, 1e18 (Lido rebases instead)")
# ERC-721 shares ERC-20's Transfer topic0 but indexes the token id: four topics, no data.
ERC721_TRANSFER = event(
    "erc721", "Transfer(address indexed from, address indexed to, uint256 indexed tokenId)",
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
ERC721_APPROVAL = event(
    "erc721", "Approval(address indexed owner, address indexed approved, uint256 indexed tokenId)",
    "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925")
# Wrapped ether (WETH9 and its L2 copies).
WETH_DEPOSIT = event("weth", "Deposit(address indexed dst, uint256 wad)",
                     "0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c")
WETH_WITHDRAWAL = event("weth", "Withdrawal(address indexed src, uint256 wad)",
                        "0x7fcf532c15f0a6db0bd6d0e038bea71d30d808c7d98cb3bf7268a95bf5081b65")

EVENTS = (TRANSFER, APPROVAL, ERC4626_DEPOSIT, ERC4626_WITHDRAW, LST_SUBMITTED, LST_RATE_UPDATED,
          ERC721_TRANSFER, ERC721_APPROVAL, WETH_DEPOSIT, WETH_WITHDRAWAL)
