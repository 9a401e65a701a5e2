"""Ground truth of harm: liquidations and bad debt per venue, read back from the chain's events.

A scenario's manifest says what was pushed into the world; what the world suffered is only
what its contracts recorded. Bad debt is valued in USD at the price feed's answer as of the
event's own block.

Bad debt per venue, by what each protocol records:
- Aave v3: `DeficitCreated.amountCreated`, in the debt asset.
- Morpho Blue: `Liquidate.badDebtAssets`, in the market's loan token.
- GMX-v1 perps and the options venue: the devnet's `BadDebt` / `VaultBadDebt` (USD).
- Compound v3 records none: an absorb counts as bad debt when the collateral it seized was worth
  less than the debt it absorbed, both in USD as its `AbsorbCollateral` / `AbsorbDebt` events
  value them; the difference is the loss.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from eth_abi import decode

from contagion.chain.multicall import words
from contagion.chain.rpc import RpcClient
from contagion.protocols import aave_v3, compound_v3, gmx_v1, morpho_blue, opyn_gamma
from contagion.protocols.spec import EventSpec
from contagion.registry import Registry

__all__ = ["HARM_EVENTS", "VenueHarm", "harm_from_chain"]

HARM_EVENTS: dict[str, tuple[EventSpec, ...]] = {
    "aave_v3": (aave_v3.LIQUIDATION_CALL, aave_v3.DEFICIT_CREATED),
    "compound_v3": (compound_v3.ABSORB_DEBT, compound_v3.ABSORB_COLLATERAL),
    "morpho_blue": (morpho_blue.LIQUIDATE,),
    "gmx_v1": (gmx_v1.LIQUIDATE_POSITION, gmx_v1.BAD_DEBT),
    "opyn_gamma": (opyn_gamma.VAULT_LIQUIDATED, opyn_gamma.VAULT_BAD_DEBT),
}
LIQUIDATIONS = (aave_v3.LIQUIDATION_CALL, compound_v3.ABSORB_DEBT, morpho_blue.LIQUIDATE,
                gmx_v1.LIQUIDATE_POSITION, opyn_gamma.VAULT_LIQUIDATED)
LATEST_ROUND_DATA = bytes.fromhex("feaf968c")  # latestRoundData()


@dataclass
class VenueHarm:
    liquidations: int = 0
    bad_debt_events: int = 0
    bad_debt_usd: float = 0.0
    first_bad_debt_block: int | None = None

    def record_bad_debt(self, usd: float, block: int) -> None:
        self.bad_debt_events += 1
        self.bad_debt_usd += usd
        if self.first_bad_debt_block is None or block < self.first_bad_debt_block:
            self.first_bad_debt_block = block


def _fields(spec: EventSpec, data: str) -> dict[str, Any]:
    params = [p for p in spec.params if not p.indexed]
    values = decode([p.type for p in params], bytes.fromhex(data[2:]))
    return {p.name: v for p, v in zip(params, values, strict=True)}


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:].lower()


class _Prices:
    """USD per whole token from the registry's Chainlink feed, as of a block."""

    def __init__(self, client: RpcClient, registry: Registry) -> None:
        self.client = client
        self.feeds = {f.base: f for f in registry.feeds if f.kind == "price"}
        self.tokens = {t.address.lower(): t for t in registry.tokens}
        self.cache: dict[tuple[str, int], float] = {}

    def value(self, token_address: str, amount: int, block: int) -> float:
        token = self.tokens.get(token_address.lower())
        if token is None:
            raise KeyError(f"bad debt in {token_address}, a token the registry does not list")
        symbol = token.underlying if token.kind == "atoken" and token.underlying else token.symbol
        feed = self.feeds.get(symbol)
        if feed is None:
            raise KeyError(f"no price feed for {symbol} in the registry")
        if (symbol, block) not in self.cache:
            reply = self.client.call("eth_call", [{"to": feed.address,
                                                   "data": "0x" + LATEST_ROUND_DATA.hex()},
                                                  hex(block)])
            answer = words(bytes.fromhex(reply[2:]))[1]
            self.cache[(symbol, block)] = answer / 10**feed.decimals
        return float(amount / 10**token.decimals * self.cache[(symbol, block)])


def harm_from_chain(client: RpcClient, registry: Registry, first: int,
                    last: int) -> dict[str, VenueHarm]:
    """Liquidations and bad debt per venue id in blocks [first, last]."""
    prices = _Prices(client, registry)
    morpho_loans = {m.id.lower(): registry.token(str(m.loan)).address
                    for v in registry.venues if v.protocol == "morpho_blue" for m in v.markets}
    out: dict[str, VenueHarm] = {}
    for venue in registry.venues:
        specs = HARM_EVENTS.get(venue.protocol)
        if specs is None:
            continue
        address = venue.main_contract
        logs = client.call("eth_getLogs", [{"fromBlock": hex(first), "toBlock": hex(last),
                                            "address": address,
                                            "topics": [[s.topic0 for s in specs]]}])
        harm = VenueHarm()
        # Comet: per (transaction, borrower), the block and the USD (8 decimals) of debt
        # absorbed and of collateral seized
        absorbed: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for log in logs:
            spec = next(s for s in specs if s.topic0 == log["topics"][0])
            fields = _fields(spec, log["data"])
            block = int(log["blockNumber"], 16)
            if spec in LIQUIDATIONS:
                harm.liquidations += 1
            loss = 0.0
            if spec is aave_v3.DEFICIT_CREATED:
                loss = prices.value(_topic_address(log["topics"][2]), fields["amountCreated"],
                                    block)
            elif spec is morpho_blue.LIQUIDATE and fields["badDebtAssets"] > 0:
                loss = prices.value(morpho_loans[log["topics"][1].lower()],
                                    fields["badDebtAssets"], block)
            elif spec is gmx_v1.BAD_DEBT:
                loss = fields["amountUsd"] / 10**30
            elif spec is opyn_gamma.VAULT_BAD_DEBT:
                loss = fields["shortfallUsd"] / 10**8
            elif spec is compound_v3.ABSORB_DEBT:
                absorbed[(log["transactionHash"], log["topics"][2])][0] += fields["usdValue"]
                absorbed[(log["transactionHash"], log["topics"][2])][2] = block
            elif spec is compound_v3.ABSORB_COLLATERAL:
                absorbed[(log["transactionHash"], log["topics"][2])][1] += fields["usdValue"]
            if loss > 0:
                harm.record_bad_debt(loss, block)
        for debt_usd, collateral_usd, block in absorbed.values():
            if debt_usd > collateral_usd:
                harm.record_bad_debt((debt_usd - collateral_usd) / 10**8, block)
        out[venue.id] = harm
    return out
