"""The feed's HTTP API: the signed documents as the publisher stored them, read-only.

The server holds no key and signs nothing; a consumer verifies what it fetches (`contagion feed
verify URL`). FastAPI publishes the OpenAPI description at /openapi.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Response
from pydantic import BaseModel

from contagion.feed.document import (
    FEED_FORMAT,
    METHODOLOGY_VERSION,
    Level,
    SignedFeed,
    VenueState,
    feed_json_schema,
)
from contagion.feed.publisher import FeedDocumentError, FeedStore

__all__ = ["FeedSummary", "Health", "VenueView", "create_app"]


class FeedSummary(BaseModel):
    nonce: int
    snapshot_block: int
    generated_at: int
    valid_until: int
    level: Level
    score: float
    url: str


class VenueView(BaseModel):
    """One venue's part of a signed document; the signature covers the whole document, at
    `document`."""
    nonce: int
    snapshot_block: int
    valid_until: int
    venue: VenueState
    document: str


class Health(BaseModel):
    status: Literal["ok", "expired", "empty", "unreadable"]
    now: int
    latest_nonce: int | None = None  # the newest readable document
    snapshot_block: int | None = None
    valid_until: int | None = None
    signer: str | None = None
    unreadable: list[str] = []  # "<file> is unreadable: <reason>", for each such document


def create_app(store: FeedStore, clock: Callable[[], int] = lambda: int(time.time())
               ) -> FastAPI:
    """The API over a feed folder. `clock` says what time it is for /health — the chain head's
    time where the chain's clock is not the wall clock (a devnet)."""
    app = FastAPI(title="Contagion risk feed", version=METHODOLOGY_VERSION,
                  description=f"Signed {FEED_FORMAT} documents: the ecosystem level, each "
                              "venue's score, level and recommended action, and a commitment "
                              "to its positions. Verify before use: `contagion feed verify`.")

    def latest() -> SignedFeed:
        feed = store.latest()
        if feed is None:
            raise HTTPException(404, "nothing has been published yet")
        return feed

    @app.get("/v1/latest", response_model=SignedFeed, tags=["feed"])
    def get_latest() -> SignedFeed:
        """The newest signed document."""
        return latest()

    @app.get("/v1/feeds/{nonce}", response_model=SignedFeed, tags=["feed"])
    def get_feed(nonce: int) -> SignedFeed:
        """One signed document by its nonce."""
        try:
            feed = store.get(nonce)
        except FeedDocumentError as exc:  # stored, but broken: the others are still served
            raise HTTPException(500, f"document {nonce} cannot be served: {exc}") from None
        if feed is None:
            raise HTTPException(404, f"no document with nonce {nonce}")
        return feed

    @app.get("/v1/history", response_model=list[FeedSummary], tags=["feed"])
    def get_history(limit: int = Query(50, ge=1, le=1000),
                    before_nonce: int | None = Query(None, ge=1)) -> list[FeedSummary]:
        """Summaries of the published documents, newest first."""
        out: list[FeedSummary] = []
        for feed in store.documents():
            if before_nonce is not None and feed.nonce >= before_nonce:
                continue
            out.append(FeedSummary(nonce=feed.nonce, snapshot_block=feed.snapshot_block,
                                   generated_at=feed.generated_at, valid_until=feed.valid_until,
                                   level=feed.ecosystem.level, score=feed.ecosystem.score,
                                   url=f"/v1/feeds/{feed.nonce}"))
            if len(out) == limit:
                break
        return out

    @app.get("/v1/venues/{venue}", response_model=VenueView, tags=["feed"])
    def get_venue(venue: str) -> VenueView:
        """One venue in the newest document."""
        feed = latest()
        for state in feed.venues:
            if state.venue == venue:
                return VenueView(nonce=feed.nonce, snapshot_block=feed.snapshot_block,
                                 valid_until=feed.valid_until, venue=state,
                                 document=f"/v1/feeds/{feed.nonce}")
        raise HTTPException(404, f"venue {venue!r} is not in the feed")

    @app.get("/v1/schema", tags=["feed"])
    def get_schema() -> dict[str, Any]:
        """The JSON Schema of a signed document."""
        return feed_json_schema()

    @app.get("/health", response_model=Health, tags=["service"])
    def get_health(response: Response) -> Health:
        """ok when the newest document is still valid and every stored one can be read; 503
        when it expired, none exists, or a stored document is unreadable (named, with why)."""
        now = clock()
        unreadable = store.unreadable()
        feed = store.latest()
        status: Literal["ok", "expired", "empty", "unreadable"] = (
            "unreadable" if unreadable else "empty" if feed is None
            else "ok" if now <= feed.valid_until else "expired")
        if status != "ok":
            response.status_code = 503
        if feed is None:
            return Health(status=status, now=now, unreadable=unreadable)
        return Health(status=status, now=now, latest_nonce=feed.nonce,
                      snapshot_block=feed.snapshot_block, valid_until=feed.valid_until,
                      signer=feed.signature.signer, unreadable=unreadable)

    return app
