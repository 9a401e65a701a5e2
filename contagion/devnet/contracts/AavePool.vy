# pragma version ~=0.4.3
"""
@title Aave-v3.3-compatible lending pool (devnet subset)
@notice Same entry points, views and events as Aave v3.3's Pool for variable-rate lending:
        supply, withdraw, borrow, repay, liquidationCall (with v3.3 deficit accounting),
        setUserUseReserveAsCollateral and getUserAccountData. Devnet simplifications: interest
        rates are zero (indexes stay at RAY), no e-mode, isolation, caps, flash loans, fees or
        credit delegation; prices come straight from Chainlink-style feeds (8-decimal USD, the
        Aave base currency). Rounding follows Aave's PercentageMath / WadRayMath (half up).

        Risk oracle (Contagion's RiskOracle.vy), unset by default: the pool then behaves as
        above. Once the owner sets it with setRiskOracle, the pool obeys its markets
        (this pool, asset): supply and borrow of a frozen asset, or of any asset while the pool
        is halted, revert with RESERVE_FROZEN; withdraw, repay, liquidationCall and collateral
        toggles stay open, so a freeze never traps a user. A margin cut lowers the asset's LTV
        and liquidation threshold by marginCutBps (saturating at 0) wherever the pool uses
        them: borrow and health checks, liquidations and getUserAccountData. The configured
        values (reserves()) are unchanged; lifting the cut restores them.
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
import AggregatorV3Interface
import IRiskOracle

interface IAToken:
    def balanceOf(account: address) -> uint256: view
    def UNDERLYING_ASSET_ADDRESS() -> address: view
    def POOL() -> address: view
    def mint(caller: address, onBehalfOf: address, amount: uint256) -> bool: nonpayable
    def burn(user: address, receiverOfUnderlying: address, amount: uint256): nonpayable
    def transferOnLiquidation(sender: address, receiver: address, amount: uint256): nonpayable
    def transferUnderlyingTo(target: address, amount: uint256): nonpayable

interface IDebtToken:
    def balanceOf(account: address) -> uint256: view
    def UNDERLYING_ASSET_ADDRESS() -> address: view
    def POOL() -> address: view
    def mint(user: address, onBehalfOf: address, amount: uint256) -> bool: nonpayable
    def burn(user: address, amount: uint256): nonpayable

event Supply:
    reserve: indexed(address)
    user: address
    onBehalfOf: indexed(address)
    amount: uint256
    referralCode: indexed(uint16)

event Withdraw:
    reserve: indexed(address)
    user: indexed(address)
    to: indexed(address)
    amount: uint256

event Borrow:
    reserve: indexed(address)
    user: address
    onBehalfOf: indexed(address)
    amount: uint256
    interestRateMode: uint8
    borrowRate: uint256
    referralCode: indexed(uint16)

event Repay:
    reserve: indexed(address)
    user: indexed(address)
    repayer: indexed(address)
    amount: uint256
    useATokens: bool

event LiquidationCall:
    collateralAsset: indexed(address)
    debtAsset: indexed(address)
    user: indexed(address)
    debtToCover: uint256
    liquidatedCollateralAmount: uint256
    liquidator: address
    receiveAToken: bool

event ReserveUsedAsCollateralEnabled:
    reserve: indexed(address)
    user: indexed(address)

event ReserveUsedAsCollateralDisabled:
    reserve: indexed(address)
    user: indexed(address)

event DeficitCreated:
    user: indexed(address)
    debtAsset: indexed(address)
    amountCreated: uint256

struct Reserve:
    aToken: address
    variableDebtToken: address
    priceFeed: address
    unit: uint256  # 10**decimals of the underlying
    ltv: uint256  # bps
    liquidationThreshold: uint256  # bps
    liquidationBonus: uint256  # bps, 10500 = 5% bonus
    deficit: uint256

struct Account:
    collateral: uint256  # base currency (USD, 8 decimals)
    debt: uint256
    ltv: uint256  # weighted average, bps
    liquidationThreshold: uint256  # weighted average, bps

MAX_RESERVES: constant(uint256) = 16
PERCENTAGE_FACTOR: constant(uint256) = 10000
WAD: constant(uint256) = 10**18
HEALTH_FACTOR_LIQUIDATION_THRESHOLD: constant(uint256) = 10**18
CLOSE_FACTOR_HF_THRESHOLD: constant(uint256) = 95 * 10**16
DEFAULT_LIQUIDATION_CLOSE_FACTOR: constant(uint256) = 5000
VARIABLE_RATE_MODE: constant(uint256) = 2

owner: public(address)
reserves: public(HashMap[address, Reserve])
reservesList: DynArray[address, MAX_RESERVES]
usingAsCollateral: public(HashMap[address, HashMap[address, bool]])  # user -> asset -> flag
riskOracle: public(address)  # empty: no freezes, no margin cuts


@deploy
def __init__():
    self.owner = msg.sender


# -- math (Aave's PercentageMath / WadRayMath, half-up rounding) ----------------------------------
@pure
@internal
def _percent_mul(x: uint256, percentage: uint256) -> uint256:
    return (x * percentage + PERCENTAGE_FACTOR // 2) // PERCENTAGE_FACTOR


@pure
@internal
def _percent_div(x: uint256, percentage: uint256) -> uint256:
    return (x * PERCENTAGE_FACTOR + percentage // 2) // percentage


@pure
@internal
def _wad_div(a: uint256, b: uint256) -> uint256:
    return (a * WAD + b // 2) // b


# -- views ---------------------------------------------------------------------------------------
@view
@internal
def _price(feed: address) -> uint256:
    answer: int256 = (staticcall AggregatorV3Interface(feed).latestRoundData())[1]
    assert answer > 0, "invalid price"
    return convert(answer, uint256)


@view
@internal
def _margin_cut(asset: address) -> uint256:
    if self.riskOracle == empty(address):
        return 0
    return convert(staticcall IRiskOracle(self.riskOracle).marginCutBps(self, asset), uint256)


@view
@internal
def _require_not_frozen(asset: address):
    if self.riskOracle != empty(address):
        assert not staticcall IRiskOracle(self.riskOracle).isFrozen(self, asset), \
            "RESERVE_FROZEN"


@view
@internal
def _account(user: address) -> Account:
    acc: Account = empty(Account)
    ltv_sum: uint256 = 0
    lt_sum: uint256 = 0
    for asset: address in self.reservesList:
        r: Reserve = self.reserves[asset]
        collateral: uint256 = 0
        if self.usingAsCollateral[user][asset] and r.liquidationThreshold != 0:
            collateral = staticcall IAToken(r.aToken).balanceOf(user)
        debt: uint256 = staticcall IDebtToken(r.variableDebtToken).balanceOf(user)
        if collateral == 0 and debt == 0:
            continue
        price: uint256 = self._price(r.priceFeed)
        if collateral != 0:
            worth: uint256 = collateral * price // r.unit
            cut: uint256 = self._margin_cut(asset)
            acc.collateral += worth
            ltv_sum += worth * (r.ltv - min(cut, r.ltv))
            lt_sum += worth * (r.liquidationThreshold - min(cut, r.liquidationThreshold))
        if debt != 0:
            acc.debt += debt * price // r.unit
    if acc.collateral != 0:
        acc.ltv = ltv_sum // acc.collateral
        acc.liquidationThreshold = lt_sum // acc.collateral
    return acc


@pure
@internal
def _health_factor(collateral: uint256, liquidation_threshold: uint256, debt: uint256) -> uint256:
    if debt == 0:
        return max_value(uint256)
    return self._wad_div(self._percent_mul(collateral, liquidation_threshold), debt)


@view
@internal
def _require_healthy(user: address):
    acc: Account = self._account(user)
    assert self._health_factor(acc.collateral, acc.liquidationThreshold, acc.debt) >= \
        HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD"


@view
@external
def getUserAccountData(user: address) -> (uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @return (totalCollateralBase, totalDebtBase, availableBorrowsBase,
             currentLiquidationThreshold, ltv, healthFactor)
    """
    acc: Account = self._account(user)
    available: uint256 = self._percent_mul(acc.collateral, acc.ltv)
    available = available - acc.debt if available > acc.debt else 0
    return (acc.collateral, acc.debt, available, acc.liquidationThreshold, acc.ltv,
            self._health_factor(acc.collateral, acc.liquidationThreshold, acc.debt))


@view
@external
def getReserveAToken(asset: address) -> address:
    return self.reserves[asset].aToken


@view
@external
def getReserveVariableDebtToken(asset: address) -> address:
    return self.reserves[asset].variableDebtToken


@view
@external
def getReservesList() -> DynArray[address, MAX_RESERVES]:
    return self.reservesList


@view
@external
def getReserveDeficit(asset: address) -> uint256:
    return self.reserves[asset].deficit


# -- admin ---------------------------------------------------------------------------------------
@internal
def _set_risk(asset: address, ltv: uint256, liquidation_threshold: uint256,
              liquidation_bonus: uint256):
    # PoolConfigurator.configureReserveAsCollateral's checks
    assert ltv <= liquidation_threshold, "INVALID_RESERVE_PARAMS"
    if liquidation_threshold != 0:
        assert liquidation_bonus > PERCENTAGE_FACTOR, "INVALID_RESERVE_PARAMS"
        assert self._percent_mul(liquidation_threshold, liquidation_bonus) <= PERCENTAGE_FACTOR, \
            "INVALID_RESERVE_PARAMS"
    else:
        assert liquidation_bonus == 0, "INVALID_RESERVE_PARAMS"
    self.reserves[asset].ltv = ltv
    self.reserves[asset].liquidationThreshold = liquidation_threshold
    self.reserves[asset].liquidationBonus = liquidation_bonus


@external
def init_reserve(asset: address, aToken: address, variableDebtToken: address,
                 price_feed: address, ltv_bps: uint256, liquidation_threshold_bps: uint256,
                 liquidation_bonus_bps: uint256):
    assert msg.sender == self.owner, "only owner"
    assert self.reserves[asset].aToken == empty(address), "RESERVE_ALREADY_INITIALIZED"
    assert staticcall IAToken(aToken).UNDERLYING_ASSET_ADDRESS() == asset, "wrong aToken"
    assert staticcall IAToken(aToken).POOL() == self, "wrong aToken pool"
    assert staticcall IDebtToken(variableDebtToken).UNDERLYING_ASSET_ADDRESS() == asset, \
        "wrong debt token"
    assert staticcall IDebtToken(variableDebtToken).POOL() == self, "wrong debt token pool"
    decimals: uint8 = staticcall IERC20Detailed(asset).decimals()
    self.reserves[asset] = Reserve(aToken=aToken, variableDebtToken=variableDebtToken,
                                   priceFeed=price_feed, unit=10 ** convert(decimals, uint256),
                                   ltv=0, liquidationThreshold=0, liquidationBonus=0, deficit=0)
    self._set_risk(asset, ltv_bps, liquidation_threshold_bps, liquidation_bonus_bps)
    self.reservesList.append(asset)


@external
def setRiskOracle(oracle: address):
    """@notice Obey this RiskOracle from now on (empty: none). No event: the devnet pool
            emits only real Aave's events."""
    assert msg.sender == self.owner, "only owner"
    self.riskOracle = oracle


@external
def set_reserve_risk(asset: address, ltv_bps: uint256, liquidation_threshold_bps: uint256,
                     liquidation_bonus_bps: uint256):
    assert msg.sender == self.owner, "only owner"
    assert self.reserves[asset].aToken != empty(address), "ASSET_NOT_LISTED"
    self._set_risk(asset, ltv_bps, liquidation_threshold_bps, liquidation_bonus_bps)


# -- user actions --------------------------------------------------------------------------------
@view
@internal
def _listed(asset: address) -> Reserve:
    r: Reserve = self.reserves[asset]
    assert r.aToken != empty(address), "ASSET_NOT_LISTED"
    return r


@internal
def _enable_collateral(asset: address, user: address):
    self.usingAsCollateral[user][asset] = True
    log ReserveUsedAsCollateralEnabled(reserve=asset, user=user)


@internal
def _disable_collateral(asset: address, user: address):
    self.usingAsCollateral[user][asset] = False
    log ReserveUsedAsCollateralDisabled(reserve=asset, user=user)


@external
@nonreentrant
def supply(asset: address, amount: uint256, onBehalfOf: address, referralCode: uint16):
    r: Reserve = self._listed(asset)
    assert amount != 0, "INVALID_AMOUNT"
    self._require_not_frozen(asset)
    assert extcall IERC20(asset).transferFrom(msg.sender, r.aToken, amount)
    first_supply: bool = extcall IAToken(r.aToken).mint(msg.sender, onBehalfOf, amount)
    if first_supply and r.ltv != 0 and not self.usingAsCollateral[onBehalfOf][asset]:
        self._enable_collateral(asset, onBehalfOf)
    log Supply(reserve=asset, user=msg.sender, onBehalfOf=onBehalfOf, amount=amount,
               referralCode=referralCode)


@external
@nonreentrant
def withdraw(asset: address, amount: uint256, to: address) -> uint256:
    r: Reserve = self._listed(asset)
    balance: uint256 = staticcall IAToken(r.aToken).balanceOf(msg.sender)
    amount_to_withdraw: uint256 = balance if amount == max_value(uint256) else amount
    assert amount_to_withdraw != 0, "INVALID_AMOUNT"
    assert amount_to_withdraw <= balance, "NOT_ENOUGH_AVAILABLE_USER_BALANCE"
    is_collateral: bool = self.usingAsCollateral[msg.sender][asset]
    if is_collateral and amount_to_withdraw == balance:
        self._disable_collateral(asset, msg.sender)
    extcall IAToken(r.aToken).burn(msg.sender, to, amount_to_withdraw)
    if is_collateral:
        self._require_healthy(msg.sender)
    log Withdraw(reserve=asset, user=msg.sender, to=to, amount=amount_to_withdraw)
    return amount_to_withdraw


@external
@nonreentrant
def borrow(asset: address, amount: uint256, interestRateMode: uint256, referralCode: uint16,
           onBehalfOf: address):
    r: Reserve = self._listed(asset)
    assert amount != 0, "INVALID_AMOUNT"
    assert interestRateMode == VARIABLE_RATE_MODE, "INVALID_INTEREST_RATE_MODE_SELECTED"
    assert onBehalfOf == msg.sender, "no credit delegation on the devnet"
    self._require_not_frozen(asset)
    assert staticcall IERC20(asset).balanceOf(r.aToken) >= amount, "not enough liquidity"
    acc: Account = self._account(onBehalfOf)
    assert acc.collateral != 0, "COLLATERAL_BALANCE_IS_ZERO"
    assert acc.ltv != 0, "LTV_VALIDATION_FAILED"
    debt_after: uint256 = acc.debt + amount * self._price(r.priceFeed) // r.unit
    assert self._percent_div(debt_after, acc.ltv) <= acc.collateral, \
        "COLLATERAL_CANNOT_COVER_NEW_BORROW"
    assert self._health_factor(acc.collateral, acc.liquidationThreshold, debt_after) >= \
        HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD"
    extcall IDebtToken(r.variableDebtToken).mint(msg.sender, onBehalfOf, amount)
    extcall IAToken(r.aToken).transferUnderlyingTo(msg.sender, amount)
    log Borrow(reserve=asset, user=msg.sender, onBehalfOf=onBehalfOf, amount=amount,
               interestRateMode=convert(VARIABLE_RATE_MODE, uint8), borrowRate=0,
               referralCode=referralCode)


@external
@nonreentrant
def repay(asset: address, amount: uint256, interestRateMode: uint256,
          onBehalfOf: address) -> uint256:
    r: Reserve = self._listed(asset)
    assert amount != 0, "INVALID_AMOUNT"
    assert interestRateMode == VARIABLE_RATE_MODE, "INVALID_INTEREST_RATE_MODE_SELECTED"
    assert amount != max_value(uint256) or msg.sender == onBehalfOf, \
        "NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF"
    debt: uint256 = staticcall IDebtToken(r.variableDebtToken).balanceOf(onBehalfOf)
    assert debt != 0, "NO_DEBT_OF_SELECTED_TYPE"
    payback: uint256 = min(amount, debt)
    extcall IDebtToken(r.variableDebtToken).burn(onBehalfOf, payback)
    assert extcall IERC20(asset).transferFrom(msg.sender, r.aToken, payback)
    log Repay(reserve=asset, user=onBehalfOf, repayer=msg.sender, amount=payback,
              useATokens=False)
    return payback


@external
@nonreentrant
def setUserUseReserveAsCollateral(asset: address, useAsCollateral: bool):
    r: Reserve = self._listed(asset)
    assert staticcall IAToken(r.aToken).balanceOf(msg.sender) != 0, "UNDERLYING_BALANCE_ZERO"
    if useAsCollateral == self.usingAsCollateral[msg.sender][asset]:
        return
    if useAsCollateral:
        assert r.ltv != 0, "USER_IN_ISOLATION_MODE_OR_LTV_ZERO"
        self._enable_collateral(asset, msg.sender)
    else:
        self._disable_collateral(asset, msg.sender)
        self._require_healthy(msg.sender)


@external
@nonreentrant
def finalizeTransfer(asset: address, sender: address, receiver: address, amount: uint256,
                     balanceFromBefore: uint256, balanceToBefore: uint256):
    """@notice Called by an aToken after moving balances: validates and moves collateral flags."""
    r: Reserve = self._listed(asset)
    assert msg.sender == r.aToken, "CALLER_NOT_ATOKEN"
    if sender == receiver or amount == 0:
        return
    if self.usingAsCollateral[sender][asset]:
        self._require_healthy(sender)
        if balanceFromBefore == amount:
            self._disable_collateral(asset, sender)
    if balanceToBefore == 0 and r.ltv != 0 and not self.usingAsCollateral[receiver][asset]:
        self._enable_collateral(asset, receiver)


@external
@nonreentrant
def liquidationCall(collateralAsset: address, debtAsset: address, user: address,
                    debtToCover: uint256, receiveAToken: bool):
    c: Reserve = self._listed(collateralAsset)
    d: Reserve = self._listed(debtAsset)
    acc: Account = self._account(user)
    hf: uint256 = self._health_factor(acc.collateral, acc.liquidationThreshold, acc.debt)
    assert hf < HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "HEALTH_FACTOR_NOT_BELOW_THRESHOLD"
    assert self.usingAsCollateral[user][collateralAsset] and c.liquidationThreshold != 0, \
        "COLLATERAL_CANNOT_BE_LIQUIDATED"
    user_debt: uint256 = staticcall IDebtToken(d.variableDebtToken).balanceOf(user)
    assert user_debt != 0, "SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER"

    close_factor: uint256 = PERCENTAGE_FACTOR
    if hf > CLOSE_FACTOR_HF_THRESHOLD:
        close_factor = DEFAULT_LIQUIDATION_CLOSE_FACTOR
    debt_amount: uint256 = min(debtToCover, self._percent_mul(user_debt, close_factor))

    user_collateral: uint256 = staticcall IAToken(c.aToken).balanceOf(user)
    collateral_price: uint256 = self._price(c.priceFeed)
    debt_price: uint256 = self._price(d.priceFeed)
    base_collateral: uint256 = debt_price * debt_amount * c.unit // (collateral_price * d.unit)
    collateral_amount: uint256 = self._percent_mul(base_collateral, c.liquidationBonus)
    if collateral_amount > user_collateral:
        collateral_amount = user_collateral
        debt_amount = self._percent_div(
            collateral_price * collateral_amount * d.unit // (debt_price * c.unit),
            c.liquidationBonus)
    assert debt_amount != 0 and collateral_amount != 0, "nothing to liquidate"

    extcall IDebtToken(d.variableDebtToken).burn(user, debt_amount)
    assert extcall IERC20(debtAsset).transferFrom(msg.sender, d.aToken, debt_amount)
    if collateral_amount == user_collateral:
        self._disable_collateral(collateralAsset, user)
    if receiveAToken:
        liquidator_before: uint256 = staticcall IAToken(c.aToken).balanceOf(msg.sender)
        extcall IAToken(c.aToken).transferOnLiquidation(user, msg.sender, collateral_amount)
        if liquidator_before == 0 and c.ltv != 0 and \
                not self.usingAsCollateral[msg.sender][collateralAsset]:
            self._enable_collateral(collateralAsset, msg.sender)
    else:
        extcall IAToken(c.aToken).burn(user, msg.sender, collateral_amount)

    # v3.3 deficit: no collateral left but debt remains -> burn it all and book it as deficit.
    if self._account(user).collateral == 0:
        for asset: address in self.reservesList:
            r: Reserve = self.reserves[asset]
            bad_debt: uint256 = staticcall IDebtToken(r.variableDebtToken).balanceOf(user)
            if bad_debt == 0:
                continue
            extcall IDebtToken(r.variableDebtToken).burn(user, bad_debt)
            self.reserves[asset].deficit += bad_debt
            log DeficitCreated(user=user, debtAsset=asset, amountCreated=bad_debt)

    log LiquidationCall(collateralAsset=collateralAsset, debtAsset=debtAsset, user=user,
                        debtToCover=debt_amount, liquidatedCollateralAmount=collateral_amount,
                        liquidator=msg.sender, receiveAToken=receiveAToken)
