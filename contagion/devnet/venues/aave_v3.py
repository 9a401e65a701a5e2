"""The devnet's Aave v3 market: one pool, an aToken and a variable debt token per reserve."""

from __future__ import annotations

from dataclasses import dataclass, field

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver

__all__ = ["LIQUIDATION_GAS", "MAX_UINT256", "VARIABLE_RATE", "AaveV3Venue", "deploy_aave_v3"]

MAX_UINT256 = 2**256 - 1  # "all" for withdraw and repay, as in Aave
VARIABLE_RATE = 2
# A liquidation that creates a deficit walks every reserve twice and burns several debts.
LIQUIDATION_GAS = 3_000_000


@dataclass
class AaveV3Venue:
    pool: Contract
    underlying: dict[str, Contract] = field(default_factory=dict)  # by symbol
    atokens: dict[str, Contract] = field(default_factory=dict)  # by underlying symbol
    debt_tokens: dict[str, Contract] = field(default_factory=dict)  # by underlying symbol

    def _asset(self, symbol: str) -> str:
        return self.underlying[symbol].address

    # -- actions (queued; the caller mines) ----------------------------------------------------
    def supply(self, account: str, symbol: str, amount: int) -> int:
        """Approve and supply in one go, so an agent's supply is a single call here."""
        self.underlying[symbol].tx(account, "approve", self.pool.address, amount)
        return self.pool.tx(account, "supply", self._asset(symbol), amount, account, 0)

    def withdraw(self, account: str, symbol: str, amount: int = MAX_UINT256) -> int:
        return self.pool.tx(account, "withdraw", self._asset(symbol), amount, account)

    def borrow(self, account: str, symbol: str, amount: int) -> int:
        return self.pool.tx(
            account, "borrow", self._asset(symbol), amount, VARIABLE_RATE, 0, account
        )

    def repay(self, account: str, symbol: str, amount: int = MAX_UINT256) -> int:
        """Approve exactly `amount` (MAX_UINT256 repays all the debt) and repay own debt."""
        self.underlying[symbol].tx(account, "approve", self.pool.address, amount)
        return self.pool.tx(account, "repay", self._asset(symbol), amount, VARIABLE_RATE, account)

    def liquidate(
        self,
        liquidator: str,
        user: str,
        collateral: str,
        debt: str,
        debt_to_cover: int = MAX_UINT256,
        receive_atoken: bool = False,
    ) -> int:
        """The close factor caps `debt_to_cover`; the approval covers whatever is taken."""
        self.underlying[debt].tx(liquidator, "approve", self.pool.address, debt_to_cover)
        return self.pool.tx(
            liquidator,
            "liquidationCall",
            self._asset(collateral),
            self._asset(debt),
            user,
            debt_to_cover,
            receive_atoken,
            gas=LIQUIDATION_GAS,
        )

    def set_collateral(self, account: str, symbol: str, enabled: bool) -> int:
        return self.pool.tx(account, "setUserUseReserveAsCollateral", self._asset(symbol), enabled)

    def transfer_atoken(self, account: str, symbol: str, to: str, amount: int) -> int:
        return self.atokens[symbol].tx(account, "transfer", to, amount)

    # -- reads ---------------------------------------------------------------------------------
    def account_data(self, user: str) -> tuple[int, int, int, int, int, int]:
        """(collateral, debt, available borrows) in USD 1e8, threshold and LTV in bps, HF 1e18."""
        c, d, a, lt, ltv, hf = self.pool.call("getUserAccountData", user)
        return int(c), int(d), int(a), int(lt), int(ltv), int(hf)

    def atoken_balance(self, user: str, symbol: str) -> int:
        return int(self.atokens[symbol].call("balanceOf", user))

    def debt_balance(self, user: str, symbol: str) -> int:
        return int(self.debt_tokens[symbol].call("balanceOf", user))

    def deficit(self, symbol: str) -> int:
        return int(self.pool.call("getReserveDeficit", self._asset(symbol)))


def deploy_aave_v3(
    driver: DevnetDriver, world: BaseWorld, reserves: dict[str, tuple[int, int, int]]
) -> AaveV3Venue:
    """Queue the pool, its tokens and one `init_reserve` per symbol -> (ltv, lt, bonus) in bps.

    Prices are the world's Chainlink feeds; the deployer owns the pool."""
    pool = driver.deploy("AavePool", label="Aave pool")
    venue = AaveV3Venue(pool)
    for symbol, (ltv, threshold, bonus) in reserves.items():
        token = world.tokens[symbol]
        venue.underlying[symbol] = token
        venue.atokens[symbol] = driver.deploy(
            "AToken",
            pool.address,
            token.address,
            f"Aave Ethereum {symbol}",
            f"aEth{symbol}",
            label=f"aEth{symbol}",
        )
        venue.debt_tokens[symbol] = driver.deploy(
            "VariableDebtToken",
            pool.address,
            token.address,
            f"Aave Ethereum Variable Debt {symbol}",
            f"variableDebtEth{symbol}",
            label=f"variableDebtEth{symbol}",
        )
        pool.tx(
            DEPLOYER,
            "init_reserve",
            token.address,
            venue.atokens[symbol].address,
            venue.debt_tokens[symbol].address,
            world.feeds[symbol].address,
            ltv,
            threshold,
            bonus,
        )
    return venue
