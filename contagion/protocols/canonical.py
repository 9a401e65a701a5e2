"""Canonical tables: the decoded event tables of every protocol mapped onto one vocabulary.

`canonical_tables(decoded, registry)` returns `flows` (every movement of value into or out of a
position), `flows_quarantine` (flows whose amount does not fit `decimal(38,0)`), `prices` and
`vol_marks` (Chainlink answers), `perp_positions` (GMX position events), `option_trades`
(devnet options trades) and `amm_swaps` (Uniswap v2 and v3 swaps). docs/canonical.md is the data
dictionary.

Each protocol module holds its own mapping (`aave_v3.flows`, `chainlink.prices`, …); this module
holds what they share: the schemas (declared once, here), the registry lookups (`Context`), the
decoded tables as Polars frames (`Tables`) and the column helpers. Everything is whole-column
Polars; no Python code runs per row.

Amounts are exact: the decoder gives wide integers as decimal text, a mapping passes that text
through (or derives new text exactly, e.g. a difference of two amounts that both fit), and the
text becomes `decimal128(38, 0)` here. A value that does not fit is never rounded: the flow goes
to `flows_quarantine` with its text and a reason; in the other tables the column is null and the
row's `unfit` column names it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from contagion.registry import USD, Registry

__all__ = [
    "ACTIONS",
    "AMM_SWAPS_SCHEMA",
    "CANONICAL_SCHEMAS",
    "FLOWS_QUARANTINE_SCHEMA",
    "FLOWS_SCHEMA",
    "FLOW_SIGNS",
    "OPTION_TRADES_SCHEMA",
    "PERP_POSITIONS_SCHEMA",
    "PRICES_SCHEMA",
    "SIDES",
    "USD",
    "USD_DECIMALS",
    "VOL_MARKS_SCHEMA",
    "ZERO_ADDRESS",
    "Context",
    "Tables",
    "canonical_tables",
    "decoded_frame",
]

ZERO_ADDRESS = "0x" + "00" * 20
USD_DECIMALS = 30
UNFIT_REASON = "amount does not fit decimal(38,0)"
NEGATIVE_REASON = "negative amount (the events of a pair disagree)"

DECIMAL = pa.decimal128(38, 0)
D38 = pl.Decimal(38, 0)
_TIME = pa.timestamp("s", tz="UTC")

SIDES = ("collateral", "supply", "debt", "margin", "holding")
# +1: the account's balance on that side grows; -1: it shrinks; 0: informational (the row
# records a loss the venue absorbed, the account's balance was already taken to zero).
FLOW_SIGNS: dict[tuple[str, str], int] = {
    ("supply", "collateral"): 1, ("withdraw", "collateral"): -1,
    ("supply", "supply"): 1, ("withdraw", "supply"): -1,
    ("borrow", "debt"): 1, ("repay", "debt"): -1,
    ("liquidation_repay", "debt"): -1,
    ("liquidation_seize", "collateral"): -1, ("liquidation_seize", "margin"): -1,
    ("bad_debt", "debt"): -1, ("bad_debt", "margin"): 0,
    ("transfer_in", "collateral"): 1, ("transfer_out", "collateral"): -1,
    ("transfer_in", "supply"): 1, ("transfer_out", "supply"): -1,
    ("transfer_in", "holding"): 1, ("transfer_out", "holding"): -1,
    ("mint", "holding"): 1, ("burn", "holding"): -1,
    ("margin_in", "margin"): 1, ("margin_out", "margin"): -1,
    ("short_open", "debt"): 1, ("short_close", "debt"): -1,
}
ACTIONS = tuple(dict.fromkeys(action for action, _ in FLOW_SIGNS))

_KEY_FIELDS = [
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_time", _TIME),
    pa.field("transaction_hash", pa.string(), nullable=False),
    pa.field("log_index", pa.uint32(), nullable=False),
]
_FLOW_WHO = [
    pa.field("flow_index", pa.uint8(), nullable=False),
    pa.field("protocol", pa.string(), nullable=False),
    pa.field("venue", pa.string()),
    pa.field("market", pa.string()),
    pa.field("account", pa.string(), nullable=False),
    pa.field("token", pa.string()),
    pa.field("action", pa.string(), nullable=False),
    pa.field("side", pa.string(), nullable=False),
]

FLOWS_SCHEMA = pa.schema([
    *_KEY_FIELDS, *_FLOW_WHO,
    pa.field("amount_raw", DECIMAL, nullable=False),
    pa.field("amount", pa.float64()),
    pa.field("source", pa.string(), nullable=False),
])

FLOWS_QUARANTINE_SCHEMA = pa.schema([
    *_KEY_FIELDS, *_FLOW_WHO,
    pa.field("amount_text", pa.string()),  # the exact value (or "a - b") that did not fit
    pa.field("source", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
])

PRICES_SCHEMA = pa.schema([
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_time", _TIME),
    pa.field("log_index", pa.uint32(), nullable=False),
    pa.field("token", pa.string()),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("price", pa.float64()),  # in the quote
    pa.field("quote", pa.string(), nullable=False),  # USD's address, or the quote token's
    pa.field("price_usd", pa.float64()),  # the price where the quote is USD, else null
    pa.field("answer_raw", DECIMAL),
    pa.field("source", pa.string(), nullable=False),  # the registry feed id
    pa.field("feed", pa.string(), nullable=False),
])

VOL_MARKS_SCHEMA = pa.schema([
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_time", _TIME),
    pa.field("log_index", pa.uint32(), nullable=False),
    pa.field("source", pa.string(), nullable=False),  # the registry feed id
    pa.field("feed", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # implied_vol | risk_reversal
    pa.field("base", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("answer_raw", DECIMAL),
])

_USD30 = ("size_delta_usd", "collateral_delta_usd", "size_usd", "collateral_usd", "average_price",
          "price", "fee", "realised_pnl", "mark_price")
PERP_POSITIONS_SCHEMA = pa.schema([
    *_KEY_FIELDS,
    pa.field("venue", pa.string()),
    pa.field("vault", pa.string(), nullable=False),
    pa.field("key", pa.string(), nullable=False),
    pa.field("account", pa.string()),
    pa.field("collateral_token", pa.string()),
    pa.field("index_token", pa.string()),
    pa.field("is_long", pa.bool_()),
    pa.field("event", pa.string(), nullable=False),
    *(pa.field(name, DECIMAL) for name in _USD30),
    pa.field("reserve_amount", DECIMAL),
    pa.field("unfit", pa.string()),
    pa.field("source", pa.string(), nullable=False),
])

OPTION_TRADES_SCHEMA = pa.schema([
    *_KEY_FIELDS,
    pa.field("venue", pa.string()),
    pa.field("otoken", pa.string(), nullable=False),
    pa.field("buyer", pa.string(), nullable=False),
    pa.field("seller", pa.string(), nullable=False),
    pa.field("vault_id", pa.uint64()),
    pa.field("is_put", pa.bool_(), nullable=False),
    pa.field("strike_price", DECIMAL),
    pa.field("strike_usd", pa.float64()),
    pa.field("expiry", _TIME),
    pa.field("amount_raw", DECIMAL),
    pa.field("amount", pa.float64()),
    pa.field("premium_raw", DECIMAL),
    pa.field("premium_token", pa.string()),
    pa.field("premium", pa.float64()),
    pa.field("implied_vol_raw", DECIMAL),
    pa.field("implied_vol", pa.float64()),
    pa.field("unfit", pa.string()),
    pa.field("source", pa.string(), nullable=False),
])

AMM_SWAPS_SCHEMA = pa.schema([
    *_KEY_FIELDS,
    pa.field("pool", pa.string(), nullable=False),
    pa.field("protocol", pa.string(), nullable=False),
    pa.field("venue", pa.string()),
    pa.field("sender", pa.string(), nullable=False),
    pa.field("recipient", pa.string(), nullable=False),
    pa.field("token0", pa.string()),
    pa.field("token1", pa.string()),
    pa.field("amount0_delta", DECIMAL),
    pa.field("amount1_delta", DECIMAL),
    pa.field("amount0", pa.float64()),
    pa.field("amount1", pa.float64()),
    pa.field("sqrt_price_x96", pa.string()),
    pa.field("liquidity", pa.string()),
    pa.field("tick", pa.int32()),
    pa.field("unfit", pa.string()),
    pa.field("source", pa.string(), nullable=False),
])

CANONICAL_SCHEMAS: dict[str, pa.Schema] = {
    "flows": FLOWS_SCHEMA,
    "flows_quarantine": FLOWS_QUARANTINE_SCHEMA,
    "prices": PRICES_SCHEMA,
    "vol_marks": VOL_MARKS_SCHEMA,
    "perp_positions": PERP_POSITIONS_SCHEMA,
    "option_trades": OPTION_TRADES_SCHEMA,
    "amm_swaps": AMM_SWAPS_SCHEMA,
}

# The frame every `flows` mapping returns: a flow with its amount still as exact text.
FLOW_FRAME: dict[str, pl.DataType] = {
    "chain_id": pl.UInt64(), "block_number": pl.UInt64(),
    "block_time": pl.Datetime("ms", "UTC"), "transaction_hash": pl.String(),
    "log_index": pl.UInt32(), "contract_address": pl.String(), "flow_index": pl.UInt8(),
    "protocol": pl.String(), "venue": pl.String(), "market": pl.String(),
    "account": pl.String(), "token": pl.String(), "action": pl.String(), "side": pl.String(),
    "amount_text": pl.String(), "decimals": pl.Int32(), "source": pl.String(),
}
_EMPTY_FLOWS = pl.DataFrame(schema=FLOW_FRAME)
BASE = ("chain_id", "block_number", "block_time", "transaction_hash", "log_index",
        "contract_address")


# ---------------------------------------------------------------- inputs

def decoded_frame(table: pa.Table) -> pl.DataFrame:
    """A decoded event table as a Polars frame in the canonical tables' vocabulary: addresses and
    hashes (bytes in the decoder's output) as lowercase 0x text, the form the registry and
    analysts use, and block_time in milliseconds."""
    if table.num_rows == 0:  # most tables of most partitions: convert each schema once
        return _empty_decoded_frame(table.schema).clone()
    return _decoded_frame(table)


@functools.cache
def _empty_decoded_frame(schema: pa.Schema) -> pl.DataFrame:
    return _decoded_frame(schema.empty_table())


def _decoded_frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns((pl.lit("0x") + pl.col(name).bin.encode("hex")).alias(name)
                               for name, dtype in frame.schema.items() if dtype == pl.Binary)
    if "block_time" in frame.columns:
        frame = frame.with_columns(pl.col("block_time").cast(pl.Datetime("ms", "UTC")))
    return frame


class Tables:
    """Decoded tables as Polars frames; a table missing from the input is an empty frame with
    the decoder's schema for it."""

    def __init__(self, decoded: Mapping[str, pa.Table]) -> None:
        self._decoded = decoded
        self._frames: dict[str, pl.DataFrame] = {}

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name not in self._frames:
            table = self._decoded.get(name)
            if table is None:
                from contagion.protocols.decode import CATALOG  # decode imports this package

                table = CATALOG.layout(name).schema.empty_table()
            self._frames[name] = decoded_frame(table)
        return self._frames[name]


_TOKENS = {"chain_id": pl.UInt64(), "token": pl.String(), "symbol": pl.String(),
           "decimals": pl.Int32(), "kind": pl.String(), "issued_by": pl.String(),
           "underlying": pl.String()}
_CONTRACTS = {"chain_id": pl.UInt64(), "contract_address": pl.String(), "venue": pl.String(),
              "venue_protocol": pl.String(), "role": pl.String()}
_MARKETS = {"chain_id": pl.UInt64(), "venue": pl.String(), "market_id": pl.String(),
            "loan": pl.String(), "collateral": pl.List(pl.String())}
_FEEDS = {"chain_id": pl.UInt64(), "feed": pl.String(), "emitter": pl.String(),
          "from_block": pl.UInt64(), "to_block": pl.UInt64(), "feed_id": pl.String(),
          "feed_decimals": pl.Int32(), "feed_kind": pl.String(), "feed_protocol": pl.String(),
          "base": pl.String(), "base_token": pl.String(), "quote_token": pl.String()}


@dataclass(frozen=True)
class Context:
    """The registry as lookup frames (addresses lowercase, keyed by chain id as well)."""

    registry: Registry | None
    tokens: pl.DataFrame  # chain_id, token, symbol, decimals, kind, issued_by, underlying
    contracts: pl.DataFrame  # chain_id, contract_address, venue, venue_protocol, role
    markets: pl.DataFrame  # chain_id, venue, market_id, loan, collateral (token addresses)
    # chain_id, feed, emitter (the feed, or an aggregator behind it: one row each) with the
    # blocks [from_block, to_block) it answers for (to_block null: open), feed_id,
    # feed_decimals, feed_kind, feed_protocol (who logs the answers: chainlink, lido), base,
    # base_token, quote_token (what the answers are in: USD's address, a token's, or null for
    # a vol feed)
    feeds: pl.DataFrame

    @classmethod
    def of(cls, registry: Registry | None) -> Context:
        if registry is None:
            return cls(None, pl.DataFrame(schema=_TOKENS), pl.DataFrame(schema=_CONTRACTS),
                       pl.DataFrame(schema=_MARKETS), pl.DataFrame(schema=_FEEDS))
        chain = registry.chain_id
        address = {t.symbol: t.address.lower() for t in registry.tokens}
        tokens = pl.DataFrame(
            [{"chain_id": chain, "token": t.address.lower(), "symbol": t.symbol,
              "decimals": t.decimals, "kind": t.kind, "issued_by": t.issued_by,
              "underlying": address.get(t.underlying) if t.underlying else None}
             for t in registry.tokens], schema=_TOKENS)
        contracts = pl.DataFrame(
            [{"chain_id": chain, "contract_address": a.lower(), "venue": v.id,
              "venue_protocol": v.protocol, "role": role}
             for v in registry.venues for role, a in v.contracts.items()], schema=_CONTRACTS)
        markets = pl.DataFrame(
            [{"chain_id": chain, "venue": v.id, "market_id": m.id.lower()
              if m.id.startswith("0x") else m.id, "loan": address.get(m.loan) if m.loan else None,
              "collateral": [address[s] for s in m.collateral]}
             for v in registry.venues for m in v.markets], schema=_MARKETS)
        feeds = pl.DataFrame(
            [{"chain_id": chain, "feed": f.address.lower(), "emitter": emitter,
              "from_block": start, "to_block": stop, "feed_id": f.id,
              "feed_decimals": f.decimals, "feed_kind": f.kind, "feed_protocol": f.protocol,
              "base": f.base, "base_token": address.get(f.base),
              "quote_token": registry.quote_address(f)}
             for f in registry.feeds for emitter, start, stop in f.emitters()],
            schema=_FEEDS)
        return cls(registry,
                   tokens.unique(["chain_id", "token"], keep="first", maintain_order=True),
                   contracts.unique(["chain_id", "contract_address"], keep="first",
                                    maintain_order=True), markets, feeds)

    def with_tokens(self, extra: pl.DataFrame) -> Context:
        """More tokens (same columns as `tokens`); the registry's rows win on a clash."""
        merged = pl.concat([self.tokens, extra.select(list(_TOKENS)).cast(_TOKENS)])  # type: ignore[arg-type]
        return Context(self.registry, merged.unique(["chain_id", "token"], keep="first",
                                                    maintain_order=True),
                       self.contracts, self.markets, self.feeds)

    def venue_contracts(self, protocol: str) -> pl.DataFrame:
        """chain_id, contract_address, venue of the venues of one protocol."""
        return self.contracts.filter(pl.col("venue_protocol") == protocol).select(
            "chain_id", "contract_address", "venue")

    def tokens_of_kind(self, *kinds: str) -> pl.DataFrame:
        return self.tokens.filter(pl.col("kind").is_in(list(kinds)))


# ---------------------------------------------------------------- column helpers

def fits(text: pl.Expr) -> pl.Expr:
    """The exact decimal text as decimal(38,0); null where it does not fit (or is null)."""
    return text.cast(D38, strict=False)


def difference(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Exact text of a - b when both fit decimal(38,0) (then the difference of two amounts of
    one sign fits too); otherwise the text "a - b", which no decimal parses, so the row is
    quarantined with both operands kept."""
    da, db = fits(a), fits(b)
    return (pl.when(da.is_not_null() & db.is_not_null()).then((da - db).cast(pl.String))
            .otherwise(pl.concat_str([a, pl.lit(" - "), b])))


def scaled(text: pl.Expr, zeros: int) -> pl.Expr:
    """Exact text of value * 10**zeros (digits appended: no arithmetic, no overflow)."""
    return pl.when(text == "0").then(pl.lit("0")).otherwise(
        pl.concat_str([text, pl.lit("0" * zeros)]))


def is_positive(text: pl.Expr) -> pl.Expr:
    """Decimal text > 0 (non-negative integer text has no sign and no leading zeros)."""
    return (text != "0") & ~text.str.starts_with("-")


def flow_frame(df: pl.DataFrame, *, source: str | pl.Expr, protocol: str | pl.Expr, action: str,
               side: str, account: pl.Expr, token: pl.Expr | None, amount: pl.Expr,
               market: pl.Expr | None = None, flow_index: int = 0,
               venue: pl.Expr | None = None, decimals: pl.Expr | None = None) -> pl.DataFrame:
    """Rows of a decoded (or decoded-and-joined) frame as flows of one action and side."""
    if df.height == 0:  # the usual case for most actions of a partition; Polars ops are not free
        return _EMPTY_FLOWS.clone()
    null = pl.lit(None, pl.String())
    return df.select(
        *(pl.col(c) for c in BASE),
        pl.lit(flow_index, pl.UInt8()).alias("flow_index"),
        (pl.lit(protocol) if isinstance(protocol, str) else protocol).alias("protocol"),
        (venue if venue is not None else null).alias("venue"),
        (market if market is not None else null).alias("market"),
        account.alias("account"),
        (token if token is not None else null).alias("token"),
        pl.lit(action).alias("action"),
        pl.lit(side).alias("side"),
        amount.alias("amount_text"),
        (decimals if decimals is not None else pl.lit(None, pl.Int32())).alias("decimals"),
        (pl.lit(source) if isinstance(source, str) else source).alias("source"),
    ).cast(FLOW_FRAME)  # type: ignore[arg-type]


def concat_flows(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    parts = [f.select(list(FLOW_FRAME)).cast(FLOW_FRAME)  # type: ignore[arg-type]
             for f in frames if f.height]
    return pl.concat(parts) if parts else _EMPTY_FLOWS.clone()


def with_venue(df: pl.DataFrame, ctx: Context, column: str = "contract_address") -> pl.DataFrame:
    """Adds `venue`: the registry venue whose contract `column` is (null if none)."""
    lookup = ctx.contracts.select("chain_id", pl.col("contract_address").alias(column),
                                  pl.col("venue").alias("_venue"))
    joined = df.join(lookup, on=["chain_id", column], how="left")
    if "venue" in df.columns:
        return joined.with_columns(pl.coalesce("venue", "_venue").alias("venue")).drop("_venue")
    return joined.rename({"_venue": "venue"})


def token_decimals(df: pl.DataFrame, ctx: Context, token: str, alias: str) -> pl.DataFrame:
    """Adds the registry decimals of the token in column `token` as `alias`."""
    lookup = ctx.tokens.select("chain_id", pl.col("token").alias(token),
                               pl.col("decimals").alias(alias))
    return df.join(lookup, on=["chain_id", token], how="left")


def feed_prices(answers: pl.DataFrame, answer: pl.Expr) -> pl.DataFrame:
    """Rows of `prices` (PRICES_SCHEMA) from price-feed answers: `answer` is the exact answer
    (decimal text), the other columns those of `Context.feeds`. price = answer /
    10**feed_decimals in the feed's quote, `price_usd` the same where the quote is USD (else
    null: the warehouse multiplies by the quote token's USD price), `answer_raw` null where
    the answer does not fit decimal(38,0); ordered by (token, block_number, log_index)."""
    scaled = normalized(answer, pl.col("feed_decimals"))
    return answers.select(
        "chain_id", "block_number", "block_time", "log_index",
        pl.col("base_token").alias("token"), pl.col("base").alias("symbol"),
        scaled.alias("price"), pl.col("quote_token").alias("quote"),
        pl.when(pl.col("quote_token") == USD).then(scaled).alias("price_usd"),
        fits(answer).alias("answer_raw"), pl.col("feed_id").alias("source"), "feed",
    ).sort("token", "block_number", "log_index", nulls_last=True)


def normalized(raw: pl.Expr, decimals: pl.Expr) -> pl.Expr:
    """An exact integer (decimal(38,0) or its text) over 10**decimals as the nearest float (null
    without decimals). Parsed from "<digits>e-<decimals>", which is correctly rounded, where
    dividing two floats would not be (1e33 / 1e30 gives 999.9999999999999)."""
    return pl.concat_str([raw.cast(pl.String), pl.lit("e-"), decimals.cast(pl.String)]
                         ).cast(pl.Float64, strict=False)


def preceding_transfer(events: pl.DataFrame, transfers: pl.DataFrame, *, sender: pl.Expr,
                       receiver: pl.Expr, value: pl.Expr, alias: str) -> pl.DataFrame:
    """Adds `alias`: the emitter (the token) of the nearest ERC-20 Transfer before each event in
    its transaction that moved exactly `value` from `sender` to `receiver`; null if none.

    Venues whose events leave the token implicit (the devnet perps pool token, an options
    liquidation's oToken, an option premium) name it this way, from the chain's own record."""
    keyed = events.with_row_index("_row").with_columns(
        sender.alias("_from"), receiver.alias("_to"), value.alias("_value"))
    found = keyed.select("_row", "chain_id", "transaction_hash", "log_index", "_from", "_to",
                         "_value").join(
        transfers.select("chain_id", "transaction_hash", pl.col("from").alias("_from"),
                         pl.col("to").alias("_to"), pl.col("value").alias("_value"),
                         pl.col("log_index").alias("_t_index"),
                         pl.col("contract_address").alias(alias)),
        on=["chain_id", "transaction_hash", "_from", "_to", "_value"], how="inner",
    ).filter(pl.col("_t_index") < pl.col("log_index")).sort("_t_index", descending=True
                                                            ).unique("_row", keep="first")
    return keyed.join(found.select("_row", alias), on="_row", how="left").sort("_row").drop(
        "_row", "_from", "_to", "_value")


def exact_columns(df: pl.DataFrame, columns: Mapping[str, pl.Expr]) -> pl.DataFrame:
    """Adds each decimal text expression as an exact decimal(38,0) column; `unfit` lists (comma
    separated) those whose value is present but does not fit, which are then null."""
    texts = df.select(**{f"_t_{name}": expr.cast(pl.String) for name, expr in columns.items()})
    flags = [pl.when(pl.col(f"_t_{n}").is_not_null() & fits(pl.col(f"_t_{n}")).is_null())
             .then(pl.lit(n)) for n in columns]
    unfit = (pl.concat_list(flags).list.drop_nulls().list.join(",") if flags
             else pl.lit(None, pl.String()))
    out = texts.select(*(fits(pl.col(f"_t_{n}")).alias(n) for n in columns),
                       unfit.alias("_unfit"))
    out = out.with_columns(pl.when(pl.col("_unfit") == "").then(None).otherwise(
        pl.col("_unfit")).alias("_unfit"))
    merged = pl.concat([df.drop([c for c in columns if c in df.columns]), out],
                       how="horizontal")
    if "unfit" in df.columns:
        merged = merged.with_columns(
            pl.concat_str([pl.col("unfit"), pl.col("_unfit")], separator=",",
                          ignore_nulls=True).alias("unfit")).drop("_unfit")
        return merged.with_columns(pl.when(pl.col("unfit") == "").then(None)
                                   .otherwise(pl.col("unfit")).alias("unfit"))
    return merged.rename({"_unfit": "unfit"})


def to_table(df: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """A frame holding the schema's columns (any order, Polars types) as an Arrow table."""
    if df.height == 0:
        return schema.empty_table()
    table = df.select(schema.names).to_arrow()
    return pa.Table.from_arrays(
        [table[name].cast(field.type) for name, field in zip(schema.names, schema, strict=True)],
        schema=schema)


# ---------------------------------------------------------------- flows

def finish_flows(frame: pl.DataFrame, ctx: Context) -> tuple[pa.Table, pa.Table]:
    """Mapped flows (amount as text) → (`flows`, `flows_quarantine`)."""
    frame = with_venue(frame, ctx)
    frame = token_decimals(frame, ctx, "token", "_registry_decimals").with_columns(
        pl.coalesce("decimals", "_registry_decimals").alias("decimals"),
        fits(pl.col("amount_text")).alias("amount_raw"),
    ).drop("_registry_decimals")
    negative = pl.col("amount_raw").is_not_null() & (pl.col("amount_raw") < 0)
    reason = (pl.when(pl.col("amount_raw").is_null()).then(pl.lit(UNFIT_REASON))
              .when(negative).then(pl.lit(NEGATIVE_REASON)))
    frame = frame.with_columns(reason.alias("reason")).sort(
        "chain_id", "block_number", "log_index", "flow_index")
    good = frame.filter(pl.col("reason").is_null()).with_columns(
        normalized(pl.col("amount_raw"), pl.col("decimals")).alias("amount"))
    bad = frame.filter(pl.col("reason").is_not_null())
    return to_table(good, FLOWS_SCHEMA), to_table(bad, FLOWS_QUARANTINE_SCHEMA)


def canonical_tables(decoded: Mapping[str, pa.Table], registry: Registry | None, *,
                     created: pa.Table | None = None) -> dict[str, pa.Table]:
    """The canonical tables from a decoder's output (`DecodeResult.tables`) and the registry of
    the chain the logs come from (None: only what the events say by themselves).

    `created`: the `opyn_gamma__otoken_created` rows of the chain up to these logs (see
    `indexing.discover_children`), so oTokens created in earlier blocks are known claims here
    too; without it only the input's own OtokenCreated rows count."""
    from contagion.protocols import (
        aave_v3,
        chainlink,
        compound_v3,
        erc20,
        gmx_v1,
        lido,
        morpho_blue,
        opyn_gamma,
        uniswap_v2,
        uniswap_v3,
    )

    tables = Tables(decoded)
    ctx = Context.of(registry)
    ctx = ctx.with_tokens(opyn_gamma.created_otokens(tables, ctx))
    if created is not None:
        ctx = ctx.with_tokens(opyn_gamma.created_otokens(
            Tables({"opyn_gamma__otoken_created": created}), ctx))
    mapped = concat_flows(module.flows(tables, ctx) for module in (
        aave_v3, compound_v3, morpho_blue, gmx_v1, opyn_gamma, erc20))
    flows, quarantine = finish_flows(mapped, ctx)
    swaps = pl.concat([uniswap_v2.amm_swaps(tables, ctx), uniswap_v3.amm_swaps(tables, ctx)],
                      how="diagonal_relaxed").sort("chain_id", "block_number", "log_index")
    prices = pl.concat([chainlink.prices(tables, ctx), lido.prices(tables, ctx)]).sort(
        "token", "block_number", "log_index", nulls_last=True)
    return {
        "flows": flows,
        "flows_quarantine": quarantine,
        "prices": to_table(prices, PRICES_SCHEMA),
        "vol_marks": to_table(chainlink.vol_marks(tables, ctx), VOL_MARKS_SCHEMA),
        "perp_positions": to_table(gmx_v1.perp_positions(tables, ctx), PERP_POSITIONS_SCHEMA),
        "option_trades": to_table(opyn_gamma.option_trades(tables, ctx), OPTION_TRADES_SCHEMA),
        "amm_swaps": to_table(swaps, AMM_SWAPS_SCHEMA),
    }
