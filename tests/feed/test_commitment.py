"""The solvency commitment: hand-checked sum trees, proofs that fail when anything is altered,
and the commitments of the devnet crisis against its balance sheets."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import World
from eth_abi import encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.chain.rpc import RpcError
from contagion.devnet.driver import DevnetDriver
from contagion.devnet.node import GENESIS_TIMESTAMP
from contagion.feed.commitment import (
    COMMITMENTS_TABLE,
    EMPTY,
    UINT256_MAX,
    Leaf,
    ProofError,
    SumTree,
    check_proof,
    prove,
    prove_account,
    venue_trees,
    verify_proof,
    write_commitments,
)
from contagion.warehouse import connect_readonly

# -- the encoding as the spec states it, with eth_abi (the module writes the words itself)


Sums = tuple[bytes, int, int]


def leaf(account: str, collateral: int, debt: int) -> Sums:
    return (keccak(b"\x00" + encode(["address", "uint256", "uint256"],
                                    [account, collateral, debt])), collateral, debt)


def node(left: Sums, right: Sums) -> Sums:
    return (keccak(b"\x01" + encode(["bytes32", "uint256", "uint256"] * 2, [*left, *right])),
            left[1] + right[1], left[2] + right[2])


PAD: Sums = (bytes(32), 0, 0)
A, B, C, D, E = (f"0x{i:040x}" for i in (0xA1, 0xB2, 0xC3, 0xD4, 0xE5))
AMOUNTS = {A: (5_000_000, 0), B: (0, 1_250_000), C: (7, 3), D: (10**30, 10**29),
           E: (UINT256_MAX // 8, 0)}


def tree_of(*accounts: str) -> SumTree:
    # given in reverse: the tree orders leaves by address itself
    return SumTree(Leaf(a.upper().replace("0X", "0x"), *AMOUNTS[a])
                   for a in reversed(accounts))


def proof_of(tree: SumTree, account: str) -> dict[str, Any]:
    return dict(prove(tree, account, chain_id=1, venue="v", snapshot_block=7))


def trusted(tree: SumTree) -> tuple[str, tuple[int, int]]:
    return "0x" + tree.root.hash.hex(), (tree.root.collateral, tree.root.debt)


def lf(account: str) -> Sums:
    return leaf(account, *AMOUNTS[account])


@pytest.mark.parametrize(("accounts", "expected"), [
    ((A,), lf(A)),
    ((A, B), node(lf(A), lf(B))),
    ((A, B, C), node(node(lf(A), lf(B)), node(lf(C), PAD))),
    ((A, B, C, D, E), node(node(node(lf(A), lf(B)), node(lf(C), lf(D))),
                           node(node(lf(E), PAD), PAD))),
])
def test_small_trees_by_hand(accounts: tuple[str, ...], expected: Sums) -> None:
    tree = tree_of(*accounts)
    assert (tree.root.hash, tree.root.collateral, tree.root.debt) == expected
    assert tree.root.collateral == sum(AMOUNTS[a][0] for a in accounts)
    assert [leaf.account for leaf in tree.leaves] == sorted(accounts)
    root, totals = trusted(tree)
    for account in accounts:
        proof = proof_of(tree, account)
        assert len(proof["siblings"]) == math.ceil(math.log2(len(accounts)))
        check_proof(json.loads(json.dumps(proof)), root, totals)  # raises if it fails
        assert verify_proof(proof, root, totals)


def test_the_proof_of_c_in_five_leaves_by_hand() -> None:
    proof = proof_of(tree_of(A, B, C, D, E), C)
    assert proof["leaf"] == {"account": C, "collateral": "7", "debt": "3"}
    right_of_ab = node(node(lf(E), PAD), PAD)
    assert [(s["side"], s["hash"], int(s["collateral"]), int(s["debt"]))
            for s in proof["siblings"]] == [
        (side, "0x" + h.hex(), c, d) for side, (h, c, d) in
        (("right", lf(D)), ("left", node(lf(A), lf(B))), ("right", right_of_ab))]


def test_an_empty_venue_commits_to_the_empty_node() -> None:
    tree = SumTree([])
    assert tree.root == EMPTY and tree.leaves == ()
    with pytest.raises(KeyError, match="no leaf"):
        tree.siblings(A)


def test_bad_leaves_are_refused() -> None:
    with pytest.raises(ValueError, match="given twice: " + A):
        SumTree([Leaf(A, 1, 0), Leaf(A.upper().replace("0X", "0x"), 2, 0)])
    with pytest.raises(ValueError, match="20-byte hex address"):
        SumTree([Leaf("account:small", 1, 0)])
    with pytest.raises(OverflowError, match="does not fit uint256"):
        SumTree([Leaf(A, UINT256_MAX + 1, 0)])
    with pytest.raises(OverflowError, match="does not fit uint256"):
        SumTree([Leaf(A, 0, -1)])
    with pytest.raises(OverflowError, match="collateral sum"):
        SumTree([Leaf(A, UINT256_MAX, 0), Leaf(B, 1, 0)])


def _set(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def apply(proof: dict[str, Any]) -> None:
        target: Any = proof
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return apply


def _shift_to_sibling(proof: dict[str, Any]) -> None:
    # the classic sum-tree forgery: move value from the leaf onto a sibling, totals unchanged
    proof["leaf"]["collateral"] = str(int(proof["leaf"]["collateral"]) - 1)
    sibling = proof["siblings"][0]
    sibling["collateral"] = str(int(sibling["collateral"]) + 1)


def _swap_side(proof: dict[str, Any]) -> None:
    side = proof["siblings"][0]["side"]
    proof["siblings"][0]["side"] = "left" if side == "right" else "right"


@pytest.mark.parametrize(("tamper", "reason"), [
    (_set(("leaf", "collateral"), "5000001"), "hash to"),
    (_set(("leaf", "debt"), "1"), "hash to"),
    (_set(("leaf", "account"), B), "hash to"),
    (_set(("siblings", 0, "hash"), "0x" + "11" * 32), "hash to"),
    (_set(("siblings", 1, "debt"), "0"), "hash to"),
    (_shift_to_sibling, "hash to"),
    (_swap_side, "hash to"),
    (lambda p: p["siblings"].pop(), "hash to"),
    (_set(("siblings", 0, "collateral"), str(UINT256_MAX)), "does not fit uint256"),
    (_set(("leaf", "collateral"), "-5"), "non-negative integer"),
    (_set(("leaf", "collateral"), 5e6), "integer in decimal text"),
    (_set(("leaf", "debt"), str(UINT256_MAX + 1)), "is not a uint256"),
    (_set(("siblings", 0, "hash"), "0x1234"), "32 bytes"),
    (_set(("siblings", 0, "side"), "up"), "left or right"),
    (_set(("leaf", "account"), "alice"), "20-byte hex address"),
    (lambda p: p.pop("siblings"), "no siblings"),
    (lambda p: p["leaf"].pop("debt"), "no leaf debt"),
])
def test_a_tampered_proof_fails(tamper: Callable[[dict[str, Any]], None], reason: str) -> None:
    tree = tree_of(A, B, C, D, E)
    root, totals = trusted(tree)
    proof = proof_of(tree, A)
    assert verify_proof(proof, root, totals)
    forged = copy.deepcopy(proof)
    tamper(forged)
    assert not verify_proof(forged, root, totals)
    with pytest.raises(ProofError, match=reason):
        check_proof(forged, root, totals)


def test_a_proof_fails_against_another_root_or_other_totals() -> None:
    tree = tree_of(A, B, C)
    root, (collateral, debt) = trusted(tree)
    proof = proof_of(tree, B)
    with pytest.raises(ProofError, match="not to the commitment's root"):
        check_proof(proof, trusted(tree_of(A, B))[0], (collateral, debt))
    with pytest.raises(ProofError, match="totals are collateral"):
        check_proof(proof, root, (collateral + 1, debt))
    with pytest.raises(ProofError, match="totals are collateral"):
        check_proof(proof, root, (collateral, debt - 1))
    # what the proof says of its own root and totals is never what it is checked against
    proof["root"], proof["totals"] = "0x" + "00" * 32, {"collateral": "0", "debt": "0"}
    assert verify_proof(proof, root, (collateral, debt))


accounts = st.integers(min_value=0, max_value=2**160 - 1).map(lambda n: f"0x{n:040x}")
amounts = st.integers(min_value=0, max_value=2**200)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(accounts, st.tuples(amounts, amounts), min_size=1, max_size=40),
       st.randoms(use_true_random=False))
def test_every_leaf_of_a_random_tree_proves_and_a_change_breaks_it(
        book: dict[str, tuple[int, int]], rnd: random.Random) -> None:
    leaves = [Leaf(a, c, d) for a, (c, d) in book.items()]
    rnd.shuffle(leaves)
    tree = SumTree(leaves)
    assert tree.root == SumTree(reversed(leaves)).root  # the order given does not matter
    root, totals = trusted(tree)
    assert totals == (sum(c for c, _ in book.values()), sum(d for _, d in book.values()))
    for account in book:
        proof = proof_of(tree, account)
        assert proof["leaf"]["collateral"] == str(book[account][0])
        assert verify_proof(proof, root, totals)
    proof = proof_of(tree, rnd.choice(list(book)))
    field = rnd.choice(["collateral", "debt"])
    where = rnd.choice([proof["leaf"], *proof["siblings"]])
    where[field] = str(int(where[field]) + rnd.randint(1, 2**64))
    assert not verify_proof(proof, root, totals)


# -- the devnet crisis warehouse


@pytest.fixture(scope="module")
def committed(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("commitment") / "contagion.duckdb"
    shutil.copy(world.db, db)
    write_commitments(db)
    return db


def _rows(db: Path, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connect_readonly(db) as con:
        return con.execute(query, params or []).fetchall()


@pytest.mark.devnet
def test_commitments_are_written_and_documented(committed: Path) -> None:
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()
    section = re.search(rf"^## `{COMMITMENTS_TABLE}`\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    assert section, f"docs/schema.md has no section for {COMMITMENTS_TABLE}"
    table = re.search(r"^\| column \|.*?(?=\n\n|\Z)", section.group(1), re.S | re.M)
    assert table
    documented = re.findall(r"^\| (\w+) \|", table.group(0), re.M)[1:]
    assert documented == [r[0] for r in _rows(committed, f"describe {COMMITMENTS_TABLE}")]
    # every venue at every snapshot, and at block 0 nothing yet: the empty node
    assert _rows(committed, f"select count(*) from {COMMITMENTS_TABLE}") == _rows(
        committed, "select count(*) from ref_snapshots cross join ref_venues")
    assert set(_rows(committed, f"select root, collateral_raw, debt_raw, leaves from "
                                f"{COMMITMENTS_TABLE} where snapshot_block = 0")) == {
        ("0x" + "00" * 32, 0, 0, 0)}


@pytest.mark.devnet
def test_totals_equal_the_balance_sheet_within_a_micro_usd_per_leaf(committed: Path) -> None:
    rows = _rows(committed, f"""
        select c.snapshot_block, c.venue, c.collateral_raw, c.debt_raw, c.leaves,
               c.unpriced_positions,
               s.collateral_usd + s.supply_usd + s.margin_usd + s.claims_outstanding_usd,
               s.debt_usd,
               (select count(*) from fct_positions as p where p.venue = c.venue
                and p.snapshot_block = c.snapshot_block and p.amount_usd is null),
               (select count(distinct account) from fct_positions as p
                where p.venue = c.venue and p.snapshot_block = c.snapshot_block)
        from {COMMITMENTS_TABLE} as c
        join fct_venue_balance_sheet as s using (snapshot_block, venue)""")
    assert len(rows) >= 30
    assert sum(r[4] for r in rows) > 150
    for block, venue, collateral, debt, leaves, unpriced, sheet_c, sheet_d, nulls, n in rows:
        where = f"{venue} at {block}"
        floats = 1e-9 * max(sheet_c, sheet_d, 1.0)  # the balance sheet's own float error
        # collateral rounds down, debt up: never more cover than the balance sheet shows, and
        # less by under a micro-USD per leaf
        assert -floats <= sheet_c - float(collateral) / 1e6 <= leaves * 1e-6 + floats, where
        assert -floats <= float(debt) / 1e6 - sheet_d <= leaves * 1e-6 + floats, where
        assert (unpriced, leaves) == (nulls, n), where
    assert any(r[3] > 0 for r in rows) and any(r[2] > 10**12 for r in rows)


@pytest.mark.devnet
def test_a_position_without_a_price_is_counted_not_dropped(world: World, tmp_path: Path
                                                            ) -> None:
    """Without a mark (here: the oTokens' taken away) a position is left out of the sums and
    counted, and its account keeps its leaf."""
    db = tmp_path / "unmarked.duckdb"
    shutil.copy(world.db, db)
    with duckdb.connect(str(db)) as con:
        (last,), = con.execute("select max(snapshot_block) from ref_snapshots").fetchall()
        con.execute("delete from int_token_prices where feed_id = 'black_scholes'")
        con.execute("update fct_positions set price_usd = null, amount_usd = null where token "
                    "in (select token from int_tokens where token_kind = 'otoken')")
        unpriced = dict(con.execute(
            "select venue, count(*) from fct_positions where snapshot_block = ? "
            "and price_usd is null group by venue", [last]).fetchall())
        accounts = dict(con.execute(
            "select venue, count(distinct account) from fct_positions "
            "where snapshot_block = ? group by venue", [last]).fetchall())
        trees = {t.venue: t for t in venue_trees(con, last)}
    assert unpriced.get("opyn_gamma", 0) > 0
    for venue, tree in trees.items():
        assert tree.unpriced_positions == unpriced.get(venue, 0), venue
        assert len(tree.tree.leaves) == accounts.get(venue, 0), venue


@pytest.mark.devnet
def test_a_position_without_an_amount_stops_the_commitment(world: World, tmp_path: Path
                                                           ) -> None:
    """A position the warehouse could not value (null amount: a state read or events missing)
    is neither zero nor skipped: no commitment, and the error names the position."""
    db = tmp_path / "unvalued.duckdb"
    shutil.copy(world.db, db)
    with duckdb.connect(str(db)) as con:
        (last,), = con.execute("select max(snapshot_block) from ref_snapshots").fetchall()
        (venue, account), = con.execute(
            "update fct_positions set amount_raw = null where (snapshot_block, venue, account, "
            "side) = (select (snapshot_block, venue, account, side) from fct_positions "
            "where snapshot_block = ? and protocol = 'compound_v3' and side = 'debt' "
            "order by account limit 1) returning venue, account", [last]).fetchall()
        with pytest.raises(ValueError, match=f"{venue}: {account}'s debt .* no amount"):
            venue_trees(con, last)


@pytest.mark.devnet
def test_leaves_are_valued_exactly(committed: Path) -> None:
    # Σ amount_raw × answer / 10^(token decimals + feed decimals) in micro-USD, with integers
    # over a common power of ten: collateral rounded down, debt up (the USD unit of perps
    # margin: answer 1, decimals 0). Leaves with an LP share or an unpriced position aside.
    positions = _rows(committed, """
        select p.snapshot_block, p.venue, p.account, p.side, p.amount_raw::varchar,
               x.answer_raw::varchar, x.answer_decimals + t.decimals
        from fct_positions as p
        join int_tokens as t on t.token = p.token
        left join int_token_prices as x
            on x.token = p.token and x.snapshot_block = p.snapshot_block""")
    books: dict[tuple[int, str, str], list[tuple[str, int, int | None, int]]] = {}
    for block, venue, account, side, amount, answer, decimals in positions:
        books.setdefault((block, venue, account), []).append(
            (side, int(amount), None if answer is None else int(answer), decimals))
    with connect_readonly(committed) as con:
        trees = {(t.snapshot_block, t.venue): t.tree for b in {k[0] for k in books}
                 for t in venue_trees(con, b)}
    checked = set()
    for (block, venue, account), book in books.items():
        if any(answer is None for _, _, answer, _ in book):
            continue
        scale = max(decimals for *_, decimals in book)
        sums = {"collateral": 0, "debt": 0}
        for side, amount, answer, decimals in book:
            assert answer is not None
            sums["debt" if side == "debt" else "collateral"] += (
                amount * answer * 10**6 * 10 ** (scale - decimals))
        leaf = trees[block, venue].leaf(account)
        assert (leaf.collateral, leaf.debt) == (sums["collateral"] // 10**scale,
                                                -(-sums["debt"] // 10**scale)), (venue, account)
        checked |= {(venue, side) for side, *_ in book}
    assert {("aave_v3", "debt"), ("morpho_blue", "supply"), ("gmx_v1", "margin"),
            ("lido", "holding"), ("opyn_gamma", "margin")} <= checked


@pytest.mark.devnet
def test_every_account_of_every_venue_proves(committed: Path) -> None:
    published = {(b, v): (root, (int(c), int(d))) for b, v, root, c, d in _rows(
        committed, f"select snapshot_block, venue, root, collateral_raw, debt_raw "
                   f"from {COMMITMENTS_TABLE}")}
    held = _rows(committed, "select distinct snapshot_block, venue, account from fct_positions")
    assert len(held) > 150
    with connect_readonly(committed) as con:
        trees = {(t.snapshot_block, t.venue): t for (b,) in con.execute(
            "select snapshot_block from ref_snapshots").fetchall() for t in venue_trees(con, b)}
    for block, venue, account in held:
        proof = trees[block, venue].prove(account)
        root, totals = published[block, venue]
        assert (proof["root"], proof["venue"], proof["snapshot_block"]) == (root, venue, block)
        assert verify_proof(json.loads(json.dumps(proof)), root, totals), (block, venue, account)
    # and the leaves are exactly the accounts with a position
    assert sorted(held) == sorted((b, v, leaf.account) for (b, v), t in trees.items()
                                  for leaf in t.tree.leaves)


@pytest.mark.devnet
def test_prove_account_defaults_and_errors(committed: Path, tmp_path: Path) -> None:
    last, = _rows(committed, "select max(snapshot_block) from ref_snapshots")[0]
    account, venue = _rows(committed, "select account, min(venue) from fct_positions "
                                      "where snapshot_block = ? group by 1 order by 1 limit 1",
                           [last])[0]
    proofs = prove_account(committed, account.upper().replace("0X", "0x"))
    assert [p["venue"] for p in proofs] == [v for (v,) in _rows(
        committed, "select distinct venue from fct_positions where account = ? and "
                   "snapshot_block = ? order by 1", [account, last])]
    published = dict(_rows(committed, f"select venue, root from {COMMITMENTS_TABLE} "
                                      "where snapshot_block = ?", [last]))
    assert all(p["snapshot_block"] == last and p["root"] == published[p["venue"]]
               for p in proofs)
    assert [p["venue"] for p in prove_account(committed, account, venue=venue)] == [venue]
    with pytest.raises(ValueError, match="unknown account 0x0000"):
        prove_account(committed, "0x" + "00" * 19 + "01")
    with pytest.raises(ValueError, match="20-byte hex address"):
        prove_account(committed, "alice")
    with pytest.raises(ValueError, match="unknown venue 'nowhere'; the venues are aave_v3"):
        prove_account(committed, account, venue="nowhere")
    elsewhere = _rows(committed, "select venue from ref_venues except select venue from "
                                 "fct_positions where account = ? and snapshot_block = ?",
                      [account, last])[0][0]
    with pytest.raises(ValueError, match=f"no position at {elsewhere} at snapshot {last} "
                                         f"\\(it has positions at {venue}"):
        prove_account(committed, account, venue=elsewhere)
    with pytest.raises(ValueError, match="no position at snapshot 0"):
        prove_account(committed, account, snapshot_block=0)
    with pytest.raises(ValueError, match="not a snapshot of this database"):
        prove_account(committed, account, snapshot_block=last + 1)
    # a table that no longer matches the positions is refused, not proved against
    stale = tmp_path / "stale.duckdb"
    shutil.copy(committed, stale)
    with duckdb.connect(str(stale)) as con:
        con.execute(f"update {COMMITMENTS_TABLE} set collateral_raw = collateral_raw + 1 "
                    "where venue = ? and snapshot_block = ?", [venue, last])
    with pytest.raises(ValueError, match=f"stale for {venue} at {last}"):
        prove_account(stale, account, venue=venue)


def _call_args(proof: Mapping[str, Any]) -> tuple[Any, ...]:
    leaf = proof["leaf"]
    return (leaf["account"], int(leaf["collateral"]), int(leaf["debt"]),
            [(s["side"] == "left", bytes.fromhex(s["hash"][2:]), int(s["collateral"]),
              int(s["debt"])) for s in proof["siblings"]])


@pytest.mark.devnet
def test_a_vyper_verifier_redoes_the_proofs(devnet: DevnetDriver, committed: Path) -> None:
    verifier = devnet.deploy("SolvencyVerifier")
    devnet.mine_all(GENESIS_TIMESTAMP + 12)
    tree = tree_of(A, B, C, D, E)
    totals = trusted(tree)[1]
    for account in (A, B, C, D, E):
        call = _call_args(proof_of(tree, account))
        assert verifier.call("root_of", *call) == (tree.root.hash, *totals)
        assert verifier.call("verify", *call, tree.root.hash, *totals)
    forged = proof_of(tree, C)
    _shift_to_sibling(forged)
    assert not verifier.call("verify", *_call_args(forged), tree.root.hash, *totals)
    forged = proof_of(tree, C)
    forged["siblings"][0]["collateral"] = str(UINT256_MAX)
    with pytest.raises(RpcError, match="revert"):  # the sum overflows: the contract reverts
        verifier.call("root_of", *_call_args(forged))
    # the devnet crisis: the first and the last leaf of every venue at every snapshot
    with connect_readonly(committed) as con:
        trees = [t for (b,) in con.execute("select snapshot_block from ref_snapshots")
                 .fetchall() for t in venue_trees(con, b) if t.tree.leaves]
    assert len(trees) >= 25
    for t in trees:
        c = t.commitment
        for leaf in {t.tree.leaves[0], t.tree.leaves[-1]}:
            on_chain = verifier.call("verify", *_call_args(t.prove(leaf.account)),
                                     bytes.fromhex(c.root[2:]), c.collateral, c.debt)
            assert on_chain, (t.venue, t.snapshot_block, leaf.account)


def test_commitments_of_a_database_without_snapshots(tmp_path: Path) -> None:
    from contagion.lake import Lake
    from contagion.registry import load_registry
    from contagion.warehouse import build_database

    db = tmp_path / "contagion.duckdb"
    build_database(db, Lake(str(tmp_path / "lake")), load_registry("ethereum"),
                   allow_empty_lake=True)
    assert write_commitments(db) == []
    with pytest.raises(FileNotFoundError, match="no database at"):
        write_commitments(tmp_path / "elsewhere.duckdb")
    assert _rows(db, f"select count(*) from {COMMITMENTS_TABLE}") == [(0,)]
    with pytest.raises(ValueError, match="has no snapshot to prove at"):
        prove_account(db, A)


def test_a_position_below_zero_is_refused_by_name() -> None:
    """A replay that lacks events can leave a position below zero (no_negative_balances names
    it); a sum tree has no negative leaf, so the commitment says so rather than overflowing."""
    token, account = "0x" + "22" * 20, "0x" + "44" * 20
    con = duckdb.connect()
    con.execute("create table ref_snapshots(snapshot_block bigint); "
                "insert into ref_snapshots values (100)")
    con.execute("create table ref_venues(chain_id bigint, venue varchar, venue_kind varchar); "
                "insert into ref_venues values (31337, 'morpho', 'lending')")
    con.execute("create table int_tokens(chain_id bigint, token varchar, decimals int)")
    con.execute("insert into int_tokens values (31337, ?, 18)", [token])
    con.execute("create table int_token_prices(chain_id bigint, token varchar, feed_id varchar, "
                "price_usd double, answer_raw decimal(38,0), answer_decimals int, "
                "snapshot_block bigint)")
    con.execute("insert into int_token_prices values (31337, ?, 'eth', 2000, 200000000000, 8, "
                "100)", [token])
    con.execute("create table int_lp_share_prices(chain_id bigint, token varchar, "
                "token0 varchar, token1 varchar, reserve0 hugeint, reserve1 hugeint, "
                "shares_raw hugeint, snapshot_block bigint)")
    con.execute("create table fct_positions(chain_id bigint, venue varchar, account varchar, "
                "token varchar, side varchar, amount_raw hugeint, price_usd double, "
                "snapshot_block bigint)")
    con.execute("insert into fct_positions values (31337, 'morpho', ?, ?, 'supply', -10, 2000, "
                "100)", [account, token])
    with pytest.raises(ValueError, match=r"supply of .* is -10 at snapshot 100, below zero"):
        venue_trees(con, 100)
