"""ERC-20 tokens (also aTokens, LP tokens, the LST) and ERC-4626 vault shares."""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import (
    ZERO_ADDRESS,
    Context,
    Tables,
    concat_flows,
    flow_frame,
)
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

EVENTS = (TRANSFER, APPROVAL, ERC4626_DEPOSIT, ERC4626_WITHDRAW, ERC721_TRANSFER, ERC721_APPROVAL,
          WETH_DEPOSIT, WETH_WITHDRAWAL)


# ---------------------------------------------------------------- canonical flows

# Venue-issued claims whose wallet balance is a position (aTokens are Aave's collateral instead;
# debt tokens cannot be transferred).
CLAIM_KINDS = ("lst", "vault_share", "lp_share", "otoken")


def flows(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Transfers of venue-issued claim tokens as `holding` flows (docs/canonical.md, "Claims").

    token = market = the claim; venue = its issuer; protocol = the issuer's protocol ("erc20"
    when the registry does not say). A transfer between two accounts is `transfer_out` (flow 0)
    and `transfer_in` (flow 1); a mint (from 0x0) is `mint` on the receiver, a burn (to 0x0)
    `burn` on the sender: for these tokens both change what an account holds."""
    claims = ctx.tokens_of_kind(*CLAIM_KINDS).join(
        ctx.contracts.select("chain_id", pl.col("venue").alias("issued_by"), "venue_protocol"
                             ).unique(["chain_id", "issued_by"]),
        on=["chain_id", "issued_by"], how="left").select(
        "chain_id", pl.col("token").alias("contract_address"), pl.col("issued_by").alias("venue"),
        pl.col("venue_protocol").fill_null(PROTOCOL).alias("holder_protocol"))
    moves = tables["erc20__transfer"].join(claims, on=["chain_id", "contract_address"])
    minted, burned = pl.col("from") == ZERO_ADDRESS, pl.col("to") == ZERO_ADDRESS
    between = moves.filter(~minted & ~burned)

    def holding(frame: pl.DataFrame, action: str, account: str, index: int = 0) -> pl.DataFrame:
        return flow_frame(frame, source="erc20__transfer", protocol=pl.col("holder_protocol"),
                          action=action, side="holding", account=pl.col(account),
                          token=pl.col("contract_address"), market=pl.col("contract_address"),
                          amount=pl.col("value"), venue=pl.col("venue"), flow_index=index)

    return concat_flows([
        holding(moves.filter(minted), "mint", "to"),
        holding(moves.filter(burned & ~minted), "burn", "from"),
        holding(between, "transfer_out", "from"),
        holding(between, "transfer_in", "to", 1),
    ])
