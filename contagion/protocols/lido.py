"""Lido: stETH submissions and the share rate its oracle reports set.

stETH balances are shares times the share rate, and wstETH is a share: `stEthPerToken()` is
`getPooledEthByShares(10**18)`, ⌊10^18 · ether / shares⌋. Only an oracle report changes the
rate (a submission adds ether and shares at the rate, moving it by rounding alone), and each
report logs its result:

- Lido v2 logs `TokenRebased`, whose post-report totals are the rate's ether and shares;
- Lido v3 (stVaults) divides internal ether by internal shares, leaving out the shares minted
  against vaults, and logs them in `InternalShareRateUpdated`, after a `TokenRebased` whose
  totals now include the vaults' shares (a rate off by rounding). Where a transaction holds
  both, the internal rate is the price.

Declarations are copied from lidofinance/core `contracts/0.4.24/Lido.sol` (v2 and v3); v3's
`_getShareRateNumerator` / `_getShareRateDenominator` are the internal ether and shares. The
devnet LST is wstETH-like and sets its rate directly (`RedemptionRateUpdated`, devnet only).
"""

from __future__ import annotations

import polars as pl

from contagion.exact import mul_div
from contagion.protocols.canonical import Context, Tables, feed_prices
from contagion.protocols.spec import event

PROTOCOL = "lido"

SUBMITTED = event(PROTOCOL, "Submitted(address indexed sender, uint256 amount, address referral)",
                  "0x96a25c8ce0baabc1fdefd93e9ed25d8e092a3332f3aa9a41722b5697231d1d1a")
TOKEN_REBASED = event(
    PROTOCOL,
    "TokenRebased(uint256 indexed reportTimestamp, uint256 timeElapsed, uint256 preTotalShares, "
    "uint256 preTotalEther, uint256 postTotalShares, uint256 postTotalEther, "
    "uint256 sharesMintedAsFees)",
    "0xff08c3ef606d198e316ef5b822193c489965899eb4e3c248cea1a4626c3eda50")
INTERNAL_SHARE_RATE_UPDATED = event(
    PROTOCOL,
    "InternalShareRateUpdated(uint256 indexed reportTimestamp, uint256 postInternalShares, "
    "uint256 postInternalEther, uint256 sharesMintedAsFees)",
    "0xaf00d86be4cd299db16aa59803992e174fa88b67d81a0c7dd0148f9a75606a8d")
RATE_UPDATED = event(PROTOCOL, "RedemptionRateUpdated(uint256 rate)",
                     "0xcb505eb4841d5e2273dccaff5e53d23e263e5ca97c72458c2b68a9ca652b70dd",
                     real=False,
                     note="devnet LST: stETH per ETH redeemable, 1e18 (Lido rebases instead)")

EVENTS = (SUBMITTED, TOKEN_REBASED, INTERNAL_SHARE_RATE_UPDATED, RATE_UPDATED)

_REPORT = ["chain_id", "block_number", "block_time", "transaction_hash", "log_index",
           "contract_address"]


def prices(tables: Tables, ctx: Context) -> pl.DataFrame:
    """The share rate of each report at a registry `protocol: lido` feed's contract, as rows of
    `prices` (`feed_prices`) in the feed's quote, stETH, so `price_usd` is null (the warehouse
    multiplies by stETH's USD price): answer_raw = ⌊10^decimals · ether / shares⌋, exact, as
    `getPooledEthByShares(10**decimals)` computes it; null where shares are 0."""
    feeds = ctx.feeds.filter(pl.col("feed_protocol") == PROTOCOL).select(
        "chain_id", pl.col("emitter").alias("contract_address"), "feed", "feed_id",
        "feed_decimals", "base", "base_token", "quote_token")
    internal = tables["lido__internal_share_rate_updated"].select(
        *_REPORT, pl.col("post_internal_ether").alias("ether"),
        pl.col("post_internal_shares").alias("shares"))
    rebased = tables["lido__token_rebased"].select(
        *_REPORT, pl.col("post_total_ether").alias("ether"),
        pl.col("post_total_shares").alias("shares"),
    ).join(internal.select("chain_id", "transaction_hash", "contract_address"),
           on=["chain_id", "transaction_hash", "contract_address"], how="anti")
    reports = pl.concat([rebased, internal]).join(
        feeds, on=["chain_id", "contract_address"])
    # 10^decimals · ether passes 38 digits (ether is ~10^25 wei): Python integers, one report
    # a day per chain
    rates = [None if shares in (None, "0") or ether is None
             else str(mul_div(10**decimals, int(ether), int(shares), "down"))
             for ether, shares, decimals in reports.select("ether", "shares", "feed_decimals"
                                                           ).iter_rows()]
    return feed_prices(reports.with_columns(pl.Series("rate", rates, pl.String)),
                       pl.col("rate"))
