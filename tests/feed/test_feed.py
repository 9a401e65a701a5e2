"""The signed risk feed: the document, its signature and verifier, the keys, and the publisher
that refuses to sign data it cannot vouch for."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
from conftest import FEED_TEST_KEY, World
from eth_account import Account
from eth_account.signers.local import LocalAccount

from contagion.feed.commitment import prove_account, write_commitments
from contagion.feed.document import (
    FeedBody,
    SignedFeed,
    feed_json_schema,
    sign_feed,
    verify_feed,
)
from contagion.feed.keys import (
    KEY_ENV,
    KEYSTORE_ENV,
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    SigningKeyError,
    create_keystore,
    load_signer,
)
from contagion.feed.publisher import (
    ChainHead,
    FeedDocumentError,
    FeedRefused,
    FeedSettings,
    FeedStore,
    chain_head,
    latest_snapshot,
    publish_feed,
    refusals,
)
from contagion.graph.marts import write_graph_marts
from contagion.policy.model import load_policy
from contagion.registry import Registry
from contagion.risk.marts import write_risk_marts

ROOT = Path(__file__).resolve().parents[2]
ORACLE = "0x00000000000000000000000000000000000000aa"
TEST_KEY = FEED_TEST_KEY
SIGNER: LocalAccount = Account.from_key(TEST_KEY)


def _body(**changes: Any) -> FeedBody:
    body: dict[str, Any] = {
        "format": "contagion-risk-feed/1",
        "methodology": {"version": "1.0", "policy_version": 1, "amber_score": 4.0,
                        "red_score": 8.0, "insolvency_horizon_days": 1.0,
                        "insolvency_paths": 1000, "reference": "docs/feed.md"},
        "network": "devnet", "chain_id": 31337, "oracle": ORACLE, "snapshot_block": 100,
        "snapshot_block_hash": "0x" + "ab" * 32, "snapshot_time": 1_000,
        "generated_at": 1_012, "valid_until": 4_612, "nonce": 7,
        "ecosystem": {"score": 9.5, "level": "red", "driver": "aave"},
        "venues": [{"venue": "aave", "address": "0x" + "11" * 20, "kind": "lending",
                    "score": 9.5, "level": "red", "insolvency_probability": 0.25,
                    "actions": [{"action": "freeze_market", "asset": "0x" + "22" * 20,
                                 "symbol": "stETH", "rule": "freeze-exposed-markets",
                                 "params": {}, "loss_before_usd": 2.5e6,
                                 "loss_after_usd": 1.2e6, "coordinated_with": ["compound"]}],
                    "commitment": {"root": "0x" + "33" * 32,
                                   "collateral_total": str(2**200), "debt_total": "12",
                                   "leaves": 3, "unpriced_positions": 0,
                                   "unit": "micro-USD"}}],
    }
    body.update(changes)
    return FeedBody.model_validate(body)


def _verify(document: Any, **pins: Any) -> dict[str, bool]:
    options: dict[str, Any] = {"chain_id": 31337, "oracle": ORACLE,
                               "signers": [SIGNER.address], "now": 2_000, **pins}
    _, findings = verify_feed(document, **options)
    return {f.name: f.passed for f in findings}


def test_a_signed_document_verifies_and_every_forgery_fails() -> None:
    signed = sign_feed(_body(), SIGNER)
    document = json.loads(signed.model_dump_json())
    assert all(_verify(document).values())
    # big integers stay exact, as strings
    assert document["venues"][0]["commitment"]["collateral_total"] == str(2**200)

    tampered = json.loads(json.dumps(document))
    tampered["ecosystem"]["level"] = "green"
    result = _verify(tampered)
    assert not result["content_hash"] and not result["signature"]

    assert not _verify(document, chain_id=1)["domain"]
    assert not _verify(document, chain_id=1)["signer_allowed"]  # recovers to someone else
    other = "0x00000000000000000000000000000000000000bb"
    assert not _verify(document, oracle=other)["signer_allowed"]
    assert not _verify(document, signers=[Account.create().address])["signer_allowed"]
    assert not _verify(document, now=4_613)["expiry"]
    assert not _verify(document, now=1_000)["expiry"]  # before it was generated
    assert not _verify(document, after_nonce=7)["nonce"]
    assert _verify(document, after_nonce=6)["nonce"]

    impostor = Account.create()
    forged = json.loads(sign_feed(_body(), impostor).model_dump_json())
    forged["signature"]["signer"] = SIGNER.address  # claims to be the real signer
    result = _verify(forged)
    assert not result["signature"] and not result["signer_allowed"]

    del document["nonce"]
    assert _verify(document) == {"schema": False}


def test_the_verifier_reads_the_document_as_any_reader_does() -> None:
    """What a lax parser would coerce, and what readers disagree on, is refused: the content
    hash is of the document as received, so a verifier in another language agrees."""
    text = sign_feed(_body(), SIGNER).model_dump_json()
    assert all(_verify(text).values())
    assert all(_verify(text.encode()).values())
    refused = {
        "a number as a string": text.replace('"nonce":7', '"nonce":"7"'),
        "a repeated key": text.replace('"level":"red"', '"level":"green","level":"red"', 1),
        "NaN": text.replace('"score":9.5', '"score":NaN', 1),
        "a float past the double range": text.replace('"score":9.5', '"score":1e400', 1),
        "an integer past RFC 8785's 2^53": text.replace('"nonce":7', f'"nonce":{2**53 + 1}'),
        "bytes that are not UTF-8": b"\xff\xfe" + text.encode(),
        "not an object": "[1, 2]",
    }
    for why, document in refused.items():
        assert document != text, why
        assert _verify(document) == {"schema": False}, why
    zero = json.loads(text)
    zero["signature"]["signature"] = "0x" + "00" * 64 + "1b"  # r = s = 0: recovers no one
    assert not _verify(zero)["signature"]


def test_proofs_that_are_not_proofs_are_findings_not_crashes() -> None:
    document = json.loads(sign_feed(_body(), SIGNER).model_dump_json())
    leaf = {"account": "0x" + "44" * 20, "collateral": "1" * 5000, "debt": "0"}
    proofs: list[Any] = ["x", 5, {"venue": "aave", "snapshot_block": 100, "leaf": "x"},
                         {"venue": "aave", "snapshot_block": 100, "leaf": leaf,
                          "siblings": []}]
    _, findings = verify_feed(document, chain_id=31337, oracle=ORACLE,
                              signers=[SIGNER.address], now=2_000, proofs=proofs)
    failed = [f for f in findings if f.name.startswith("proof")]
    assert [f.passed for f in failed] == [False] * 4
    assert "at most 78 digits" in failed[-1].detail


def test_sign_refuses_a_document_without_validity() -> None:
    with pytest.raises(ValueError, match="valid for some time"):
        sign_feed(_body(valid_until=1_012), SIGNER)


def test_the_published_schema_is_the_models_and_accepts_a_signed_document() -> None:
    published = json.loads((ROOT / "docs" / "feed.schema.json").read_text())
    assert published == feed_json_schema(), "regenerate docs/feed.schema.json"
    document = json.loads(sign_feed(_body(), SIGNER).model_dump_json())
    jsonschema.validate(document, published)
    document["venues"][0]["level"] = "purple"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, published)


def test_the_key_comes_from_the_environment_or_a_keystore(tmp_path: Path) -> None:
    assert load_signer(env={KEY_ENV: TEST_KEY}).address == SIGNER.address
    with pytest.raises(SigningKeyError, match="no feed-signing key"):
        load_signer(env={})
    with pytest.raises(SigningKeyError, match="not a valid private key") as bad:
        load_signer(env={KEY_ENV: "0x1234"})
    assert "0x1234" not in str(bad.value)  # a key is never echoed
    keystore = tmp_path / "feed.keystore"
    address = create_keystore(keystore, "correct horse")
    assert (keystore.stat().st_mode & 0o777) == 0o600
    env = {KEYSTORE_ENV: str(keystore), PASSWORD_ENV: "correct horse"}
    assert load_signer(env=env).address == address
    with pytest.raises(SigningKeyError, match="wrong password"):
        load_signer(env={**env, PASSWORD_ENV: "wrong"})
    with pytest.raises(FileExistsError):
        create_keystore(keystore, "another")
    # JSON that is not a keystore, and a password file that is not there: said, not raised
    for name, content in {"empty.json": "{}", "list.json": "[]",
                          "no-crypto.json": '{"version": 3, "address": "00"}'}.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(SigningKeyError, match="not a keystore"):
            load_signer(env={KEYSTORE_ENV: str(tmp_path / name), PASSWORD_ENV: "x"})
    with pytest.raises(SigningKeyError, match="cannot read the keystore password"):
        load_signer(env={KEYSTORE_ENV: str(keystore),
                         PASSWORD_FILE_ENV: str(tmp_path / "absent")})


def test_a_keystore_is_private_from_its_first_byte(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    real_dump = json.dump

    def dump(data: Any, handle: Any) -> None:  # the mode while the key is being written
        modes.append(Path(handle.name).stat().st_mode & 0o777 if isinstance(handle.name, str)
                     else os.fstat(handle.fileno()).st_mode & 0o777)
        real_dump(data, handle)

    monkeypatch.setattr(json, "dump", dump)
    create_keystore(tmp_path / "feed.keystore", "correct horse")
    assert modes == [0o600]


def test_a_nonce_is_published_once_even_when_two_signers_race(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FeedStore(tmp_path)
    first = sign_feed(_body(), SIGNER)
    second = sign_feed(_body(ecosystem={"score": 1.0, "level": "green", "driver": None}),
                       SIGNER)
    path = store.save(first)
    # the other signer looked before the first file was there: its save must still fail
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(FileExistsError, match="nonce 7 is already published"):
        store.save(second)
    monkeypatch.undo()
    assert SignedFeed.model_validate_json(path.read_text()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


# -- the publisher, on the devnet crisis warehouse ------------------------------------------

@pytest.fixture(scope="module")
def scored(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the crisis database with the contagion and early-warning marts written."""
    db = tmp_path_factory.mktemp("feed") / "contagion.duckdb"
    shutil.copy(world.db, db)
    write_graph_marts(db, world.registry)
    write_risk_marts(db, world.registry)
    write_commitments(db)
    yield db


def _registry(world: World) -> Registry:
    registry: Registry = world.registry
    return registry if registry.risk_oracle else registry.model_copy(
        update={"risk_oracle": ORACLE})


@pytest.mark.devnet
def test_the_publisher_signs_the_latest_snapshot(world: World, scored: Path,
                                                 tmp_path: Path) -> None:
    registry = _registry(world)
    store = FeedStore(tmp_path / "feed")
    feed = publish_feed(scored, registry, SIGNER, store, world.client)
    assert feed.nonce == 1 and store.next_nonce() == 2
    with duckdb.connect(str(scored), read_only=True) as con:
        last = con.execute("select max(snapshot_block) from ref_snapshots").fetchone()
        eco = con.execute("select level, score from fct_ecosystem_score "
                          "order by snapshot_block desc limit 1").fetchone()
    assert last and eco and feed.snapshot_block == last[0] == latest_snapshot(scored)
    assert feed.ecosystem.level == eco[0] and feed.ecosystem.score == pytest.approx(eco[1])
    assert {v.venue for v in feed.venues} == {v.id for v in registry.venues}
    block = world.client.call("eth_getBlockByNumber", [hex(feed.snapshot_block), False])
    assert feed.snapshot_block_hash == block["hash"]
    head = world.client.call("eth_getBlockByNumber", ["latest", False])
    assert feed.generated_at == int(head["timestamp"], 16)  # chain time, not the wall clock
    assert feed.valid_until == feed.generated_at + FeedSettings().validity_seconds
    document = (tmp_path / "feed" / "feed-000000000001.json").read_text()
    assert SignedFeed.model_validate_json(document) == feed == store.latest()
    _, findings = verify_feed(document, chain_id=registry.chain_id,
                              oracle=str(registry.risk_oracle), signers=[SIGNER.address],
                              now=feed.generated_at)
    assert all(f.passed for f in findings), findings
    # the commitments are the database's, and an account's proof checks against them
    with duckdb.connect(str(scored), read_only=True) as con:
        roots = dict(con.execute("select venue, root from fct_solvency_commitments where "
                                 "snapshot_block = ?", [feed.snapshot_block]).fetchall())
    assert {v.venue: v.commitment.root for v in feed.venues if v.commitment} == roots
    with duckdb.connect(str(scored), read_only=True) as con:
        (borrower,) = con.execute("select account from fct_positions where side = 'debt' and "
                                  "snapshot_block = ? order by amount_usd desc limit 1",
                                  [feed.snapshot_block]).fetchall()[0]
    proofs = prove_account(scored, borrower)
    pins: dict[str, Any] = {"chain_id": registry.chain_id, "oracle": str(registry.risk_oracle),
            "signers": [SIGNER.address], "now": feed.generated_at}
    _, findings = verify_feed(document, proofs=[dict(p) for p in proofs], **pins)
    assert len(proofs) >= 1 and all(f.passed for f in findings), findings
    forged = json.loads(json.dumps(proofs[0]))
    forged["leaf"]["debt"] = "0"  # a borrower claiming no debt
    _, findings = verify_feed(document, proofs=[forged], **pins)
    assert [f.name for f in findings if not f.passed] == [f"proof {forged['venue']}:{borrower}"]

    second = publish_feed(scored, registry, SIGNER, store, world.client)
    assert second.nonce == 2 and [d.nonce for d in store.documents()] == [2, 1]


@pytest.mark.devnet
def test_the_publisher_fails_closed(world: World, scored: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    registry = _registry(world)
    policy = load_policy()
    settings = FeedSettings(max_data_age_seconds=600)
    snapshot = latest_snapshot(scored)
    assert snapshot is not None
    head = chain_head(world.client, snapshot)
    with duckdb.connect(str(scored), read_only=True) as con:
        assert refusals(con, head, settings, policy, registry) == []
        row = con.execute("select timestamp from src_blocks where block_number = ?",
                          [snapshot]).fetchone()
        assert row
        stale = ChainHead(head.number + 1000, int(row[0]) + 601, head.hash_at_snapshot)
        assert any("old" in r for r in refusals(con, stale, settings, policy, registry))
        reorged = ChainHead(head.number, head.time, "0x" + "00" * 32)
        assert any("reorg" in r for r in refusals(con, reorged, settings, policy, registry))
        no_oracle = registry.model_copy(update={"risk_oracle": None})
        assert any("risk oracle" in r for r in refusals(con, head, settings, policy, no_oracle))

    broken = tmp_path / "broken.duckdb"  # a blocking check fails: p-values out of [0, 1]
    shutil.copy(scored, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("update fct_anomaly_scores set p_value = 2")
    store = FeedStore(tmp_path / "feed")
    with pytest.raises(FeedRefused, match="scores_add_up"):
        publish_feed(broken, registry, SIGNER, store, world.client)
    uncommitted = tmp_path / "uncommitted.duckdb"  # positions not committed to
    shutil.copy(scored, uncommitted)
    with duckdb.connect(str(uncommitted)) as con:
        con.execute("drop table fct_solvency_commitments")
    with pytest.raises(FeedRefused, match="no solvency commitment"):
        publish_feed(uncommitted, registry, SIGNER, store, world.client)
    unscored = tmp_path / "unscored.duckdb"  # the early-warning marts were never written
    shutil.copy(world.db, unscored)
    with pytest.raises(FeedRefused, match="no scored snapshot"):
        publish_feed(unscored, registry, SIGNER, store, world.client)
    assert store.latest() is None  # nothing was signed

    # the command line, with no node where the head must be read: one line, nothing signed
    import typer

    from contagion import cli
    monkeypatch.setenv("CONTAGION_FEED_KEY", TEST_KEY)
    with pytest.raises(typer.Exit):
        cli.sign_feed_document(registry, scored, tmp_path / "feed", "http://127.0.0.1:9")
    assert "cannot sign without the chain at http://127.0.0.1:9" in " ".join(
        capsys.readouterr().err.split())
    assert store.latest() is None


# -- the HTTP API and the command line ------------------------------------------------------

@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FeedStore]]:
    """A real server on a free loopback port over a feed folder with two documents."""
    import threading
    import time

    import uvicorn

    from contagion.devnet.node import free_port
    from contagion.feed.server import create_app

    store = FeedStore(tmp_path / "feed")
    now = int(time.time())  # valid now by the wall clock, which `feed verify` reads
    for nonce in (1, 2):
        store.save(sign_feed(_body(nonce=nonce, generated_at=now - 10, valid_until=now + 3_600),
                             SIGNER))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_api_serves_what_was_signed(served: tuple[str, FeedStore]) -> None:
    import time

    import requests

    url, store = served
    now = int(time.time())
    latest = requests.get(f"{url}/v1/latest", timeout=10).json()
    assert latest["nonce"] == 2 and all(_verify(latest, now=now).values())
    assert SignedFeed.model_validate(latest) == store.latest()
    history = requests.get(f"{url}/v1/history", timeout=10).json()
    assert [h["nonce"] for h in history] == [2, 1]
    assert [h["nonce"] for h in requests.get(f"{url}/v1/history?before_nonce=2",
                                             timeout=10).json()] == [1]
    first = requests.get(f"{url}{history[1]['url']}", timeout=10).json()
    assert first["nonce"] == 1 and all(_verify(first, now=now).values())
    venue = requests.get(f"{url}/v1/venues/aave", timeout=10).json()
    assert venue["venue"]["actions"][0]["action"] == "freeze_market"
    assert venue["document"] == "/v1/feeds/2"
    assert requests.get(f"{url}/v1/venues/nowhere", timeout=10).status_code == 404
    assert requests.get(f"{url}/v1/feeds/9", timeout=10).status_code == 404
    assert requests.get(f"{url}/v1/schema", timeout=10).json() == feed_json_schema()
    health = requests.get(f"{url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    paths = requests.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    assert {"/v1/latest", "/v1/history", "/v1/feeds/{nonce}", "/v1/venues/{venue}",
            "/v1/schema", "/health"} <= set(paths)


def test_one_unreadable_document_or_stray_file_breaks_nothing_else(
        served: tuple[str, FeedStore]) -> None:
    """A truncated document is named by /health (503, with the file and why) and refused on its
    own nonce; the other routes serve the readable documents. A stray file is no document:
    signing goes on past the largest nonce, broken or not."""
    import requests

    url, store = served
    (store.root / "feed-old.json").write_text("{}")
    (store.root / "notes.txt").write_text("")
    assert store.next_nonce() == 3
    broken = store.root / "feed-000000000002.json"
    broken.write_text(broken.read_text()[:15])
    health = requests.get(f"{url}/health", timeout=10)
    assert health.status_code == 503
    assert health.json()["status"] == "unreadable" and health.json()["latest_nonce"] == 1
    [problem] = health.json()["unreadable"]
    assert problem.startswith("feed-000000000002.json is unreadable: ") and "JSON" in problem
    assert requests.get(f"{url}/v1/latest", timeout=10).json()["nonce"] == 1
    assert [h["nonce"] for h in requests.get(f"{url}/v1/history", timeout=10).json()] == [1]
    assert requests.get(f"{url}/v1/feeds/1", timeout=10).json()["nonce"] == 1
    one = requests.get(f"{url}/v1/feeds/2", timeout=10)
    assert one.status_code == 500 and "feed-000000000002.json is unreadable" in one.text
    assert requests.get(f"{url}/v1/venues/aave", timeout=10).json()["nonce"] == 1
    assert store.next_nonce() == 3  # nonce 2 was used, even if its file is now broken
    # a document filed under another nonce's name is not that nonce's
    (store.root / "feed-000000000005.json").write_text(
        (store.root / "feed-000000000001.json").read_text())
    with pytest.raises(FeedDocumentError, match="holds nonce 1"):
        store.get(5)
    assert store.get(9) is None and store.next_nonce() == 6


def test_health_reports_an_expired_or_empty_feed(tmp_path: Path) -> None:
    import threading
    import time

    import requests
    import uvicorn

    from contagion.devnet.node import free_port
    from contagion.feed.server import create_app

    store = FeedStore(tmp_path / "feed")
    port = free_port()
    clock = [2_000]
    server = uvicorn.Server(uvicorn.Config(create_app(store, clock=lambda: clock[0]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        url = f"http://127.0.0.1:{port}"
        empty = requests.get(f"{url}/health", timeout=10)
        assert empty.status_code == 503 and empty.json()["status"] == "empty"
        assert requests.get(f"{url}/v1/latest", timeout=10).status_code == 404
        store.save(sign_feed(_body(), SIGNER))
        clock[0] = 10_000
        expired = requests.get(f"{url}/health", timeout=10)
        assert expired.status_code == 503 and expired.json()["status"] == "expired"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_feed_verify_checks_a_url_against_the_pinned_domain(
        served: tuple[str, FeedStore]) -> None:
    from typer.testing import CliRunner

    from contagion import cli

    url, _ = served
    runner = CliRunner()
    pins = ["--chain-id", "31337", "--oracle", ORACLE, "--signer", SIGNER.address]
    good = runner.invoke(cli.app, ["feed", "verify", f"{url}/v1/latest", *pins])
    assert good.exit_code == 0, good.output
    assert "verified: feed #2" in good.output
    replay = runner.invoke(cli.app, ["feed", "verify", f"{url}/v1/latest", *pins,
                                     "--after-nonce", "2"])
    assert replay.exit_code == 1 and "nonce" in replay.output
    wrong = runner.invoke(cli.app, ["feed", "verify", f"{url}/v1/latest", "--chain-id", "1",
                                    "--oracle", ORACLE, "--signer", SIGNER.address])
    assert wrong.exit_code == 1 and "do not act on it" in wrong.output
    unpinned = runner.invoke(cli.app, ["feed", "verify", f"{url}/v1/latest",
                                       "--signer", SIGNER.address])
    assert unpinned.exit_code == 1 and "pin the domain" in unpinned.output
    # what the user pins or hands over is checked before anything is verified
    typo = runner.invoke(cli.app, ["feed", "verify", f"{url}/v1/latest", "--chain-id", "31337",
                                   "--oracle", "0xnothex", "--signer", "alice"])
    assert typo.exit_code == 1 and "not an address" in typo.output
    assert "0xnothex, alice" in " ".join(typo.output.split())
    not_proofs = Path(served[1].root) / "proofs.json"
    not_proofs.write_text("5")
    odd = runner.invoke(cli.app, ["feed", "verify", f"{url}/v1/latest", *pins,
                                  "--proof", str(not_proofs)])
    assert odd.exit_code == 1 and "cannot read the proofs" in odd.output
    assert odd.exception is None or isinstance(odd.exception, SystemExit)
