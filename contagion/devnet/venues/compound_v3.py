"""A Compound III (Comet) market on the devnet: USDC base, owner-configured collateral.

Collateral is given by address with its own feed, so an Aave aToken can be listed priced by
its underlying's feed: a wire from one venue's claim into another venue's collateral.

Interest accrues as in Compound III once the market is given rate curves (`set_rates`, or
`rates=` at deployment); a market without them has zero rates, so its indexes stay at 1e15 and
every balance equals its principal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.protocols.compound_v3 import InterestRates

__all__ = [
    "MAX_UINT256",
    "CollateralConfig",
    "CompoundV3Venue",
    "InterestRates",
    "TotalsBasic",
    "deploy_compound_v3",
]

MAX_UINT256 = 2**256 - 1  # "all": supply repays the whole debt, withdraw takes the whole supply

STORE_FRONT_PRICE_FACTOR = 6 * 10**17  # cUSDCv3 mainnet: 0.6
TARGET_RESERVES = 5_000_000 * 10**6  # cUSDCv3 mainnet: 5M USDC
BASE_BORROW_MIN = 100 * 10**6  # cUSDCv3 mainnet: 100 USDC
# Measured: 10 accounts x 5 collateral assets absorb for ~0.9M gas; leave room for more assets.
ABSORB_GAS_BASE = 500_000
ABSORB_GAS_PER_ACCOUNT = 300_000

# token address, feed address, borrow CF, liquidate CF, liquidation factor (1e18), supply cap (raw)
CollateralConfig = tuple[str, str, int, int, int, int]


class TotalsBasic(NamedTuple):
    """Comet's `totalsBasic()`: stored indexes (1e15 = 1) and principal totals as of the last
    accrual. The devnet keeps no reward tracking and no pause flags: those are 0."""

    base_supply_index: int
    base_borrow_index: int
    tracking_supply_index: int
    tracking_borrow_index: int
    total_supply_base: int
    total_borrow_base: int
    last_accrual_time: int
    pause_flags: int


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

    def transfer_base(self, account: str, dst: str, amount: int) -> int:
        """`transferAsset` of base: moves supply, borrowing beyond it against collateral."""
        return self.comet.tx(account, "transferAsset", dst, self.base_token, amount)

    def accrue_account(self, sender: str, account: str) -> int:
        """Anyone may store the market's accrued interest (no event)."""
        return self.comet.tx(sender, "accrueAccount", account)

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

    def set_rates(self, rates: InterestRates, owner: str = DEPLOYER) -> int:
        """Give the market rate curves (per second, 1e18); interest so far accrues first."""
        return self.comet.tx(owner, "setRates", *rates)

    def withdraw_reserves(self, to: str, amount: int, governor: str = DEPLOYER) -> int:
        return self.comet.tx(governor, "withdrawReserves", to, amount)

    # -- reads ----------------------------------------------------------------------------------
    def borrow_balance(self, account: str, block: str | int = "latest") -> int:
        """The account's debt with interest up to the block's time."""
        return int(self.comet.call("borrowBalanceOf", account, block=block))

    def supply_balance(self, account: str, block: str | int = "latest") -> int:
        """The account's supply with interest up to the block's time."""
        return int(self.comet.call("balanceOf", account, block=block))

    def principal(self, account: str, block: str | int = "latest") -> int:
        """The account's signed base principal (userBasic): supply > 0, debt < 0."""
        return int(self.comet.call("userBasic", account, block=block)[0])

    def totals_basic(self, block: str | int = "latest") -> TotalsBasic:
        """Indexes and principal totals as last stored (not brought forward to the block)."""
        return TotalsBasic(*(int(x) for x in self.comet.call("totalsBasic", block=block)))

    def rates(self, block: str | int = "latest") -> InterestRates:
        names = ("supplyKink", "supplyPerSecondInterestRateSlopeLow",
                 "supplyPerSecondInterestRateSlopeHigh", "supplyPerSecondInterestRateBase",
                 "borrowKink", "borrowPerSecondInterestRateSlopeLow",
                 "borrowPerSecondInterestRateSlopeHigh", "borrowPerSecondInterestRateBase")
        return InterestRates(*(int(self.comet.call(n, block=block)) for n in names))

    def utilization(self, block: str | int = "latest") -> int:
        """Borrows over supplies (1e18) at the stored indexes."""
        return int(self.comet.call("getUtilization", block=block))

    def collateral_balance(self, account: str, symbol: str) -> int:
        return int(self.comet.call("collateralBalanceOf", account, self.collaterals[symbol]))

    def is_liquidatable(self, account: str) -> bool:
        return bool(self.comet.call("isLiquidatable", account))

    def reserves(self, block: str | int = "latest") -> int:
        """Base held minus supply plus borrow (with interest up to the block's time); negative
        once absorbed debt exceeds reserves."""
        return int(self.comet.call("getReserves", block=block))

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
    rates: InterestRates | None = None,
) -> CompoundV3Venue:
    """Queue the Comet deployment, its collateral listings and, if given, its rate curves; the
    caller mines. Without `rates` the market has zero rates.

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
    venue = CompoundV3Venue(
        comet, base_symbol, base.address, {symbol: cfg[0] for symbol, cfg in collaterals.items()}
    )
    if rates is not None:
        venue.set_rates(rates)
    return venue
