"""The solvency commitment: per venue and snapshot, a Merkle sum tree over every account's
position, so a consumer of the risk feed can check that an account is included, with what, and
that the venue's totals are the ones published, without seeing the other accounts.

A leaf is (account, collateral, debt) in micro-USD (`UNIT`: 1e-6 USD, exact non-negative
integers). `collateral` is what the venue holds for the account or owes it: the sides
fct_venue_balance_sheet counts against the venue's reserves (collateral, supply, margin and the
venue's claims the account holds); `debt` is what the account owes the venue. Each position is
valued exactly, amount_raw × the oracle answer, scaled by the token's and the feed's decimals
(an LP share: its part of the pair's reserves, both tokens at their answers); an account's sum
is rounded once, collateral down and debt up, so the commitment never overstates solvency.
A position without a price is left out of the sums and counted in the commitment's
`unpriced_positions`; its account still gets a leaf.

The tree (everything a Solidity or Vyper verifier can redo with keccak256 and abi.encode):

    leaf   = keccak256(0x00 ‖ abi.encode(address account, uint256 collateral, uint256 debt))
    node   = keccak256(0x01 ‖ abi.encode(bytes32 left, uint256 left_collateral,
                                         uint256 left_debt, bytes32 right,
                                         uint256 right_collateral, uint256 right_debt))
    sums   = left + right, each below 2^256

Leaves are ordered by account address. A level with an odd number of nodes pairs its last one
with the empty node (hash 0x00…00, sums 0), so every proof of a tree of n leaves carries
⌈log₂ n⌉ siblings; a single leaf is its own root, and a venue without accounts commits to the
empty node. Because a node hashes both children's sums, a sibling's sums cannot be changed
without changing the root: the totals a proof ends at are bound by it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor
from pathlib import Path
from typing import Any, Literal, TypedDict

import duckdb
import pyarrow as pa
from eth_utils import keccak

from contagion.warehouse import connect_readonly, replace_table

__all__ = [
    "COLLATERAL_SIDES",
    "COMMITMENTS_TABLE",
    "DEBT_SIDES",
    "EMPTY",
    "UINT256_MAX",
    "UNIT",
    "UNIT_DECIMALS",
    "Leaf",
    "Node",
    "Proof",
    "ProofError",
    "SumTree",
    "VenueCommitment",
    "VenueTree",
    "check_proof",
    "leaf_node",
    "parent_node",
    "prove",
    "prove_account",
    "venue_commitments",
    "venue_trees",
    "verify_proof",
    "write_commitments",
]

UNIT = "micro-USD"
UNIT_DECIMALS = 6  # one unit is 10^-6 USD
MODEL_MARK = "black_scholes"  # int_otoken_prices' feed_id: a model value, not an oracle answer
COMMITMENTS_TABLE = "fct_solvency_commitments"
# what the venue owes the account back vs what the account owes the venue: the sides
# fct_venue_balance_sheet subtracts from and adds to the venue's reserves
COLLATERAL_SIDES = frozenset({"collateral", "supply", "margin", "holding"})
DEBT_SIDES = frozenset({"debt"})

UINT256_MAX = 2**256 - 1
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_MAX_DEPTH = 256
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_HASH = re.compile(r"^0x[0-9a-f]{64}$")


class ProofError(ValueError):
    """A proof that is malformed or does not lead to the commitment; the message says why."""


@dataclass(frozen=True)
class Leaf:
    account: str  # lowercase 0x address
    collateral: int  # UNIT
    debt: int  # UNIT


@dataclass(frozen=True)
class Node:
    hash: bytes  # 32 bytes
    collateral: int
    debt: int


EMPTY = Node(bytes(32), 0, 0)


def _uint256(value: int, what: str) -> int:
    if not 0 <= value <= UINT256_MAX:
        raise OverflowError(f"{what} = {value} does not fit uint256")
    return value


def _account(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value.lower()):
        raise ValueError(f"an account is a 20-byte hex address (0x + 40 hex digits), "
                         f"got {value!r}")
    return value.lower()


# abi.encode of static types is each value as one 32-byte big-endian word (an address
# left-padded); written out directly, as eth_abi.encode takes ~50x longer per node
def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def leaf_node(leaf: Leaf) -> Node:
    """The node of a leaf: keccak256(0x00 ‖ abi.encode(address, uint256, uint256)), its two
    amounts as the sums."""
    collateral = _uint256(leaf.collateral, f"{leaf.account}'s collateral")
    debt = _uint256(leaf.debt, f"{leaf.account}'s debt")
    account = bytes.fromhex(_account(leaf.account)[2:]).rjust(32, b"\x00")
    return Node(keccak(_LEAF_PREFIX + account + _word(collateral) + _word(debt)),
                collateral, debt)


def parent_node(left: Node, right: Node) -> Node:
    """The parent of two nodes: keccak256(0x01 ‖ abi.encode(bytes32, uint256, uint256,
    bytes32, uint256, uint256)) over both children's hashes and sums."""
    collateral = _uint256(left.collateral + right.collateral, "a collateral sum")
    debt = _uint256(left.debt + right.debt, "a debt sum")
    return Node(keccak(_NODE_PREFIX + left.hash + _word(left.collateral) + _word(left.debt)
                       + right.hash + _word(right.collateral) + _word(right.debt)),
                collateral, debt)


class Sibling(TypedDict):
    side: Literal["left", "right"]  # where the sibling sits next to the path's node
    hash: str  # 0x + 64 hex
    collateral: str  # uint256 as decimal text (JSON numbers lose precision past 2^53)
    debt: str


class ProofLeaf(TypedDict):
    account: str
    collateral: str
    debt: str


class Totals(TypedDict):
    collateral: str
    debt: str


class Proof(TypedDict):
    """An inclusion proof, JSON as it is. Only the leaf and the siblings are used to verify
    it; `root` and `totals` say which commitment it was made for, for the reader."""

    chain_id: int
    venue: str
    snapshot_block: int
    unit: str
    leaf: ProofLeaf
    siblings: list[Sibling]
    root: str
    totals: Totals


class SumTree:
    """A Merkle sum tree over leaves in canonical order (by account address)."""

    def __init__(self, leaves: Iterable[Leaf]) -> None:
        ordered = sorted((Leaf(_account(leaf.account), leaf.collateral, leaf.debt)
                          for leaf in leaves), key=lambda leaf: leaf.account)
        self.leaves: tuple[Leaf, ...] = tuple(ordered)
        self._index = {leaf.account: i for i, leaf in enumerate(ordered)}
        if len(self._index) != len(ordered):
            twice = sorted(a for a, n in Counter(leaf.account for leaf in ordered).items()
                           if n > 1)
            raise ValueError(f"an account has one leaf; given twice: {', '.join(twice)}")
        level = [leaf_node(leaf) for leaf in ordered]
        self.levels: list[list[Node]] = [level]
        while len(level) > 1:
            if len(level) % 2:
                level = [*level, EMPTY]
            level = [parent_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            self.levels.append(level)

    @property
    def root(self) -> Node:
        """The root: its hash commits to every leaf, its sums are the totals."""
        return self.levels[-1][0] if self.leaves else EMPTY

    def siblings(self, account: str) -> list[tuple[Literal["left", "right"], Node]]:
        """The nodes next to the account's path from its leaf to the root, bottom up."""
        index = self._index.get(_account(account))
        if index is None:
            raise KeyError(f"{account} has no leaf in this tree")
        path: list[tuple[Literal["left", "right"], Node]] = []
        for level in self.levels[:-1]:
            if index % 2:
                path.append(("left", level[index - 1]))
            else:
                path.append(("right", level[index + 1] if index + 1 < len(level) else EMPTY))
            index //= 2
        return path

    def leaf(self, account: str) -> Leaf:
        index = self._index.get(_account(account))
        if index is None:
            raise KeyError(f"{account} has no leaf in this tree")
        return self.leaves[index]


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def prove(tree: SumTree, account: str, *, chain_id: int, venue: str,
          snapshot_block: int) -> Proof:
    """The inclusion proof of an account's leaf in a venue's tree at a snapshot."""
    leaf = tree.leaf(account)
    root = tree.root
    return {"chain_id": chain_id, "venue": venue, "snapshot_block": snapshot_block,
            "unit": UNIT,
            "leaf": {"account": leaf.account, "collateral": str(leaf.collateral),
                     "debt": str(leaf.debt)},
            "siblings": [{"side": side, "hash": _hex(node.hash),
                          "collateral": str(node.collateral), "debt": str(node.debt)}
                         for side, node in tree.siblings(account)],
            "root": _hex(root.hash),
            "totals": {"collateral": str(root.collateral), "debt": str(root.debt)}}


def _amount(value: object, what: str) -> int:
    # decimal text as prove writes it; a JSON integer is taken too (never a bool or a float)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProofError(f"{what} must be an integer in decimal text, got {value!r}")
    # a uint256 has at most 78 digits; longer text is refused before int() reads it
    if isinstance(value, str) and not re.fullmatch(r"0|[1-9][0-9]{0,77}", value):
        raise ProofError(f"{what} must be a non-negative integer of at most 78 digits (a "
                         f"uint256) in decimal text, got {value[:90]!r}")
    number = int(value)
    if not 0 <= number <= UINT256_MAX:
        raise ProofError(f"{what} = {number} is not a uint256")
    return number


def _hash(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _HASH.match(value.lower()):
        raise ProofError(f"{what} must be 32 bytes as 0x + 64 hex digits, got {value!r}")
    return bytes.fromhex(value[2:])


def _field(mapping: object, key: str, what: str) -> object:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ProofError(f"the proof has no {what}")
    return mapping[key]


def check_proof(proof: Mapping[str, Any], root: str, totals: tuple[int, int]) -> None:
    """Check a proof against a commitment one trusts (the root and the (collateral, debt)
    totals of the signed feed or of fct_solvency_commitments): recompute the leaf's node from
    its account and amounts, fold the siblings in, and compare the hash and the sums reached
    with the commitment. Nothing else the proof states is trusted. Raises ProofError saying
    what failed."""
    leaf = _field(proof, "leaf", "leaf")
    try:
        account = _account(_field(leaf, "account", "leaf account"))
    except ValueError as exc:
        raise ProofError(f"leaf account: {exc}") from None
    node = leaf_node(Leaf(account, _amount(_field(leaf, "collateral", "leaf collateral"),
                                            "leaf collateral"),
                          _amount(_field(leaf, "debt", "leaf debt"), "leaf debt")))
    siblings = _field(proof, "siblings", "siblings")
    if not isinstance(siblings, list) or len(siblings) > _MAX_DEPTH:
        raise ProofError(f"siblings must be a list of at most {_MAX_DEPTH} nodes")
    for i, sibling in enumerate(siblings):
        other = Node(_hash(_field(sibling, "hash", f"hash of sibling {i}"), f"sibling {i}'s hash"),
                     _amount(_field(sibling, "collateral", f"collateral of sibling {i}"),
                             f"sibling {i}'s collateral"),
                     _amount(_field(sibling, "debt", f"debt of sibling {i}"),
                             f"sibling {i}'s debt"))
        side = _field(sibling, "side", f"side of sibling {i}")
        if side not in ("left", "right"):
            raise ProofError(f"sibling {i}'s side must be left or right, got {side!r}")
        try:
            node = parent_node(other, node) if side == "left" else parent_node(node, other)
        except OverflowError as exc:
            raise ProofError(f"at sibling {i}: {exc}") from None
    expected = _hash(root, "the commitment's root")
    if node.hash != expected:
        raise ProofError(f"the leaf and siblings hash to {_hex(node.hash)}, not to the "
                         f"commitment's root {_hex(expected)}")
    if (node.collateral, node.debt) != tuple(totals):
        raise ProofError(f"the proof sums to collateral {node.collateral}, debt {node.debt}; "
                         f"the commitment's totals are collateral {totals[0]}, "
                         f"debt {totals[1]}")


def verify_proof(proof: Mapping[str, Any], root: str, totals: tuple[int, int]) -> bool:
    """True when the proof leads to the commitment (root and (collateral, debt) totals); use
    check_proof to learn why it does not."""
    try:
        check_proof(proof, root, totals)
    except ProofError:
        return False
    return True


# ---------------------------------------------------------------- from the warehouse

@dataclass(frozen=True)
class VenueCommitment:
    """A venue's commitment at a snapshot: what the feed publishes and signs."""

    chain_id: int
    snapshot_block: int
    venue: str
    venue_kind: str
    root: str  # 0x + 64 hex
    collateral: int  # UNIT
    debt: int  # UNIT
    leaves: int
    unpriced_positions: int  # positions left out of the sums: no price at the snapshot
    unit: str = UNIT


@dataclass(frozen=True)
class VenueTree:
    """A venue's tree at a snapshot, to commit to and to prove from."""

    chain_id: int
    snapshot_block: int
    venue: str
    venue_kind: str
    tree: SumTree
    unpriced_positions: int

    @property
    def commitment(self) -> VenueCommitment:
        root = self.tree.root
        return VenueCommitment(self.chain_id, self.snapshot_block, self.venue,
                               self.venue_kind, _hex(root.hash), root.collateral, root.debt,
                               len(self.tree.leaves), self.unpriced_positions)

    def prove(self, account: str) -> Proof:
        return prove(self.tree, account, chain_id=self.chain_id, venue=self.venue,
                     snapshot_block=self.snapshot_block)


def _unit_prices(con: duckdb.DuckDBPyConnection, snapshot_block: int
                 ) -> dict[tuple[int, str], Fraction]:
    """USD per smallest unit of every priced token at the snapshot, exactly: the oracle answer
    / 10^(feed decimals + token decimals); an LP share (r0 × p0 + r1 × p1) / shares, with p0
    and p1 the exact prices of the pair's tokens (the inputs of int_lp_share_prices). An oToken
    has no oracle: its Black–Scholes mark (int_otoken_prices) is a model value, committed as
    the exact value of the double the model gave."""
    prices: dict[tuple[int, str], Fraction] = {}
    for chain, token, feed, price, answer, answer_decimals, decimals in con.execute(
            "select p.chain_id, p.token, p.feed_id, p.price_usd, p.answer_raw, "
            "p.answer_decimals, t.decimals from int_token_prices as p "
            "join int_tokens as t on t.chain_id = p.chain_id and t.token = p.token "
            "where p.snapshot_block = ? and p.feed_id <> 'reserves'",
            [snapshot_block]).fetchall():
        if feed == MODEL_MARK:
            prices[int(chain), token] = Fraction(float(price)) / 10**decimals
            continue
        if answer is None or answer_decimals is None:
            raise ValueError(f"{token} has a price at snapshot {snapshot_block} but no exact "
                             f"answer (feed {feed}: the answer does not fit decimal(38,0) or the "
                             "feed is not in ref_feeds); the commitment cannot value it")
        prices[int(chain), token] = Fraction(int(answer), 10 ** (answer_decimals + decimals))
    for chain, token, token0, token1, reserve0, reserve1, shares in con.execute(
            "select chain_id, token, token0, token1, reserve0, reserve1, shares_raw "
            "from int_lp_share_prices where snapshot_block = ?", [snapshot_block]).fetchall():
        key = (int(chain), token)
        if key not in prices:  # a pair token with an oracle of its own keeps that price
            prices[key] = (int(reserve0) * prices[int(chain), token0]
                           + int(reserve1) * prices[int(chain), token1]) / int(shares)
    return prices


def venue_trees(con: duckdb.DuckDBPyConnection, snapshot_block: int,
                venues: Sequence[str] | None = None) -> list[VenueTree]:
    """Every registry venue's tree at a snapshot of a built database (or the venues named),
    by venue id."""
    _require_snapshot(con, snapshot_block)
    prices = _unit_prices(con, snapshot_block)
    scale = 10**UNIT_DECIMALS
    sums: dict[tuple[int, str], dict[str, list[Fraction]]] = {}
    unpriced: dict[tuple[int, str], int] = {}
    for chain, venue, account, token, side, amount, priced in con.execute(
            "select chain_id, venue, account, token, side, amount_raw, price_usd is not null "
            "from fct_positions where snapshot_block = ?", [snapshot_block]).fetchall():
        if venues is not None and venue not in venues:
            continue
        if side not in COLLATERAL_SIDES | DEBT_SIDES:
            raise ValueError(f"fct_positions has a side the commitment does not know: {side!r}")
        key = (int(chain), venue)
        # every account gets a leaf, even one whose positions are all unpriced
        totals = sums.setdefault(key, {}).setdefault(account, [Fraction(0), Fraction(0)])
        price = prices.get((int(chain), token))
        if (price is None) == priced:  # the float and the exact route must agree on it
            raise ValueError(f"{token} at snapshot {snapshot_block}: fct_positions and the "
                             "exact prices disagree on whether it has a price")
        if amount is None:  # events or state reads missing: no_negative_balances says which
            raise ValueError(f"{venue}: {account}'s {side} of {token} has no amount at "
                             f"snapshot {snapshot_block} (events or state reads are missing "
                             "from the lake, or the snapshot's time is unknown: the check "
                             "no_negative_balances gives the reason), so no solvency "
                             "commitment can be computed")
        if amount < 0:  # a sum tree holds no negative leaf: the replay lacks events
            raise ValueError(f"{venue}: {account}'s {side} of {token} is {amount} at snapshot "
                             f"{snapshot_block}, below zero (events are missing from the lake: "
                             "the check no_negative_balances names it), so no solvency "
                             "commitment can be computed")
        if price is None:
            unpriced[key] = unpriced.get(key, 0) + 1
        else:
            totals[1 if side in DEBT_SIDES else 0] += int(amount) * price
    trees = []
    for chain, venue, kind in con.execute(
            "select chain_id, venue, venue_kind from ref_venues order by venue").fetchall():
        key = (int(chain), venue)
        if venues is not None and venue not in venues:
            continue
        leaves = [Leaf(account, floor(collateral * scale), ceil(debt * scale))
                  for account, (collateral, debt) in sums.get(key, {}).items()]
        trees.append(VenueTree(int(chain), snapshot_block, venue, kind, SumTree(leaves),
                               unpriced.get(key, 0)))
    return trees


def _require_snapshot(con: duckdb.DuckDBPyConnection, snapshot_block: int) -> None:
    if con.execute("select 1 from ref_snapshots where snapshot_block = ?",
                   [snapshot_block]).fetchall():
        return
    first, last, count = con.execute("select min(snapshot_block), max(snapshot_block), "
                                     "count(*) from ref_snapshots").fetchall()[0]
    held = f"{count} snapshots from block {first} to {last}" if count else "no snapshot"
    raise ValueError(f"{snapshot_block} is not a snapshot of this database (it has {held}); "
                     f"build it with --snapshot {snapshot_block}")


def venue_commitments(con: duckdb.DuckDBPyConnection, snapshot_block: int
                      ) -> list[VenueCommitment]:
    """Every registry venue's commitment at a snapshot of a built database (a venue without
    positions commits to the empty tree)."""
    return [t.commitment for t in venue_trees(con, snapshot_block)]


_SCHEMA = pa.schema({
    "snapshot_block": pa.uint64(), "chain_id": pa.uint64(), "venue": pa.string(),
    "venue_kind": pa.string(), "root": pa.string(), "collateral_raw": pa.decimal128(38, 0),
    "debt_raw": pa.decimal128(38, 0), "unit": pa.string(), "collateral_usd": pa.float64(),
    "debt_usd": pa.float64(), "leaves": pa.int64(), "unpriced_positions": pa.int64()})


def _decimal38(value: int, what: str) -> Decimal:
    if value >= 10**38:
        raise OverflowError(f"{what} = {value} {UNIT} does not fit decimal(38,0)")
    return Decimal(value)


def write_commitments(db: Path, snapshots: Iterable[int] | None = None
                      ) -> list[VenueCommitment]:
    """Compute every venue's commitment at every snapshot of the database (or those given) and
    write them as fct_solvency_commitments (docs/schema.md), replacing the table."""
    if not db.exists():
        raise FileNotFoundError(f"no database at {db}: build it with `contagion build` first")
    with duckdb.connect(str(db)) as con:
        blocks = ([int(b) for (b,) in con.execute(
            "select snapshot_block from ref_snapshots order by 1").fetchall()]
            if snapshots is None else sorted(set(snapshots)))
        commitments = [c for b in blocks for c in venue_commitments(con, b)]
        scale = 10**UNIT_DECIMALS
        rows = [{"snapshot_block": c.snapshot_block, "chain_id": c.chain_id, "venue": c.venue,
                 "venue_kind": c.venue_kind, "root": c.root,
                 "collateral_raw": _decimal38(c.collateral, f"{c.venue}'s collateral"),
                 "debt_raw": _decimal38(c.debt, f"{c.venue}'s debt"), "unit": c.unit,
                 "collateral_usd": c.collateral / scale, "debt_usd": c.debt / scale,
                 "leaves": c.leaves, "unpriced_positions": c.unpriced_positions}
                for c in commitments]
        replace_table(con, COMMITMENTS_TABLE, pa.Table.from_pylist(rows, schema=_SCHEMA))
    return commitments


def prove_account(db: Path, account: str, *, venue: str | None = None,
                  snapshot_block: int | None = None) -> list[Proof]:
    """The account's inclusion proofs at a snapshot (the latest by default), one per venue it
    has a position at, or at the one venue given. When the database holds
    fct_solvency_commitments, each proof is checked against the published row, so a proof
    never points at a root nobody published."""
    account = _account(account)
    with connect_readonly(db) as con:
        if snapshot_block is None:
            row = con.execute("select max(snapshot_block) from ref_snapshots").fetchone()
            if row is None or row[0] is None:
                raise ValueError(f"{db} has no snapshot to prove at")
            snapshot_block = int(row[0])
        _require_snapshot(con, snapshot_block)
        if venue is not None:
            names = [v for (v,) in con.execute("select venue from ref_venues order by 1")
                     .fetchall()]
            if venue not in names:
                raise ValueError(f"unknown venue {venue!r}; the venues are {', '.join(names)}")
        held = [v for (v,) in con.execute(
            "select distinct venue from fct_positions where snapshot_block = ? and account = ? "
            "order by 1", [snapshot_block, account]).fetchall()]
        wanted = [v for v in held if venue is None or v == venue]
        if not wanted:
            seen = con.execute("select count(*) from fct_positions where account = ?",
                               [account]).fetchone()
            if not seen or not seen[0]:
                raise ValueError(f"unknown account {account}: it has no position at any "
                                 "snapshot of this database")
            where = f" at {venue}" if venue is not None else ""
            also = f" (it has positions at {', '.join(held)})" if held else ""
            raise ValueError(f"account {account} has no position{where} at snapshot "
                             f"{snapshot_block}{also}")
        trees = venue_trees(con, snapshot_block, wanted)
        published = _published(con, snapshot_block)
    proofs = []
    for t in trees:
        proof = t.prove(account)
        if (t.chain_id, t.venue) in published:
            root, totals = published[t.chain_id, t.venue]
            try:
                check_proof(proof, root, totals)
            except ProofError as exc:
                raise ValueError(f"{COMMITMENTS_TABLE} in {db} is stale for {t.venue} at "
                                 f"{snapshot_block} (rewrite it with write_commitments): "
                                 f"{exc}") from None
        proofs.append(proof)
    return proofs


def _published(con: duckdb.DuckDBPyConnection, snapshot_block: int
               ) -> dict[tuple[int, str], tuple[str, tuple[int, int]]]:
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_name = ?", [COMMITMENTS_TABLE]).fetchone()
    if not exists or not exists[0]:
        return {}
    return {(int(chain), venue): (root, (int(collateral), int(debt)))
            for chain, venue, root, collateral, debt in con.execute(
                f"select chain_id, venue, root, collateral_raw, debt_raw from "
                f"{COMMITMENTS_TABLE} where snapshot_block = ?", [snapshot_block]).fetchall()}
