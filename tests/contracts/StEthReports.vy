# pragma version ~=0.4.3
"""
@title Lido's share accounting as its oracle reports log it (a test contract)
@notice stETH is shares times the share rate: internal ether over internal shares (Lido v3
        leaves out the shares minted against vaults; v2 had none). A report sets the ether and
        mints fee shares, then logs `TokenRebased` with the totals, and, as v3 does,
        `InternalShareRateUpdated` with the internal ones. Nothing else of Lido is here.
"""

event TokenRebased:
    reportTimestamp: indexed(uint256)
    timeElapsed: uint256
    preTotalShares: uint256
    preTotalEther: uint256
    postTotalShares: uint256
    postTotalEther: uint256
    sharesMintedAsFees: uint256

event InternalShareRateUpdated:
    reportTimestamp: indexed(uint256)
    postInternalShares: uint256
    postInternalEther: uint256
    sharesMintedAsFees: uint256

internalShares: public(uint256)
internalEther: public(uint256)
externalShares: public(uint256)
lastReport: public(uint256)


@deploy
def __init__(shares: uint256, pooled: uint256):
    self.internalShares = shares
    self.internalEther = pooled
    self.lastReport = block.timestamp


@view
@internal
def _totals() -> (uint256, uint256):
    external_ether: uint256 = self.externalShares * self.internalEther // self.internalShares
    return self.internalShares + self.externalShares, self.internalEther + external_ether


@view
@external
def getPooledEthByShares(shares: uint256) -> uint256:
    return shares * self.internalEther // self.internalShares


@external
def submit(amount: uint256):
    """@notice A deposit: shares at the rate, rounded down (the rate moves by rounding only)."""
    self.internalShares += amount * self.internalShares // self.internalEther
    self.internalEther += amount


@external
def mint_external_shares(shares: uint256):
    self.externalShares += shares


@external
def report(post_internal_ether: uint256, fee_shares: uint256, v3: bool):
    pre_shares: uint256 = 0
    pre_ether: uint256 = 0
    pre_shares, pre_ether = self._totals()
    self.internalEther = post_internal_ether
    self.internalShares += fee_shares
    post_shares: uint256 = 0
    post_ether: uint256 = 0
    post_shares, post_ether = self._totals()
    log TokenRebased(reportTimestamp=block.timestamp,
                     timeElapsed=block.timestamp - self.lastReport, preTotalShares=pre_shares,
                     preTotalEther=pre_ether, postTotalShares=post_shares,
                     postTotalEther=post_ether, sharesMintedAsFees=fee_shares)
    if v3:
        log InternalShareRateUpdated(reportTimestamp=block.timestamp,
                                     postInternalShares=self.internalShares,
                                     postInternalEther=self.internalEther,
                                     sharesMintedAsFees=fee_shares)
    self.lastReport = block.timestamp
