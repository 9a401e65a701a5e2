"""The devnet options venue (Opyn Gamma events): European WETH/USDC calls and puts written
from naked-margin vaults and sold by quote.

Queue order, all in one batch if wanted (the node runs FIFO and every address is known before
mining): `deploy_opyn_gamma` (oToken template, venue, collateral list), then `create_series`,
then vault and trading actions. Series addresses are predicted from the venue's CREATE nonce, so
`create_series` calls must each succeed, in the order they were queued.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_utils import to_checksum_address

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver, create_address

__all__ = [
    "DEFAULT_PENALTY_BPS",
    "DEFAULT_SHOCK_BPS",
    "OptionsVenue",
    "SeriesKey",
    "deploy_opyn_gamma",
]

DEFAULT_SHOCK_BPS = 1_500  # margin: intrinsic + 15% of spot per short option
DEFAULT_PENALTY_BPS = 500  # liquidators earn intrinsic + 5% of spot per option burned

SeriesKey = tuple[bool, int, int]  # (is_put, strike USD 8 decimals, expiry unix time)


@dataclass
class OptionsVenue:
    venue: Contract
    otoken_impl: Contract
    series: dict[SeriesKey, Contract] = field(default_factory=dict)
    owner: str = DEPLOYER
    _next_vault: dict[str, int] = field(default_factory=dict, repr=False)

    # -- owner -------------------------------------------------------------------------------
    def create_series(self, is_put: bool, strike: int, expiry: int) -> Contract:
        """Queue a new series; its oToken is the venue's next CREATE (contract nonces start
        at 1), so the handle is usable before mining."""
        if (is_put, strike, expiry) in self.series:
            raise ValueError(f"series {(is_put, strike, expiry)} already exists")
        address = create_address(self.venue.address, 1 + len(self.series))
        self.venue.tx(self.owner, "create_series", is_put, strike, expiry)
        kind = "P" if is_put else "C"
        token = self.venue.driver.at(
            "OToken", address, label=f"oWETH-{strike // 10**8}{kind}-{expiry}"
        )
        self.series[(is_put, strike, expiry)] = token
        return token

    # -- writers -----------------------------------------------------------------------------
    def open_vault(self, account: str, collateral_asset: str) -> int:
        """Queue a vault opening; returns the id it will get, counting vaults already opened
        on chain and those queued here."""
        if account not in self._next_vault:
            self._next_vault[account] = self.vault_count(account) + 1
        vault_id = self._next_vault[account]
        self._next_vault[account] = vault_id + 1
        self.venue.tx(account, "open_vault", collateral_asset)
        return vault_id

    def deposit(self, account: str, vault_id: int, amount: int) -> int:
        """The account must have approved the venue for the vault's collateral asset."""
        return self.venue.tx(account, "deposit_collateral", vault_id, amount)

    def withdraw(self, account: str, vault_id: int, amount: int) -> int:
        return self.venue.tx(account, "withdraw_collateral", vault_id, amount)

    def quote(
        self,
        writer: str,
        vault_id: int,
        otoken: str,
        premium_per_option: int,
        implied_vol: int,
        max_amount: int,
    ) -> int:
        return self.venue.tx(
            writer, "quote", vault_id, otoken, premium_per_option, implied_vol, max_amount
        )

    def burn_short(self, account: str, vault_id: int, otoken: str, amount: int) -> int:
        return self.venue.tx(account, "burn_short", vault_id, otoken, amount)

    def settle_vault(self, account: str, vault_id: int) -> int:
        # One pool transfer, price freeze and event per short series: allow for MAX_SHORTS.
        return self.venue.tx(account, "settle_vault", vault_id, gas=4_000_000)

    # -- buyers and liquidators ----------------------------------------------------------------
    def buy(
        self,
        buyer: str,
        writer: str,
        vault_id: int,
        otoken: str,
        amount: int,
        max_premium_total: int,
    ) -> int:
        """The buyer must have approved the venue for USDC (the premium)."""
        return self.venue.tx(buyer, "buy", writer, vault_id, otoken, amount, max_premium_total)

    def liquidate(
        self,
        liquidator: str,
        owner: str,
        vault_id: int,
        otoken: str,
        amount: int,
        receiver: str | None = None,
    ) -> int:
        """Burns the liquidator's `amount` oTokens against the vault's short; the collateral
        goes to `receiver` (default: the liquidator)."""
        return self.venue.tx(
            liquidator, "liquidate", owner, vault_id, otoken, amount, receiver or liquidator
        )

    def redeem(self, account: str, otoken: str, amount: int) -> int:
        return self.venue.tx(account, "redeem", otoken, amount)

    # -- reads ---------------------------------------------------------------------------------
    def margin_requirement(self, owner: str, vault_id: int) -> int:
        return int(self.venue.call("margin_requirement", owner, vault_id))

    def collateral_value(self, owner: str, vault_id: int) -> int:
        return int(self.venue.call("collateral_value", owner, vault_id))

    def is_liquidatable(self, owner: str, vault_id: int) -> bool:
        return bool(self.venue.call("is_liquidatable", owner, vault_id))

    def vault_count(self, owner: str) -> int:
        return int(self.venue.call("vault_count", owner))

    def vault(self, owner: str, vault_id: int) -> tuple[str, int, bool]:
        """(collateral asset, collateral amount, settled)."""
        asset, amount, settled = self.venue.call("vault_of", owner, vault_id)
        return to_checksum_address(asset), int(amount), bool(settled)

    def shorts(self, owner: str, vault_id: int) -> dict[str, int]:
        """Short oTokens of the vault (checksummed address -> amount, 8 decimals)."""
        tokens = self.venue.call("shorts_of", owner, vault_id)
        return {
            to_checksum_address(t): int(self.venue.call("short_amount", owner, vault_id, t))
            for t in tokens
        }

    def bad_debt_usd(self) -> int:
        return int(self.venue.call("bad_debt_usd"))


def deploy_opyn_gamma(
    driver: DevnetDriver,
    world: BaseWorld,
    collaterals: dict[str, tuple[str, str, int, int]],
    shock_bps: int = DEFAULT_SHOCK_BPS,
    penalty_bps: int = DEFAULT_PENALTY_BPS,
) -> OptionsVenue:
    """Queue the oToken template, the venue and its accepted collateral.

    `collaterals`: name -> (token address, USD feed address, decimals, haircut in bps). Redeem
    pays from a series' USDC pool first, then from the others in this order."""
    impl = driver.deploy("OToken", label="oToken template")
    venue = driver.deploy(
        "OptionsVenue",
        world.tokens["WETH"].address,
        world.tokens["USDC"].address,
        world.feeds["WETH"].address,
        impl.address,
        shock_bps,
        penalty_bps,
        label="OptionsVenue",
    )
    for token, feed, decimals, haircut_bps in collaterals.values():
        venue.tx(DEPLOYER, "add_collateral", token, feed, decimals, haircut_bps)
    return OptionsVenue(venue=venue, otoken_impl=impl)
