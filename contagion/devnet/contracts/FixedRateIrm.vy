# pragma version ~=0.4.3
"""
@title Interest rate model with one fixed borrow rate
@notice Morpho Blue's IIrm: `borrowRate` is the per-second borrow rate in WAD, the same for
        every market and utilization. The devnet uses it to make a Morpho market accrue.
"""

struct MarketParams:
    loanToken: address
    collateralToken: address
    oracle: address
    irm: address
    lltv: uint256

struct Market:
    totalSupplyAssets: uint128
    totalSupplyShares: uint128
    totalBorrowAssets: uint128
    totalBorrowShares: uint128
    lastUpdate: uint128
    fee: uint128

ratePerSecond: public(uint256)


@deploy
def __init__(ratePerSecond: uint256):
    self.ratePerSecond = ratePerSecond


@external
def borrowRate(marketParams: MarketParams, market: Market) -> uint256:
    return self.ratePerSecond


@view
@external
def borrowRateView(marketParams: MarketParams, market: Market) -> uint256:
    return self.ratePerSecond
