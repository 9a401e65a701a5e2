"""The registry: which venues, tokens, claims and oracle feeds make up a network.

One YAML file per network. The devnet's is written by deployment into the data dir; the bundled
ones (`contagion/registries/*.yaml`) hold real mainnet and L2 addresses. The schema is strict:
an unknown field, a malformed address or a dangling reference is an error that names the field.
Documented in README.md (Registry) and docs/canonical.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from contagion.schema import describe_validation_error, read_yaml

__all__ = [
    "BUNDLED_REGISTRIES",
    "USD",
    "Claim",
    "Feed",
    "FeedPhase",
    "Market",
    "Registry",
    "RegistryError",
    "Token",
    "Venue",
    "load_registry",
    "save_registry",
]

BUNDLED_REGISTRIES = Path(__file__).parent / "registries"
# Chainlink's Denominations.USD (ISO 4217 code 840 = 0x348): the token USD is, where a table
# needs an address for it (USD-valued flows, what a USD feed quotes in).
USD = "0x0000000000000000000000000000000000000348"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not a 20-byte hex address (0x + 40 hex digits)")
    return value


Address = Annotated[str, AfterValidator(_address)]
Protocol = Literal["aave_v3", "compound_v3", "morpho_blue", "gmx_v1", "opyn_gamma",
                   "uniswap_v2", "lido", "chainlink", "erc20"]
VenueKind = Literal["lending", "perps", "options", "amm", "staking"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Token(_Strict):
    symbol: str
    address: Address
    decimals: int = Field(ge=0, le=77)
    name: str = ""
    kind: Literal["asset", "atoken", "debt_token", "lst", "lp_share", "vault_share", "otoken",
                  "governance", "stablecoin"] = "asset"
    issued_by: str | None = None  # venue id, for claims a venue issues
    underlying: str | None = None  # token symbol the claim is on


class FeedPhase(_Strict):
    """An aggregator behind a proxy feed and the first block at which the proxy serves its
    answers (until the next phase's `from_block`)."""

    aggregator: Address
    from_block: int = Field(default=0, ge=0)


class Feed(_Strict):
    id: str
    address: Address
    decimals: int = Field(ge=0, le=36)
    kind: Literal["price", "implied_vol", "risk_reversal"] = "price"
    # Who logs the answers: a Chainlink aggregator (AnswerUpdated), or Lido's stETH contract,
    # whose oracle reports set the share rate: stETH per share, i.e. per wstETH
    # (contagion.protocols.lido), 10**decimals fixed point as `stEthPerToken()` reads it.
    protocol: Literal["chainlink", "lido"] = "chainlink"
    base: str  # token symbol priced, or the underlying of a vol feed
    # What a price feed's answer is in: "USD", or a token symbol (Chainlink's STETH / ETH
    # quotes in WETH), whose own USD price multiplies it.
    quote: str = "USD"
    description: str = ""
    # The contracts that log the feed's answers when `address` is a proxy (Chainlink's
    # EACAggregatorProxy logs nothing; its phases' aggregators log AnswerUpdated), in phase
    # order. Indexing reads them from the chain (contagion.protocols.chainlink.resolve_feeds);
    # listing them here serves where nothing is read (`contagion decode`).
    aggregators: list[FeedPhase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _lido_feed_is_a_plain_price(self) -> Feed:
        if self.protocol == "lido" and (self.kind != "price" or self.quote == "USD"
                                        or self.aggregators):
            raise ValueError(f"feeds[{self.id}]: a lido feed is a price (the share rate) in "
                             "stETH, logged by the stETH contract itself, without aggregators")
        return self

    @model_validator(mode="after")
    def _phases_in_order(self) -> Feed:
        starts = [p.from_block for p in self.aggregators]
        if starts != sorted(set(starts)):
            raise ValueError(f"feeds[{self.id}].aggregators: each phase starts at a later "
                             f"from_block than the one before (got {starts})")
        return self

    def emitters(self) -> list[tuple[str, int, int | None]]:
        """Who logs the feed's answers for which blocks [from, to) (to None: open), addresses
        lowercase: the feed's own address always (an aggregator, or a proxy that logs
        nothing), and each phase's aggregator until the next phase starts."""
        phases = self.aggregators
        return [(self.address.lower(), 0, None)] + [
            (p.aggregator.lower(), p.from_block,
             phases[k + 1].from_block if k + 1 < len(phases) else None)
            for k, p in enumerate(phases)]


class Market(_Strict):
    """A market inside a venue: an Aave reserve, a Comet collateral, a Morpho market, a perps
    index, an options series family. Risk parameters are in basis points or 1e18 fixed point,
    as the protocol stores them; `params` keeps them verbatim."""

    id: str
    collateral: list[str] = Field(default_factory=list)  # token symbols
    loan: str | None = None  # token symbol borrowed / base asset
    params: dict[str, int | str | bool] = Field(default_factory=dict)


class Venue(_Strict):
    id: str
    protocol: Protocol
    kind: VenueKind
    name: str = ""
    contracts: dict[str, Address]  # role -> address; the first one is the main entry point
    markets: list[Market] = Field(default_factory=list)
    risk: dict[str, int | str | bool] = Field(default_factory=dict)
    # The venue reads the registry's `risk_oracle` (freezes, margin cuts). Its setter leaves no
    # log, so the registry says it; the liquidation audit then judges by the cut in force.
    obeys_risk_oracle: bool = False

    @property
    def main_contract(self) -> str:
        """The venue's main entry point: the first of its contracts."""
        return next(iter(self.contracts.values()))


class Claim(_Strict):
    """A token one venue issues as a claim on assets it holds: aTokens on an Aave reserve,
    an LST on staked ETH, vault or LP shares. Contagion travels along these."""

    token: str
    issuer: str  # venue id
    on: list[str]  # token symbols the claim is redeemable for
    kind: Literal["atoken", "lst", "vault_share", "lp_share", "otoken"]


class Registry(_Strict):
    schema_version: Literal[1] = 1
    network: str
    chain_id: int = Field(gt=0)
    # The first block holding the network's contracts; indexing starts there.
    deployed_at_block: int = Field(default=0, ge=0)
    tokens: list[Token]
    feeds: list[Feed] = Field(default_factory=list)
    venues: list[Venue]
    claims: list[Claim] = Field(default_factory=list)
    multicall: Address | None = None
    # The RiskOracle the signed feed is bound to (its EIP-712 verifying contract), if deployed.
    risk_oracle: Address | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Registry:
        symbols = [t.symbol for t in self.tokens]
        venue_ids = [v.id for v in self.venues]
        for label, values in (("token symbol", symbols), ("venue id", venue_ids),
                              ("feed id", [f.id for f in self.feeds])):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"duplicate {label}: {', '.join(dupes)}")
        self._addresses_unique()
        known, venues = set(symbols), set(venue_ids)

        def need(ref: str | None, where: str, pool: set[str], what: str) -> None:
            if ref is not None and ref not in pool:
                raise ValueError(f"{where} refers to unknown {what} {ref!r}")

        for t in self.tokens:
            need(t.issued_by, f"tokens[{t.symbol}].issued_by", venues, "venue")
            need(t.underlying, f"tokens[{t.symbol}].underlying", known, "token")
        for f in self.feeds:  # a vol feed's base is its underlying: a token all the same
            need(f.base, f"feeds[{f.id}].base", known, "token")
            if f.kind == "price" and f.quote != "USD":
                need(f.quote, f"feeds[{f.id}].quote (USD or a token symbol)", known, "token")
        self._no_circle_of_quotes()
        for v in self.venues:
            for m in v.markets:
                for sym in m.collateral:
                    need(sym, f"venues[{v.id}].markets[{m.id}].collateral", known, "token")
                need(m.loan, f"venues[{v.id}].markets[{m.id}].loan", known, "token")
            if v.obeys_risk_oracle and self.risk_oracle is None:
                raise ValueError(f"venues[{v.id}].obeys_risk_oracle, but the registry names "
                                 "no risk_oracle")
        for c in self.claims:
            need(c.token, "claims[].token", known, "token")
            need(c.issuer, f"claims[{c.token}].issuer", venues, "venue")
            for sym in c.on:
                need(sym, f"claims[{c.token}].on", known, "token")
        return self

    def _addresses_unique(self) -> None:
        """No two tokens share an address (compared case-insensitively: the checksum is only a
        spelling), and no two venues share a contract. A venue's contract may be a token it
        issues (Lido's entry point is the stETH token, a Uniswap pair is its LP token)."""
        tokens: dict[str, str] = {}
        for t in self.tokens:
            other = tokens.setdefault(t.address.lower(), t.symbol)
            if other != t.symbol:
                raise ValueError(f"duplicate token address {t.address}: tokens {other} and "
                                 f"{t.symbol}")
        contracts: dict[str, tuple[str, str]] = {}
        for v in self.venues:
            for role, address in v.contracts.items():
                owner, owner_role = contracts.setdefault(address.lower(), (v.id, role))
                if owner != v.id:
                    raise ValueError(f"venues {owner} and {v.id} share the contract {address} "
                                     f"(venues[{owner}].contracts[{owner_role}] and "
                                     f"venues[{v.id}].contracts[{role}])")

    def _no_circle_of_quotes(self) -> None:
        """Price feeds quoted in a token must not go round in a circle (A in B, B in A): no
        price would ever reach USD."""
        quoted_in: dict[str, set[str]] = {}
        for f in self.feeds:
            if f.kind == "price" and f.quote != "USD":
                quoted_in.setdefault(f.base, set()).add(f.quote)
        for start in quoted_in:
            todo = [(start, [start])]
            while todo:
                symbol, trail = todo.pop()
                for quote in sorted(quoted_in.get(symbol, ())):
                    if quote == start:
                        raise ValueError("price feeds quote in a circle: "
                                         + " in ".join([*trail, quote]))
                    if quote not in trail:
                        todo.append((quote, [*trail, quote]))

    def quote_address(self, feed: Feed) -> str | None:
        """The address of what a feed's answers are in (lowercase): USD's, a token's, or None
        for a vol feed's unit."""
        if feed.quote == "USD":
            return USD
        if feed.kind != "price":
            return None
        return self.token(feed.quote).address.lower()

    def token(self, symbol: str) -> Token:
        for t in self.tokens:
            if t.symbol == symbol:
                return t
        raise KeyError(f"no token {symbol!r} in the {self.network} registry")

    def venue(self, venue_id: str) -> Venue:
        for v in self.venues:
            if v.id == venue_id:
                return v
        raise KeyError(f"no venue {venue_id!r} in the {self.network} registry")


class RegistryError(ValueError):
    """A registry file is missing, unreadable or breaks the schema; the message names where."""


def parse_registry(data: Any, source: str = "<registry>") -> Registry:
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(describe_validation_error(source, "registry", exc)) from None


def load_registry(path_or_network: str | Path) -> Registry:
    """Load a registry file, or a bundled one by network name ("ethereum", "arbitrum", …)."""
    data, path = read_yaml(path_or_network, BUNDLED_REGISTRIES, "registry", RegistryError,
                           "network")
    return parse_registry(data, str(path))


def save_registry(registry: Registry, path: Path) -> None:
    """Write atomically, so a reader never sees half a registry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(registry.model_dump(mode="json", exclude_defaults=False),
                                  sort_keys=False))
    tmp.replace(path)
