"""A Compound III (Comet) market on the devnet: USDC base, owner-configured collateral.

Collateral is given by address with its own feed, so an Aave aToken can be listed priced by
its underlying's feed: a wire from one venue's claim into another venue's collateral.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver

__all__ = [
    "CollateralConfig",
    "CompoundV3Venue",
    "deploy_compound_v3",
]

STORE_FRONT_PRICE_FACTOR = 6 * 10**17  # cUSDCv3 mainnet: 0.6
TARGET_RESERVES = 5_000_000 * 10**6  # cUSDCv3 mainnet: 5M USDC
BASE_BORROW_MIN = 100 * 10**6  # cUSDCv3 mainnet: 100 USDC
# Measured: 10 accounts x 5 collateral assets absorb for ~0.9M gas; leave room for more assets.
ABSORB_GAS_BASE = 500_000
ABSORB_GAS_PER_ACCOUNT = 300_000

# token address, feed address, borrow CF, liquidate CF, liquidation factor (1e18), supply cap (raw)
CollateralConfig = tuple[str, str, int, int, int, int]


@dataclass
class CompoundV3Venue:
    comet: Contract
    base_symbol: str
    base_token: str
    collaterals: dict[str, str] = field(default_factory=dict)  # symbol -> token address

    # -- actions (queued; the caller mines) ---------------------------------------------------
    def supply(self, account: str, amount: int) -> int:
        """Base in: repays the account's debt first, the rest earns as supply."""
        return self.comet.tx(account, "supply", self.base_token, amount)

    def withdraw(self, account: str, amount: int) -> int:
        """Base out: beyond the account's supply this borrows against its collateral."""
        return self.comet.tx(account, "withdraw", self.base_token, amount)

    def supply_collateral(self, account: str, symbol: str, amount: int) -> int:
        return self.comet.tx(account, "supply", self.collaterals[symbol], amount)

    def withdraw_collateral(self, account: str, symbol: str, amount: int) -> int:
        return self.comet.tx(account, "withdraw", self.collaterals[symbol], amount)

    def absorb(self, absorber: str, accounts: list[str]) -> int:
        return self.comet.tx(
            absorber,
            "absorb",
            absorber,
            accounts,
            gas=ABSORB_GAS_BASE + ABSORB_GAS_PER_ACCOUNT * len(accounts),
        )

    def buy_collateral(self, buyer: str, symbol: str, base_amount: int, min_amount: int = 0) -> int:
        """Buys absorbed collateral at the store-front discount (only while reserves < target)."""
        return self.comet.tx(
            buyer, "buyCollateral", self.collaterals[symbol], min_amount, base_amount, buyer
        )

    def set_asset_risk(
        self, symbol: str, borrow_cf: int, liquidate_cf: int, liquidation_factor: int, cap: int
    ) -> int:
        """Governance lever (e.g. a freeze: supply cap to the current total, CFs cut)."""
        return self.comet.tx(
            DEPLOYER,
            "set_asset_risk",
            self.collaterals[symbol],
            borrow_cf,
            liquidate_cf,
            liquidation_factor,
            cap,
        )

    # -- reads ----------------------------------------------------------------------------------
    def borrow_balance(self, account: str) -> int:
        return int(self.comet.call("borrowBalanceOf", account))

    def supply_balance(self, account: str) -> int:
        return int(self.comet.call("balanceOf", account))

    def collateral_balance(self, account: str, symbol: str) -> int:
        return int(self.comet.call("collateralBalanceOf", account, self.collaterals[symbol]))

    def is_liquidatable(self, account: str) -> bool:
        return bool(self.comet.call("isLiquidatable", account))

    def reserves(self) -> int:
        """Base held minus supply plus borrow; negative once absorbed debt exceeds reserves."""
        return int(self.comet.call("getReserves"))

    def quote_collateral(self, symbol: str, base_amount: int) -> int:
        return int(self.comet.call("quoteCollateral", self.collaterals[symbol], base_amount))


def deploy_compound_v3(
    driver: DevnetDriver,
    world: BaseWorld,
    collaterals: dict[str, CollateralConfig],
    *,
    base_symbol: str = "USDC",
    store_front_price_factor: int = STORE_FRONT_PRICE_FACTOR,
    target_reserves: int = TARGET_RESERVES,
    base_borrow_min: int = BASE_BORROW_MIN,
) -> CompoundV3Venue:
    """Queue the Comet deployment and its collateral listings; the caller mines.

    Collateral tokens (and their feeds) must already be deployed or queued before this, since
    listing reads their decimals."""
    base = world.tokens[base_symbol]
    comet = driver.deploy(
        "Comet",
        base.address,
        world.feeds[base_symbol].address,
        store_front_price_factor,
        target_reserves,
        base_borrow_min,
        label=f"Comet c{base_symbol}v3",
    )
    for token, feed, borrow_cf, liquidate_cf, liquidation_factor, cap in collaterals.values():
        comet.tx(
            DEPLOYER, "add_asset", token, feed, borrow_cf, liquidate_cf, liquidation_factor, cap
        )
    return CompoundV3Venue(
        comet, base_symbol, base.address, {symbol: cfg[0] for symbol, cfg in collaterals.items()}
    )
