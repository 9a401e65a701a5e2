"""Chainlink price feeds (aggregators behind EACAggregatorProxy)."""

from __future__ import annotations

import polars as pl
from eth_utils import keccak

from contagion.chain.multicall import Call, aggregate3_at
from contagion.chain.rpc import RpcClient
from contagion.protocols.canonical import Context, Tables, feed_prices, fits, normalized
from contagion.protocols.spec import event
from contagion.registry import Feed, FeedPhase, Registry

PROTOCOL = "chainlink"

ANSWER_UPDATED = event(
    PROTOCOL, "AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt)",
    "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f")
NEW_ROUND = event(
    PROTOCOL, "NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt)",
    "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271")

EVENTS = (ANSWER_UPDATED, NEW_ROUND)


# ---------------------------------------------------------------- canonical tables

def _answers(tables: Tables, ctx: Context) -> pl.DataFrame:
    """AnswerUpdated rows of registry feeds (logged by the feed's address or by an aggregator
    behind it), with the feed's columns (`feed`: the registry's address) and `answer_raw`
    (null if the answer does not fit decimal(38,0); `scaled` is computed from the text, so it
    is there either way)."""
    feeds = ctx.feeds.filter(pl.col("feed_protocol") == PROTOCOL).rename(
        {"emitter": "contract_address"})
    return tables["chainlink__answer_updated"].join(
        feeds, on=["chain_id", "contract_address"]).filter(
        (pl.col("block_number") >= pl.col("from_block"))
        & (pl.col("to_block").is_null() | (pl.col("block_number") < pl.col("to_block")))
    ).with_columns(
        fits(pl.col("current")).alias("answer_raw"),
        normalized(pl.col("current"), pl.col("feed_decimals")).alias("scaled"))


def prices(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Prices from the registry's `kind: price` Chainlink feeds (`feed_prices`): `price` in
    the feed's quote, `price_usd` where that is USD (a price in another token takes that
    token's USD price as of the block, which the warehouse finds across partitions); `feed` is
    the registry's address even where an aggregator behind it logged the answer."""
    return feed_prices(_answers(tables, ctx).filter(pl.col("feed_kind") == "price"),
                       pl.col("current"))


def vol_marks(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Answers of the registry's other feeds (implied_vol, risk_reversal): value = answer /
    10**decimals (VOL_MARKS_SCHEMA), ordered by (source, block_number, log_index)."""
    answers = _answers(tables, ctx).filter(pl.col("feed_kind") != "price")
    return answers.select(
        "chain_id", "block_number", "block_time", "log_index",
        pl.col("feed_id").alias("source"), "feed", pl.col("feed_kind").alias("kind"), "base",
        pl.col("scaled").alias("value"), "answer_raw",
    ).sort("source", "block_number", "log_index")


# ---------------------------------------------------------------- proxies

PHASE_ID = keccak(text="phaseId()")[:4]
PHASE_AGGREGATORS = keccak(text="phaseAggregators(uint16)")[:4]
DECIMALS = keccak(text="decimals()")[:4]


def resolve_feeds(client: RpcClient, registry: Registry, block: int) -> Registry:
    """The registry with each Chainlink proxy feed's `aggregators` read from the chain as of
    `block` (a lido feed's contract logs its own answers).

    Registries list a feed's proxy (EACAggregatorProxy), which logs nothing: the aggregator of
    each of its phases logs the answers. A feed whose address answers `phaseId()` with a phase
    is such a proxy; `phaseAggregators(1 … phaseId)` are its aggregators, and the block from
    which the proxy served each is found by bisecting `phaseId()` over the blocks (it only
    grows), so an aggregator's answers count only while the proxy served them (Chainlink runs
    a new aggregator before it switches, and an old one may go on after). Phases are only
    ever added, so the run's last block names every one before it. A feed that is not a proxy
    (an aggregator, as on the devnet) keeps what the registry lists; so does every feed when
    the registry names no multicall to ask with. Historic reads need an archive node.

    The same read asks each feed's `decimals()`: a registry that says otherwise would scale
    every price by a wrong power of ten, so that is an error naming the feed."""
    feeds = [f for f in registry.feeds if f.protocol == PROTOCOL]
    if registry.multicall is None or not feeds:
        return registry
    replies = aggregate3_at(client, registry.multicall, [(block, [
        *(Call(f.address, PHASE_ID) for f in feeds),
        *(Call(f.address, DECIMALS) for f in feeds)])])[0]
    _check_decimals(feeds, replies[len(feeds):], block)
    proxies = [(f, n) for f, reply in zip(feeds, replies[:len(feeds)], strict=True)
               if (n := _uint(reply, 16))]
    if not proxies:
        return registry
    wanted = [(f, k) for f, n in proxies for k in range(1, n + 1)]
    found = aggregate3_at(client, registry.multicall, [(block, [
        Call(f.address, PHASE_AGGREGATORS + k.to_bytes(32, "big")) for f, k in wanted])])[0]
    starts = _phase_starts(client, [(f.address, k) for f, k in wanted], block)
    phases: dict[str, list[FeedPhase]] = {}
    for (f, k), reply in zip(wanted, found, strict=True):
        if (address := _uint(reply, 160)):
            phases.setdefault(f.id, []).append(FeedPhase(
                aggregator=f"0x{address:040x}", from_block=starts[(f.address, k)]))
    return registry.model_copy(update={"feeds": [
        f.model_copy(update={"aggregators": phases[f.id]}) if f.id in phases else f
        for f in registry.feeds]})


def _check_decimals(feeds: list[Feed], replies: list[bytes | None], block: int) -> None:
    """Each feed's `decimals()` (where it answers a uint8) is the registry's."""
    read = {f.id: d for f, reply in zip(feeds, replies, strict=True)
            if (d := _uint(reply, 8)) is not None}
    wrong = [f"feeds[{f.id}] ({f.address}): the registry says {f.decimals} decimals, "
             f"the feed's decimals() is {read[f.id]}"
             for f in feeds if read.get(f.id, f.decimals) != f.decimals]
    if wrong:
        raise ValueError(f"price scale wrong in the registry (read at block {block}): "
                         + "; ".join(wrong))


def _phase_starts(client: RpcClient, wanted: list[tuple[str, int]], block: int
                  ) -> dict[tuple[str, int], int]:
    """The first block at which each (proxy, phase) was in force, by bisection over [0, block]
    on `phaseId()` read with plain calls (a multicall may be younger than the proxy): all the
    searches advance together, one batch per step."""
    low = dict.fromkeys(wanted, 0)  # phaseId < k at low - 1 (or low = 0); >= k at high
    high = dict.fromkeys(wanted, block)
    while any(low[w] < high[w] for w in wanted):
        open_ = [w for w in wanted if low[w] < high[w]]
        mids = {w: (low[w] + high[w]) // 2 for w in open_}
        replies = client.batch_strict([("eth_call", [{"to": proxy, "data": "0x" + PHASE_ID.hex()},
                                                     hex(mids[(proxy, k)])])
                                       for proxy, k in open_])
        for (proxy, k), reply in zip(open_, replies, strict=True):
            if (_uint(bytes.fromhex(str(reply)[2:]), 16) or 0) >= k:
                high[(proxy, k)] = mids[(proxy, k)]
            else:
                low[(proxy, k)] = mids[(proxy, k)] + 1
    return {w: high[w] for w in wanted}


def _uint(reply: bytes | None, bits: int) -> int | None:
    """A `uint<bits>` return value; None for a revert, or a reply that is not one."""
    if reply is None or len(reply) != 32:
        return None
    value = int.from_bytes(reply, "big")
    return value if value < 1 << bits else None
