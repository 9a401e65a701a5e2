"""Aave v3 (3.3 event set): Pool events, and the aToken / variable debt token events.

aTokens and variable debt tokens share Mint/Burn (same topic0; tell them apart by emitter). Their
ERC-20 Transfer/Approval are `erc20`'s specs, listed again in the token tuples for lookups."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from contagion.protocols import erc20
from contagion.protocols.canonical import (
    ZERO_ADDRESS,
    Context,
    Tables,
    concat_flows,
    flow_frame,
)
from contagion.protocols.spec import event

PROTOCOL = "aave_v3"

SUPPLY = event(
    PROTOCOL,
    "Supply(address indexed reserve, address user, address indexed onBehalfOf, "
    "uint256 amount, uint16 indexed referralCode)",
    "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61",
)
WITHDRAW = event(
    PROTOCOL,
    "Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount)",
    "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
)
BORROW = event(
    PROTOCOL,
    "Borrow(address indexed reserve, address user, address indexed onBehalfOf, "
    "uint256 amount, uint8 interestRateMode, uint256 borrowRate, "
    "uint16 indexed referralCode)",
    "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0",
)
REPAY = event(
    PROTOCOL,
    "Repay(address indexed reserve, address indexed user, address indexed repayer, "
    "uint256 amount, bool useATokens)",
    "0xa534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051",
)
LIQUIDATION_CALL = event(
    PROTOCOL,
    "LiquidationCall(address indexed collateralAsset, address indexed debtAsset, "
    "address indexed user, uint256 debtToCover, uint256 liquidatedCollateralAmount, "
    "address liquidator, bool receiveAToken)",
    "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
)
COLLATERAL_ENABLED = event(
    PROTOCOL,
    "ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user)",
    "0x00058a56ea94653cdf4f152d227ace22d4c00ad99e2a43f58cb7d9e3feb295f2",
)
COLLATERAL_DISABLED = event(
    PROTOCOL,
    "ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user)",
    "0x44c58d81365b66dd4b1a7f36c25aa97b8c71c361ee4937adc1a00000227db5dd",
)
DEFICIT_CREATED = event(
    PROTOCOL,
    "DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated)",
    "0x2bccfb3fad376d59d7accf970515eb77b2f27b082c90ed0fb15583dd5a942699",
)
MINTED_TO_TREASURY = event(
    PROTOCOL,
    "MintedToTreasury(address indexed reserve, uint256 amountMinted)",
    "0xbfa21aa5d5f9a1f0120a95e7c0749f389863cbdbfff531aa7339077a5bc919de",
)

RESERVE_DATA_UPDATED = event(
    PROTOCOL,
    "ReserveDataUpdated(address indexed reserve, uint256 liquidityRate, uint256 stableBorrowRate, "
    "uint256 variableBorrowRate, uint256 liquidityIndex, uint256 variableBorrowIndex)",
    "0x804c9b842b2748a22bb64b345453a3de7ca54a6ca45ce00d415894979e22897a",
)
FLASH_LOAN = event(
    PROTOCOL,
    "FlashLoan(address indexed target, address initiator, address indexed asset, uint256 amount, "
    "uint8 interestRateMode, uint256 premium, uint16 indexed referralCode)",
    "0xefefaba5e921573100900a3ad9cf29f222d995fb3b6045797eaea7521bd8d6f0",
)

# Scaled-balance token events (aToken and variable debt token; index is RAY on the devnet).
TOKEN_MINT = event(
    PROTOCOL,
    "Mint(address indexed caller, address indexed onBehalfOf, uint256 value, "
    "uint256 balanceIncrease, uint256 index)",
    "0x458f5fa412d0f69b08dd84872b0215675cc67bc1d5b6fd93300a1c3878b86196",
)
TOKEN_BURN = event(
    PROTOCOL,
    "Burn(address indexed from, address indexed target, uint256 value, "
    "uint256 balanceIncrease, uint256 index)",
    "0x4cf25bc1d991c17529c25213d3cc0cda295eeaad5f13f361969b12ea48015f90",
)
BALANCE_TRANSFER = event(
    PROTOCOL,
    "BalanceTransfer(address indexed from, address indexed to, uint256 value, uint256 index)",
    "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666",
)

POOL_EVENTS = (
    SUPPLY,
    WITHDRAW,
    BORROW,
    REPAY,
    LIQUIDATION_CALL,
    COLLATERAL_ENABLED,
    COLLATERAL_DISABLED,
    DEFICIT_CREATED,
    MINTED_TO_TREASURY,
    RESERVE_DATA_UPDATED,
    FLASH_LOAN,
)
ATOKEN_EVENTS = (erc20.TRANSFER, erc20.APPROVAL, TOKEN_MINT, TOKEN_BURN, BALANCE_TRANSFER)
DEBT_TOKEN_EVENTS = (erc20.TRANSFER, TOKEN_MINT, TOKEN_BURN)
# Aave's own events (the ERC-20 ones belong to `erc20.EVENTS`).
EVENTS = (*POOL_EVENTS, TOKEN_MINT, TOKEN_BURN, BALANCE_TRANSFER)


# ---------------------------------------------------------------- canonical flows

def flows(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Pool events and aToken transfers as flows (docs/canonical.md, "Aave v3").

    market and token are the reserve (the underlying asset). aToken mints and burns are not
    flows (Supply/Withdraw/LiquidationCall carry them); a transfer between two accounts is, on
    the underlying reserve, except the seizure leg of a liquidation with receiveAToken: the
    aToken moves from the borrower to the liquidator, and the borrower's side of it is already
    the LiquidationCall's `liquidation_seize`, so only the liquidator's `transfer_in` is kept.
    A Repay with useATokens also burns the repayer's aTokens: that is a `withdraw` of collateral
    (flow_index 1), since no Withdraw event is emitted for it.
    """
    P, t = PROTOCOL, tables
    supply, withdraw = t["aave_v3__supply"], t["aave_v3__withdraw"]
    borrow, repay = t["aave_v3__borrow"], t["aave_v3__repay"]
    liquidation, deficit = t["aave_v3__liquidation_call"], t["aave_v3__deficit_created"]
    reserve, amount = pl.col("reserve"), pl.col("amount")
    with_atokens = repay.filter(pl.col("use_a_tokens"))
    parts = [
        flow_frame(supply, source="aave_v3__supply", protocol=P, action="supply",
                   side="collateral", account=pl.col("on_behalf_of"), token=reserve,
                   market=reserve, amount=amount),
        flow_frame(withdraw, source="aave_v3__withdraw", protocol=P, action="withdraw",
                   side="collateral", account=pl.col("user"), token=reserve, market=reserve,
                   amount=amount),
        flow_frame(borrow, source="aave_v3__borrow", protocol=P, action="borrow", side="debt",
                   account=pl.col("on_behalf_of"), token=reserve, market=reserve, amount=amount),
        flow_frame(repay, source="aave_v3__repay", protocol=P, action="repay", side="debt",
                   account=pl.col("user"), token=reserve, market=reserve, amount=amount),
        flow_frame(with_atokens, source="aave_v3__repay", protocol=P, action="withdraw",
                   side="collateral", account=pl.col("repayer"), token=reserve, market=reserve,
                   amount=amount, flow_index=1),
        flow_frame(liquidation, source="aave_v3__liquidation_call", protocol=P,
                   action="liquidation_repay", side="debt", account=pl.col("user"),
                   token=pl.col("debt_asset"), market=pl.col("debt_asset"),
                   amount=pl.col("debt_to_cover")),
        flow_frame(liquidation, source="aave_v3__liquidation_call", protocol=P,
                   action="liquidation_seize", side="collateral", account=pl.col("user"),
                   token=pl.col("collateral_asset"), market=pl.col("collateral_asset"),
                   amount=pl.col("liquidated_collateral_amount"), flow_index=1),
        flow_frame(deficit, source="aave_v3__deficit_created", protocol=P, action="bad_debt",
                   side="debt", account=pl.col("user"), token=pl.col("debt_asset"),
                   market=pl.col("debt_asset"), amount=pl.col("amount_created")),
    ]
    return concat_flows([*parts, *_atoken_transfers(t, ctx)])


def _atoken_transfers(tables: Tables, ctx: Context) -> list[pl.DataFrame]:
    atokens = ctx.tokens_of_kind("atoken").filter(pl.col("underlying").is_not_null()).select(
        "chain_id", pl.col("token").alias("contract_address"), "underlying",
        pl.col("issued_by").alias("venue"))
    moves = tables["erc20__transfer"].join(atokens, on=["chain_id", "contract_address"]).filter(
        (pl.col("from") != ZERO_ADDRESS) & (pl.col("to") != ZERO_ADDRESS))
    seized = tables["aave_v3__liquidation_call"].filter(pl.col("receive_a_token")).select(
        "chain_id", "transaction_hash", pl.col("user").alias("from"),
        pl.col("liquidator").alias("to"), pl.col("collateral_asset").alias("underlying"),
        pl.col("liquidated_collateral_amount").alias("value"), pl.lit(True).alias("_seized"),
    ).unique()
    moves = moves.join(seized, on=["chain_id", "transaction_hash", "from", "to", "underlying",
                                   "value"], how="left")

    def moved(frame: pl.DataFrame, action: str, account: str, index: int) -> pl.DataFrame:
        return flow_frame(frame, source="erc20__transfer", protocol=PROTOCOL, action=action,
                          side="collateral", account=pl.col(account), token=pl.col("underlying"),
                          market=pl.col("underlying"), amount=pl.col("value"),
                          venue=pl.col("venue"), flow_index=index)

    return [moved(moves.filter(pl.col("_seized").is_null()), "transfer_out", "from", 0),
            moved(moves, "transfer_in", "to", 1)]


# ---------------------------------------------------------------- interest

# Aave v3's WadRayMath and MathUtils (v3.0 to v3.4: half-up ray arithmetic). A balance is its
# scaled balance times the reserve's index at that moment; the Pool stores each index with the
# rates at every update (ReserveDataUpdated) and grows it from there: the liquidity index by
# linear interest, the variable borrow index by a three-term Taylor expansion of compounding.
RAY = 10**27
SECONDS_PER_YEAR = 365 * 86_400


def ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


def ray_div(a: int, b: int) -> int:
    return (a * RAY + b // 2) // b


def _elapsed(seconds: int) -> int:
    if seconds < 0:
        raise ValueError(f"an index cannot be read {-seconds} s before its last update")
    return seconds


def normalized_income(liquidity_index: int, liquidity_rate: int, seconds: int) -> int:
    """Pool.getReserveNormalizedIncome `seconds` after the reserve's last update."""
    if _elapsed(seconds) == 0:
        return liquidity_index
    return ray_mul(RAY + liquidity_rate * seconds // SECONDS_PER_YEAR, liquidity_index)


def normalized_variable_debt(variable_borrow_index: int, variable_borrow_rate: int,
                             seconds: int) -> int:
    """Pool.getReserveNormalizedVariableDebt `seconds` after the reserve's last update."""
    if _elapsed(seconds) == 0:
        return variable_borrow_index
    rate = variable_borrow_rate
    power_two = ray_mul(rate, rate) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    power_three = ray_mul(power_two, rate) // SECONDS_PER_YEAR
    second = seconds * (seconds - 1) * power_two // 2
    third = seconds * (seconds - 1) * max(seconds - 2, 0) * power_three // 6
    return ray_mul(RAY + rate * seconds // SECONDS_PER_YEAR + second + third,
                   variable_borrow_index)


def _on_text(grow: Callable[[int, int, int], int]) -> Callable[..., str | None]:
    def on_text(index: str | None, rate: str | None, seconds: int | None) -> str | None:
        if index is None or rate is None or seconds is None:
            return None
        return str(grow(int(index), int(rate), int(seconds)))
    return on_text


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Add to the connection aave_normalized_income(index, rate, seconds),
    aave_normalized_variable_debt(…) (decimal text or integers in, DECIMAL(38,0) out, null if
    any is null) and aave_index_at(side, liquidity_index, liquidity_rate, variable_borrow_index,
    variable_borrow_rate, seconds): the index a position on that side ('collateral' or 'debt')
    is worth `seconds` after a ReserveDataUpdated; at a zero rate the stored index, whatever
    the time (so a null time only matters while interest accrues)."""
    for name, grow in (("income", normalized_income),
                       ("variable_debt", normalized_variable_debt)):
        con.create_function(f"_aave_{name}", _on_text(grow), ["varchar", "varchar", "bigint"],
                            "varchar", side_effects=False)
        con.execute(f"create or replace temp macro aave_normalized_{name}(i, r, s) as "
                    f"try_cast(_aave_{name}(i::varchar, r::varchar, s::bigint) as decimal(38, 0))")
    con.execute("""
        create or replace temp macro aave_index_at(side, li, lr, vi, vr, seconds) as
        case side
            when 'collateral' then
                case when lr = 0 then li else aave_normalized_income(li, lr, seconds) end
            else case when vr = 0 then vi else aave_normalized_variable_debt(vi, vr, seconds) end
        end""")
