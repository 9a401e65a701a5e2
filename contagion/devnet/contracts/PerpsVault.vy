# pragma version ~=0.4.3
"""
@title Perpetual-futures vault with GMX v1 Vault events
@notice Leveraged longs and shorts on index tokens, margined in USD stablecoins (USDC or an
        Aave aUSDC), marked to Chainlink feeds. The USDC pool, funded by liquidity providers,
        is the counterparty: it pays traders' profits and receives their losses.
        Accounting follows GMX v1: USD amounts with 30 decimals, the same position key, average
        price and pro-rata pnl rules, and the deployed Vault's event signatures. Funding is zero.
        Devnet-only: margin is held per position as raw tokens (`position_margin_tokens`) and
        losses beyond margin are recorded as bad debt (`bad_debt_usd`, event BadDebt).
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
import AggregatorV3Interface

# -- GMX v1 Vault events (no indexed parameters) -------------------------------------------------

event IncreasePosition:
    key: bytes32
    account: address
    collateralToken: address
    indexToken: address
    collateralDelta: uint256
    sizeDelta: uint256
    isLong: bool
    price: uint256
    fee: uint256

event DecreasePosition:
    key: bytes32
    account: address
    collateralToken: address
    indexToken: address
    collateralDelta: uint256
    sizeDelta: uint256
    isLong: bool
    price: uint256
    fee: uint256

event LiquidatePosition:
    key: bytes32
    account: address
    collateralToken: address
    indexToken: address
    isLong: bool
    size: uint256
    collateral: uint256
    reserveAmount: uint256
    realisedPnl: int256
    markPrice: uint256

# The deployed Vault (Arbitrum 0x489ee077…) emits UpdatePosition without markPrice.
event UpdatePosition:
    key: bytes32
    size: uint256
    collateral: uint256
    averagePrice: uint256
    entryFundingRate: uint256
    reserveAmount: uint256
    realisedPnl: int256

event ClosePosition:
    key: bytes32
    size: uint256
    collateral: uint256
    averagePrice: uint256
    entryFundingRate: uint256
    reserveAmount: uint256
    realisedPnl: int256

# -- devnet-only events ----------------------------------------------------------------------------

event BadDebt:
    key: bytes32
    account: address
    collateralToken: address
    amountUsd: uint256

event LiquidityDeposited:
    provider: indexed(address)
    amount: uint256

event LiquidityWithdrawn:
    provider: indexed(address)
    amount: uint256

struct Position:
    size: uint256
    collateral: uint256
    averagePrice: uint256
    entryFundingRate: uint256
    reserveAmount: uint256
    realisedPnl: int256
    lastIncreasedTime: uint256
    marginTokens: uint256

BASIS_POINTS_DIVISOR: constant(uint256) = 10000
PRICE_PRECISION: constant(uint256) = 10 ** 30
MAX_FEE_BASIS_POINTS: constant(uint256) = 500

owner: public(address)
usdc: public(address)  # the pool token: LP deposits and profit payouts

maintenance_margin_bps: public(uint256)
liquidation_fee_usd: public(uint256)
max_leverage_bps: public(uint256)
margin_fee_bps: public(uint256)

price_feeds: public(HashMap[address, address])
feed_scales: HashMap[address, uint256]  # 10 ** (30 - feed decimals)
tokenDecimals: public(HashMap[address, uint256])
token_units: HashMap[address, uint256]  # 10 ** decimals
is_margin_token: public(HashMap[address, bool])
is_index_token: public(HashMap[address, bool])

positions: HashMap[bytes32, Position]
poolAmounts: public(HashMap[address, uint256])
feeReserves: public(HashMap[address, uint256])
reservedAmounts: public(HashMap[address, uint256])  # in the pool token, for open sizes
globalShortSizes: public(HashMap[address, uint256])
longOpenInterest: public(HashMap[address, uint256])
shortOpenInterest: public(HashMap[address, uint256])
lp_balances: public(HashMap[address, uint256])
total_liquidity: public(uint256)
bad_debt_usd: public(uint256)


@deploy
def __init__(pool_token: address, pool_feed: address, pool_decimals: uint256):
    self.owner = msg.sender
    self.usdc = pool_token
    self._configure(pool_token, pool_feed, pool_decimals)
    self.maintenance_margin_bps = 100  # 1% of size
    self.liquidation_fee_usd = 5 * PRICE_PRECISION
    self.max_leverage_bps = 50 * BASIS_POINTS_DIVISOR
    self.margin_fee_bps = 10  # 0.1% of size delta


# -- admin -----------------------------------------------------------------------------------------

@internal
def _configure(token: address, feed: address, decimals: uint256):
    feed_decimals: uint256 = convert(staticcall AggregatorV3Interface(feed).decimals(), uint256)
    assert feed_decimals <= 30 and decimals <= 30, "Vault: invalid decimals"
    self.price_feeds[token] = feed
    self.feed_scales[token] = 10 ** (30 - feed_decimals)
    self.tokenDecimals[token] = decimals
    self.token_units[token] = 10 ** decimals
    self._price(token)  # validate the feed


@external
def add_margin_token(token: address, price_feed: address, decimals: uint256):
    assert msg.sender == self.owner, "Vault: forbidden"
    self._configure(token, price_feed, decimals)
    self.is_margin_token[token] = True


@external
def add_index_token(token: address, price_feed: address):
    assert msg.sender == self.owner, "Vault: forbidden"
    decimals: uint256 = convert(staticcall IERC20Detailed(token).decimals(), uint256)
    self._configure(token, price_feed, decimals)
    self.is_index_token[token] = True


@external
def set_params(maintenance_margin_bps: uint256, liquidation_fee_usd: uint256,
               max_leverage_bps: uint256, margin_fee_bps: uint256):
    assert msg.sender == self.owner, "Vault: forbidden"
    assert maintenance_margin_bps < BASIS_POINTS_DIVISOR, "Vault: invalid maintenance margin"
    assert max_leverage_bps > BASIS_POINTS_DIVISOR, "Vault: invalid max leverage"
    assert margin_fee_bps <= MAX_FEE_BASIS_POINTS, "Vault: invalid margin fee"
    assert liquidation_fee_usd <= 100 * PRICE_PRECISION, "Vault: invalid liquidation fee"
    self.maintenance_margin_bps = maintenance_margin_bps
    self.liquidation_fee_usd = liquidation_fee_usd
    self.max_leverage_bps = max_leverage_bps
    self.margin_fee_bps = margin_fee_bps


# -- prices and conversions ------------------------------------------------------------------------

@view
@internal
def _price(token: address) -> uint256:
    feed: address = self.price_feeds[token]
    assert feed != empty(address), "Vault: token not configured"
    round_id: uint80 = 0
    answer: int256 = 0
    started: uint256 = 0
    updated: uint256 = 0
    answered: uint80 = 0
    round_id, answer, started, updated, answered = staticcall AggregatorV3Interface(feed).latestRoundData()
    assert answer > 0, "Vault: invalid price"
    return convert(answer, uint256) * self.feed_scales[token]


@view
@internal
def _token_to_usd(token: address, amount: uint256) -> uint256:
    return amount * self._price(token) // self.token_units[token]


@view
@internal
def _usd_to_token(token: address, usd: uint256) -> uint256:
    return usd * self.token_units[token] // self._price(token)


@view
@internal
def _position_fee(size_delta: uint256) -> uint256:
    after_fee: uint256 = size_delta * (BASIS_POINTS_DIVISOR - self.margin_fee_bps) // BASIS_POINTS_DIVISOR
    return size_delta - after_fee


@view
@internal
def _delta(index_token: address, size: uint256, average_price: uint256,
           is_long: bool) -> (bool, uint256):
    if size == 0 or average_price == 0:
        return (False, 0)
    price: uint256 = self._price(index_token)
    price_delta: uint256 = 0
    if average_price > price:
        price_delta = average_price - price
    else:
        price_delta = price - average_price
    delta: uint256 = size * price_delta // average_price
    has_profit: bool = average_price > price
    if is_long:
        has_profit = price > average_price
    return (has_profit, delta)


@view
@internal
def _next_average_price(index_token: address, size: uint256, average_price: uint256,
                        is_long: bool, next_price: uint256, size_delta: uint256) -> uint256:
    has_profit: bool = False
    delta: uint256 = 0
    has_profit, delta = self._delta(index_token, size, average_price, is_long)
    next_size: uint256 = size + size_delta
    divisor: uint256 = 0
    if is_long == has_profit:
        divisor = next_size + delta  # long in profit, or short at a loss
    else:
        divisor = next_size - delta
    return next_price * next_size // divisor


@pure
@internal
def _key(account: address, collateral_token: address, index_token: address,
         is_long: bool) -> bytes32:
    flag: bytes1 = 0x00
    if is_long:
        flag = 0x01
    return keccak256(concat(convert(account, bytes20), convert(collateral_token, bytes20),
                            convert(index_token, bytes20), flag))


@view
@internal
def _liquidation_state(index_token: address, pos: Position, is_long: bool) -> uint256:
    """0 healthy, 1 liquidatable: (collateral - losses - fees) < max(maintenance, liq. fee)."""
    if pos.size == 0:
        return 0
    has_profit: bool = False
    delta: uint256 = 0
    has_profit, delta = self._delta(index_token, pos.size, pos.averagePrice, is_long)
    remaining: uint256 = pos.collateral
    if not has_profit:
        if delta > remaining:
            return 1
        remaining -= delta
    threshold: uint256 = max(pos.size * self.maintenance_margin_bps // BASIS_POINTS_DIVISOR,
                             self.liquidation_fee_usd)
    if remaining < self._position_fee(pos.size) + threshold:
        return 1
    return 0


@view
@internal
def _validate_open(index_token: address, pos: Position, is_long: bool):
    assert pos.size >= pos.collateral, "Vault: _size must be more than _collateral"
    assert self._liquidation_state(index_token, pos, is_long) == 0, \
        "Vault: position would be liquidatable"
    has_profit: bool = False
    delta: uint256 = 0
    has_profit, delta = self._delta(index_token, pos.size, pos.averagePrice, is_long)
    remaining: uint256 = pos.collateral
    if not has_profit:
        remaining -= delta
    assert remaining * self.max_leverage_bps >= pos.size * BASIS_POINTS_DIVISOR, \
        "Vault: maxLeverage exceeded"


@internal
def _add_open_interest(index_token: address, is_long: bool, size: uint256):
    if is_long:
        self.longOpenInterest[index_token] += size
    else:
        self.shortOpenInterest[index_token] += size
        self.globalShortSizes[index_token] += size


@internal
def _remove_open_interest(index_token: address, is_long: bool, size: uint256):
    if is_long:
        self.longOpenInterest[index_token] -= size
    else:
        self.shortOpenInterest[index_token] -= size
        self.globalShortSizes[index_token] -= size


# -- liquidity providers ---------------------------------------------------------------------------

@external
@nonreentrant
def deposit_liquidity(amount: uint256):
    assert amount > 0, "Vault: invalid amount"
    assert extcall IERC20(self.usdc).transferFrom(msg.sender, self, amount)
    self.poolAmounts[self.usdc] += amount
    self.lp_balances[msg.sender] += amount
    self.total_liquidity += amount
    log LiquidityDeposited(provider=msg.sender, amount=amount)


@external
@nonreentrant
def withdraw_liquidity(amount: uint256):
    assert self.lp_balances[msg.sender] >= amount, "Vault: insufficient LP balance"
    assert self.poolAmounts[self.usdc] >= self.reservedAmounts[self.usdc] + amount, \
        "Vault: liquidity reserved"
    self.lp_balances[msg.sender] -= amount
    self.total_liquidity -= amount
    self.poolAmounts[self.usdc] -= amount
    assert extcall IERC20(self.usdc).transfer(msg.sender, amount)
    log LiquidityWithdrawn(provider=msg.sender, amount=amount)


# -- traders ---------------------------------------------------------------------------------------

@external
@nonreentrant
def increase_position(collateral_token: address, index_token: address,
                      collateral_amount: uint256, size_delta: uint256, is_long: bool):
    assert self.is_margin_token[collateral_token], "Vault: invalid collateral token"
    assert self.is_index_token[index_token], "Vault: invalid index token"
    key: bytes32 = self._key(msg.sender, collateral_token, index_token, is_long)
    pos: Position = self.positions[key]
    price: uint256 = self._price(index_token)
    if pos.size == 0:
        pos.averagePrice = price
    elif size_delta > 0:
        pos.averagePrice = self._next_average_price(index_token, pos.size, pos.averagePrice,
                                                    is_long, price, size_delta)

    fee: uint256 = self._position_fee(size_delta)
    collateral_usd: uint256 = 0
    if collateral_amount > 0:
        assert extcall IERC20(collateral_token).transferFrom(msg.sender, self, collateral_amount)
        collateral_usd = self._token_to_usd(collateral_token, collateral_amount)
        pos.marginTokens += collateral_amount
    pos.collateral += collateral_usd
    assert pos.collateral >= fee, "Vault: insufficient collateral for fees"
    pos.collateral -= fee
    fee_tokens: uint256 = min(self._usd_to_token(collateral_token, fee), pos.marginTokens)
    pos.marginTokens -= fee_tokens
    self.feeReserves[collateral_token] += fee_tokens

    pos.size += size_delta
    pos.lastIncreasedTime = block.timestamp
    assert pos.size > 0, "Vault: invalid position.size"
    self._validate_open(index_token, pos, is_long)

    reserve_delta: uint256 = self._usd_to_token(self.usdc, size_delta)
    pos.reserveAmount += reserve_delta
    self.reservedAmounts[self.usdc] += reserve_delta
    assert self.reservedAmounts[self.usdc] <= self.poolAmounts[self.usdc], \
        "Vault: reserve exceeds pool"
    self._add_open_interest(index_token, is_long, size_delta)
    self.positions[key] = pos

    log IncreasePosition(key=key, account=msg.sender, collateralToken=collateral_token,
                         indexToken=index_token, collateralDelta=collateral_usd,
                         sizeDelta=size_delta, isLong=is_long, price=price, fee=fee)
    log UpdatePosition(key=key, size=pos.size, collateral=pos.collateral,
                       averagePrice=pos.averagePrice, entryFundingRate=0,
                       reserveAmount=pos.reserveAmount, realisedPnl=pos.realisedPnl)


@external
@nonreentrant
def decrease_position(collateral_token: address, index_token: address,
                      collateral_delta: uint256, size_delta: uint256, is_long: bool,
                      receiver: address):
    key: bytes32 = self._key(msg.sender, collateral_token, index_token, is_long)
    pos: Position = self.positions[key]
    assert pos.size > 0, "Vault: empty position"
    assert pos.size >= size_delta, "Vault: position size exceeded"
    assert pos.collateral >= collateral_delta, "Vault: position collateral exceeded"
    closing: bool = size_delta == pos.size
    pool_token: address = self.usdc

    reserve_delta: uint256 = pos.reserveAmount * size_delta // pos.size
    pos.reserveAmount -= reserve_delta
    self.reservedAmounts[pool_token] -= reserve_delta

    # realise pnl pro rata to the size closed
    fee: uint256 = self._position_fee(size_delta)
    has_profit: bool = False
    delta: uint256 = 0
    has_profit, delta = self._delta(index_token, pos.size, pos.averagePrice, is_long)
    adjusted: uint256 = size_delta * delta // pos.size
    profit_usd: uint256 = 0
    if adjusted > 0:
        if has_profit:
            profit_usd = adjusted
            pos.realisedPnl += convert(adjusted, int256)
        else:
            assert pos.collateral >= adjusted, "Vault: losses exceed collateral"
            pos.collateral -= adjusted
            pos.realisedPnl -= convert(adjusted, int256)
            loss_tokens: uint256 = min(self._usd_to_token(collateral_token, adjusted),
                                       pos.marginTokens)
            pos.marginTokens -= loss_tokens
            self.poolAmounts[collateral_token] += loss_tokens

    assert pos.collateral >= collateral_delta, "Vault: position collateral exceeded"
    pos.collateral -= collateral_delta
    margin_out: uint256 = collateral_delta
    if closing:
        margin_out += pos.collateral
        pos.collateral = 0

    # the fee comes out of the released margin, then the profit, then the position's collateral
    fee_margin: uint256 = min(fee, margin_out)
    margin_out -= fee_margin
    fee_profit: uint256 = min(fee - fee_margin, profit_usd)
    profit_usd -= fee_profit
    fee_rest: uint256 = fee - fee_margin - fee_profit
    if fee_rest > 0:
        assert pos.collateral >= fee_rest, "Vault: fees exceed collateral"
        pos.collateral -= fee_rest
    fee_tokens: uint256 = min(self._usd_to_token(collateral_token, fee_margin + fee_rest),
                              pos.marginTokens)
    pos.marginTokens -= fee_tokens
    self.feeReserves[collateral_token] += fee_tokens
    if fee_profit > 0:
        fee_usdc: uint256 = self._usd_to_token(pool_token, fee_profit)
        assert self.poolAmounts[pool_token] >= fee_usdc, "Vault: poolAmount exceeded"
        self.poolAmounts[pool_token] -= fee_usdc
        self.feeReserves[pool_token] += fee_usdc

    # released margin goes back in the margin token, up to what the position holds
    margin_tokens_out: uint256 = self._usd_to_token(collateral_token, margin_out)
    shortfall_usd: uint256 = 0
    if margin_tokens_out > pos.marginTokens:
        shortfall_usd = margin_out - self._token_to_usd(collateral_token, pos.marginTokens)
        margin_tokens_out = pos.marginTokens
    pos.marginTokens -= margin_tokens_out
    if closing and pos.marginTokens > 0:
        self.poolAmounts[collateral_token] += pos.marginTokens
        pos.marginTokens = 0

    # profits (and any margin shortfall) are paid in the pool token
    usdc_out: uint256 = self._usd_to_token(pool_token, profit_usd + shortfall_usd)
    assert self.poolAmounts[pool_token] >= usdc_out, "Vault: poolAmount exceeded"
    self.poolAmounts[pool_token] -= usdc_out

    self._remove_open_interest(index_token, is_long, size_delta)
    price: uint256 = self._price(index_token)
    log DecreasePosition(key=key, account=msg.sender, collateralToken=collateral_token,
                         indexToken=index_token, collateralDelta=collateral_delta,
                         sizeDelta=size_delta, isLong=is_long, price=price, fee=fee)
    if closing:
        log ClosePosition(key=key, size=pos.size, collateral=pos.collateral,
                          averagePrice=pos.averagePrice, entryFundingRate=0,
                          reserveAmount=pos.reserveAmount, realisedPnl=pos.realisedPnl)
        self.positions[key] = empty(Position)
    else:
        pos.size -= size_delta
        self._validate_open(index_token, pos, is_long)
        log UpdatePosition(key=key, size=pos.size, collateral=pos.collateral,
                           averagePrice=pos.averagePrice, entryFundingRate=0,
                           reserveAmount=pos.reserveAmount, realisedPnl=pos.realisedPnl)
        self.positions[key] = pos

    if margin_tokens_out > 0:
        assert extcall IERC20(collateral_token).transfer(receiver, margin_tokens_out)
    if usdc_out > 0:
        assert extcall IERC20(pool_token).transfer(receiver, usdc_out)


@external
@nonreentrant
def liquidate_position(account: address, collateral_token: address, index_token: address,
                       is_long: bool, fee_receiver: address):
    key: bytes32 = self._key(account, collateral_token, index_token, is_long)
    pos: Position = self.positions[key]
    assert pos.size > 0, "Vault: empty position"
    assert self._liquidation_state(index_token, pos, is_long) != 0, \
        "Vault: position cannot be liquidated"
    has_profit: bool = False
    delta: uint256 = 0
    has_profit, delta = self._delta(index_token, pos.size, pos.averagePrice, is_long)
    loss: uint256 = 0
    if not has_profit:
        loss = delta

    # seized margin: the keeper's fee first, then the pool covers losses, then margin fees
    keeper_usd: uint256 = min(self.liquidation_fee_usd, pos.collateral)
    keeper_tokens: uint256 = min(self._usd_to_token(collateral_token, keeper_usd),
                                 pos.marginTokens)
    remaining_usd: uint256 = pos.collateral - keeper_usd
    remaining_usd -= min(loss, remaining_usd)
    fee_usd: uint256 = min(self._position_fee(pos.size), remaining_usd)
    fee_tokens: uint256 = min(self._usd_to_token(collateral_token, fee_usd),
                              pos.marginTokens - keeper_tokens)
    self.feeReserves[collateral_token] += fee_tokens
    self.poolAmounts[collateral_token] += pos.marginTokens - keeper_tokens - fee_tokens

    self.reservedAmounts[self.usdc] -= pos.reserveAmount
    self._remove_open_interest(index_token, is_long, pos.size)
    log LiquidatePosition(key=key, account=account, collateralToken=collateral_token,
                          indexToken=index_token, isLong=is_long, size=pos.size,
                          collateral=pos.collateral, reserveAmount=pos.reserveAmount,
                          realisedPnl=pos.realisedPnl, markPrice=self._price(index_token))
    if loss > pos.collateral:
        shortfall: uint256 = loss - pos.collateral
        self.bad_debt_usd += shortfall
        log BadDebt(key=key, account=account, collateralToken=collateral_token,
                    amountUsd=shortfall)
    self.positions[key] = empty(Position)
    if keeper_tokens > 0:
        assert extcall IERC20(collateral_token).transfer(fee_receiver, keeper_tokens)


# -- views -----------------------------------------------------------------------------------------

@view
@external
def getPositionKey(account: address, collateralToken: address, indexToken: address,
                   isLong: bool) -> bytes32:
    return self._key(account, collateralToken, indexToken, isLong)


@view
@external
def getPosition(account: address, collateralToken: address, indexToken: address,
                isLong: bool) -> (uint256, uint256, uint256, uint256, uint256, uint256, bool,
                                  uint256):
    pos: Position = self.positions[self._key(account, collateralToken, indexToken, isLong)]
    realised: uint256 = 0
    if pos.realisedPnl >= 0:
        realised = convert(pos.realisedPnl, uint256)
    else:
        realised = convert(-pos.realisedPnl, uint256)
    return (pos.size, pos.collateral, pos.averagePrice, pos.entryFundingRate,
            pos.reserveAmount, realised, pos.realisedPnl >= 0, pos.lastIncreasedTime)


@view
@external
def getPositionDelta(account: address, collateralToken: address, indexToken: address,
                     isLong: bool) -> (bool, uint256):
    pos: Position = self.positions[self._key(account, collateralToken, indexToken, isLong)]
    return self._delta(indexToken, pos.size, pos.averagePrice, isLong)


@view
@external
def getMaxPrice(token: address) -> uint256:
    return self._price(token)


@view
@external
def getMinPrice(token: address) -> uint256:
    return self._price(token)


@view
@external
def getPositionFee(sizeDelta: uint256) -> uint256:
    return self._position_fee(sizeDelta)


@view
@external
def position_margin_tokens(key: bytes32) -> uint256:
    return self.positions[key].marginTokens


@view
@external
def liquidation_state(account: address, collateralToken: address, indexToken: address,
                      isLong: bool) -> uint256:
    pos: Position = self.positions[self._key(account, collateralToken, indexToken, isLong)]
    return self._liquidation_state(indexToken, pos, isLong)
