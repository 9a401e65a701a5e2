# pragma version ~=0.4.3
"""
@title Aave-v3-compatible aToken (devnet: no interest, the index stays at RAY)
@notice Holds the reserve's underlying, as in Aave; balances are 1:1 claims on it. Transfers
        are real ERC-20 transfers (aTokens are posted as collateral elsewhere), but, as in v3,
        the pool validates the sender's health factor and moves the collateral flags after each
        one (`finalizeTransfer`). Mint/Burn/BalanceTransfer have Aave's v3 signatures.
"""
from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

interface IPool:
    def finalizeTransfer(asset: address, sender: address, receiver: address, amount: uint256,
                         balanceFromBefore: uint256, balanceToBefore: uint256): nonpayable

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

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
POOL: public(address)
UNDERLYING_ASSET_ADDRESS: public(address)


@deploy
def __init__(pool: address, underlying: address, _name: String[64], _symbol: String[32]):
    self.POOL = pool
    self.UNDERLYING_ASSET_ADDRESS = underlying
    self.name = _name
    self.symbol = _symbol
    self.decimals = staticcall IERC20Detailed(underlying).decimals()


@internal
def _only_pool():
    assert msg.sender == self.POOL, "CALLER_MUST_BE_POOL"


@internal
def _transfer(sender: address, receiver: address, amount: uint256, validate: bool):
    assert receiver != empty(address), "transfer to zero address"
    from_before: uint256 = self.balanceOf[sender]
    to_before: uint256 = self.balanceOf[receiver]
    self.balanceOf[sender] = from_before - amount
    self.balanceOf[receiver] += amount
    if validate:
        extcall IPool(self.POOL).finalizeTransfer(self.UNDERLYING_ASSET_ADDRESS, sender, receiver,
                                                  amount, from_before, to_before)
    log Transfer(sender=sender, receiver=receiver, value=amount)
    log BalanceTransfer(sender=sender, receiver=receiver, value=amount, index=RAY)


@view
@external
def scaledBalanceOf(user: address) -> uint256:
    return self.balanceOf[user]


@view
@external
def scaledTotalSupply() -> uint256:
    return self.totalSupply


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


@external
def mint(caller: address, onBehalfOf: address, amount: uint256) -> bool:
    """@return True when the holder's balance was zero before (first supply)."""
    self._only_pool()
    assert amount != 0, "INVALID_MINT_AMOUNT"
    before: uint256 = self.balanceOf[onBehalfOf]
    self.balanceOf[onBehalfOf] = before + amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=onBehalfOf, value=amount)
    log Mint(caller=caller, onBehalfOf=onBehalfOf, value=amount, balanceIncrease=0, index=RAY)
    return before == 0


@external
def burn(user: address, receiverOfUnderlying: address, amount: uint256):
    self._only_pool()
    assert amount != 0, "INVALID_BURN_AMOUNT"
    self.balanceOf[user] -= amount
    self.totalSupply -= amount
    log Transfer(sender=user, receiver=empty(address), value=amount)
    log Burn(sender=user, target=receiverOfUnderlying, value=amount, balanceIncrease=0,
             index=RAY)
    if receiverOfUnderlying != self:
        assert extcall IERC20(self.UNDERLYING_ASSET_ADDRESS).transfer(receiverOfUnderlying, amount)


@external
def transferOnLiquidation(sender: address, receiver: address, amount: uint256):
    self._only_pool()
    self._transfer(sender, receiver, amount, False)


@external
def transferUnderlyingTo(target: address, amount: uint256):
    self._only_pool()
    assert extcall IERC20(self.UNDERLYING_ASSET_ADDRESS).transfer(target, amount)
