# pragma version ~=0.4.3
"""
@title Aave-v3.3-compatible lending pool (devnet subset)
@notice Same entry points, views and events as Aave v3.3's Pool for variable-rate lending:
        supply, withdraw, borrow, repay, liquidationCall (with v3.3 deficit accounting),
        setUserUseReserveAsCollateral and getUserAccountData. Devnet simplifications: no e-mode,
        isolation, caps, flash loans, liquidation protocol fee or credit delegation; prices come
        straight from Chainlink-style feeds (8-decimal USD, the Aave base currency). Rounding
        follows Aave's PercentageMath / WadRayMath (half up).

        Interest as in Aave v3.3 (ReserveLogic, MathUtils, DefaultReserveInterestRateStrategyV2):
        every action first updates the state of the reserves it touches (liquidity index by
        linear interest, variable borrow index by the 3-term compounded interest, the reserve
        factor's share of the accrued debt booked to accruedToTreasury, scaled), then, with the
        liquidity it adds or takes, recomputes the rates from the usage ratio (the virtual
        underlying balance, as in v3.1+; the deficit counts as unbacked in the supply usage) and
        emits ReserveDataUpdated before the action's own event. The rate strategy's parameters
        live in this pool (setReserveInterestRateData, in RAY), the configurator's
        setReserveFactor and the treasury too (mintToTreasury mints the aTokens and logs
        MintedToTreasury as Aave does). Reserves start with all of them zero: zero rates, indexes at RAY, balances equal to amounts.

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
    def scaledBalanceOf(account: address) -> uint256: view
    def UNDERLYING_ASSET_ADDRESS() -> address: view
    def POOL() -> address: view
    def mint(caller: address, onBehalfOf: address, amount: uint256, index: uint256) -> bool: \
        nonpayable
    def burn(user: address, receiverOfUnderlying: address, amount: uint256, index: uint256): \
        nonpayable
    def mintToTreasury(amount: uint256, index: uint256): nonpayable
    def transferOnLiquidation(sender: address, receiver: address, amount: uint256): nonpayable
    def transferUnderlyingTo(target: address, amount: uint256): nonpayable

interface IDebtToken:
    def scaledBalanceOf(account: address) -> uint256: view
    def UNDERLYING_ASSET_ADDRESS() -> address: view
    def POOL() -> address: view
    def mint(user: address, onBehalfOf: address, amount: uint256, index: uint256) -> \
        (bool, uint256): nonpayable
    def burn(user: address, amount: uint256, index: uint256) -> uint256: nonpayable

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

event MintedToTreasury:
    reserve: indexed(address)
    amountMinted: uint256

event ReserveDataUpdated:
    reserve: indexed(address)
    liquidityRate: uint256
    stableBorrowRate: uint256
    variableBorrowRate: uint256
    liquidityIndex: uint256
    variableBorrowIndex: uint256

struct Reserve:
    aToken: address
    variableDebtToken: address
    priceFeed: address
    unit: uint256  # 10**decimals of the underlying
    ltv: uint256  # bps
    liquidationThreshold: uint256  # bps
    liquidationBonus: uint256  # bps, 10500 = 5% bonus
    deficit: uint256

struct ReserveState:  # the interest part of Aave's ReserveData (rates and indexes in RAY)
    liquidityIndex: uint256
    currentLiquidityRate: uint256
    variableBorrowIndex: uint256
    currentVariableBorrowRate: uint256
    lastUpdateTimestamp: uint256
    reserveFactor: uint256  # bps
    accruedToTreasury: uint256  # scaled by the liquidity index
    virtualUnderlyingBalance: uint256

struct InterestRateData:  # DefaultReserveInterestRateStrategyV2's InterestRateDataRay
    optimalUsageRatio: uint256
    baseVariableBorrowRate: uint256
    variableRateSlope1: uint256
    variableRateSlope2: uint256

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
RAY: constant(uint256) = 10**27
HALF_RAY: constant(uint256) = RAY // 2
SECONDS_PER_YEAR: constant(uint256) = 365 * 86400
# DefaultReserveInterestRateStrategyV2's bounds (300 and 9900 bps; a 1000% max rate), in RAY
MIN_OPTIMAL_POINT: constant(uint256) = 3 * 10**25
MAX_OPTIMAL_POINT: constant(uint256) = 99 * 10**25
MAX_BORROW_RATE: constant(uint256) = 10 * RAY

owner: public(address)
reserves: public(HashMap[address, Reserve])
reservesList: DynArray[address, MAX_RESERVES]
usingAsCollateral: public(HashMap[address, HashMap[address, bool]])  # user -> asset -> flag
riskOracle: public(address)  # empty: no freezes, no margin cuts
reserveState: public(HashMap[address, ReserveState])
interestRateData: HashMap[address, InterestRateData]
# The debt token's scaledTotalSupply, as its mint and burn return it (Aave reads it from the token
# into its reserve cache; kept here, a state update makes no external call).
scaledVariableDebt: public(HashMap[address, uint256])
treasury: public(address)  # receives mintToTreasury (Aave: the aToken's RESERVE_TREASURY_ADDRESS)


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


@pure
@internal
def _ray_mul(a: uint256, b: uint256) -> uint256:
    return (a * b + HALF_RAY) // RAY


@pure
@internal
def _ray_div(a: uint256, b: uint256) -> uint256:
    return (a * RAY + b // 2) // b


# -- MathUtils -----------------------------------------------------------------------------------
@view
@internal
def _linear_interest(rate: uint256, last: uint256) -> uint256:
    return RAY + rate * (block.timestamp - last) // SECONDS_PER_YEAR


@view
@internal
def _compounded_interest(rate: uint256, last: uint256) -> uint256:
    """Aave's 3-term binomial approximation of (1 + rate/year)^seconds."""
    exp: uint256 = block.timestamp - last
    if exp == 0:
        return RAY
    exp_minus_one: uint256 = exp - 1
    exp_minus_two: uint256 = 0
    if exp > 2:
        exp_minus_two = exp - 2
    base_power_two: uint256 = self._ray_mul(rate, rate) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three: uint256 = self._ray_mul(base_power_two, rate) // SECONDS_PER_YEAR
    second_term: uint256 = exp * exp_minus_one * base_power_two // 2
    third_term: uint256 = exp * exp_minus_one * exp_minus_two * base_power_three // 6
    return RAY + rate * exp // SECONDS_PER_YEAR + second_term + third_term


# -- ReserveLogic --------------------------------------------------------------------------------
@view
@internal
def _normalized_income(asset: address) -> uint256:
    s: ReserveState = self.reserveState[asset]
    if s.lastUpdateTimestamp == block.timestamp:
        return s.liquidityIndex
    return self._ray_mul(self._linear_interest(s.currentLiquidityRate, s.lastUpdateTimestamp),
                         s.liquidityIndex)


@view
@internal
def _normalized_debt(asset: address) -> uint256:
    s: ReserveState = self.reserveState[asset]
    if s.lastUpdateTimestamp == block.timestamp:
        return s.variableBorrowIndex
    return self._ray_mul(
        self._compounded_interest(s.currentVariableBorrowRate, s.lastUpdateTimestamp),
        s.variableBorrowIndex)


@internal
def _update_state(asset: address) -> ReserveState:
    """ReserveLogic.updateState: indexes and the treasury's accrual, once per block."""
    s: ReserveState = self.reserveState[asset]
    if s.lastUpdateTimestamp == block.timestamp:
        return s
    scaled_debt: uint256 = self.scaledVariableDebt[asset]
    next_liquidity_index: uint256 = s.liquidityIndex
    if s.currentLiquidityRate != 0:
        next_liquidity_index = self._ray_mul(
            self._linear_interest(s.currentLiquidityRate, s.lastUpdateTimestamp),
            s.liquidityIndex)
    next_borrow_index: uint256 = s.variableBorrowIndex
    if scaled_debt != 0:
        next_borrow_index = self._ray_mul(
            self._compounded_interest(s.currentVariableBorrowRate, s.lastUpdateTimestamp),
            s.variableBorrowIndex)
    if s.reserveFactor != 0:
        accrued: uint256 = self._ray_mul(scaled_debt, next_borrow_index) - \
            self._ray_mul(scaled_debt, s.variableBorrowIndex)
        to_mint: uint256 = self._percent_mul(accrued, s.reserveFactor)
        if to_mint != 0:
            s.accruedToTreasury += self._ray_div(to_mint, next_liquidity_index)
    s.liquidityIndex = next_liquidity_index
    s.variableBorrowIndex = next_borrow_index
    s.lastUpdateTimestamp = block.timestamp
    self.reserveState[asset] = s
    return s


@view
@internal
def _interest_rates(asset: address, s: ReserveState, total_debt: uint256,
                    available_liquidity: uint256) -> (uint256, uint256):
    """DefaultReserveInterestRateStrategyV2.calculateInterestRates: (liquidity, variable)."""
    ird: InterestRateData = self.interestRateData[asset]
    borrow_rate: uint256 = ird.baseVariableBorrowRate
    if total_debt == 0:
        return (0, borrow_rate)
    liquidity_plus_debt: uint256 = available_liquidity + total_debt
    borrow_usage: uint256 = self._ray_div(total_debt, liquidity_plus_debt)
    supply_usage: uint256 = self._ray_div(total_debt,
                                          liquidity_plus_debt + self.reserves[asset].deficit)
    if borrow_usage > ird.optimalUsageRatio:
        excess: uint256 = self._ray_div(borrow_usage - ird.optimalUsageRatio,
                                        RAY - ird.optimalUsageRatio)
        borrow_rate += ird.variableRateSlope1 + self._ray_mul(ird.variableRateSlope2, excess)
    elif ird.optimalUsageRatio != 0:  # never set (all zero): no division by zero, rate stays 0
        borrow_rate += self._ray_div(self._ray_mul(ird.variableRateSlope1, borrow_usage),
                                     ird.optimalUsageRatio)
    liquidity_rate: uint256 = self._percent_mul(self._ray_mul(borrow_rate, supply_usage),
                                                PERCENTAGE_FACTOR - s.reserveFactor)
    return (liquidity_rate, borrow_rate)


@internal
def _update_rates(asset: address, added: uint256, taken: uint256):
    """ReserveLogic.updateInterestRatesAndVirtualBalance, after the state update and the debt
    token's mint or burn of the action."""
    s: ReserveState = self.reserveState[asset]
    total_debt: uint256 = self._ray_mul(self.scaledVariableDebt[asset], s.variableBorrowIndex)
    available: uint256 = s.virtualUnderlyingBalance + added - taken
    liquidity_rate: uint256 = 0
    borrow_rate: uint256 = 0
    liquidity_rate, borrow_rate = self._interest_rates(asset, s, total_debt, available)
    s.currentLiquidityRate = liquidity_rate
    s.currentVariableBorrowRate = borrow_rate
    s.virtualUnderlyingBalance = available
    self.reserveState[asset] = s
    log ReserveDataUpdated(reserve=asset, liquidityRate=s.currentLiquidityRate,
                           stableBorrowRate=0, variableBorrowRate=s.currentVariableBorrowRate,
                           liquidityIndex=s.liquidityIndex,
                           variableBorrowIndex=s.variableBorrowIndex)


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
            collateral = self._ray_mul(staticcall IAToken(r.aToken).scaledBalanceOf(user),
                                       self._normalized_income(asset))
        debt: uint256 = staticcall IDebtToken(r.variableDebtToken).scaledBalanceOf(user)
        if debt != 0:
            debt = self._ray_mul(debt, self._normalized_debt(asset))
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


@view
@external
def getReserveNormalizedIncome(asset: address) -> uint256:
    return self._normalized_income(asset)


@view
@external
def getReserveNormalizedVariableDebt(asset: address) -> uint256:
    return self._normalized_debt(asset)


@view
@external
def getVirtualUnderlyingBalance(asset: address) -> uint256:
    return self.reserveState[asset].virtualUnderlyingBalance


@view
@external
def getInterestRateData(asset: address) -> InterestRateData:
    """The rate strategy's parameters of the reserve, in RAY."""
    return self.interestRateData[asset]


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
    self.reserveState[asset] = ReserveState(liquidityIndex=RAY, currentLiquidityRate=0,
                                            variableBorrowIndex=RAY, currentVariableBorrowRate=0,
                                            lastUpdateTimestamp=0, reserveFactor=0,
                                            accruedToTreasury=0, virtualUnderlyingBalance=0)
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


@external
def setReserveInterestRateData(asset: address, optimalUsageRatio: uint256,
                               baseVariableBorrowRate: uint256, variableRateSlope1: uint256,
                               variableRateSlope2: uint256):
    """@notice The configurator's setReserveInterestRateData (RAY values here, not bps): the
            state is brought up to date at the old rates, then the rates are recomputed
            (ReserveDataUpdated). Bounds as in DefaultReserveInterestRateStrategyV2."""
    assert msg.sender == self.owner, "only owner"
    r: Reserve = self._listed(asset)
    assert optimalUsageRatio >= MIN_OPTIMAL_POINT and optimalUsageRatio <= MAX_OPTIMAL_POINT, \
        "INVALID_OPTIMAL_USAGE_RATIO"
    assert variableRateSlope1 <= variableRateSlope2, "SLOPE_2_MUST_BE_GTE_SLOPE_1"
    assert baseVariableBorrowRate + variableRateSlope1 + variableRateSlope2 <= MAX_BORROW_RATE, \
        "INVALID_MAXRATE"
    self._update_state(asset)
    self.interestRateData[asset] = InterestRateData(
        optimalUsageRatio=optimalUsageRatio, baseVariableBorrowRate=baseVariableBorrowRate,
        variableRateSlope1=variableRateSlope1, variableRateSlope2=variableRateSlope2)
    self._update_rates(asset, 0, 0)


@external
def setReserveFactor(asset: address, reserveFactor: uint256):
    """@notice The configurator's setReserveFactor (bps): syncIndexesState, set, syncRatesState."""
    assert msg.sender == self.owner, "only owner"
    r: Reserve = self._listed(asset)
    assert reserveFactor <= PERCENTAGE_FACTOR, "INVALID_RESERVE_FACTOR"
    self._update_state(asset)
    self.reserveState[asset].reserveFactor = reserveFactor
    self._update_rates(asset, 0, 0)


@external
def setTreasury(treasury: address):
    assert msg.sender == self.owner, "only owner"
    self.treasury = treasury


@external
@nonreentrant
def mintToTreasury(assets: DynArray[address, MAX_RESERVES]):
    """@notice PoolLogic.executeMintToTreasury: mint each reserve's accruedToTreasury, at the
            normalized income, as aTokens to the treasury. Anyone may call it."""
    for asset: address in assets:
        r: Reserve = self.reserves[asset]
        if r.aToken == empty(address):
            continue
        accrued: uint256 = self.reserveState[asset].accruedToTreasury
        if accrued != 0:
            self.reserveState[asset].accruedToTreasury = 0
            index: uint256 = self._normalized_income(asset)
            amount: uint256 = self._ray_mul(accrued, index)
            extcall IAToken(r.aToken).mintToTreasury(amount, index)
            log MintedToTreasury(reserve=asset, amountMinted=amount)


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
    s: ReserveState = self._update_state(asset)
    assert amount != 0, "INVALID_AMOUNT"
    self._require_not_frozen(asset)
    self._update_rates(asset, amount, 0)
    assert extcall IERC20(asset).transferFrom(msg.sender, r.aToken, amount)
    first_supply: bool = extcall IAToken(r.aToken).mint(msg.sender, onBehalfOf, amount,
                                                        s.liquidityIndex)
    if first_supply and r.ltv != 0 and not self.usingAsCollateral[onBehalfOf][asset]:
        self._enable_collateral(asset, onBehalfOf)
    log Supply(reserve=asset, user=msg.sender, onBehalfOf=onBehalfOf, amount=amount,
               referralCode=referralCode)


@external
@nonreentrant
def withdraw(asset: address, amount: uint256, to: address) -> uint256:
    r: Reserve = self._listed(asset)
    s: ReserveState = self._update_state(asset)
    balance: uint256 = self._ray_mul(staticcall IAToken(r.aToken).scaledBalanceOf(msg.sender),
                                     s.liquidityIndex)
    amount_to_withdraw: uint256 = balance if amount == max_value(uint256) else amount
    assert amount_to_withdraw != 0, "INVALID_AMOUNT"
    assert amount_to_withdraw <= balance, "NOT_ENOUGH_AVAILABLE_USER_BALANCE"
    self._update_rates(asset, 0, amount_to_withdraw)
    is_collateral: bool = self.usingAsCollateral[msg.sender][asset]
    if is_collateral and amount_to_withdraw == balance:
        self._disable_collateral(asset, msg.sender)
    extcall IAToken(r.aToken).burn(msg.sender, to, amount_to_withdraw, s.liquidityIndex)
    if is_collateral:
        self._require_healthy(msg.sender)
    log Withdraw(reserve=asset, user=msg.sender, to=to, amount=amount_to_withdraw)
    return amount_to_withdraw


@external
@nonreentrant
def borrow(asset: address, amount: uint256, interestRateMode: uint256, referralCode: uint16,
           onBehalfOf: address):
    r: Reserve = self._listed(asset)
    s: ReserveState = self._update_state(asset)
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
    first_borrow: bool = False  # Aave sets the user's borrowing flag on it; the devnet has none
    first_borrow, self.scaledVariableDebt[asset] = extcall IDebtToken(r.variableDebtToken).mint(
        msg.sender, onBehalfOf, amount, s.variableBorrowIndex)
    self._update_rates(asset, 0, amount)
    extcall IAToken(r.aToken).transferUnderlyingTo(msg.sender, amount)
    log Borrow(reserve=asset, user=msg.sender, onBehalfOf=onBehalfOf, amount=amount,
               interestRateMode=convert(VARIABLE_RATE_MODE, uint8),
               borrowRate=self.reserveState[asset].currentVariableBorrowRate,
               referralCode=referralCode)


@external
@nonreentrant
def repay(asset: address, amount: uint256, interestRateMode: uint256,
          onBehalfOf: address) -> uint256:
    r: Reserve = self._listed(asset)
    s: ReserveState = self._update_state(asset)
    assert amount != 0, "INVALID_AMOUNT"
    assert interestRateMode == VARIABLE_RATE_MODE, "INVALID_INTEREST_RATE_MODE_SELECTED"
    assert amount != max_value(uint256) or msg.sender == onBehalfOf, \
        "NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF"
    debt: uint256 = self._ray_mul(
        staticcall IDebtToken(r.variableDebtToken).scaledBalanceOf(onBehalfOf),
        s.variableBorrowIndex)
    assert debt != 0, "NO_DEBT_OF_SELECTED_TYPE"
    payback: uint256 = min(amount, debt)
    self.scaledVariableDebt[asset] = extcall IDebtToken(r.variableDebtToken).burn(
        onBehalfOf, payback, s.variableBorrowIndex)
    self._update_rates(asset, payback, 0)
    assert extcall IERC20(asset).transferFrom(msg.sender, r.aToken, payback)
    log Repay(reserve=asset, user=onBehalfOf, repayer=msg.sender, amount=payback,
              useATokens=False)
    return payback


@external
@nonreentrant
def setUserUseReserveAsCollateral(asset: address, useAsCollateral: bool):
    r: Reserve = self._listed(asset)
    assert self._ray_mul(staticcall IAToken(r.aToken).scaledBalanceOf(msg.sender),
                         self._normalized_income(asset)) != 0, "UNDERLYING_BALANCE_ZERO"
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
    if sender == receiver or self._ray_div(amount, self._normalized_income(asset)) == 0:
        return
    if self.usingAsCollateral[sender][asset]:
        self._require_healthy(sender)
        if balanceFromBefore == amount:
            self._disable_collateral(asset, sender)
    if balanceToBefore == 0 and r.ltv != 0 and not self.usingAsCollateral[receiver][asset]:
        self._enable_collateral(asset, receiver)


@internal
def _burn_debt(asset: address, debt_token: address, user: address, user_debt: uint256,
               covered: uint256, no_collateral_left: bool):
    """LiquidationLogic._burnDebtTokens: burn what the liquidator covers, or all the debt when
    no collateral is left (the rest booked as deficit); then the reserve's rates."""
    index: uint256 = self.reserveState[asset].variableBorrowIndex
    if user_debt != 0:
        self.scaledVariableDebt[asset] = extcall IDebtToken(debt_token).burn(
            user, user_debt if no_collateral_left else covered, index)
    outstanding: uint256 = user_debt - covered
    if no_collateral_left and outstanding != 0:
        self.reserves[asset].deficit += outstanding
        log DeficitCreated(user=user, debtAsset=asset, amountCreated=outstanding)
    self._update_rates(asset, covered, 0)


@external
@nonreentrant
def liquidationCall(collateralAsset: address, debtAsset: address, user: address,
                    debtToCover: uint256, receiveAToken: bool):
    """@notice Aave v3.3's executeLiquidationCall, in its order (without the dust rules, the
            small-position close factor and the protocol fee): debt reserve state; checks;
            collateral flag; the debt burn (all of it, with the rest as deficit, when the seized
            collateral is all the account has); the seizure (aToken transfer, or burn after the
            collateral reserve's state and rates); the other debts' deficits; the repayment."""
    c: Reserve = self._listed(collateralAsset)
    d: Reserve = self._listed(debtAsset)
    ds: ReserveState = self._update_state(debtAsset)
    acc: Account = self._account(user)
    hf: uint256 = self._health_factor(acc.collateral, acc.liquidationThreshold, acc.debt)
    assert hf < HEALTH_FACTOR_LIQUIDATION_THRESHOLD, "HEALTH_FACTOR_NOT_BELOW_THRESHOLD"
    assert self.usingAsCollateral[user][collateralAsset] and c.liquidationThreshold != 0, \
        "COLLATERAL_CANNOT_BE_LIQUIDATED"
    user_debt: uint256 = self._ray_mul(
        staticcall IDebtToken(d.variableDebtToken).scaledBalanceOf(user), ds.variableBorrowIndex)
    assert user_debt != 0, "SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER"

    close_factor: uint256 = PERCENTAGE_FACTOR
    if hf > CLOSE_FACTOR_HF_THRESHOLD:
        close_factor = DEFAULT_LIQUIDATION_CLOSE_FACTOR
    debt_amount: uint256 = min(debtToCover, self._percent_mul(user_debt, close_factor))

    user_collateral: uint256 = self._ray_mul(
        staticcall IAToken(c.aToken).scaledBalanceOf(user), self._normalized_income(collateralAsset))
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

    if collateral_amount == user_collateral:
        self._disable_collateral(collateralAsset, user)
    no_collateral_left: bool = acc.collateral == collateral_amount * collateral_price // c.unit
    self._burn_debt(debtAsset, d.variableDebtToken, user, user_debt, debt_amount,
                    no_collateral_left)

    if receiveAToken:
        liquidator_before: uint256 = staticcall IAToken(c.aToken).scaledBalanceOf(msg.sender)
        extcall IAToken(c.aToken).transferOnLiquidation(user, msg.sender, collateral_amount)
        if liquidator_before == 0 and c.ltv != 0 and \
                not self.usingAsCollateral[msg.sender][collateralAsset]:
            self._enable_collateral(collateralAsset, msg.sender)
    else:
        cs: ReserveState = self._update_state(collateralAsset)
        self._update_rates(collateralAsset, 0, collateral_amount)
        extcall IAToken(c.aToken).burn(user, msg.sender, collateral_amount, cs.liquidityIndex)

    # v3.3 deficit: no collateral left -> every other debt is burnt and booked as deficit too.
    if no_collateral_left:
        for asset: address in self.reservesList:
            r: Reserve = self.reserves[asset]
            if staticcall IDebtToken(r.variableDebtToken).scaledBalanceOf(user) == 0:
                continue
            rs: ReserveState = self._update_state(asset)
            bad_debt: uint256 = self._ray_mul(
                staticcall IDebtToken(r.variableDebtToken).scaledBalanceOf(user),
                rs.variableBorrowIndex)
            self._burn_debt(asset, r.variableDebtToken, user, bad_debt, 0, True)

    assert extcall IERC20(debtAsset).transferFrom(msg.sender, d.aToken, debt_amount)
    log LiquidationCall(collateralAsset=collateralAsset, debtAsset=debtAsset, user=user,
                        debtToCover=debt_amount, liquidatedCollateralAmount=collateral_amount,
                        liquidator=msg.sender, receiveAToken=receiveAToken)
