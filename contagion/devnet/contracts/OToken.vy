# pragma version ~=0.4.3
"""
@title Opyn-style oToken: an ERC-20 claim on one option series (8 decimals)
@notice Deployed once as a template; the options venue spawns each series as an EIP-1167
        minimal proxy of it (as Opyn's OtokenFactory does) and calls `initialize`. Only the venue
        that initialised a series (its controller) may mint and burn it.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

decimals: public(constant(uint8)) = 8

name: public(String[192])
symbol: public(String[192])
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

controller: public(address)
underlyingAsset: public(address)
strikeAsset: public(address)
collateralAsset: public(address)
strikePrice: public(uint256)  # USD per underlying, 8 decimals
expiryTimestamp: public(uint256)
isPut: public(bool)
initialized: bool


@deploy
def __init__():
    # The template itself is never a series: lock it so only proxies can be initialised.
    self.initialized = True


@external
def initialize(_controller: address, _underlying: address, _strike: address,
               _collateral: address, _strike_price: uint256, _expiry: uint256, _is_put: bool):
    assert not self.initialized, "already initialized"
    self.initialized = True
    self.controller = _controller
    self.underlyingAsset = _underlying
    self.strikeAsset = _strike
    self.collateralAsset = _collateral
    self.strikePrice = _strike_price
    self.expiryTimestamp = _expiry
    self.isPut = _is_put
    kind: String[1] = "C"
    if _is_put:
        kind = "P"
    strike_text: String[78] = uint2str(_strike_price // 10**8)
    self.symbol = concat("oWETHUSDC-", uint2str(_expiry), "-", strike_text, kind)
    self.name = concat("oToken WETH/USDC ", strike_text, " ", kind)


@view
@external
def getOtokenDetails() -> (address, address, address, uint256, uint256, bool):
    return (self.collateralAsset, self.underlyingAsset, self.strikeAsset, self.strikePrice,
            self.expiryTimestamp, self.isPut)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "transfer to zero address"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mintOtoken(account: address, amount: uint256):
    assert msg.sender == self.controller, "only controller"
    self.totalSupply += amount
    self.balanceOf[account] += amount
    log Transfer(sender=empty(address), receiver=account, value=amount)


@external
def burnOtoken(account: address, amount: uint256):
    assert msg.sender == self.controller, "only controller"
    self.balanceOf[account] -= amount
    self.totalSupply -= amount
    log Transfer(sender=account, receiver=empty(address), value=amount)
