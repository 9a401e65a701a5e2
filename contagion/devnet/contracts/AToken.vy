# pragma version ~=0.4.3
"""
@title Aave-v3-compatible aToken (scaled balances, interest through the pool's liquidity index)
@notice Holds the reserve's underlying, as in Aave. Balances are stored scaled (divided by the
        liquidity index at the time of each change) and read as scaled x the pool's current
        normalized income, so they grow with the supply interest; each holder's index at their
        last balance change is kept (`getPreviousIndex`), and every mint, burn and transfer
        reports the interest accrued since then (`balanceIncrease`), exactly as Aave v3's
        ScaledBalanceTokenBase / AToken do (WadRayMath, half-up rounding). Transfers are real
        ERC-20 transfers (aTokens are posted as collateral elsewhere), but, as in v3, the pool
        validates the sender's health factor and moves the collateral flags after each one
        (`finalizeTransfer`). Mint/Burn/BalanceTransfer have Aave's v3 signatures; with the
        bundled markets' zero rates the index stays at RAY and balances are plain amounts.
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

interface IPool:
    def finalizeTransfer(asset: address, sender: address, receiver: address, amount: uint256,
                         balanceFromBefore: uint256, balanceToBefore: uint256): nonpayable
    def getReserveNormalizedIncome(asset: address) -> uint256: view
    def treasury() -> address: view

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
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

event BalanceTransfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256
    index: uint256

RAY: constant(uint256) = 10**27
HALF_RAY: constant(uint256) = RAY // 2

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
allowance: public(HashMap[address, HashMap[address, uint256]])
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
    return staticcall IPool(self.POOL).getReserveNormalizedIncome(self.UNDERLYING_ASSET_ADDRESS)


@view
@external
def balanceOf(user: address) -> uint256:
    return self._ray_mul(self.scaledBalance[user], self._index())


@view
@external
def totalSupply() -> uint256:
    supply: uint256 = self.scaledSupply
    if supply == 0:
        return 0
    return self._ray_mul(supply, self._index())


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


@view
@external
def RESERVE_TREASURY_ADDRESS() -> address:
    return staticcall IPool(self.POOL).treasury()


# -- scaled balance logic (Aave's ScaledBalanceTokenBase) ---------------------------------------
@internal
def _only_pool():
    assert msg.sender == self.POOL, "CALLER_MUST_BE_POOL"


@internal
def _accrued(user: address, index: uint256) -> uint256:
    """Interest since the user's last balance change; records `index` as the new one."""
    scaled: uint256 = self.scaledBalance[user]
    increase: uint256 = self._ray_mul(scaled, index) - self._ray_mul(scaled, self.previousIndex[user])
    self.previousIndex[user] = index
    return increase


@internal
def _mint_scaled(caller: address, onBehalfOf: address, amount: uint256, index: uint256) -> bool:
    amount_scaled: uint256 = self._ray_div(amount, index)
    assert amount_scaled != 0, "INVALID_MINT_AMOUNT"
    before: uint256 = self.scaledBalance[onBehalfOf]
    increase: uint256 = self._accrued(onBehalfOf, index)
    self.scaledBalance[onBehalfOf] = before + amount_scaled
    self.scaledSupply += amount_scaled
    log Transfer(sender=empty(address), receiver=onBehalfOf, value=amount + increase)
    log Mint(caller=caller, onBehalfOf=onBehalfOf, value=amount + increase,
             balanceIncrease=increase, index=index)
    return before == 0


@internal
def _burn_scaled(user: address, target: address, amount: uint256, index: uint256):
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
        log Burn(sender=user, target=target, value=amount - increase, balanceIncrease=increase,
                 index=index)


@internal
def _transfer(sender: address, receiver: address, amount: uint256, validate: bool):
    assert receiver != empty(address), "transfer to zero address"
    index: uint256 = self._index()
    from_before: uint256 = self._ray_mul(self.scaledBalance[sender], index)
    to_before: uint256 = self._ray_mul(self.scaledBalance[receiver], index)
    sender_increase: uint256 = self._accrued(sender, index)
    receiver_increase: uint256 = self._accrued(receiver, index)
    amount_scaled: uint256 = self._ray_div(amount, index)
    self.scaledBalance[sender] -= amount_scaled
    self.scaledBalance[receiver] += amount_scaled
    if sender_increase > 0:
        log Transfer(sender=empty(address), receiver=sender, value=sender_increase)
        log Mint(caller=msg.sender, onBehalfOf=sender, value=sender_increase,
                 balanceIncrease=sender_increase, index=index)
    if sender != receiver and receiver_increase > 0:
        log Transfer(sender=empty(address), receiver=receiver, value=receiver_increase)
        log Mint(caller=msg.sender, onBehalfOf=receiver, value=receiver_increase,
                 balanceIncrease=receiver_increase, index=index)
    log Transfer(sender=sender, receiver=receiver, value=amount)
    if validate:
        extcall IPool(self.POOL).finalizeTransfer(self.UNDERLYING_ASSET_ADDRESS, sender, receiver,
                                                  amount, from_before, to_before)
    log BalanceTransfer(sender=sender, receiver=receiver, value=amount_scaled, index=index)


# -- ERC-20 --------------------------------------------------------------------------------------
@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount, True)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, receiver, amount, True)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


# -- pool hooks ----------------------------------------------------------------------------------
@external
def mint(caller: address, onBehalfOf: address, amount: uint256, index: uint256) -> bool:
    """@return True when the holder's balance was zero before (first supply)."""
    self._only_pool()
    return self._mint_scaled(caller, onBehalfOf, amount, index)


@external
def burn(user: address, receiverOfUnderlying: address, amount: uint256, index: uint256):
    self._only_pool()
    self._burn_scaled(user, receiverOfUnderlying, amount, index)
    if receiverOfUnderlying != self:
        assert extcall IERC20(self.UNDERLYING_ASSET_ADDRESS).transfer(receiverOfUnderlying, amount)


@external
def mintToTreasury(amount: uint256, index: uint256):
    self._only_pool()
    if amount == 0:
        return
    treasury: address = staticcall IPool(self.POOL).treasury()
    assert treasury != empty(address), "treasury not set"
    self._mint_scaled(self.POOL, treasury, amount, index)


@external
def transferOnLiquidation(sender: address, receiver: address, amount: uint256):
    self._only_pool()
    self._transfer(sender, receiver, amount, False)


@external
def transferUnderlyingTo(target: address, amount: uint256):
    self._only_pool()
    assert extcall IERC20(self.UNDERLYING_ASSET_ADDRESS).transfer(target, amount)
