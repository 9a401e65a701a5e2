"""A GMX-v1-style perpetuals vault on the devnet: leveraged longs/shorts on index tokens, margined
in USDC or in any USD token priced by a feed (an Aave aUSDC priced by the USDC feed is the wire
that makes perps margin depend on a lending market), with a USDC pool as counterparty.

USD amounts and prices carry 30 decimals, as in GMX; margin and liquidity amounts are raw token
units. Positions are named by (margin name, index symbol, is_long) and keyed like GMX.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_utils.address import to_checksum_address
from eth_utils.conversions import to_bytes
from eth_utils.crypto import keccak

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver

__all__ = [
    "PRICE_PRECISION",
    "GmxV1Venue",
    "MarginTokenConfig",
    "deploy_gmx_v1",
    "position_key",
    "usd",
]

PRICE_PRECISION = 10**30  # GMX's USD fixed point
MAX_UINT = 2**256 - 1

# margin name -> (token address, price feed address, token decimals)
MarginTokenConfig = tuple[str, str, int]


def usd(dollars: int) -> int:
    """Whole dollars in GMX's 30-decimal USD."""
    return dollars * PRICE_PRECISION


def position_key(account: str, collateral_token: str, index_token: str, is_long: bool) -> str:
    """GMX's getPositionKey, computed off chain so events can be joined before any call."""
    packed = (
        to_bytes(hexstr=account)
        + to_bytes(hexstr=collateral_token)
        + to_bytes(hexstr=index_token)
        + (b"\x01" if is_long else b"\x00")
    )
    return "0x" + keccak(packed).hex()


@dataclass
class GmxV1Venue:
    vault: Contract
    pool_token: str  # USDC: LP deposits and profit payouts
    margin_tokens: dict[str, str] = field(default_factory=dict)  # margin name -> address
    index_tokens: dict[str, str] = field(default_factory=dict)  # symbol -> address

    # -- actions (queued; the caller mines) ---------------------------------------------------
    def approve(self, account: str, token: str) -> int:
        """Margin and liquidity are pulled with transferFrom, so each account approves once."""
        erc20 = self.vault.driver.at("ERC20", token)
        return erc20.tx(account, "approve", self.vault.address, MAX_UINT)

    def deposit_liquidity(self, provider: str, amount: int) -> int:
        return self.vault.tx(provider, "deposit_liquidity", amount)

    def withdraw_liquidity(self, provider: str, amount: int) -> int:
        return self.vault.tx(provider, "withdraw_liquidity", amount)

    def increase(
        self,
        account: str,
        margin: str,
        index: str,
        margin_amount: int,
        size_delta_usd: int,
        is_long: bool,
    ) -> int:
        return self.vault.tx(
            account,
            "increase_position",
            self.margin_tokens[margin],
            self.index_tokens[index],
            margin_amount,
            size_delta_usd,
            is_long,
        )

    def decrease(
        self,
        account: str,
        margin: str,
        index: str,
        collateral_delta_usd: int,
        size_delta_usd: int,
        is_long: bool,
        receiver: str | None = None,
    ) -> int:
        """Closing the full size pays back the margin and realises all pnl."""
        return self.vault.tx(
            account,
            "decrease_position",
            self.margin_tokens[margin],
            self.index_tokens[index],
            collateral_delta_usd,
            size_delta_usd,
            is_long,
            receiver or account,
        )

    def liquidate(
        self,
        keeper: str,
        account: str,
        margin: str,
        index: str,
        is_long: bool,
        fee_receiver: str | None = None,
    ) -> int:
        return self.vault.tx(
            keeper,
            "liquidate_position",
            account,
            self.margin_tokens[margin],
            self.index_tokens[index],
            is_long,
            fee_receiver or keeper,
        )

    # -- reads ----------------------------------------------------------------------------------
    def key(self, account: str, margin: str, index: str, is_long: bool) -> str:
        return position_key(account, self.margin_tokens[margin], self.index_tokens[index], is_long)

    def position(
        self, account: str, margin: str, index: str, is_long: bool
    ) -> tuple[int, int, int, int, int, int, bool, int]:
        """GMX's getPosition: size, collateral, averagePrice, entryFundingRate, reserveAmount,
        |realisedPnl|, hasRealisedProfit, lastIncreasedTime."""
        out = self.vault.call(
            "getPosition", account, self.margin_tokens[margin], self.index_tokens[index], is_long
        )
        size, collateral, average, funding, reserve, pnl, profit, last = out
        return (
            int(size),
            int(collateral),
            int(average),
            int(funding),
            int(reserve),
            int(pnl),
            bool(profit),
            int(last),
        )

    def margin_held(self, account: str, margin: str, index: str, is_long: bool) -> int:
        """Raw margin tokens the vault holds for the position (what a depeg would reprice)."""
        return int(
            self.vault.call(
                "position_margin_tokens", to_bytes(hexstr=self.key(account, margin, index, is_long))
            )
        )

    def liquidation_state(self, account: str, margin: str, index: str, is_long: bool) -> int:
        """0 healthy, 1 liquidatable now."""
        return int(
            self.vault.call(
                "liquidation_state",
                account,
                self.margin_tokens[margin],
                self.index_tokens[index],
                is_long,
            )
        )

    def bad_debt_usd(self) -> int:
        return int(self.vault.call("bad_debt_usd"))

    def pool_amount(self, token: str | None = None) -> int:
        return int(self.vault.call("poolAmounts", token or self.pool_token))

    def open_interest(self, index: str) -> tuple[int, int]:
        """(long, short) open interest in 30-decimal USD."""
        address = self.index_tokens[index]
        return (
            int(self.vault.call("longOpenInterest", address)),
            int(self.vault.call("shortOpenInterest", address)),
        )


def deploy_gmx_v1(
    driver: DevnetDriver,
    world: BaseWorld,
    margin_tokens: dict[str, MarginTokenConfig],
    index_symbols: list[str],
    *,
    pool_symbol: str = "USDC",
    maintenance_margin_bps: int = 100,
    liquidation_fee_usd: int = 5 * PRICE_PRECISION,
    max_leverage_bps: int = 500_000,
    margin_fee_bps: int = 10,
) -> GmxV1Venue:
    """Queue the vault, its margin and index listings and risk parameters; the caller mines.

    Feeds and index tokens must already be mined: listing reads their decimals."""
    pool = world.tokens[pool_symbol]
    pool_decimals = int(pool.call("decimals"))
    vault = driver.deploy(
        "PerpsVault",
        pool.address,
        world.feeds[pool_symbol].address,
        pool_decimals,
        label="PerpsVault",
    )
    for token, feed, decimals in margin_tokens.values():
        vault.tx(DEPLOYER, "add_margin_token", token, feed, decimals)
    for symbol in index_symbols:
        vault.tx(
            DEPLOYER, "add_index_token", world.tokens[symbol].address, world.feeds[symbol].address
        )
    vault.tx(
        DEPLOYER,
        "set_params",
        maintenance_margin_bps,
        liquidation_fee_usd,
        max_leverage_bps,
        margin_fee_bps,
    )
    return GmxV1Venue(
        vault,
        pool.address,
        {name: to_checksum_address(cfg[0]) for name, cfg in margin_tokens.items()},
        {symbol: world.tokens[symbol].address for symbol in index_symbols},
    )
