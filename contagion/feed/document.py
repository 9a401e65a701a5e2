"""The signed risk feed: the document, its JSON Schema, its EIP-712 signature and its verifier.

A document is the state of one snapshot: the ecosystem level, each venue's score, level and
actions, and a commitment to the venue's positions. Its content hash is keccak256 of the RFC 8785
canonical JSON of everything but the signature, so any language can recompute it; the EIP-712
struct binds that hash to the snapshot, the nonce and the validity end, and the domain binds it
to one chain id and one oracle contract (contagion.feed.domain).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import rfc8785
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import keccak, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field

from contagion.feed.commitment import ProofError, check_proof
from contagion.feed.domain import EIP712_DOMAIN_TYPE, eip712_domain

__all__ = [
    "FEED_FORMAT",
    "METHODOLOGY_VERSION",
    "Commitment",
    "EcosystemState",
    "FeedBody",
    "FeedSignature",
    "Finding",
    "Methodology",
    "SignedFeed",
    "VenueAction",
    "VenueState",
    "content_hash",
    "feed_json_schema",
    "feed_typed_data",
    "read_document",
    "sign_feed",
    "verify_feed",
]

FEED_FORMAT: Final = "contagion-risk-feed/1"
# What the numbers mean: the scoring (contagion/risk/scores.py), the insolvency model
# (contagion/risk/insolvency.py) and the policy semantics (docs/policy.md). A change to any of
# them that changes a published number bumps it.
METHODOLOGY_VERSION = "1.5"

Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]
Hash32 = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
# Exact integers that can exceed 2^53 travel as decimal strings, which every JSON reader keeps.
BigInt = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]*)$")]
Level = Literal["green", "amber", "red"]


class _Model(BaseModel):
    # no NaN or infinity: JSON has neither, and RFC 8785 cannot hash them
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Methodology(_Model):
    version: str = Field(description="Methodology version: scoring, insolvency model, policy")
    policy_version: int
    amber_score: float = Field(description="−log10 p at which a level turns amber")
    red_score: float
    insolvency_horizon_days: float
    insolvency_paths: int
    reference: str = Field(description="Where the methodology is written down")


class EcosystemState(_Model):
    score: float = Field(ge=0)
    level: Level
    driver: str | None = Field(description="The venue whose anomaly drives the score")


class VenueAction(_Model):
    action: Literal["normal", "watch", "raise_margin", "freeze_market", "halt"] = Field(
        description="normal lifts what the RiskOracle holds for the market (a freeze, a halt "
                    "with asset null, a margin cut, step by step)")
    asset: Address | None = Field(description="Token acted on; null for the whole venue")
    symbol: str | None
    rule: str = Field(description="The policy rule that proposed it")
    params: dict[str, float] = Field(description="raise_margin: threshold_cut (a fraction)")
    loss_before_usd: float
    loss_after_usd: float
    coordinated_with: list[str]


class Commitment(_Model):
    root: Hash32 = Field(description="Merkle sum tree root over the venue's account positions")
    collateral_total: BigInt
    debt_total: BigInt
    leaves: int = Field(ge=0)
    unpriced_positions: int = Field(ge=0, description="Positions left out of the sums for "
                                                      "want of a price (their leaves remain)")
    unit: str = Field(description="What one unit of the totals is worth (micro-USD: 1e-6 USD)")


class VenueState(_Model):
    venue: str
    address: Address
    kind: str
    score: float | None = Field(description="−log10 p of the venue's state; null before "
                                            "there is a baseline")
    level: Level
    insolvency_probability: float | None = Field(ge=0, le=1)
    actions: list[VenueAction]
    commitment: Commitment | None


class FeedBody(_Model):
    format: Literal["contagion-risk-feed/1"]
    methodology: Methodology
    network: str
    chain_id: int = Field(gt=0)
    oracle: Address = Field(description="The RiskOracle contract the signature is bound to")
    snapshot_block: int = Field(ge=0)
    snapshot_block_hash: Hash32
    snapshot_time: int = Field(description="Unix seconds of the snapshot block")
    generated_at: int = Field(description="Unix seconds, chain time of the head when signed")
    valid_until: int = Field(description="Unix seconds; consumers reject the document after it")
    nonce: int = Field(gt=0, description="Strictly increasing per signer")
    ecosystem: EcosystemState
    venues: list[VenueState]


class FeedSignature(_Model):
    scheme: Literal["EIP-712"]
    primary_type: Literal["RiskFeed"]
    signer: Address
    content_hash: Hash32
    signature: Annotated[str, Field(pattern=r"^0x[0-9a-f]{130}$")]


class SignedFeed(FeedBody):
    signature: FeedSignature


def feed_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a signed document (docs/feed.schema.json)."""
    schema = SignedFeed.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": FEED_FORMAT, **schema}


def content_hash(body: FeedBody) -> bytes:
    """keccak256 of the RFC 8785 (JCS) canonical JSON of the body."""
    return keccak(rfc8785.dumps(body.model_dump(mode="json")))


_RISK_FEED_TYPE = [
    {"name": "snapshotBlock", "type": "uint256"},
    {"name": "snapshotHash", "type": "bytes32"},
    {"name": "generatedAt", "type": "uint256"},
    {"name": "validUntil", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "contentHash", "type": "bytes32"},
    {"name": "methodology", "type": "string"},
]


def feed_typed_data(body: FeedBody, chain_id: int, oracle: str) -> dict[str, Any]:
    """The EIP-712 message for a body, in the domain of (chain_id, oracle) — which the verifier
    pins from its own configuration, never from the document."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "RiskFeed": _RISK_FEED_TYPE},
        "primaryType": "RiskFeed",
        "domain": eip712_domain(chain_id, oracle),
        "message": {"snapshotBlock": body.snapshot_block,
                    "snapshotHash": bytes.fromhex(body.snapshot_block_hash[2:]),
                    "generatedAt": body.generated_at, "validUntil": body.valid_until,
                    "nonce": body.nonce, "contentHash": content_hash(body),
                    "methodology": body.methodology.version},
    }


def sign_feed(body: FeedBody, signer: LocalAccount) -> SignedFeed:
    """Sign a body in its own domain (its chain id and oracle)."""
    if body.valid_until <= body.generated_at:
        raise ValueError("a feed document must be valid for some time after it is generated")
    signed = signer.sign_message(encode_typed_data(
        full_message=feed_typed_data(body, body.chain_id, body.oracle)))
    signature = FeedSignature(scheme="EIP-712", primary_type="RiskFeed",
                              signer=str(signer.address),
                              content_hash="0x" + content_hash(body).hex(),
                              signature="0x" + bytes(signed.signature).hex())
    return SignedFeed(**body.model_dump(), signature=signature)


@dataclass(frozen=True)
class Finding:
    name: str
    passed: bool
    detail: str


def _body(feed: SignedFeed) -> FeedBody:
    return FeedBody(**feed.model_dump(exclude={"signature"}))


def _commitment_findings(feed: SignedFeed, proofs: Sequence[Mapping[str, Any]]
                         ) -> list[Finding]:
    """Every venue commits to its positions; each inclusion proof given verifies against the
    root and totals this document signs."""
    missing = [v.venue for v in feed.venues if v.commitment is None]
    findings = [Finding("commitment", not missing,
                        "every venue commits to its positions" if not missing else
                        f"no commitment for {', '.join(missing)}")]
    by_venue = {v.venue: v.commitment for v in feed.venues}
    for i, proof in enumerate(proofs):
        if not isinstance(proof, Mapping) or not isinstance(proof.get("leaf") or {}, Mapping):
            findings.append(Finding(f"proof {i + 1}", False, "not a proof: a proof is a JSON "
                                    "object with venue, snapshot_block, leaf and siblings"))
            continue
        venue = str(proof.get("venue"))
        name = f"proof {venue}:{(proof.get('leaf') or {}).get('account')}"
        commitment = by_venue.get(venue)
        if commitment is None:
            findings.append(Finding(name, False, f"the document has no commitment for {venue}"))
        elif proof.get("snapshot_block") != feed.snapshot_block:
            findings.append(Finding(name, False, f"the proof is for block "
                                    f"{proof.get('snapshot_block')}, the document for "
                                    f"{feed.snapshot_block}"))
        else:
            try:
                check_proof(proof, commitment.root, (int(commitment.collateral_total),
                                                     int(commitment.debt_total)))
                findings.append(Finding(name, True, "included under the signed root and totals"))
            except ProofError as exc:
                findings.append(Finding(name, False, str(exc)))
    return findings


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        raise ValueError(f"the key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_document(document: str | bytes) -> Any:
    """JSON as every reader reads it alike: a repeated key (readers keep the first or the last)
    or NaN / Infinity (not JSON) is refused, so the signed content is the only reading."""
    return json.loads(document, object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def verify_feed(document: Mapping[str, Any] | str | bytes, *, chain_id: int, oracle: str,
                signers: Iterable[str], now: int, after_nonce: int | None = None,
                proofs: Sequence[Mapping[str, Any]] = ()
                ) -> tuple[SignedFeed | None, list[Finding]]:
    """Check a document against what the consumer pins (chain id, oracle, allowed signers, the
    current time and the last nonce it accepted), and any inclusion proofs (`contagion prove`)
    against its commitments. Returns the parsed feed (None when it does not even parse) and
    every finding; the document is good iff all passed.

    Parsing is strict (a number sent as a string is refused, as the JSON Schema refuses it),
    and the content hash is of the document as received, minus its signature: the hash any
    RFC 8785 implementation computes, not that of this parser's reading."""
    oracle, allowed_signers = to_checksum_address(oracle), {to_checksum_address(s)
                                                            for s in signers}
    try:
        raw = read_document(document) if isinstance(document, str | bytes) else document
        feed = SignedFeed.model_validate(raw, strict=True)
        received = keccak(rfc8785.dumps({k: v for k, v in raw.items() if k != "signature"}))
        body = _body(feed)
        message = encode_typed_data(full_message=feed_typed_data(body, chain_id, oracle))
    except ValueError as exc:  # ValidationError, UnicodeDecodeError and RFC 8785's are too
        return None, [Finding("schema", False, f"not a {FEED_FORMAT} document: {exc}")]
    hashed = "0x" + received.hex() == feed.signature.content_hash
    domain_ok = feed.chain_id == chain_id and to_checksum_address(feed.oracle) == oracle
    try:  # recovered in the pinned domain: a signature for another domain recovers elsewhere
        recovered = Account.recover_message(
            message, signature=bytes.fromhex(feed.signature.signature[2:]))
    except (ValueError, BadSignature) as exc:
        recovered = f"unrecoverable ({exc})"
    allowed = recovered in allowed_signers
    findings = [
        Finding("schema", True, FEED_FORMAT),
        Finding("content_hash", hashed, "the body hashes to the signed content hash" if hashed
                else "the body was changed after signing"),
        Finding("domain", domain_ok, f"chain {chain_id}, oracle {oracle}" if domain_ok else
                f"the document is for chain {feed.chain_id}, oracle {feed.oracle}; expected "
                f"chain {chain_id}, oracle {oracle}"),
        Finding("signature", recovered == to_checksum_address(feed.signature.signer),
                f"signed by {recovered}"),
        Finding("signer_allowed", allowed, f"{recovered} is "
                + ("allowed" if allowed else "not among the allowed signers")),
        Finding("expiry", feed.generated_at <= now <= feed.valid_until,
                f"valid from {feed.generated_at} until {feed.valid_until}; now {now}"),
    ]
    if after_nonce is not None:
        findings.append(Finding("nonce", feed.nonce > after_nonce,
                                f"nonce {feed.nonce}, last accepted {after_nonce}"))
    return feed, findings + _commitment_findings(feed, proofs)
