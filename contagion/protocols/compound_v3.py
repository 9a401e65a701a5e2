"""Compound III (Comet) markets: one borrowable base token, collateral that only backs borrows.

Declarations are CometMainInterface's. Comet's `Transfer` is the ERC-20 event (same topic0):
it tracks the base-supply claim, so a decoder tells it from a token transfer by the emitter.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import duckdb
import polars as pl
import pyarrow as pa
from duckdb.func import FunctionNullHandling
from eth_utils import keccak

from contagion.chain.multicall import Call, words
from contagion.protocols.canonical import (
    ZERO_ADDRESS,
    Context,
    Tables,
    concat_flows,
    difference,
    flow_frame,
    is_positive,
)
from contagion.protocols.spec import event

PROTOCOL = "compound_v3"

SUPPLY = event(
    PROTOCOL,
    "Supply(address indexed from, address indexed dst, uint amount)",
    "0xd1cf3d156d5f8f0d50f6c122ed609cec09d35c9b9fb3fff6ea0959134dae424e",
)
TRANSFER = event(
    PROTOCOL,
    "Transfer(address indexed from, address indexed to, uint amount)",
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
)
WITHDRAW = event(
    PROTOCOL,
    "Withdraw(address indexed src, address indexed to, uint amount)",
    "0x9b1bfa7fa9ee420a16e124f794c35ac9f90472acc99140eb2f6447c714cad8eb",
)
SUPPLY_COLLATERAL = event(
    PROTOCOL,
    "SupplyCollateral(address indexed from, address indexed dst, address indexed asset, "
    "uint amount)",
    "0xfa56f7b24f17183d81894d3ac2ee654e3c26388d17a28dbd9549b8114304e1f4",
)
TRANSFER_COLLATERAL = event(
    PROTOCOL,
    "TransferCollateral(address indexed from, address indexed to, address indexed asset, "
    "uint amount)",
    "0x29db89d45e1a802b4d55e202984fce9faf1d30aedf86503ff1ea0ed9ebb64201",
)
WITHDRAW_COLLATERAL = event(
    PROTOCOL,
    "WithdrawCollateral(address indexed src, address indexed to, address indexed asset, "
    "uint amount)",
    "0xd6d480d5b3068db003533b170d67561494d72e3bf9fa40a266471351ebba9e16",
)
# basePaidOut is the rise of the borrower's base balance (debt wiped + excess credited), which
# is also what the protocol's reserves fall by; usdValue prices it with the base feed (8 dp).
ABSORB_DEBT = event(
    PROTOCOL,
    "AbsorbDebt(address indexed absorber, address indexed borrower, uint basePaidOut, "
    "uint usdValue)",
    "0x1547a878dc89ad3c367b6338b4be6a65a5dd74fb77ae044da1e8747ef1f4f62f",
)
ABSORB_COLLATERAL = event(
    PROTOCOL,
    "AbsorbCollateral(address indexed absorber, address indexed borrower, address indexed asset, "
    "uint collateralAbsorbed, uint usdValue)",
    "0x9850ab1af75177e4a9201c65a2cf7976d5d28e40ef63494b44366f86b2f9412e",
)
BUY_COLLATERAL = event(
    PROTOCOL,
    "BuyCollateral(address indexed buyer, address indexed asset, uint baseAmount, "
    "uint collateralAmount)",
    "0xf891b2a411b0e66a5f0a6ff1368670fefa287a13f541eb633a386a1a9cc7046b",
)
WITHDRAW_RESERVES = event(
    PROTOCOL,
    "WithdrawReserves(address indexed to, uint amount)",
    "0xec4431f2ba1a9382f6b0c4352b888cba6f7db91667d9f776abe5ad8ddc5401b6",
)

EVENTS = (
    SUPPLY,
    TRANSFER,
    WITHDRAW,
    SUPPLY_COLLATERAL,
    TRANSFER_COLLATERAL,
    WITHDRAW_COLLATERAL,
    ABSORB_DEBT,
    ABSORB_COLLATERAL,
    BUY_COLLATERAL,
    WITHDRAW_RESERVES,
)


# ---------------------------------------------------------------- canonical flows

def base_tokens(ctx: Context) -> pl.DataFrame:
    """chain_id, contract_address, base: each Comet's base token, the `loan` of its registry
    markets (a venue whose markets name no single loan token has no known base)."""
    loans = ctx.markets.join(ctx.venue_contracts(PROTOCOL), on=["chain_id", "venue"]).filter(
        pl.col("loan").is_not_null()).group_by("chain_id", "contract_address").agg(
        pl.col("loan").unique().alias("loans"))
    return loans.filter(pl.col("loans").list.len() == 1).select(
        "chain_id", "contract_address", pl.col("loans").list.first().alias("base"))


def comet_transfers(tables: Tables) -> pl.DataFrame:
    """Comet's Transfer events: `compound_v3__transfer` (a registered Comet's), plus the
    `erc20__transfer` rows whose emitter also emitted a Comet-only event in the input (the
    decoder names a shared signature by the registry, so without one they land there)."""
    own = tables["compound_v3__transfer"]
    comets = pl.concat([tables[f"{PROTOCOL}__{name}"].select("chain_id", "contract_address")
                        for name in _COMET_ONLY]).unique()
    shared = tables["erc20__transfer"].join(comets, on=["chain_id", "contract_address"],
                                            how="semi").rename({"value": "amount"})
    return pl.concat([
        own.with_columns(pl.lit(f"{PROTOCOL}__transfer").alias("source")),
        shared.select(own.columns).with_columns(pl.lit("erc20__transfer").alias("source")),
    ]).sort("chain_id", "block_number", "log_index")


_COMET_ONLY = ("supply", "withdraw", "supply_collateral", "transfer_collateral",
               "withdraw_collateral", "absorb_debt", "absorb_collateral", "buy_collateral",
               "withdraw_reserves")


def flows(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Comet events as flows (docs/canonical.md, "Compound v3").

    Comet's base accounting is a signed principal; its events tell the parts apart only by
    pairing: `Supply` is followed (at log_index + 1) by `Transfer(0x0, dst, supplied)` for the
    part that became a positive balance, the rest repaid debt; `Withdraw` is followed by
    `Transfer(src, 0x0, withdrawn)` for the part that came out of a positive balance, the rest
    was borrowed; `AbsorbDebt` is followed by `Transfer(0x0, borrower, credit)` when the
    absorbed collateral was worth more than the debt. A base `Transfer` that pairs with none of
    these is `transferAsset` of base: `transfer_out`/`transfer_in` of supply. The borrow or
    repay part of such a transfer has no event and is invisible (real Comet has the same gap).
    BuyCollateral and WithdrawReserves move the protocol's own reserves: not account flows.
    """
    P, t = PROTOCOL, tables
    bases = base_tokens(ctx)
    transfers = comet_transfers(t).with_row_index("_transfer")
    base = pl.col("base")

    def paired(events: pl.DataFrame, account: str, minted_from: bool) -> pl.DataFrame:
        """Each event with `paired` (the amount of the Transfer right after it, "0" if none)."""
        follower = transfers.filter(pl.col("log_index") > 0).select(
            "chain_id", "transaction_hash", "contract_address", "_transfer",
            (pl.col("log_index") - 1).alias("log_index"),
            pl.col("to" if minted_from else "from").alias(account),
            pl.col("amount").alias("paired"),
            pl.col("from" if minted_from else "to").alias("_zero"),
        ).filter(pl.col("_zero") == ZERO_ADDRESS).drop("_zero")
        return events.join(follower, on=["chain_id", "transaction_hash", "contract_address",
                                         "log_index", account], how="left").with_columns(
            pl.col("paired").fill_null("0")).join(bases, on=["chain_id", "contract_address"],
                                                  how="left")

    supply = paired(t["compound_v3__supply"], "dst", minted_from=True)
    withdraw = paired(t["compound_v3__withdraw"], "src", minted_from=False)
    absorb = paired(t["compound_v3__absorb_debt"], "borrower", minted_from=True)
    used = pl.concat([f["_transfer"] for f in (supply, withdraw, absorb)]).drop_nulls()
    loose = transfers.filter(~pl.col("_transfer").is_in(used.implode())).join(
        bases, on=["chain_id", "contract_address"], how="left")

    repaid = difference(pl.col("amount"), pl.col("paired"))
    borrowed = repaid
    credited = difference(pl.col("base_paid_out"), pl.col("paired"))
    parts = [
        flow_frame(supply.filter(is_positive(repaid)), source="compound_v3__supply", protocol=P,
                   action="repay", side="debt", account=pl.col("dst"), token=base,
                   market=base, amount=repaid),
        flow_frame(supply.filter(is_positive(pl.col("paired"))), source="compound_v3__supply",
                   protocol=P, action="supply", side="supply", account=pl.col("dst"),
                   token=base, market=base, amount=pl.col("paired"), flow_index=1),
        flow_frame(withdraw.filter(is_positive(pl.col("paired"))),
                   source="compound_v3__withdraw", protocol=P, action="withdraw", side="supply",
                   account=pl.col("src"), token=base, market=base, amount=pl.col("paired")),
        flow_frame(withdraw.filter(is_positive(borrowed)), source="compound_v3__withdraw",
                   protocol=P, action="borrow", side="debt", account=pl.col("src"), token=base,
                   market=base, amount=borrowed, flow_index=1),
        flow_frame(absorb.filter(is_positive(credited)), source="compound_v3__absorb_debt",
                   protocol=P, action="liquidation_repay", side="debt",
                   account=pl.col("borrower"), token=base, market=base, amount=credited),
        flow_frame(absorb.filter(is_positive(pl.col("paired"))),
                   source="compound_v3__absorb_debt", protocol=P, action="supply",
                   side="supply", account=pl.col("borrower"), token=base, market=base,
                   amount=pl.col("paired"), flow_index=1),
        flow_frame(loose.filter(pl.col("from") != ZERO_ADDRESS),
                   source=pl.col("source"), protocol=P, action="transfer_out",
                   side="supply", account=pl.col("from"), token=base, market=base,
                   amount=pl.col("amount")),
        flow_frame(loose.filter((pl.col("to") != ZERO_ADDRESS)
                                | (pl.col("from") == ZERO_ADDRESS)),
                   source=pl.col("source"), protocol=P, action="transfer_in",
                   side="supply", account=pl.col("to"), token=base, market=base,
                   amount=pl.col("amount"), flow_index=1),
    ]
    asset = pl.col("asset")
    supplied, withdrawn = t["compound_v3__supply_collateral"], t["compound_v3__withdraw_collateral"]
    moved, seized = t["compound_v3__transfer_collateral"], t["compound_v3__absorb_collateral"]
    parts += [
        flow_frame(supplied, source="compound_v3__supply_collateral", protocol=P,
                   action="supply", side="collateral", account=pl.col("dst"), token=asset,
                   market=asset, amount=pl.col("amount")),
        flow_frame(withdrawn, source="compound_v3__withdraw_collateral", protocol=P,
                   action="withdraw", side="collateral", account=pl.col("src"), token=asset,
                   market=asset, amount=pl.col("amount")),
        flow_frame(moved, source="compound_v3__transfer_collateral", protocol=P,
                   action="transfer_out", side="collateral", account=pl.col("from"),
                   token=asset, market=asset, amount=pl.col("amount")),
        flow_frame(moved, source="compound_v3__transfer_collateral", protocol=P,
                   action="transfer_in", side="collateral", account=pl.col("to"), token=asset,
                   market=asset, amount=pl.col("amount"), flow_index=1),
        flow_frame(seized, source="compound_v3__absorb_collateral", protocol=P,
                   action="liquidation_seize", side="collateral",
                   account=pl.col("borrower"), token=asset, market=asset,
                   amount=pl.col("collateral_absorbed")),
    ]
    return concat_flows(parts)


# ---------------------------------------------------------------- interest

# Compound III's interest math (CometCore and Comet.sol), integer for integer. An account's base
# position is a signed principal: its balance is the principal times the supply index when it
# is >= 0, times the borrow index when it is < 0, over BASE_INDEX_SCALE. Between two accruals
# each index grows linearly, index += index * rate * seconds / 1e18, at the per-second rate its
# own kinked curve gives at the utilization stored at the last accrual. Comet's operations
# accrue first and then value positions at the stored indexes; its views (balanceOf,
# borrowBalanceOf, totalSupply, totalBorrow, getReserves) bring the indexes forward to the
# block's time with `accrued_indices`. All state comes from `totalsBasic()` (indexes, principal
# totals, lastAccrualTime) and the eight rate getters.

BASE_INDEX_SCALE = 10**15
FACTOR_SCALE = 10**18
SECONDS_PER_YEAR = 31_536_000


class InterestRates(NamedTuple):
    """Comet's two rate curves as its getters return them, all 1e18-scaled: kinks are
    utilizations, bases and slopes are per-second rates (`supplyKink`,
    `supplyPerSecondInterestRateSlopeLow`, `…SlopeHigh`, `…Base`, then the same for borrow)."""

    supply_kink: int
    supply_slope_low: int
    supply_slope_high: int
    supply_base: int
    borrow_kink: int
    borrow_slope_low: int
    borrow_slope_high: int
    borrow_base: int

    @classmethod
    def per_year(cls, supply_kink: int, supply_slope_low: int, supply_slope_high: int,
                 supply_base: int, borrow_kink: int, borrow_slope_low: int,
                 borrow_slope_high: int, borrow_base: int) -> InterestRates:
        """From yearly rates (1e18 = 100 % a year), divided by SECONDS_PER_YEAR and rounded
        down as Comet's constructor does with its configuration; kinks are kept."""
        y = SECONDS_PER_YEAR
        return cls(supply_kink, supply_slope_low // y, supply_slope_high // y, supply_base // y,
                   borrow_kink, borrow_slope_low // y, borrow_slope_high // y, borrow_base // y)


ZERO_RATES = InterestRates(0, 0, 0, 0, 0, 0, 0, 0)


def _mul_factor(n: int, factor: int) -> int:
    return n * factor // FACTOR_SCALE


def present_value_supply(supply_index: int, principal: int) -> int:
    """A supply principal's balance (rounded down)."""
    return principal * supply_index // BASE_INDEX_SCALE


def present_value_borrow(borrow_index: int, principal: int) -> int:
    """A borrow principal's debt (rounded down)."""
    return principal * borrow_index // BASE_INDEX_SCALE


def principal_value_supply(supply_index: int, present: int) -> int:
    """The supply principal a balance buys (rounded down)."""
    return present * BASE_INDEX_SCALE // supply_index


def principal_value_borrow(borrow_index: int, present: int) -> int:
    """The borrow principal a debt takes (rounded up)."""
    return (present * BASE_INDEX_SCALE + borrow_index - 1) // borrow_index


def present_value(supply_index: int, borrow_index: int, principal: int) -> int:
    """A signed principal's signed balance: supply if >= 0, minus the debt if < 0."""
    if principal >= 0:
        return present_value_supply(supply_index, principal)
    return -present_value_borrow(borrow_index, -principal)


def principal_value(supply_index: int, borrow_index: int, balance: int) -> int:
    """A signed balance's signed principal (a debt's principal rounded up in magnitude)."""
    if balance >= 0:
        return principal_value_supply(supply_index, balance)
    return -principal_value_borrow(borrow_index, -balance)


def utilization(supply_index: int, borrow_index: int, total_supply_base: int,
                total_borrow_base: int) -> int:
    """getUtilization: borrows over supplies at the given indexes, 1e18-scaled (0 without
    supply)."""
    total_supply = present_value_supply(supply_index, total_supply_base)
    total_borrow = present_value_borrow(borrow_index, total_borrow_base)
    if total_supply == 0:
        return 0
    return total_borrow * FACTOR_SCALE // total_supply


def _kinked(kink: int, slope_low: int, slope_high: int, base: int, u: int) -> int:
    if u <= kink:
        return base + _mul_factor(slope_low, u)
    return base + _mul_factor(slope_low, kink) + _mul_factor(slope_high, u - kink)


def supply_rate(rates: InterestRates, u: int) -> int:
    """getSupplyRate: the per-second supply rate (1e18-scaled) at utilization `u` (1e18)."""
    return _kinked(rates.supply_kink, rates.supply_slope_low, rates.supply_slope_high,
                   rates.supply_base, u)


def borrow_rate(rates: InterestRates, u: int) -> int:
    """getBorrowRate: the per-second borrow rate (1e18-scaled) at utilization `u` (1e18)."""
    return _kinked(rates.borrow_kink, rates.borrow_slope_low, rates.borrow_slope_high,
                   rates.borrow_base, u)


def accrued_indices(supply_index: int, borrow_index: int, total_supply_base: int,
                    total_borrow_base: int, rates: InterestRates, seconds: int) -> tuple[int, int]:
    """accruedInterestIndices: (supply index, borrow index) `seconds` after the last accrual,
    from the stored indexes and principal totals (`totalsBasic()`) and the market's rates."""
    if seconds < 0:
        raise ValueError(f"an index cannot be read {-seconds} s before its last accrual")
    if seconds == 0:
        return supply_index, borrow_index
    u = utilization(supply_index, borrow_index, total_supply_base, total_borrow_base)
    return (supply_index + _mul_factor(supply_index, supply_rate(rates, u) * seconds),
            borrow_index + _mul_factor(borrow_index, borrow_rate(rates, u) * seconds))


# ---------------------------------------------------------------- state reads

# Comet logs neither its indexes nor principals, and its Supply/Withdraw amounts are present
# values, so the pipeline reads state: at the end of every block in which a Comet logged, and
# at each partition's last block, `totalsBasic()` and the eight rate getters; and, for every
# account a base event of the block names, `userBasic(account).principal`. The reads are bound
# to the block's hash (contagion.states), so they describe the same chain as the logs.
STATES = "compound_v3__states"
PRINCIPALS = "compound_v3__principals"
RATE_GETTERS = ("supplyKink", "supplyPerSecondInterestRateSlopeLow",
                "supplyPerSecondInterestRateSlopeHigh", "supplyPerSecondInterestRateBase",
                "borrowKink", "borrowPerSecondInterestRateSlopeLow",
                "borrowPerSecondInterestRateSlopeHigh", "borrowPerSecondInterestRateBase")
TOTALS_BASIC = "totalsBasic()"
USER_BASIC = "userBasic(address)"

_DECIMAL = pa.decimal128(38, 0)
_READ_KEY = [
    pa.field("chain_id", pa.uint64(), nullable=False),
    pa.field("block_number", pa.uint64(), nullable=False),
    pa.field("block_time", pa.timestamp("s", tz="UTC"), nullable=False),
    pa.field("contract_address", pa.string(), nullable=False),
]
# What a state read gives, in the order decode_state returns it: totalsBasic()'s indexes
# (1e15-scaled), principal totals and last accrual, then InterestRates' fields (1e18-scaled).
STATE_VALUES = ("base_supply_index", "base_borrow_index", "total_supply_base",
                "total_borrow_base", "last_accrual_time", *InterestRates._fields)
# One row per Comet and read block; the values null with unread_reason when a call failed.
STATES_SCHEMA = pa.schema([
    *_READ_KEY,
    *(pa.field(name, pa.uint64() if name == "last_accrual_time" else _DECIMAL)
      for name in STATE_VALUES),
    pa.field("unread_reason", pa.string()),
])
# One row per Comet, read block and account a base event of the block names: the signed
# principal after the block (supply > 0, debt < 0).
PRINCIPALS_SCHEMA = pa.schema([
    *_READ_KEY,
    pa.field("account", pa.string(), nullable=False),
    pa.field("principal", _DECIMAL),
    pa.field("unread_reason", pa.string()),
])
STATE_SCHEMAS = {STATES: STATES_SCHEMA, PRINCIPALS: PRINCIPALS_SCHEMA}
# the decoded tables that say which blocks and accounts to read
READ_FROM = (*(f"{PROTOCOL}__{name}" for name in ("transfer", *_COMET_ONLY)), "erc20__transfer")


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


STATE_READS = (TOTALS_BASIC, *(f"{g}()" for g in RATE_GETTERS))  # the calls of state_calls
_STATE_CALLS = tuple(_selector(s) for s in STATE_READS)
_USER_BASIC = _selector(USER_BASIC)


def read_plan(tables: Tables, comets: Collection[str], last_block: int
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What to read at the Comets (lowercase addresses) of a partition whose last block is
    `last_block`:
    - blocks: block_number, contract_address, logged: every block in which a Comet logged
      (logged true), and the last block for every Comet;
    - accounts: block_number, contract_address, account: the accounts whose base principal a
      block's events may have changed (Supply dst, Withdraw src, base Transfer from and to,
      AbsorbDebt borrower), once each."""
    t, at_comets = tables, pl.col("contract_address").is_in(list(comets))
    transfers = comet_transfers(t)
    logged = pl.concat([t[f"{PROTOCOL}__{name}"].select("block_number", "contract_address")
                        for name in _COMET_ONLY]
                       + [transfers.select("block_number", "contract_address")])
    logged = logged.filter(at_comets).unique().with_columns(logged=pl.lit(True))
    last = pl.DataFrame({"block_number": [last_block] * len(comets),
                         "contract_address": sorted(comets), "logged": [False] * len(comets)},
                        schema=logged.schema)
    blocks = pl.concat([logged, last.join(logged, on=["block_number", "contract_address"],
                                          how="anti")]).sort("block_number", "contract_address")
    named = [t[f"{PROTOCOL}__{event}"].select("block_number", "contract_address",
                                              pl.col(role).alias("account"))
             for event, role in (("supply", "dst"), ("withdraw", "src"),
                                 ("absorb_debt", "borrower"))]
    named += [transfers.select("block_number", "contract_address", pl.col(side).alias("account"))
              for side in ("from", "to")]
    accounts = pl.concat(named).filter(at_comets & (pl.col("account") != ZERO_ADDRESS)).unique(
        ).sort("block_number", "contract_address", "account")
    return blocks, accounts


def state_calls(comet: str) -> list[Call]:
    return [Call(comet, selector) for selector in _STATE_CALLS]


def principal_call(comet: str, account: str) -> Call:
    return Call(comet, _USER_BASIC + bytes(12) + bytes.fromhex(account[2:]))


def decode_state(replies: Sequence[bytes | None]) -> tuple[dict[str, int | None], str | None]:
    """The STATE_VALUES from the replies to `state_calls`, or nulls and the reason."""
    read: list[bytes] = []
    for name, reply in zip(STATE_READS, replies, strict=True):
        if reply is None:
            return dict.fromkeys(STATE_VALUES), f"{name} reverted"
        if len(reply) < (256 if name == TOTALS_BASIC else 32):
            return (dict.fromkeys(STATE_VALUES),
                    f"{name} returned {len(reply)} bytes (no Comet at the block?)")
        read.append(reply)
    supply_index, borrow_index, _, _, total_supply, total_borrow, last_accrual = (
        words(read[0])[:7])
    values = (supply_index, borrow_index, total_supply, total_borrow, last_accrual,
              *(words(r[:32])[0] for r in read[1:]))
    return dict(zip(STATE_VALUES, values, strict=True)), None


def decode_principal(reply: bytes | None) -> tuple[int | None, str | None]:
    """userBasic's signed principal (int104, sign-extended in its word), or null and why."""
    if reply is None:
        return None, "userBasic reverted"
    if len(reply) < 32:
        return None, f"userBasic returned {len(reply)} bytes (no Comet at the block?)"
    word = words(reply[:32])[0]
    return (word - (1 << 256) if word >> 255 else word), None


# ---------------------------------------------------------------- interest in SQL

def _accrued(state: Sequence[str | None] | None, seconds: int | None
             ) -> tuple[int, int] | None:
    """(supply index, borrow index) `seconds` after a STATES row's 12 values (indexes, totals,
    the eight rates) were read, or None if any is null."""
    if state is None or seconds is None or any(v is None for v in state):
        return None
    if len(state) != 12:
        raise ValueError(f"a Comet state is 12 values, got {len(state)}")
    supply_index, borrow_index, total_supply, total_borrow, *rates = (
        int(v) for v in state if v is not None)
    return accrued_indices(supply_index, borrow_index, total_supply, total_borrow,
                           InterestRates(*rates), seconds)


def _index_at(side: str | None, state: list[str | None] | None,
              seconds: int | None) -> str | None:
    if side not in ("supply", "borrow", None):
        raise ValueError(f"a Comet index is 'supply' or 'borrow', not {side!r}")
    indices = _accrued(state, seconds)
    if side is None or indices is None:
        return None
    return str(indices[side == "borrow"])


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Add to the connection comet_index_at(side, <12 values>, seconds): the 'supply' or
    'borrow' index `seconds` after a STATES row's 12 values (indexes, totals, the eight rates)
    were stored (Comet's accruedInterestIndices; integers of any type in, decimal text too,
    DECIMAL(38,0) out, null if any input is null, a negative `seconds` an error); and
    comet_present_value(principal, supply_index, borrow_index): a signed principal's signed
    balance (presentValue: principal × index / 1e15, rounded down either side). The second
    needs `contagion.exact.register` on the connection first (mul_div_down)."""
    con.create_function("_comet_index_at", _index_at, ["varchar", "varchar[]", "bigint"],
                        "varchar", null_handling=FunctionNullHandling.SPECIAL,
                        side_effects=False)
    params = ", ".join(f"v{i}" for i in range(12))
    state = "[" + ", ".join(f"v{i}::varchar" for i in range(12)) + "]"
    con.execute(f"create or replace temp macro comet_index_at(side, {params}, s) as "
                f"try_cast(_comet_index_at(side, {state}, s::bigint) as decimal(38, 0))")
    scale = f"'{BASE_INDEX_SCALE}'"
    con.execute(f"""create or replace temp macro comet_present_value(p, si, bi) as
        case when p < 0 then -mul_div_down(-p, bi, {scale})
             else mul_div_down(p, si, {scale}) end""")
