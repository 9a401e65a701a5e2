"""The one Definitions object. The pipeline's assets arrive with the indexing issue; for now the
devnet registry is exposed as an asset so the UI shows where the chain's description comes from.
"""


import os
from pathlib import Path

import dagster as dg

from contagion.registry import load_registry


@dg.asset(description="The network registry: venues, tokens, issued claims and oracle feeds.")
def registry(context: dg.AssetExecutionContext) -> dg.MaterializeResult[None]:
    source = os.environ.get("CONTAGION_REGISTRY", str(Path("data") / "registry.yaml"))
    reg = load_registry(source)
    return dg.MaterializeResult(metadata={
        "network": reg.network, "chain_id": reg.chain_id, "source": source,
        "venues": len(reg.venues), "tokens": len(reg.tokens), "feeds": len(reg.feeds),
    })


defs = dg.Definitions(assets=[registry])
