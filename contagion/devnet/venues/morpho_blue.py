"""Morpho Blue on the devnet: one singleton, isolated markets keyed "collateral/loan".

Market ids are computed here exactly as Morpho does (keccak256 of the abi-encoded params), so
they are known before anything is mined and match the `id` topic of every event.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak

from contagion.devnet.base import TOKEN_SPECS, BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver

__all__ = [
    "MARKET_PARAMS_TYPE",
    "ZERO_ADDRESS",
    "MarketParams",
    "MorphoBlueVenue",
    "deploy_morpho_blue",
    "liquidation_incentive",
    "market_id",
    "to_assets_up",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MARKET_PARAMS_TYPE = "(address,address,address,address,uint256)"
WAD = 10**18
ORACLE_PRICE_SCALE = 10**36
VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1
MAX_UINT = 2**256 - 1
LIQUIDATE_GAS = 2_000_000

# (loanToken, collateralToken, oracle, irm, lltv), Morpho's MarketParams struct.
MarketParams = tuple[str, str, str, str, int]


def market_id(params: MarketParams) -> bytes:
    return keccak(encode([MARKET_PARAMS_TYPE], [params]))


def liquidation_incentive(lltv: int) -> float:
    """Morpho's liquidation incentive factor, min(1.15, 1 / (1 - 0.3 * (1 - LLTV)))."""
    return min(1.15, 1 / (1 - 0.3 * (1 - lltv / WAD)))


def to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    """SharesMathLib.toAssetsUp: what a debt is worth when judging health (protocol-favoured)."""
    return -(-shares * (total_assets + VIRTUAL_ASSETS) // (total_shares + VIRTUAL_SHARES))


@dataclass
class MorphoBlueVenue:
    morpho: Contract
    markets: dict[str, MarketParams]  # "stETH/WETH" -> params (collateral/loan)
    ids: dict[str, bytes]
    oracles: dict[str, Contract]

    # -- queued user actions (the devnet has no callbacks: data is always empty) --------------
    def approve(self, account: str, market: str) -> None:
        """Let the singleton pull both of the market's tokens from `account`."""
        loan, collateral = self.markets[market][:2]
        driver = self.morpho.driver
        for token in dict.fromkeys((loan, collateral)):
            driver.at("ERC20", token).tx(account, "approve", self.morpho.address, MAX_UINT)

    def supply(
        self, account: str, market: str, assets: int, shares: int = 0, on_behalf: str | None = None
    ) -> int:
        return self.morpho.tx(
            account, "supply", self.markets[market], assets, shares, on_behalf or account, b""
        )

    def withdraw(self, account: str, market: str, assets: int, shares: int = 0,
                 on_behalf: str | None = None, receiver: str | None = None) -> int:
        return self._take_out("withdraw", account, market, assets, shares, on_behalf, receiver)

    def borrow(self, account: str, market: str, assets: int, shares: int = 0,
               on_behalf: str | None = None, receiver: str | None = None) -> int:
        return self._take_out("borrow", account, market, assets, shares, on_behalf, receiver)

    def _take_out(self, method: str, account: str, market: str, assets: int, shares: int,
                  on_behalf: str | None, receiver: str | None) -> int:
        """Morpho's withdraw and borrow take the same arguments: assets or shares out of a
        market, on behalf of an account, sent to a receiver."""
        return self.morpho.tx(account, method, self.markets[market], assets, shares,
                              on_behalf or account, receiver or account)

    def repay(
        self, account: str, market: str, assets: int, shares: int = 0, on_behalf: str | None = None
    ) -> int:
        return self.morpho.tx(
            account, "repay", self.markets[market], assets, shares, on_behalf or account, b""
        )

    def supply_collateral(
        self, account: str, market: str, assets: int, on_behalf: str | None = None
    ) -> int:
        return self.morpho.tx(
            account, "supplyCollateral", self.markets[market], assets, on_behalf or account, b""
        )

    def withdraw_collateral(
        self,
        account: str,
        market: str,
        assets: int,
        on_behalf: str | None = None,
        receiver: str | None = None,
    ) -> int:
        return self.morpho.tx(
            account,
            "withdrawCollateral",
            self.markets[market],
            assets,
            on_behalf or account,
            receiver or account,
        )

    def liquidate(
        self,
        account: str,
        market: str,
        borrower: str,
        seized_assets: int = 0,
        repaid_shares: int = 0,
    ) -> int:
        """Exactly one of seized_assets / repaid_shares is non-zero, as Morpho requires."""
        return self.morpho.tx(
            account,
            "liquidate",
            self.markets[market],
            borrower,
            seized_assets,
            repaid_shares,
            b"",
            gas=LIQUIDATE_GAS,
        )

    def accrue_interest(self, account: str, market: str) -> int:
        return self.morpho.tx(account, "accrueInterest", self.markets[market])

    # -- owner --------------------------------------------------------------------------------
    def create_market(self, key: str, params: MarketParams) -> None:
        """Queue the market's creation (its IRM and LLTV must be enabled) and record it."""
        self.morpho.tx(DEPLOYER, "createMarket", params)
        self.markets[key], self.ids[key] = params, market_id(params)

    def set_fee(self, market: str, fee: int) -> int:
        """The share of interest (WAD, at most 25%) minted as supply shares to the fee
        recipient; Morpho accrues at the old fee first."""
        return self.morpho.tx(DEPLOYER, "setFee", self.markets[market], fee)

    def set_fee_recipient(self, recipient: str) -> int:
        return self.morpho.tx(DEPLOYER, "setFeeRecipient", recipient)

    # -- reads --------------------------------------------------------------------------------
    def position(self, market: str, user: str) -> tuple[int, int, int]:
        """(supplyShares, borrowShares, collateral)."""
        s, b, c = self.morpho.call("position", self.ids[market], user)
        return int(s), int(b), int(c)

    def market_state(self, market: str) -> tuple[int, int, int, int, int, int]:
        """(totalSupplyAssets, totalSupplyShares, totalBorrowAssets, totalBorrowShares,
        lastUpdate, fee)."""
        out = self.morpho.call("market", self.ids[market])
        return (int(out[0]), int(out[1]), int(out[2]), int(out[3]), int(out[4]), int(out[5]))

    def price(self, market: str) -> int:
        return int(self.oracles[market].call("price"))

    def is_healthy(self, market: str, user: str) -> bool:
        """Morpho's _isHealthy, from the views: liquidatable exactly when this is False."""
        _, borrow_shares, collateral = self.position(market, user)
        if borrow_shares == 0:
            return True
        _, _, total_borrow, total_borrow_shares, _, _ = self.market_state(market)
        borrowed = to_assets_up(borrow_shares, total_borrow, total_borrow_shares)
        lltv = self.markets[market][4]
        max_borrow = collateral * self.price(market) // ORACLE_PRICE_SCALE * lltv // WAD
        return max_borrow >= borrowed


def deploy_morpho_blue(
    driver: DevnetDriver, world: BaseWorld, markets: dict[str, tuple[str, str, int]]
) -> MorphoBlueVenue:
    """Queue the singleton, one Chainlink oracle per market and the market creations.

    `markets` maps "COLL/LOAN" to (collateral symbol, loan symbol, lltv in WAD); the zero-rate
    IRM (address 0) and each LLTV are enabled by the owner (the deployer) first."""
    morpho = driver.deploy("MorphoBlue", label="MorphoBlue")
    morpho.tx(DEPLOYER, "enableIrm", ZERO_ADDRESS)
    for lltv in sorted({lltv for _, _, lltv in markets.values()}):
        morpho.tx(DEPLOYER, "enableLltv", lltv)
    venue = MorphoBlueVenue(morpho, {}, {}, {})
    for key, (collateral, loan, lltv) in markets.items():
        oracle = driver.deploy(
            "MorphoChainlinkOracle",
            world.feeds[collateral].address,
            world.feeds[loan].address,
            TOKEN_SPECS[collateral][1],
            TOKEN_SPECS[loan][1],
            label=f"Morpho {key} oracle",
        )
        params: MarketParams = (
            world.tokens[loan].address,
            world.tokens[collateral].address,
            oracle.address,
            ZERO_ADDRESS,
            lltv,
        )
        venue.create_market(key, params)
        venue.oracles[key] = oracle
    return venue
