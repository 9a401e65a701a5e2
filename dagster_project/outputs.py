"""What the pipeline hands to people: the solvency commitments, the signed risk feed (fail
closed: the asset fails, with the reasons, when the publisher refuses), the health report and
the oracle updates. Each is a thin call into contagion.feed / contagion.report."""


from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from eth_account.signers.local import LocalAccount

from contagion.feed.commitment import write_commitments
from contagion.feed.keys import SigningKeyError, load_signer
from contagion.feed.publisher import FeedRefused, FeedSettings, FeedStore, publish_feed
from contagion.feed.relay import UnverifiedFeed, relay_feed
from contagion.policy.model import load_policy
from contagion.report.build import write_health_report
from dagster_project.resources import ChainResource, FeedResource, LakeResource, ReportResource


@dg.asset(deps=["fct_positions", "int_token_prices", "int_lp_share_prices"],
          group_name="outputs", kinds={"duckdb"},
          description="fct_solvency_commitments: a Merkle sum tree root and totals per venue and "
                      "snapshot (docs/schema.md); `contagion prove ACCOUNT` proves inclusion",
          check_specs=[dg.AssetCheckSpec(
              "every_venue_committed", asset="solvency_commitments", blocking=True,
              description="every venue has a commitment at every snapshot")])
def solvency_commitments(chain: ChainResource, duckdb: DuckDBResource
                         ) -> Iterator[dg.MaterializeResult[None] | dg.AssetCheckResult]:
    registry = chain.load_registry()
    commitments = write_commitments(Path(duckdb.database))
    snapshots = {c.snapshot_block for c in commitments}
    per_snapshot = {b: {c.venue for c in commitments if c.snapshot_block == b}
                    for b in snapshots}
    venues = {v.id for v in registry.venues}
    short = sorted(b for b, got in per_snapshot.items() if got != venues)
    yield dg.MaterializeResult(metadata={"snapshots": len(snapshots),
                                         "commitments": len(commitments)})
    yield dg.AssetCheckResult(passed=not short and bool(snapshots),
                              metadata={"snapshots_missing_venues": str(short[:10])})


def _signer() -> LocalAccount:
    """The feed's signing key (environment or keystore); without one the asset fails, saying
    what to set."""
    try:
        return load_signer()
    except SigningKeyError as exc:
        raise dg.Failure(str(exc)) from None


@dg.asset(deps=["solvency_commitments", "anomaly_scores", "ecosystem_score",
                "freeze_recommendations", "stress_results"],
          group_name="outputs",
          description="The signed risk feed document of the latest snapshot (docs/feed.md), "
                      "stored in the feed folder that `contagion feed serve` publishes. Refuses "
                      "(fails) when a blocking check fails or the data is stale.")
def risk_feed(context: dg.AssetExecutionContext, chain: ChainResource, feed: FeedResource,
              duckdb: DuckDBResource) -> dg.MaterializeResult[None]:
    signer = _signer()
    client = chain.client()
    try:
        document = publish_feed(Path(duckdb.database), chain.load_registry(), signer,
                                FeedStore(Path(feed.feed_dir)), client,
                                settings=FeedSettings(
                                    validity_seconds=feed.validity_seconds,
                                    max_data_age_seconds=feed.max_data_age_seconds),
                                policy=load_policy())
    except FeedRefused as exc:
        raise dg.Failure("refusing to sign the feed", metadata={
            "reasons": dg.MetadataValue.json(exc.reasons)}) from None
    finally:
        client.close()
    context.log.info(f"signed feed #{document.nonce} for snapshot {document.snapshot_block}")
    return dg.MaterializeResult(metadata={
        "nonce": document.nonce, "snapshot_block": document.snapshot_block,
        "ecosystem_level": document.ecosystem.level, "signer": document.signature.signer,
        "valid_until": document.valid_until,
        "path": str(Path(feed.feed_dir) / f"feed-{document.nonce:012d}.json")})


@dg.asset(deps=["risk_feed"], group_name="outputs",
          description="The newest signed feed document's actions relayed to the RiskOracle on "
                      "chain (docs/oracle.md); what the oracle already holds is skipped, what "
                      "its guardrails reject is recorded")
def oracle_updates(context: dg.AssetExecutionContext, chain: ChainResource,
                   feed: FeedResource) -> dg.MaterializeResult[None]:
    registry = chain.load_registry()
    document = FeedStore(Path(feed.feed_dir)).latest()
    if document is None:
        raise dg.Failure("no signed feed document to publish")
    signer = _signer()
    client = chain.client()
    try:
        relayed = relay_feed(client, registry, document, signer)
    except UnverifiedFeed as exc:
        raise dg.Failure(str(exc)) from None
    finally:
        client.close()
    for r in relayed:
        context.log.info(f"{r.update.action} {r.update.asset} at {r.update.venue}: "
                         + (f"accepted in {r.tx_hash}" if r.accepted else
                            f"rejected ({r.reason})"))
    return dg.MaterializeResult(metadata={
        "feed_nonce": document.nonce, "accepted": sum(r.accepted for r in relayed),
        "rejected": sum(not r.accepted for r in relayed),
        "updates": dg.MetadataValue.json([
            {"venue": r.update.venue, "asset": r.update.asset, "action": r.update.action,
             "margin_cut_bps": r.update.margin_cut_bps, "nonce": r.update.nonce,
             "tx_hash": r.tx_hash, "rejected": r.reason} for r in relayed])})


@dg.asset(deps=["anomaly_scores", "ecosystem_score", "freeze_recommendations", "stress_results",
                "contagion_paths", "systemic_risk", "solvency_commitments"],
          group_name="outputs",
          description="The ecosystem health report: one self-contained HTML file per run "
                      "(reports/health-<time>.html, the newest also report.html), written daily "
                      "by the schedule and on demand (`contagion report`)")
def health_report(chain: ChainResource, lake: LakeResource, report: ReportResource,
                  duckdb: DuckDBResource) -> dg.MaterializeResult[None]:
    client = chain.client()
    try:
        head = int(client.call("eth_blockNumber"), 16)
    finally:
        client.close()
    written = write_health_report(Path(duckdb.database), chain.load_registry(),
                                  Path(report.report_dir), chain_head=head, lake=lake.lake())
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(written.path)), "bytes": written.size_bytes,
        "snapshot_block": written.snapshot_block or -1, "level": written.level or "",
        "sections": ", ".join(written.written),
        "not_available": ", ".join(f"{s.id}: {s.reason}" for s in written.sections
                                   if not s.available)})
