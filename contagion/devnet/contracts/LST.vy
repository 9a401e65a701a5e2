# pragma version ~=0.4.3
"""
@title Liquid staking token (wstETH-like, non-rebasing)
@notice Stakers deposit WETH and receive shares at the redemption rate (ETH per share, 1e18),
        which the operator raises as rewards accrue. There is no instant redemption, so the
        market price (AMM and price feed) can trade below `stEthPerToken` — a depeg.
"""
from ethereum.ercs import IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event Submitted:
    sender: indexed(address)
    amount: uint256
    referral: address

event RedemptionRateUpdated:
    rate: uint256

name: public(String[64])
symbol: public(String[32])
decimals: public(constant(uint8)) = 18
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
weth: public(address)
stEthPerToken: public(uint256)
owner: public(address)


@deploy
def __init__(_name: String[64], _symbol: String[32], _weth: address):
    self.name = _name
    self.symbol = _symbol
    self.weth = _weth
    self.stEthPerToken = 10**18
    self.owner = msg.sender


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
def stake(weth_amount: uint256) -> uint256:
    """@notice Deposit WETH, receive shares at the current redemption rate."""
    assert weth_amount > 0, "zero stake"
    assert extcall IERC20(self.weth).transferFrom(msg.sender, self, weth_amount)
    shares: uint256 = weth_amount * 10**18 // self.stEthPerToken
    self.totalSupply += shares
    self.balanceOf[msg.sender] += shares
    log Submitted(sender=msg.sender, amount=weth_amount, referral=empty(address))
    log Transfer(sender=empty(address), receiver=msg.sender, value=shares)
    return shares


@view
@external
def getStETHByWstETH(shares: uint256) -> uint256:
    return shares * self.stEthPerToken // 10**18


@external
def set_redemption_rate(rate: uint256):
    """@notice Staking rewards (or a slashing) move the redemption rate."""
    assert msg.sender == self.owner, "only owner"
    assert rate > 0, "zero rate"
    self.stEthPerToken = rate
    log RedemptionRateUpdated(rate=rate)
