"""The devnet's Aave v3 market: one pool, an aToken and a variable debt token per reserve.

Interest accrues as in Aave v3.3 once a reserve is given rate parameters
(`set_interest_rate_data`); reserves start with none, so their rates are zero, their indexes
stay at RAY and balances equal the amounts moved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from contagion.devnet.base import BaseWorld
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver

__all__ = [
    "LIQUIDATION_GAS",
    "MAX_UINT256",
    "RAY",
    "VARIABLE_RATE",
    "AaveV3Venue",
    "InterestRateData",
    "ReserveState",
    "deploy_aave_v3",
]

MAX_UINT256 = 2**256 - 1  # "all" for withdraw and repay, as in Aave
VARIABLE_RATE = 2
# A liquidation that creates a deficit walks every reserve twice and burns several debts.
LIQUIDATION_GAS = 3_000_000
RAY = 10**27


class ReserveState(NamedTuple):
    """The pool's `reserveState(asset)`: the interest part of Aave's ReserveData (RAY rates)."""

    liquidity_index: int
    liquidity_rate: int
    variable_borrow_index: int
    variable_borrow_rate: int
    last_update_timestamp: int
    reserve_factor: int  # bps
    accrued_to_treasury: int  # scaled by the liquidity index
    virtual_underlying_balance: int


class InterestRateData(NamedTuple):
    """DefaultReserveInterestRateStrategyV2's parameters, in RAY (0.9 RAY = 90 %)."""

    optimal_usage_ratio: int
    base_variable_borrow_rate: int
    variable_rate_slope1: int
    variable_rate_slope2: int


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

    def mint_to_treasury(self, account: str, *symbols: str) -> int:
        """Anyone may mint the reserves' accrued treasury share (as aTokens to the treasury)."""
        return self.pool.tx(account, "mintToTreasury", [self._asset(s) for s in symbols])

    # -- admin (the pool's owner, i.e. the deployer; queued) -----------------------------------
    def set_interest_rate_data(self, symbol: str, rates: InterestRateData,
                               owner: str = DEPLOYER) -> int:
        """Give the reserve rate parameters (RAY); the state is updated first, as in Aave."""
        return self.pool.tx(owner, "setReserveInterestRateData", self._asset(symbol), *rates)

    def set_reserve_factor(self, symbol: str, bps: int, owner: str = DEPLOYER) -> int:
        return self.pool.tx(owner, "setReserveFactor", self._asset(symbol), bps)

    def set_treasury(self, treasury: str, owner: str = DEPLOYER) -> int:
        return self.pool.tx(owner, "setTreasury", treasury)

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

    def reserve_state(self, symbol: str, block: str | int = "latest") -> ReserveState:
        """Indexes and rates as last stored (not brought forward to the block's time)."""
        raw = self.pool.call("reserveState", self._asset(symbol), block=block)
        return ReserveState(*(int(x) for x in raw))

    def interest_rate_data(self, symbol: str) -> InterestRateData:
        raw = self.pool.call("getInterestRateData", self._asset(symbol))
        return InterestRateData(*(int(x) for x in raw))

    def normalized_income(self, symbol: str, block: str | int = "latest") -> int:
        """The liquidity index brought forward to the block's time (what aToken balances use)."""
        return int(self.pool.call("getReserveNormalizedIncome", self._asset(symbol), block=block))

    def normalized_debt(self, symbol: str, block: str | int = "latest") -> int:
        """The variable borrow index brought forward to the block's time."""
        return int(self.pool.call("getReserveNormalizedVariableDebt", self._asset(symbol),
                                  block=block))

    def atoken_scaled(self, user: str, symbol: str, block: str | int = "latest") -> int:
        return int(self.atokens[symbol].call("scaledBalanceOf", user, block=block))

    def debt_scaled(self, user: str, symbol: str, block: str | int = "latest") -> int:
        return int(self.debt_tokens[symbol].call("scaledBalanceOf", user, block=block))


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
