"""Turn the analysts' database into a signed feed document — or refuse, saying why.

The publisher fails closed: it signs nothing while a blocking check fails, while the data is older
than the configured age (measured in chain time, against the head), or while the snapshot it would
describe is no longer the chain's block at that height. Signed documents go to a folder (the
feed's history) that `contagion feed serve` publishes.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError

from contagion.chain.rpc import RpcClient
from contagion.checks import blocking_failures
from contagion.feed.commitment import COMMITMENTS_TABLE
from contagion.feed.document import (
    FEED_FORMAT,
    METHODOLOGY_VERSION,
    Commitment,
    EcosystemState,
    FeedBody,
    Methodology,
    SignedFeed,
    VenueAction,
    VenueState,
    sign_feed,
)
from contagion.policy.model import Policy, load_policy
from contagion.registry import Registry
from contagion.risk.marts import INSOLVENCY_HORIZON_DAYS, INSOLVENCY_PATHS
from contagion.risk.scores import ScoreSettings
from contagion.warehouse import DEFAULT_MAX_PRICE_AGE_SECONDS, table_exists

__all__ = ["ChainHead", "FeedDocumentError", "FeedRefused", "FeedSettings", "FeedStore",
           "build_feed_body", "chain_head", "latest_snapshot", "publish_feed", "refusals"]


@dataclass(frozen=True)
class FeedSettings:
    validity_seconds: int = 3_600  # a consumer rejects a document this long after it is signed
    max_data_age_seconds: int = 3_600  # refuse when the snapshot is older than this (chain time)
    max_price_age_seconds: int = DEFAULT_MAX_PRICE_AGE_SECONDS  # the prices_fresh check's limit

    def __post_init__(self) -> None:
        if self.validity_seconds <= 0 or self.max_data_age_seconds < 0:
            raise ValueError("validity must be positive and the maximum data age non-negative")


@dataclass(frozen=True)
class ChainHead:
    """What the chain says now: the head, and its own hash at the snapshot's height."""
    number: int
    time: int
    hash_at_snapshot: str | None  # None: the head is below the snapshot


class FeedRefused(RuntimeError):
    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("refusing to sign the feed: " + "; ".join(reasons))


def _finite(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value)


def _snapshot(con: duckdb.DuckDBPyConnection) -> tuple[int, str, int] | None:
    """The latest scored snapshot: (block, hash, time) from the indexed headers."""
    if not table_exists(con, "fct_ecosystem_score"):
        return None
    rows = con.execute("""
        select e.snapshot_block, b.block_hash, b.timestamp
        from fct_ecosystem_score as e
        left join src_blocks as b on b.block_number = e.snapshot_block
        order by e.snapshot_block desc limit 1""").fetchall()
    if not rows:
        return None
    row = rows[0]
    if row[1] is None:
        raise ValueError(f"no indexed header for snapshot block {row[0]}")
    return int(row[0]), _hex(row[1]), int(row[2])


def refusals(con: duckdb.DuckDBPyConnection, head: ChainHead, settings: FeedSettings,
             policy: Policy, registry: Registry) -> list[str]:
    """Every reason not to sign (empty: go ahead)."""
    reasons = blocking_failures(con, policy, max_price_age_seconds=settings.max_price_age_seconds)
    if registry.risk_oracle is None:
        reasons.append("the registry names no risk oracle: a signature must be bound to one")
    if any(r.startswith("mart fct_") for r in reasons):
        return reasons
    snapshot = _snapshot(con)
    if snapshot is None:
        return [*reasons, "no scored snapshot in the database"]
    block, block_hash, block_time = snapshot
    committed = set(_commitments(con, block))
    uncommitted = sorted({v.id for v in registry.venues} - committed)
    if uncommitted:
        reasons.append(f"no solvency commitment at snapshot {block} for "
                       f"{', '.join(uncommitted)} (write fct_solvency_commitments)")
    age = head.time - block_time
    if age > settings.max_data_age_seconds:
        reasons.append(f"the data is {age} s old (snapshot {block}, head {head.number}), more "
                       f"than the allowed {settings.max_data_age_seconds} s")
    if head.hash_at_snapshot is None:
        reasons.append(f"the chain head {head.number} is below the snapshot {block}")
    elif head.hash_at_snapshot.lower() != block_hash.lower():
        reasons.append(f"block {block} is {head.hash_at_snapshot} on chain but {block_hash} in "
                       "the data: a reorg; re-index first")
    return reasons


def _venue_states(con: duckdb.DuckDBPyConnection, registry: Registry, block: int
                  ) -> list[VenueState]:
    symbols = {t.address.lower(): t.symbol for t in registry.tokens}
    scores = {r[0]: r[1:] for r in con.execute(
        "select venue, score, level, insolvency_probability from fct_anomaly_scores "
        "where snapshot_block = ?", [block]).fetchall()}
    actions: dict[str, list[VenueAction]] = {}
    for venue, asset, action, rule, params, before, after, others in con.execute(
            "select venue, asset, action, rule, params, loss_before_usd, loss_after_usd, "
            "coordinated_with from fct_freeze_recommendations where snapshot_block = ? "
            "order by venue, asset nulls first, action", [block]).fetchall():
        actions.setdefault(venue, []).append(VenueAction(
            action=action, asset=asset, symbol=symbols.get((asset or "").lower()), rule=rule,
            params={k: float(v) for k, v in json.loads(params or "{}").items()},
            loss_before_usd=float(before), loss_after_usd=float(after),
            coordinated_with=list(others or [])))
    commitments = _commitments(con, block)
    states = []
    for venue in registry.venues:
        score, level, probability = scores.get(venue.id, (None, "green", None))
        states.append(VenueState(
            venue=venue.id, address=venue.main_contract, kind=venue.kind,
            score=_finite(score), level=level, insolvency_probability=_finite(probability),
            actions=actions.get(venue.id, []), commitment=commitments.get(venue.id)))
    return states


def _commitments(con: duckdb.DuckDBPyConnection, block: int) -> dict[str, Commitment]:
    if not table_exists(con, COMMITMENTS_TABLE):
        return {}
    return {venue: Commitment(root=root, collateral_total=str(coll), debt_total=str(debt),
                              leaves=int(leaves), unpriced_positions=int(unpriced), unit=unit)
            for venue, root, coll, debt, leaves, unpriced, unit in con.execute(
                "select venue, root, collateral_raw, debt_raw, leaves, unpriced_positions, unit "
                f"from {COMMITMENTS_TABLE} where snapshot_block = ?", [block]).fetchall()}


def build_feed_body(con: duckdb.DuckDBPyConnection, registry: Registry, *, nonce: int,
                    head: ChainHead, settings: FeedSettings, policy: Policy,
                    scoring: ScoreSettings = ScoreSettings()) -> FeedBody:
    """The document for the latest scored snapshot, stamped with the head's chain time."""
    snapshot = _snapshot(con)
    if snapshot is None or registry.risk_oracle is None:
        raise FeedRefused(["no scored snapshot" if snapshot is None else "no risk oracle"])
    block, block_hash, block_time = snapshot
    (eco,) = con.execute("select score, level, driver from fct_ecosystem_score "
                         "where snapshot_block = ?", [block]).fetchall()
    return FeedBody(
        format=FEED_FORMAT,
        methodology=Methodology(
            version=METHODOLOGY_VERSION, policy_version=policy.version,
            amber_score=scoring.levels.amber, red_score=scoring.levels.red,
            insolvency_horizon_days=INSOLVENCY_HORIZON_DAYS, insolvency_paths=INSOLVENCY_PATHS,
            reference="docs/feed.md"),
        network=registry.network, chain_id=registry.chain_id, oracle=registry.risk_oracle,
        snapshot_block=block, snapshot_block_hash=block_hash.lower(), snapshot_time=block_time,
        generated_at=head.time, valid_until=head.time + settings.validity_seconds, nonce=nonce,
        ecosystem=EcosystemState(score=float(eco[0]), level=eco[1], driver=eco[2]),
        venues=_venue_states(con, registry, block))


class FeedDocumentError(ValueError):
    """A stored document cannot be read: the message names the file and the reason."""


_DOCUMENT = re.compile(r"feed-(\d{12})\.json")


def _nonce_of(path: Path) -> int:
    return int(path.name.removeprefix("feed-").removesuffix(".json"))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}"
                         for e in exc.errors()[:3])
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


class FeedStore:
    """The feed's history: one JSON file per signed document, named by nonce
    (`feed-<12 digits>.json`), written atomically. The next nonce is one past the largest ever
    stored. Other files in the folder are not documents and are ignored; a document that cannot
    be read is skipped by `documents`, and named with its reason by `unreadable`, so one bad
    file does not hide the others."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # documents are written once and never changed: parsed once per (size, mtime)
        self._cache: dict[Path, tuple[tuple[int, int], SignedFeed | FeedDocumentError]] = {}

    def _paths(self) -> list[Path]:
        """The documents' files, by nonce (12 digits: the name's order is the nonce's)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if _DOCUMENT.fullmatch(p.name))

    def next_nonce(self) -> int:
        """One past the largest nonce stored, by the file names alone: a nonce whose file is
        unreadable is still used."""
        paths = self._paths()
        return _nonce_of(paths[-1]) + 1 if paths else 1

    def save(self, feed: SignedFeed) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"feed-{feed.nonce:012d}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(feed.model_dump_json(indent=2))
        try:  # a hard link appears whole and fails if the name exists: two signers that took
            os.link(tmp, path)  # the same nonce never both see "saved", nor replace a document
        except FileExistsError:
            raise FileExistsError(f"nonce {feed.nonce} is already published ({path})") from None
        finally:
            tmp.unlink()
        return path

    def _load(self, path: Path) -> SignedFeed | FeedDocumentError:
        try:
            stat = path.stat()
            key = (stat.st_size, stat.st_mtime_ns)
            cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            feed = SignedFeed.model_validate_json(path.read_bytes())
            nonce = _nonce_of(path)
            if feed.nonce != nonce:
                raise ValueError(f"it holds nonce {feed.nonce}, its name says {nonce}")
            result: SignedFeed | FeedDocumentError = feed
        except (OSError, ValueError) as exc:  # ValidationError is a ValueError
            return FeedDocumentError(f"{path.name} is unreadable: {_reason(exc)}")
        self._cache[path] = (key, result)
        return result

    def get(self, nonce: int) -> SignedFeed | None:
        """The document with this nonce; None if there is none; FeedDocumentError if its file
        cannot be read."""
        if nonce < 0 or nonce >= 10**12:
            return None
        path = self.root / f"feed-{nonce:012d}.json"
        if not path.is_file():
            return None
        result = self._load(path)
        if isinstance(result, FeedDocumentError):
            raise result
        return result

    def documents(self, newest_first: bool = True) -> Iterator[SignedFeed]:
        """The readable documents (`unreadable` names the others)."""
        for path in (reversed(self._paths()) if newest_first else self._paths()):
            result = self._load(path)
            if not isinstance(result, FeedDocumentError):
                yield result

    def unreadable(self) -> list[str]:
        """The documents that cannot be read, each as "<file> is unreadable: <reason>"."""
        return [str(r) for r in map(self._load, self._paths())
                if isinstance(r, FeedDocumentError)]

    def latest(self) -> SignedFeed | None:
        """The newest readable document."""
        return next(self.documents(), None)


def chain_head(client: RpcClient, snapshot_block: int) -> ChainHead:
    """The head and the chain's own hash at the snapshot's height, as the node says now."""
    head = client.call("eth_getBlockByNumber", ["latest", False])
    at = client.call("eth_getBlockByNumber", [hex(snapshot_block), False])
    return ChainHead(int(head["number"], 16), int(head["timestamp"], 16),
                     at["hash"] if at else None)


def latest_snapshot(db: Path) -> int | None:
    with duckdb.connect(str(db), read_only=True) as con:
        snapshot = _snapshot(con)
    return snapshot[0] if snapshot else None


def publish_feed(db: Path, registry: Registry, signer: LocalAccount, store: FeedStore,
                 client: RpcClient, *, settings: FeedSettings = FeedSettings(),
                 policy: Policy | None = None) -> SignedFeed:
    """Check, build, sign and store the document of the latest snapshot, against the chain as
    `client` sees it now; FeedRefused says why when it must not be published."""
    policy = policy or load_policy()
    snapshot = latest_snapshot(db)
    if snapshot is None:
        raise FeedRefused(["no scored snapshot in the database (write the early-warning marts)"])
    head = chain_head(client, snapshot)
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = refusals(con, head, settings, policy, registry)
        if reasons:
            raise FeedRefused(reasons)
        body = build_feed_body(con, registry, nonce=store.next_nonce(), head=head,
                               settings=settings, policy=policy)
    feed = sign_feed(body, signer)
    store.save(feed)
    return feed
