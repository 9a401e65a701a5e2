# pragma version ~=0.4.3
"""
@title Compound-v3-compatible market (Comet) with one borrowable base token
@notice Same events, entry points, views and account math as Compound III's Comet. A signed
        principal per account holds base supplied (> 0) or borrowed (< 0); collateral only backs
        borrows. Underwater accounts are absorbed onto the protocol's balance sheet (reserves =
        base held - supply + borrow, negative when the market carries bad debt) and their
        collateral is sold from the store front while reserves are below target. Collateral is
        configured by the owner (Comet's Configurator + governor in one) and factors are
        1e18-scaled, not quantised.

        Interest accrues as in Comet.sol: a supply and a borrow index (1e15 = 1) grow by the
        per-second rate of their own kinked curve at the stored utilization times the seconds
        elapsed. The accrual is stored (accrueInternal) by every base supply, withdraw and
        transfer before it values the account, by absorb, accrueAccount and setRates; not by
        collateral moves, withdrawReserves or buyCollateral, as in Comet. A balance is its
        principal times the index, rounded down, and a principal is a balance divided by it,
        rounded down for supply and up for borrow. balanceOf, borrowBalanceOf, totalSupply,
        totalBorrow and getReserves bring the indexes forward to the block's time; collateral
        checks and getUtilization use the stored ones, as Comet does.
        There is no reserve factor: reserves grow because borrowers pay more than suppliers
        earn. The eight curve parameters are immutable in Comet; here the owner sets them with
        setRates (standing in for a Configurator upgrade), and a market never given any keeps
        zero rates: its indexes stay at 1e15 and a principal is its present value. totalsBasic()
        returns Comet's TotalsBasic with the reward tracking indexes and pauseFlags at zero
        (no rewards, no pausing here).

        Risk oracle (Contagion's RiskOracle.vy), unset by default. Once the owner sets it, the
        market obeys its markets (this Comet, asset): supplying a frozen collateral, supplying
        base beyond what repays a borrow, and borrowing base revert with "Frozen" when that
        asset is frozen or this market halted; repay, withdraw, absorb and buyCollateral stay
        open. A margin cut of n bps lowers the asset's borrow and liquidate collateral
        factors by n * 1e14 (saturating at 0) in every collateralisation check.
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
import AggregatorV3Interface
import IRiskOracle

event Supply:
    from_: indexed(address)
    dst: indexed(address)
    amount: uint256

event Transfer:
    from_: indexed(address)
    to: indexed(address)
    amount: uint256

event Withdraw:
    src: indexed(address)
    to: indexed(address)
    amount: uint256

event SupplyCollateral:
    from_: indexed(address)
    dst: indexed(address)
    asset: indexed(address)
    amount: uint256

event TransferCollateral:
    from_: indexed(address)
    to: indexed(address)
    asset: indexed(address)
    amount: uint256

event WithdrawCollateral:
    src: indexed(address)
    to: indexed(address)
    asset: indexed(address)
    amount: uint256

event AbsorbDebt:
    absorber: indexed(address)
    borrower: indexed(address)
    basePaidOut: uint256
    usdValue: uint256

event AbsorbCollateral:
    absorber: indexed(address)
    borrower: indexed(address)
    asset: indexed(address)
    collateralAbsorbed: uint256
    usdValue: uint256

event BuyCollateral:
    buyer: indexed(address)
    asset: indexed(address)
    baseAmount: uint256
    collateralAmount: uint256

event WithdrawReserves:
    to: indexed(address)
    amount: uint256

struct AssetInfo:
    offset: uint8
    asset: address
    priceFeed: address
    scale: uint64
    borrowCollateralFactor: uint64
    liquidateCollateralFactor: uint64
    liquidationFactor: uint64
    supplyCap: uint128

struct UserBasic:
    principal: int104
    baseTrackingIndex: uint64
    baseTrackingAccrued: uint64
    assetsIn: uint16
    _reserved: uint8

struct UserCollateral:
    balance: uint128
    _reserved: uint128

struct TotalsCollateral:
    totalSupplyAsset: uint128
    _reserved: uint128

struct TotalsBasic:
    baseSupplyIndex: uint64
    baseBorrowIndex: uint64
    trackingSupplyIndex: uint64
    trackingBorrowIndex: uint64
    totalSupplyBase: uint104
    totalBorrowBase: uint104
    lastAccrualTime: uint40
    pauseFlags: uint8

FACTOR_SCALE: constant(uint256) = 10**18
BASE_INDEX_SCALE: constant(uint256) = 10**15
MAX_COLLATERAL_FACTOR: constant(uint256) = 10**18
PRICE_FEED_DECIMALS: constant(uint8) = 8
MAX_BASE_DECIMALS: constant(uint8) = 18
MAX_ASSETS: constant(uint8) = 15  # assetsIn is a 16-bit set, as in Comet

owner: public(address)
governor: public(address)
baseToken: public(address)
baseTokenPriceFeed: public(address)
decimals: public(uint8)
baseScale: public(uint256)
storeFrontPriceFactor: public(uint256)
targetReserves: public(uint256)
baseBorrowMin: public(uint256)
numAssets: public(uint8)
riskOracle: public(address)  # empty: no freezes, no margin cuts

assetInfos: HashMap[uint8, AssetInfo]
assetOffsetPlusOne: HashMap[address, uint8]

userBasic: public(HashMap[address, UserBasic])
userCollateral: public(HashMap[address, HashMap[address, UserCollateral]])
totalsCollateral: public(HashMap[address, TotalsCollateral])
totalSupplyBase: public(uint256)  # principals, as in Comet
totalBorrowBase: public(uint256)
baseSupplyIndex: uint64
baseBorrowIndex: uint64
lastAccrualTime: uint40

# The interest rate curves, per second and 1e18-scaled (kinks are utilizations); zero unless set.
supplyKink: public(uint256)
supplyPerSecondInterestRateSlopeLow: public(uint256)
supplyPerSecondInterestRateSlopeHigh: public(uint256)
supplyPerSecondInterestRateBase: public(uint256)
borrowKink: public(uint256)
borrowPerSecondInterestRateSlopeLow: public(uint256)
borrowPerSecondInterestRateSlopeHigh: public(uint256)
borrowPerSecondInterestRateBase: public(uint256)


@deploy
def __init__(base_token: address, base_token_price_feed: address,
             store_front_price_factor: uint256, target_reserves: uint256,
             base_borrow_min: uint256):
    decimals_: uint8 = staticcall IERC20Detailed(base_token).decimals()
    assert decimals_ <= MAX_BASE_DECIMALS, "BadDecimals"
    assert store_front_price_factor <= FACTOR_SCALE, "BadDiscount"
    assert staticcall AggregatorV3Interface(base_token_price_feed).decimals() == \
        PRICE_FEED_DECIMALS, "BadDecimals"
    self.owner = msg.sender
    self.governor = msg.sender
    self.baseToken = base_token
    self.baseTokenPriceFeed = base_token_price_feed
    self.decimals = decimals_
    self.baseScale = 10 ** convert(decimals_, uint256)
    self.storeFrontPriceFactor = store_front_price_factor
    self.targetReserves = target_reserves
    self.baseBorrowMin = base_borrow_min
    # Comet's initializeStorage
    self.lastAccrualTime = convert(block.timestamp, uint40)
    self.baseSupplyIndex = convert(BASE_INDEX_SCALE, uint64)
    self.baseBorrowIndex = convert(BASE_INDEX_SCALE, uint64)


# -- admin (Comet's Configurator, collapsed into the owner) ----------------------------------------

@internal
def _check_risk(borrow_cf: uint256, liquidate_cf: uint256, liquidation_factor: uint256):
    assert borrow_cf < liquidate_cf, "BorrowCFTooLarge"
    assert liquidate_cf <= MAX_COLLATERAL_FACTOR, "LiquidateCFTooLarge"
    assert liquidation_factor <= FACTOR_SCALE, "BadLiquidationFactor"


@external
def add_asset(asset: address, price_feed: address, borrow_cf: uint256, liquidate_cf: uint256,
              liquidation_factor: uint256, supply_cap: uint256):
    assert msg.sender == self.owner, "Unauthorized"
    assert asset != self.baseToken and asset != empty(address), "BadAsset"
    assert self.assetOffsetPlusOne[asset] == 0, "BadAsset"
    n: uint8 = self.numAssets
    assert n < MAX_ASSETS, "TooManyAssets"
    assert staticcall AggregatorV3Interface(price_feed).decimals() == PRICE_FEED_DECIMALS, \
        "BadDecimals"
    self._check_risk(borrow_cf, liquidate_cf, liquidation_factor)
    asset_decimals: uint8 = staticcall IERC20Detailed(asset).decimals()
    self.assetInfos[n] = AssetInfo(
        offset=n, asset=asset, priceFeed=price_feed,
        scale=convert(10 ** convert(asset_decimals, uint256), uint64),
        borrowCollateralFactor=convert(borrow_cf, uint64),
        liquidateCollateralFactor=convert(liquidate_cf, uint64),
        liquidationFactor=convert(liquidation_factor, uint64),
        supplyCap=convert(supply_cap, uint128))
    self.assetOffsetPlusOne[asset] = n + 1
    self.numAssets = n + 1


@external
def set_asset_risk(asset: address, borrow_cf: uint256, liquidate_cf: uint256,
                   liquidation_factor: uint256, supply_cap: uint256):
    assert msg.sender == self.owner, "Unauthorized"
    self._check_risk(borrow_cf, liquidate_cf, liquidation_factor)
    info: AssetInfo = self._asset_info_by_address(asset)
    info.borrowCollateralFactor = convert(borrow_cf, uint64)
    info.liquidateCollateralFactor = convert(liquidate_cf, uint64)
    info.liquidationFactor = convert(liquidation_factor, uint64)
    info.supplyCap = convert(supply_cap, uint128)
    self.assetInfos[info.offset] = info


@external
def setRates(supply_kink: uint256, supply_slope_low: uint256, supply_slope_high: uint256,
             supply_base: uint256, borrow_kink: uint256, borrow_slope_low: uint256,
             borrow_slope_high: uint256, borrow_base: uint256):
    """Set both curves (per-second rates, 1e18-scaled), standing in for a Configurator upgrade
    to a Comet with new immutables: interest up to now accrues at the old rates first."""
    assert msg.sender == self.owner, "Unauthorized"
    self._accrue()
    self.supplyKink = supply_kink
    self.supplyPerSecondInterestRateSlopeLow = supply_slope_low
    self.supplyPerSecondInterestRateSlopeHigh = supply_slope_high
    self.supplyPerSecondInterestRateBase = supply_base
    self.borrowKink = borrow_kink
    self.borrowPerSecondInterestRateSlopeLow = borrow_slope_low
    self.borrowPerSecondInterestRateSlopeHigh = borrow_slope_high
    self.borrowPerSecondInterestRateBase = borrow_base


@external
def setRiskOracle(oracle: address):
    assert msg.sender == self.owner, "Unauthorized"
    self.riskOracle = oracle


@view
@internal
def _require_not_frozen(asset: address):
    if self.riskOracle != empty(address):
        assert not staticcall IRiskOracle(self.riskOracle).isFrozen(self, asset), "Frozen"


@view
@internal
def _factor_cut(asset: address) -> uint256:
    """A margin cut in bps as a 1e18-scaled factor."""
    if self.riskOracle == empty(address):
        return 0
    return convert(staticcall IRiskOracle(self.riskOracle).marginCutBps(self, asset), uint256) \
        * (FACTOR_SCALE // 10000)


@external
def withdrawReserves(to: address, amount: uint256):
    assert msg.sender == self.governor, "Unauthorized"
    reserves: int256 = self._get_reserves()  # accrued view; Comet stores no accrual here
    assert reserves >= 0 and amount <= convert(reserves, uint256), "InsufficientReserves"
    self._transfer_out(self.baseToken, to, amount)
    log WithdrawReserves(to=to, amount=amount)


# -- interest (CometCore's present/principal value, Comet's rates and accrual) ------------------

@pure
@internal
def _mul_factor(n: uint256, factor: uint256) -> uint256:
    return n * factor // FACTOR_SCALE


@pure
@internal
def _present_value_supply(index: uint64, principal: uint256) -> uint256:
    return principal * convert(index, uint256) // BASE_INDEX_SCALE


@pure
@internal
def _present_value_borrow(index: uint64, principal: uint256) -> uint256:
    return principal * convert(index, uint256) // BASE_INDEX_SCALE


@pure
@internal
def _principal_value_supply(index: uint64, present: uint256) -> uint256:
    """Rounded down: a supplier is never credited more than they put in."""
    return present * BASE_INDEX_SCALE // convert(index, uint256)


@pure
@internal
def _principal_value_borrow(index: uint64, present: uint256) -> uint256:
    """Rounded up: a borrower never owes less than they took."""
    return (present * BASE_INDEX_SCALE + convert(index, uint256) - 1) // convert(index, uint256)


@view
@internal
def _present_value(principal: int256) -> int256:
    """A signed principal's balance at the stored indexes."""
    if principal >= 0:
        return convert(self._present_value_supply(self.baseSupplyIndex,
                                                  convert(principal, uint256)), int256)
    return -convert(self._present_value_borrow(self.baseBorrowIndex,
                                               convert(-principal, uint256)), int256)


@view
@internal
def _principal_value(balance: int256) -> int256:
    """A signed balance's principal at the stored indexes."""
    if balance >= 0:
        return convert(self._principal_value_supply(self.baseSupplyIndex,
                                                    convert(balance, uint256)), int256)
    return -convert(self._principal_value_borrow(self.baseBorrowIndex,
                                                 convert(-balance, uint256)), int256)


@view
@internal
def _utilization() -> uint256:
    total_supply: uint256 = self._present_value_supply(self.baseSupplyIndex, self.totalSupplyBase)
    total_borrow: uint256 = self._present_value_borrow(self.baseBorrowIndex, self.totalBorrowBase)
    if total_supply == 0:
        return 0
    return total_borrow * FACTOR_SCALE // total_supply


@view
@internal
def _supply_rate(utilization: uint256) -> uint64:
    kink: uint256 = self.supplyKink
    rate: uint256 = self.supplyPerSecondInterestRateBase
    if utilization <= kink:
        rate += self._mul_factor(self.supplyPerSecondInterestRateSlopeLow, utilization)
    else:
        rate += self._mul_factor(self.supplyPerSecondInterestRateSlopeLow, kink) + \
            self._mul_factor(self.supplyPerSecondInterestRateSlopeHigh, utilization - kink)
    return convert(rate, uint64)


@view
@internal
def _borrow_rate(utilization: uint256) -> uint64:
    kink: uint256 = self.borrowKink
    rate: uint256 = self.borrowPerSecondInterestRateBase
    if utilization <= kink:
        rate += self._mul_factor(self.borrowPerSecondInterestRateSlopeLow, utilization)
    else:
        rate += self._mul_factor(self.borrowPerSecondInterestRateSlopeLow, kink) + \
            self._mul_factor(self.borrowPerSecondInterestRateSlopeHigh, utilization - kink)
    return convert(rate, uint64)


@view
@internal
def _accrued_interest_indices(time_elapsed: uint256) -> (uint64, uint64):
    """The indexes `time_elapsed` seconds after the last accrual, at the stored utilization."""
    supply_index: uint256 = convert(self.baseSupplyIndex, uint256)
    borrow_index: uint256 = convert(self.baseBorrowIndex, uint256)
    if time_elapsed > 0:
        utilization: uint256 = self._utilization()
        supply_rate: uint256 = convert(self._supply_rate(utilization), uint256)
        borrow_rate: uint256 = convert(self._borrow_rate(utilization), uint256)
        supply_index += self._mul_factor(supply_index, supply_rate * time_elapsed)
        borrow_index += self._mul_factor(borrow_index, borrow_rate * time_elapsed)
    return (convert(supply_index, uint64), convert(borrow_index, uint64))


@view
@internal
def _accrued_now() -> (uint64, uint64):
    return self._accrued_interest_indices(
        block.timestamp - convert(self.lastAccrualTime, uint256))


@internal
def _accrue():
    """Comet's accrueInternal (no reward tracking here)."""
    now: uint40 = convert(block.timestamp, uint40)
    elapsed: uint256 = convert(now - self.lastAccrualTime, uint256)
    if elapsed > 0:
        supply_index: uint64 = 0
        borrow_index: uint64 = 0
        supply_index, borrow_index = self._accrued_interest_indices(elapsed)
        self.baseSupplyIndex = supply_index
        self.baseBorrowIndex = borrow_index
        self.lastAccrualTime = now


@external
def accrueAccount(account: address):
    """Accrue the market's interest (Comet also settles the account's reward tracking, which
    this market does not keep); no event."""
    self._accrue()


@view
@external
def getUtilization() -> uint256:
    """Borrows over supplies (1e18 = 100 %) at the stored indexes."""
    return self._utilization()


@view
@external
def getSupplyRate(utilization: uint256) -> uint64:
    return self._supply_rate(utilization)


@view
@external
def getBorrowRate(utilization: uint256) -> uint64:
    return self._borrow_rate(utilization)


@view
@external
def totalsBasic() -> TotalsBasic:
    """Comet's stored aggregates; no rewards and no pausing here, so the tracking indexes and
    pauseFlags are zero."""
    return TotalsBasic(
        baseSupplyIndex=self.baseSupplyIndex, baseBorrowIndex=self.baseBorrowIndex,
        trackingSupplyIndex=0, trackingBorrowIndex=0,
        totalSupplyBase=convert(self.totalSupplyBase, uint104),
        totalBorrowBase=convert(self.totalBorrowBase, uint104),
        lastAccrualTime=self.lastAccrualTime, pauseFlags=0)


# -- views ---------------------------------------------------------------------------------------

@view
@internal
def _asset_info_by_address(asset: address) -> AssetInfo:
    offset_plus_one: uint8 = self.assetOffsetPlusOne[asset]
    assert offset_plus_one != 0, "BadAsset"
    return self.assetInfos[offset_plus_one - 1]


@view
@external
def getAssetInfo(i: uint8) -> AssetInfo:
    assert i < self.numAssets, "BadAsset"
    return self.assetInfos[i]


@view
@external
def getAssetInfoByAddress(asset: address) -> AssetInfo:
    return self._asset_info_by_address(asset)


@view
@internal
def _get_price(price_feed: address) -> uint256:
    answer: int256 = 0
    _a: uint80 = 0
    _b: uint256 = 0
    _c: uint256 = 0
    _d: uint80 = 0
    _a, answer, _b, _c, _d = staticcall AggregatorV3Interface(price_feed).latestRoundData()
    assert answer > 0, "BadPrice"
    return convert(answer, uint256)


@view
@external
def getPrice(priceFeed: address) -> uint256:
    return self._get_price(priceFeed)


@view
@internal
def _get_reserves() -> int256:
    supply_index: uint64 = 0
    borrow_index: uint64 = 0
    supply_index, borrow_index = self._accrued_now()
    balance: uint256 = staticcall IERC20(self.baseToken).balanceOf(self)
    return convert(balance, int256) - \
        convert(self._present_value_supply(supply_index, self.totalSupplyBase), int256) + \
        convert(self._present_value_borrow(borrow_index, self.totalBorrowBase), int256)


@view
@external
def getReserves() -> int256:
    return self._get_reserves()


@view
@internal
def _collateral_reserves(asset: address) -> uint256:
    held: uint256 = staticcall IERC20(asset).balanceOf(self)
    return held - convert(self.totalsCollateral[asset].totalSupplyAsset, uint256)


@view
@external
def getCollateralReserves(asset: address) -> uint256:
    return self._collateral_reserves(asset)


@view
@external
def totalSupply() -> uint256:
    supply_index: uint64 = 0
    borrow_index: uint64 = 0
    supply_index, borrow_index = self._accrued_now()
    return self._present_value_supply(supply_index, self.totalSupplyBase)


@view
@external
def totalBorrow() -> uint256:
    supply_index: uint64 = 0
    borrow_index: uint64 = 0
    supply_index, borrow_index = self._accrued_now()
    return self._present_value_borrow(borrow_index, self.totalBorrowBase)


@view
@internal
def _balance_of(account: address) -> uint256:
    """The account's supply at the block's time (interest brought forward), or 0."""
    principal: int104 = self.userBasic[account].principal
    if principal > 0:
        supply_index: uint64 = 0
        borrow_index: uint64 = 0
        supply_index, borrow_index = self._accrued_now()
        return self._present_value_supply(supply_index, convert(principal, uint256))
    return 0


@view
@external
def balanceOf(account: address) -> uint256:
    return self._balance_of(account)


@view
@internal
def _borrow_balance_of(account: address) -> uint256:
    """The account's debt at the block's time (interest brought forward), or 0."""
    principal: int104 = self.userBasic[account].principal
    if principal < 0:
        supply_index: uint64 = 0
        borrow_index: uint64 = 0
        supply_index, borrow_index = self._accrued_now()
        return self._present_value_borrow(borrow_index, convert(-principal, uint256))
    return 0


@view
@external
def borrowBalanceOf(account: address) -> uint256:
    return self._borrow_balance_of(account)


@view
@external
def collateralBalanceOf(account: address, asset: address) -> uint128:
    return self.userCollateral[account][asset].balance


@view
@internal
def _liquidity(account: address, use_liquidate_cf: bool) -> (bool, int256):
    """(has debt, collateral value x factor - debt value) in 8-decimal USD, Comet's arithmetic
    including its early exit once liquidity turns non-negative; the debt at the stored borrow
    index, as in Comet (its operations accrue first)."""
    basic: UserBasic = self.userBasic[account]
    if basic.principal >= 0:
        return (False, 0)
    liquidity: int256 = self._present_value(convert(basic.principal, int256)) * \
        convert(self._get_price(self.baseTokenPriceFeed), int256) // \
        convert(self.baseScale, int256)
    assets_in: uint256 = convert(basic.assetsIn, uint256)
    for i: uint8 in range(MAX_ASSETS):
        if i >= self.numAssets:
            break
        if assets_in & (1 << convert(i, uint256)) == 0:
            continue
        if liquidity >= 0:
            return (True, liquidity)
        info: AssetInfo = self.assetInfos[i]
        value: uint256 = convert(self.userCollateral[account][info.asset].balance, uint256) * \
            self._get_price(info.priceFeed) // convert(info.scale, uint256)
        factor: uint256 = convert(info.borrowCollateralFactor, uint256)
        if use_liquidate_cf:
            factor = convert(info.liquidateCollateralFactor, uint256)
        factor -= min(factor, self._factor_cut(info.asset))
        liquidity += convert(value * factor // FACTOR_SCALE, int256)
    return (True, liquidity)


@view
@internal
def _is_borrow_collateralized(account: address) -> bool:
    has_debt: bool = False
    liquidity: int256 = 0
    has_debt, liquidity = self._liquidity(account, False)
    return not has_debt or liquidity >= 0


@view
@external
def isBorrowCollateralized(account: address) -> bool:
    return self._is_borrow_collateralized(account)


@view
@internal
def _is_liquidatable(account: address) -> bool:
    has_debt: bool = False
    liquidity: int256 = 0
    has_debt, liquidity = self._liquidity(account, True)
    return has_debt and liquidity < 0


@view
@external
def isLiquidatable(account: address) -> bool:
    return self._is_liquidatable(account)


@view
@internal
def _quote_collateral(asset: address, base_amount: uint256) -> uint256:
    info: AssetInfo = self._asset_info_by_address(asset)
    asset_price: uint256 = self._get_price(info.priceFeed)
    discount: uint256 = self.storeFrontPriceFactor * \
        (FACTOR_SCALE - convert(info.liquidationFactor, uint256)) // FACTOR_SCALE
    asset_price_discounted: uint256 = asset_price * (FACTOR_SCALE - discount) // FACTOR_SCALE
    base_price: uint256 = self._get_price(self.baseTokenPriceFeed)
    return base_price * base_amount * convert(info.scale, uint256) // asset_price_discounted // \
        self.baseScale


@view
@external
def quoteCollateral(asset: address, baseAmount: uint256) -> uint256:
    return self._quote_collateral(asset, baseAmount)


# -- internals -----------------------------------------------------------------------------------

@internal
def _transfer_in(token: address, sender: address, amount: uint256):
    assert extcall IERC20(token).transferFrom(sender, self, amount), "TransferInFailed"


@internal
def _transfer_out(token: address, to: address, amount: uint256):
    assert extcall IERC20(token).transfer(to, amount), "TransferOutFailed"


@internal
def _update_assets_in(account: address, offset: uint8, before: uint128, after: uint128):
    bit: uint256 = 1 << convert(offset, uint256)
    assets_in: uint256 = convert(self.userBasic[account].assetsIn, uint256)
    if before == 0 and after != 0:
        assets_in = assets_in | bit
    elif before != 0 and after == 0:
        assets_in = assets_in & (~bit)
    self.userBasic[account].assetsIn = convert(assets_in, uint16)


@pure
@internal
def _repay_and_supply(old: int256, new: int256) -> (uint256, uint256):
    if new < old:
        return (0, 0)
    if new <= 0:
        return (convert(new - old, uint256), 0)
    if old >= 0:
        return (0, convert(new - old, uint256))
    return (convert(-old, uint256), convert(new, uint256))


@pure
@internal
def _withdraw_and_borrow(old: int256, new: int256) -> (uint256, uint256):
    if new > old:
        return (0, 0)
    if new >= 0:
        return (convert(old - new, uint256), 0)
    if old <= 0:
        return (0, convert(old - new, uint256))
    return (convert(old, uint256), convert(-new, uint256))


@internal
def _set_principal(account: address, principal: int256):
    self.userBasic[account].principal = convert(principal, int104)


@internal
def _supply_base(sender: address, dst: address, amount: uint256):
    self._transfer_in(self.baseToken, sender, amount)
    self._accrue()
    old: int256 = convert(self.userBasic[dst].principal, int256)
    new: int256 = self._principal_value(self._present_value(old) + convert(amount, int256))
    repay: uint256 = 0
    supplied: uint256 = 0
    repay, supplied = self._repay_and_supply(old, new)
    if supplied > 0:  # repaying stays open
        self._require_not_frozen(self.baseToken)
    self.totalSupplyBase += supplied
    self.totalBorrowBase -= repay
    self._set_principal(dst, new)
    log Supply(from_=sender, dst=dst, amount=amount)
    if supplied > 0:
        log Transfer(from_=empty(address), to=dst,
                     amount=self._present_value_supply(self.baseSupplyIndex, supplied))


@internal
def _supply_collateral(sender: address, dst: address, asset: address, amount: uint128):
    self._require_not_frozen(asset)
    self._transfer_in(asset, sender, convert(amount, uint256))
    info: AssetInfo = self._asset_info_by_address(asset)
    total: uint128 = self.totalsCollateral[asset].totalSupplyAsset + amount
    assert total <= info.supplyCap, "SupplyCapExceeded"
    self.totalsCollateral[asset].totalSupplyAsset = total
    before: uint128 = self.userCollateral[dst][asset].balance
    self.userCollateral[dst][asset].balance = before + amount
    self._update_assets_in(dst, info.offset, before, before + amount)
    log SupplyCollateral(from_=sender, dst=dst, asset=asset, amount=convert(amount, uint256))


@internal
def _supply(sender: address, dst: address, asset: address, amount: uint256):
    if asset == self.baseToken:
        value: uint256 = amount
        if amount == max_value(uint256):
            value = self._borrow_balance_of(dst)
        self._supply_base(sender, dst, value)
    else:
        self._supply_collateral(sender, dst, asset, convert(amount, uint128))


@internal
def _check_borrow(account: address, balance: int256):
    """After a base withdrawal or transfer: a resulting debt (`balance` < 0, present value) must
    be at least baseBorrowMin and covered by the borrow collateral factors."""
    if balance < 0:
        assert convert(-balance, uint256) >= self.baseBorrowMin, "BorrowTooSmall"
        assert self._is_borrow_collateralized(account), "NotCollateralized"


@internal
def _withdraw_base(src: address, to: address, amount: uint256):
    self._accrue()
    old: int256 = convert(self.userBasic[src].principal, int256)
    balance: int256 = self._present_value(old) - convert(amount, int256)
    new: int256 = self._principal_value(balance)
    withdrawn: uint256 = 0
    borrowed: uint256 = 0
    withdrawn, borrowed = self._withdraw_and_borrow(old, new)
    if borrowed > 0:  # withdrawing a supply stays open
        self._require_not_frozen(self.baseToken)
    self.totalSupplyBase -= withdrawn
    self.totalBorrowBase += borrowed
    self._set_principal(src, new)
    self._check_borrow(src, balance)
    self._transfer_out(self.baseToken, to, amount)
    log Withdraw(src=src, to=to, amount=amount)
    if withdrawn > 0:
        log Transfer(from_=src, to=empty(address),
                     amount=self._present_value_supply(self.baseSupplyIndex, withdrawn))


@internal
def _withdraw_collateral(src: address, to: address, asset: address, amount: uint128):
    before: uint128 = self.userCollateral[src][asset].balance
    self.totalsCollateral[asset].totalSupplyAsset -= amount
    self.userCollateral[src][asset].balance = before - amount
    info: AssetInfo = self._asset_info_by_address(asset)
    self._update_assets_in(src, info.offset, before, before - amount)
    assert self._is_borrow_collateralized(src), "NotCollateralized"
    self._transfer_out(asset, to, convert(amount, uint256))
    log WithdrawCollateral(src=src, to=to, asset=asset, amount=convert(amount, uint256))


@internal
def _withdraw(src: address, to: address, asset: address, amount: uint256):
    if asset == self.baseToken:
        value: uint256 = amount
        if amount == max_value(uint256):
            value = self._balance_of(src)
        self._withdraw_base(src, to, value)
    else:
        self._withdraw_collateral(src, to, asset, convert(amount, uint128))


@internal
def _absorb_account(absorber: address, account: address):
    assert self._is_liquidatable(account), "NotLiquidatable"
    old_principal: int256 = convert(self.userBasic[account].principal, int256)
    old_balance: int256 = self._present_value(old_principal)
    assets_in: uint256 = convert(self.userBasic[account].assetsIn, uint256)
    base_price: uint256 = self._get_price(self.baseTokenPriceFeed)
    delta_value: uint256 = 0
    for i: uint8 in range(MAX_ASSETS):
        if i >= self.numAssets:
            break
        if assets_in & (1 << convert(i, uint256)) == 0:
            continue
        info: AssetInfo = self.assetInfos[i]
        seized: uint128 = self.userCollateral[account][info.asset].balance
        self.userCollateral[account][info.asset].balance = 0
        self.totalsCollateral[info.asset].totalSupplyAsset -= seized
        value: uint256 = convert(seized, uint256) * self._get_price(info.priceFeed) // \
            convert(info.scale, uint256)
        delta_value += value * convert(info.liquidationFactor, uint256) // FACTOR_SCALE
        log AbsorbCollateral(absorber=absorber, borrower=account, asset=info.asset,
                             collateralAbsorbed=convert(seized, uint256), usdValue=value)
    delta_balance: uint256 = delta_value * self.baseScale // base_price
    new_balance: int256 = old_balance + convert(delta_balance, int256)
    # The account never ends in debt: what its collateral does not cover falls on reserves.
    if new_balance < 0:
        new_balance = 0
    new_principal: int256 = self._principal_value(new_balance)
    self._set_principal(account, new_principal)
    self.userBasic[account].assetsIn = 0
    repay: uint256 = 0
    supplied: uint256 = 0
    repay, supplied = self._repay_and_supply(old_principal, new_principal)
    self.totalSupplyBase += supplied
    self.totalBorrowBase -= repay
    base_paid_out: uint256 = convert(new_balance - old_balance, uint256)
    log AbsorbDebt(absorber=absorber, borrower=account, basePaidOut=base_paid_out,
                   usdValue=base_paid_out * base_price // self.baseScale)
    if new_principal > 0:
        log Transfer(from_=empty(address), to=account,
                     amount=self._present_value_supply(self.baseSupplyIndex,
                                                       convert(new_principal, uint256)))


# -- user entry points ---------------------------------------------------------------------------

@external
def supply(asset: address, amount: uint256):
    self._supply(msg.sender, msg.sender, asset, amount)


@external
def supplyTo(dst: address, asset: address, amount: uint256):
    self._supply(msg.sender, dst, asset, amount)


@external
def withdraw(asset: address, amount: uint256):
    self._withdraw(msg.sender, msg.sender, asset, amount)


@external
def withdrawTo(to: address, asset: address, amount: uint256):
    self._withdraw(msg.sender, to, asset, amount)


@external
def transferAsset(dst: address, asset: address, amount: uint256):
    src: address = msg.sender
    assert src != dst, "NoSelfTransfer"
    if asset == self.baseToken:
        value: uint256 = amount
        if amount == max_value(uint256):
            value = self._balance_of(src)
        self._accrue()
        src_old: int256 = convert(self.userBasic[src].principal, int256)
        dst_old: int256 = convert(self.userBasic[dst].principal, int256)
        src_balance: int256 = self._present_value(src_old) - convert(value, int256)
        dst_balance: int256 = self._present_value(dst_old) + convert(value, int256)
        src_new: int256 = self._principal_value(src_balance)
        dst_new: int256 = self._principal_value(dst_balance)
        withdrawn: uint256 = 0
        borrowed: uint256 = 0
        repay: uint256 = 0
        supplied: uint256 = 0
        withdrawn, borrowed = self._withdraw_and_borrow(src_old, src_new)
        repay, supplied = self._repay_and_supply(dst_old, dst_new)
        self.totalSupplyBase = self.totalSupplyBase + supplied - withdrawn
        self.totalBorrowBase = self.totalBorrowBase + borrowed - repay
        self._set_principal(src, src_new)
        self._set_principal(dst, dst_new)
        self._check_borrow(src, src_balance)
        if withdrawn > 0:
            log Transfer(from_=src, to=empty(address),
                         amount=self._present_value_supply(self.baseSupplyIndex, withdrawn))
        if supplied > 0:
            log Transfer(from_=empty(address), to=dst,
                         amount=self._present_value_supply(self.baseSupplyIndex, supplied))
    else:
        value128: uint128 = convert(amount, uint128)
        info: AssetInfo = self._asset_info_by_address(asset)
        src_before: uint128 = self.userCollateral[src][asset].balance
        dst_before: uint128 = self.userCollateral[dst][asset].balance
        self.userCollateral[src][asset].balance = src_before - value128
        self.userCollateral[dst][asset].balance = dst_before + value128
        self._update_assets_in(src, info.offset, src_before, src_before - value128)
        self._update_assets_in(dst, info.offset, dst_before, dst_before + value128)
        assert self._is_borrow_collateralized(src), "NotCollateralized"
        log TransferCollateral(from_=src, to=dst, asset=asset, amount=amount)


@external
def absorb(absorber: address, accounts: DynArray[address, 64]):
    self._accrue()
    for account: address in accounts:
        self._absorb_account(absorber, account)


@external
def buyCollateral(asset: address, minAmount: uint256, baseAmount: uint256, recipient: address):
    reserves: int256 = self._get_reserves()
    assert reserves < 0 or convert(reserves, uint256) < self.targetReserves, "NotForSale"
    self._transfer_in(self.baseToken, msg.sender, baseAmount)
    collateral_amount: uint256 = self._quote_collateral(asset, baseAmount)
    assert collateral_amount >= minAmount, "TooMuchSlippage"
    assert collateral_amount <= self._collateral_reserves(asset), "InsufficientReserves"
    self._transfer_out(asset, recipient, collateral_amount)
    log BuyCollateral(buyer=msg.sender, asset=asset, baseAmount=baseAmount,
                      collateralAmount=collateral_amount)
