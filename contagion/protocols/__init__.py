"""Protocol families: each module declares its events once (real Solidity signatures).

`ALL_EVENTS` is every event the decoder knows, in the order that settles ties: when two specs
share a signature (an ERC-20 `Transfer` and Comet's own), the first is the default and the
other claims the logs of its protocol's registered contracts.
"""

from contagion.protocols import (
    aave_v3,
    chainlink,
    compound_v3,
    erc20,
    gmx_v1,
    lido,
    morpho_blue,
    opyn_gamma,
    risk_oracle,
    uniswap_v2,
    uniswap_v3,
)
from contagion.protocols.spec import EventSpec

__all__ = ["ALL_EVENTS", "CREATOR", "MODULES"]

MODULES = (erc20, aave_v3, compound_v3, morpho_blue, chainlink, lido, uniswap_v2, uniswap_v3,
           gmx_v1, opyn_gamma, risk_oracle)
ALL_EVENTS: tuple[EventSpec, ...] = tuple(spec for module in MODULES for spec in module.EVENTS)

# The event that announces contracts a venue creates (address in the named decoded column)
# whose own logs the pipeline needs: the options venue's oTokens (their transfers are holdings,
# their burns identify a liquidated series). The registry cannot list them in advance.
CREATOR: tuple[EventSpec, str] = (opyn_gamma.OTOKEN_CREATED, "token_address")
