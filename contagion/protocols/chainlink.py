"""Chainlink price feeds (aggregators behind EACAggregatorProxy)."""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import Context, Tables, fits, normalized
from contagion.protocols.spec import event

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
    """AnswerUpdated rows of registry feeds (matched by emitter = feed address), with the
    feed's columns and `answer_raw` (null if the answer does not fit decimal(38,0); `scaled`
    is computed from the text, so it is there either way)."""
    feeds = ctx.feeds.rename({"feed": "contract_address"})
    return tables["chainlink__answer_updated"].join(
        feeds, on=["chain_id", "contract_address"]).with_columns(
        fits(pl.col("current")).alias("answer_raw"),
        normalized(pl.col("current"), pl.col("feed_decimals")).alias("scaled"))


def prices(tables: Tables, ctx: Context) -> pl.DataFrame:
    """USD prices from the registry's `kind: price` feeds (PRICES_SCHEMA), ordered by (token,
    block_number, log_index). The feed address must be the contract that emits AnswerUpdated:
    on mainnet that is the aggregator behind the EACAggregatorProxy a registry usually lists."""
    answers = _answers(tables, ctx).filter(pl.col("feed_kind") == "price")
    return answers.select(
        "chain_id", "block_number", "block_time", "log_index",
        pl.col("base_token").alias("token"), pl.col("base").alias("symbol"),
        pl.col("scaled").alias("price_usd"), "answer_raw", pl.col("feed_id").alias("source"),
        pl.col("contract_address").alias("feed"),
    ).sort("token", "block_number", "log_index", nulls_last=True)


def vol_marks(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Answers of the registry's other feeds (implied_vol, risk_reversal): value = answer /
    10**decimals (VOL_MARKS_SCHEMA), ordered by (source, block_number, log_index)."""
    answers = _answers(tables, ctx).filter(pl.col("feed_kind") != "price")
    return answers.select(
        "chain_id", "block_number", "block_time", "log_index",
        pl.col("feed_id").alias("source"), pl.col("contract_address").alias("feed"),
        pl.col("feed_kind").alias("kind"), "base", pl.col("scaled").alias("value"),
        "answer_raw",
    ).sort("source", "block_number", "log_index")
