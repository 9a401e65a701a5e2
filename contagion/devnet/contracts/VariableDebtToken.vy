# pragma version ~=0.4.3
"""
@title Aave-v3-compatible variable debt token (scaled balances, interest through the pool's
       variable borrow index)
@notice Tracks each borrower's debt in one reserve, stored scaled (divided by the variable
        borrow index at the time of each change) and read as scaled x the pool's current
        normalized variable debt, so debt grows with the borrow interest. Mint and Burn report
        the interest accrued since the borrower's last change (`balanceIncrease`) exactly as
        Aave v3's ScaledBalanceTokenBase does; a repayment smaller than that interest emits a
        Mint of the difference, as in Aave. Only the pool mints and burns; as in Aave, debt
        cannot be transferred or approved (credit delegation is not supported). With the bundled
        markets' zero rates the index stays at RAY and balances are plain amounts.
"""
from ethereum.ercs import IERC20Detailed

interface IPool:
    def getReserveNormalizedVariableDebt(asset: address) -> uint256: view

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Mint:
    caller: indexed(address)
    onBehalfOf: indexed(address)
    value: uint256
    balanceIncrease: uint256
    index: uint256

event Burn:
    sender: indexed(address)
    target: indexed(address)
    value: uint256
    balanceIncrease: uint256
    index: uint256

RAY: constant(uint256) = 10**27
HALF_RAY: constant(uint256) = RAY // 2

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
POOL: public(address)
UNDERLYING_ASSET_ADDRESS: public(address)

scaledBalance: HashMap[address, uint256]
previousIndex: HashMap[address, uint256]  # Aave's _userState[user].additionalData
scaledSupply: uint256


@deploy
def __init__(pool: address, underlying: address, _name: String[64], _symbol: String[32]):
    self.POOL = pool
    self.UNDERLYING_ASSET_ADDRESS = underlying
    self.name = _name
    self.symbol = _symbol
    self.decimals = staticcall IERC20Detailed(underlying).decimals()


# -- WadRayMath (half up) ------------------------------------------------------------------------
@pure
@internal
def _ray_mul(a: uint256, b: uint256) -> uint256:
    return (a * b + HALF_RAY) // RAY


@pure
@internal
def _ray_div(a: uint256, b: uint256) -> uint256:
    return (a * RAY + b // 2) // b


# -- views ---------------------------------------------------------------------------------------
@view
@internal
def _index() -> uint256:
    return staticcall IPool(self.POOL).getReserveNormalizedVariableDebt(
        self.UNDERLYING_ASSET_ADDRESS)


@view
@external
def balanceOf(user: address) -> uint256:
    scaled: uint256 = self.scaledBalance[user]
    if scaled == 0:
        return 0
    return self._ray_mul(scaled, self._index())


@view
@external
def totalSupply() -> uint256:
    return self._ray_mul(self.scaledSupply, self._index())


@view
@external
def scaledBalanceOf(user: address) -> uint256:
    return self.scaledBalance[user]


@view
@external
def scaledTotalSupply() -> uint256:
    return self.scaledSupply


@view
@external
def getScaledUserBalanceAndSupply(user: address) -> (uint256, uint256):
    return (self.scaledBalance[user], self.scaledSupply)


@view
@external
def getPreviousIndex(user: address) -> uint256:
    return self.previousIndex[user]


# -- pool hooks (Aave's ScaledBalanceTokenBase._mintScaled / _burnScaled) ----------------------
@internal
def _accrued(user: address, index: uint256) -> uint256:
    """Interest since the user's last balance change; records `index` as the new one."""
    scaled: uint256 = self.scaledBalance[user]
    increase: uint256 = self._ray_mul(scaled, index) - self._ray_mul(scaled, self.previousIndex[user])
    self.previousIndex[user] = index
    return increase


@external
def mint(user: address, onBehalfOf: address, amount: uint256, index: uint256) -> (bool, uint256):
    """@return (True when the borrower had no debt in this reserve before, the scaled total
            supply after the mint), as in Aave."""
    assert msg.sender == self.POOL, "CALLER_MUST_BE_POOL"
    amount_scaled: uint256 = self._ray_div(amount, index)
    assert amount_scaled != 0, "INVALID_MINT_AMOUNT"
    before: uint256 = self.scaledBalance[onBehalfOf]
    increase: uint256 = self._accrued(onBehalfOf, index)
    self.scaledBalance[onBehalfOf] = before + amount_scaled
    self.scaledSupply += amount_scaled
    log Transfer(sender=empty(address), receiver=onBehalfOf, value=amount + increase)
    log Mint(caller=user, onBehalfOf=onBehalfOf, value=amount + increase,
             balanceIncrease=increase, index=index)
    return (before == 0, self.scaledSupply)


@external
def burn(user: address, amount: uint256, index: uint256) -> uint256:
    """@return The scaled total supply after the burn, as in Aave."""
    assert msg.sender == self.POOL, "CALLER_MUST_BE_POOL"
    amount_scaled: uint256 = self._ray_div(amount, index)
    assert amount_scaled != 0, "INVALID_BURN_AMOUNT"
    increase: uint256 = self._accrued(user, index)
    self.scaledBalance[user] -= amount_scaled
    self.scaledSupply -= amount_scaled
    if increase > amount:
        log Transfer(sender=empty(address), receiver=user, value=increase - amount)
        log Mint(caller=user, onBehalfOf=user, value=increase - amount, balanceIncrease=increase,
                 index=index)
    else:
        log Transfer(sender=user, receiver=empty(address), value=amount - increase)
        log Burn(sender=user, target=empty(address), value=amount - increase,
                 balanceIncrease=increase, index=index)
    return self.scaledSupply


@view
@external
def allowance(owner: address, spender: address) -> uint256:
    raise "OPERATION_NOT_SUPPORTED"


@external
def approve(spender: address, amount: uint256) -> bool:
    raise "OPERATION_NOT_SUPPORTED"


@external
def transfer(receiver: address, amount: uint256) -> bool:
    raise "OPERATION_NOT_SUPPORTED"


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    raise "OPERATION_NOT_SUPPORTED"
