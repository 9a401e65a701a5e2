# pragma version ~=0.4.3
"""
@title Aave-v3-compatible variable debt token (devnet: no interest, the index stays at RAY)
@notice Tracks each borrower's debt in one reserve. Only the pool mints and burns; as in Aave,
        debt cannot be transferred or approved (credit delegation is not supported).
"""
from ethereum.ercs import IERC20Detailed

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

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
POOL: public(address)
UNDERLYING_ASSET_ADDRESS: public(address)


@deploy
def __init__(pool: address, underlying: address, _name: String[64], _symbol: String[32]):
    self.POOL = pool
    self.UNDERLYING_ASSET_ADDRESS = underlying
    self.name = _name
    self.symbol = _symbol
    self.decimals = staticcall IERC20Detailed(underlying).decimals()


@view
@external
def scaledBalanceOf(user: address) -> uint256:
    return self.balanceOf[user]


@external
def mint(user: address, onBehalfOf: address, amount: uint256) -> bool:
    """@return True when the borrower had no debt in this reserve before."""
    assert msg.sender == self.POOL, "CALLER_MUST_BE_POOL"
    assert amount != 0, "INVALID_MINT_AMOUNT"
    before: uint256 = self.balanceOf[onBehalfOf]
    self.balanceOf[onBehalfOf] = before + amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=onBehalfOf, value=amount)
    log Mint(caller=user, onBehalfOf=onBehalfOf, value=amount, balanceIncrease=0, index=RAY)
    return before == 0


@external
def burn(user: address, amount: uint256):
    assert msg.sender == self.POOL, "CALLER_MUST_BE_POOL"
    assert amount != 0, "INVALID_BURN_AMOUNT"
    self.balanceOf[user] -= amount
    self.totalSupply -= amount
    log Transfer(sender=user, receiver=empty(address), value=amount)
    log Burn(sender=user, target=empty(address), value=amount, balanceIncrease=0, index=RAY)


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
