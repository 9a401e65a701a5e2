# pragma version ~=0.4.3
"""
@title Uniswap-v2-compatible constant-product pair
@notice Same events, views and core entry points (mint, burn, swap) as UniswapV2Pair, 0.3% fee.
        `swap_exact_in` and `add_liquidity` do the router's pull-then-call in one transaction.
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

event Mint:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256

event Burn:
    sender: indexed(address)
    amount0: uint256
    amount1: uint256
    to: indexed(address)

event Swap:
    sender: indexed(address)
    amount0In: uint256
    amount1In: uint256
    amount0Out: uint256
    amount1Out: uint256
    to: indexed(address)

event Sync:
    reserve0: uint112
    reserve1: uint112

MINIMUM_LIQUIDITY: constant(uint256) = 1000

name: public(constant(String[16])) = "Uniswap V2"
symbol: public(constant(String[8])) = "UNI-V2"
decimals: public(constant(uint8)) = 18
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

token0: public(address)
token1: public(address)
reserve0: uint112
reserve1: uint112
blockTimestampLast: uint32


@deploy
def __init__(token_a: address, token_b: address):
    assert token_a != token_b, "identical tokens"
    if convert(token_a, uint160) < convert(token_b, uint160):
        self.token0 = token_a
        self.token1 = token_b
    else:
        self.token0 = token_b
        self.token1 = token_a


@view
@external
def getReserves() -> (uint112, uint112, uint32):
    return (self.reserve0, self.reserve1, self.blockTimestampLast)


@internal
def _mint_lp(receiver: address, amount: uint256):
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
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


@internal
def _update(balance0: uint256, balance1: uint256):
    self.reserve0 = convert(balance0, uint112)
    self.reserve1 = convert(balance1, uint112)
    self.blockTimestampLast = convert(block.timestamp % 2**32, uint32)
    log Sync(reserve0=self.reserve0, reserve1=self.reserve1)


@internal
def _mint(to: address) -> uint256:
    balance0: uint256 = staticcall IERC20(self.token0).balanceOf(self)
    balance1: uint256 = staticcall IERC20(self.token1).balanceOf(self)
    amount0: uint256 = balance0 - convert(self.reserve0, uint256)
    amount1: uint256 = balance1 - convert(self.reserve1, uint256)
    liquidity: uint256 = 0
    if self.totalSupply == 0:
        liquidity = isqrt(amount0 * amount1) - MINIMUM_LIQUIDITY
        self._mint_lp(empty(address), MINIMUM_LIQUIDITY)
    else:
        liquidity = min(amount0 * self.totalSupply // convert(self.reserve0, uint256),
                        amount1 * self.totalSupply // convert(self.reserve1, uint256))
    assert liquidity > 0, "UniswapV2: INSUFFICIENT_LIQUIDITY_MINTED"
    self._mint_lp(to, liquidity)
    self._update(balance0, balance1)
    log Mint(sender=msg.sender, amount0=amount0, amount1=amount1)
    return liquidity


@external
def mint(to: address) -> uint256:
    return self._mint(to)


@external
def burn(to: address) -> (uint256, uint256):
    balance0: uint256 = staticcall IERC20(self.token0).balanceOf(self)
    balance1: uint256 = staticcall IERC20(self.token1).balanceOf(self)
    liquidity: uint256 = self.balanceOf[self]
    amount0: uint256 = liquidity * balance0 // self.totalSupply
    amount1: uint256 = liquidity * balance1 // self.totalSupply
    assert amount0 > 0 and amount1 > 0, "UniswapV2: INSUFFICIENT_LIQUIDITY_BURNED"
    self.balanceOf[self] = 0
    self.totalSupply -= liquidity
    log Transfer(sender=self, receiver=empty(address), value=liquidity)
    assert extcall IERC20(self.token0).transfer(to, amount0)
    assert extcall IERC20(self.token1).transfer(to, amount1)
    self._update(balance0 - amount0, balance1 - amount1)
    log Burn(sender=msg.sender, amount0=amount0, amount1=amount1, to=to)
    return (amount0, amount1)


@internal
def _swap(amount0_out: uint256, amount1_out: uint256, to: address):
    assert amount0_out > 0 or amount1_out > 0, "UniswapV2: INSUFFICIENT_OUTPUT_AMOUNT"
    r0: uint256 = convert(self.reserve0, uint256)
    r1: uint256 = convert(self.reserve1, uint256)
    assert amount0_out < r0 and amount1_out < r1, "UniswapV2: INSUFFICIENT_LIQUIDITY"
    if amount0_out > 0:
        assert extcall IERC20(self.token0).transfer(to, amount0_out)
    if amount1_out > 0:
        assert extcall IERC20(self.token1).transfer(to, amount1_out)
    balance0: uint256 = staticcall IERC20(self.token0).balanceOf(self)
    balance1: uint256 = staticcall IERC20(self.token1).balanceOf(self)
    amount0_in: uint256 = 0
    amount1_in: uint256 = 0
    if balance0 > r0 - amount0_out:
        amount0_in = balance0 - (r0 - amount0_out)
    if balance1 > r1 - amount1_out:
        amount1_in = balance1 - (r1 - amount1_out)
    assert amount0_in > 0 or amount1_in > 0, "UniswapV2: INSUFFICIENT_INPUT_AMOUNT"
    adjusted0: uint256 = balance0 * 1000 - amount0_in * 3
    adjusted1: uint256 = balance1 * 1000 - amount1_in * 3
    assert adjusted0 * adjusted1 >= r0 * r1 * 1000**2, "UniswapV2: K"
    self._update(balance0, balance1)
    log Swap(sender=msg.sender, amount0In=amount0_in, amount1In=amount1_in,
             amount0Out=amount0_out, amount1Out=amount1_out, to=to)


@external
def swap(amount0_out: uint256, amount1_out: uint256, to: address, data: Bytes[256]):
    assert len(data) == 0, "flash swaps are not supported on the devnet"
    self._swap(amount0_out, amount1_out, to)


@view
@internal
def _amount_out(amount_in: uint256, reserve_in: uint256, reserve_out: uint256) -> uint256:
    fee_adjusted: uint256 = amount_in * 997
    return fee_adjusted * reserve_out // (reserve_in * 1000 + fee_adjusted)


@view
@external
def getAmountOut(token_in: address, amount_in: uint256) -> uint256:
    if token_in == self.token0:
        return self._amount_out(amount_in, convert(self.reserve0, uint256),
                                convert(self.reserve1, uint256))
    return self._amount_out(amount_in, convert(self.reserve1, uint256),
                            convert(self.reserve0, uint256))


@external
def swap_exact_in(token_in: address, amount_in: uint256, min_out: uint256,
                  to: address) -> uint256:
    """@notice The router's swapExactTokensForTokens for this one pair."""
    assert token_in == self.token0 or token_in == self.token1, "token not in pair"
    assert extcall IERC20(token_in).transferFrom(msg.sender, self, amount_in)
    out: uint256 = 0
    if token_in == self.token0:
        out = self._amount_out(amount_in, convert(self.reserve0, uint256),
                               convert(self.reserve1, uint256))
        assert out >= min_out, "UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT"
        self._swap(0, out, to)
    else:
        out = self._amount_out(amount_in, convert(self.reserve1, uint256),
                               convert(self.reserve0, uint256))
        assert out >= min_out, "UniswapV2Router: INSUFFICIENT_OUTPUT_AMOUNT"
        self._swap(out, 0, to)
    return out


@external
def add_liquidity(amount0: uint256, amount1: uint256, to: address) -> uint256:
    assert extcall IERC20(self.token0).transferFrom(msg.sender, self, amount0)
    assert extcall IERC20(self.token1).transferFrom(msg.sender, self, amount1)
    return self._mint(to)
