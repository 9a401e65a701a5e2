"""Morpho Blue: one singleton holding isolated markets (EventsLib of morpho-org/morpho-blue).

`Id` is bytes32 (keccak256 of the abi-encoded MarketParams); MarketParams is the struct
(loanToken, collateralToken, oracle, irm, lltv).
"""

from __future__ import annotations

import polars as pl

from contagion.protocols.canonical import (
    Context,
    Tables,
    concat_flows,
    flow_frame,
    is_positive,
)
from contagion.protocols.spec import event

PROTOCOL = "morpho_blue"

_PARAMS = (
    "(address loanToken, address collateralToken, address oracle, address irm, "
    "uint256 lltv) marketParams"
)

CREATE_MARKET = event(
    PROTOCOL,
    f"CreateMarket(bytes32 indexed id, {_PARAMS})",
    "0xac4b2400f169220b0c0afdde7a0b32e775ba727ea1cb30b35f935cdaab8683ac",
)
SUPPLY = event(
    PROTOCOL,
    "Supply(bytes32 indexed id, address indexed caller, address indexed onBehalf, "
    "uint256 assets, uint256 shares)",
    "0xedf8870433c83823eb071d3df1caa8d008f12f6440918c20d75a3602cda30fe0",
)
WITHDRAW = event(
    PROTOCOL,
    "Withdraw(bytes32 indexed id, address caller, address indexed onBehalf, "
    "address indexed receiver, uint256 assets, uint256 shares)",
    "0xa56fc0ad5702ec05ce63666221f796fb62437c32db1aa1aa075fc6484cf58fbf",
)
BORROW = event(
    PROTOCOL,
    "Borrow(bytes32 indexed id, address caller, address indexed onBehalf, "
    "address indexed receiver, uint256 assets, uint256 shares)",
    "0x570954540bed6b1304a87dfe815a5eda4a648f7097a16240dcd85c9b5fd42a43",
)
REPAY = event(
    PROTOCOL,
    "Repay(bytes32 indexed id, address indexed caller, address indexed onBehalf, "
    "uint256 assets, uint256 shares)",
    "0x52acb05cebbd3cd39715469f22afbf5a17496295ef3bc9bb5944056c63ccaa09",
)
SUPPLY_COLLATERAL = event(
    PROTOCOL,
    "SupplyCollateral(bytes32 indexed id, address indexed caller, address indexed onBehalf, "
    "uint256 assets)",
    "0xa3b9472a1399e17e123f3c2e6586c23e504184d504de59cdaa2b375e880c6184",
)
WITHDRAW_COLLATERAL = event(
    PROTOCOL,
    "WithdrawCollateral(bytes32 indexed id, address caller, address indexed onBehalf, "
    "address indexed receiver, uint256 assets)",
    "0xe80ebd7cc9223d7382aab2e0d1d6155c65651f83d53c8b9b06901d167e321142",
)
LIQUIDATE = event(
    PROTOCOL,
    "Liquidate(bytes32 indexed id, address indexed caller, address indexed borrower, "
    "uint256 repaidAssets, uint256 repaidShares, uint256 seizedAssets, uint256 badDebtAssets, "
    "uint256 badDebtShares)",
    "0xa4946ede45d0c6f06a0f5ce92c9ad3b4751452d2fe0e25010783bcab57a67e41",
)
SET_AUTHORIZATION = event(
    PROTOCOL,
    "SetAuthorization(address indexed caller, address indexed authorizer, "
    "address indexed authorized, bool newIsAuthorized)",
    "0xd5e969f01efe921d3f766bdebad25f0a05e3f237311f56482bf132d0326309c0",
)
ENABLE_IRM = event(
    PROTOCOL,
    "EnableIrm(address indexed irm)",
    "0x590e04cdebeccba40f566186b9746ad295a4cd358ea4fefaaea6ce79630d96c0",
)
ENABLE_LLTV = event(
    PROTOCOL,
    "EnableLltv(uint256 lltv)",
    "0x297b80e7a896fad470c630f6575072d609bde997260ff3db851939405ec29139",
)
SET_OWNER = event(
    PROTOCOL,
    "SetOwner(address indexed newOwner)",
    "0x167d3e9c1016ab80e58802ca9da10ce5c6a0f4debc46a2e7a2cd9e56899a4fb5",
)
SET_FEE = event(
    PROTOCOL,
    "SetFee(bytes32 indexed id, uint256 newFee)",
    "0x139d6f58e9a127229667c8e3b36e88890a66cfc8ab1024ddc513e189e125b75b",
)
SET_FEE_RECIPIENT = event(
    PROTOCOL,
    "SetFeeRecipient(address indexed newFeeRecipient)",
    "0x2e979f80fe4d43055c584cf4a8467c55875ea36728fc37176c05acd784eb7a73",
)
# Interest moves both totals by `interest` and mints `feeShares` to the fee recipient of the
# moment; prevBorrowRate is the IRM's per-second rate (WAD) that applied since the last accrual.
ACCRUE_INTEREST = event(
    PROTOCOL,
    "AccrueInterest(bytes32 indexed id, uint256 prevBorrowRate, uint256 interest, "
    "uint256 feeShares)",
    "0x9d9bd501d0657d7dfe415f779a620a62b78bc508ddc0891fbbd8b7ac0f8fce87",
)
FLASH_LOAN = event(
    PROTOCOL,
    "FlashLoan(address indexed caller, address indexed token, uint256 assets)",
    "0xc76f1b4fe4396ac07a9fa55a415d4ca430e72651d37d3401f3bed7cb13fc4f12",
)
INCREMENT_NONCE = event(
    PROTOCOL,
    "IncrementNonce(address indexed caller, address indexed authorizer, uint256 usedNonce)",
    "0xa58af1a0c70dba0c7aa60d1a1a147ebd61000d1690a968828ac718bca927f2c7",
)

EVENTS = (
    CREATE_MARKET,
    SUPPLY,
    WITHDRAW,
    BORROW,
    REPAY,
    SUPPLY_COLLATERAL,
    WITHDRAW_COLLATERAL,
    LIQUIDATE,
    SET_AUTHORIZATION,
    ENABLE_IRM,
    ENABLE_LLTV,
    SET_OWNER,
    SET_FEE,
    SET_FEE_RECIPIENT,
    ACCRUE_INTEREST,
    FLASH_LOAN,
    INCREMENT_NONCE,
)


# ---------------------------------------------------------------- canonical flows

def market_tokens(tables: Tables, ctx: Context) -> pl.DataFrame:
    """chain_id, contract_address, id, loan_token, collateral_token of every market the
    registry lists (its market id is Morpho's) or a CreateMarket in the input creates; the
    registry wins where both say something."""
    listed = ctx.markets.join(ctx.venue_contracts(PROTOCOL), on=["chain_id", "venue"]).select(
        "chain_id", "contract_address", pl.col("market_id").alias("id"),
        pl.col("loan").alias("_loan"), pl.col("collateral").list.first().alias("_collateral"))
    created = tables["morpho_blue__create_market"].select(
        "chain_id", "contract_address", "id",
        pl.col("market_params_loan_token").alias("loan_token"),
        pl.col("market_params_collateral_token").alias("collateral_token"),
    ).unique(["chain_id", "contract_address", "id"], keep="first", maintain_order=True)
    both = listed.join(created, on=["chain_id", "contract_address", "id"], how="full",
                       coalesce=True)
    return both.select("chain_id", "contract_address", "id",
                       pl.coalesce("_loan", "loan_token").alias("loan_token"),
                       pl.coalesce("_collateral", "collateral_token").alias("collateral_token"))


def flows(tables: Tables, ctx: Context) -> pl.DataFrame:
    """Morpho Blue events as flows (docs/canonical.md, "Morpho Blue"): market = the market id,
    token = its loan or collateral token (null for a market neither the registry nor the input's
    CreateMarket events describe; the rows are kept). Amounts are assets, not shares."""
    P, t = PROTOCOL, tables
    markets = market_tokens(t, ctx)

    def of(name: str) -> pl.DataFrame:
        return t[name].join(markets, on=["chain_id", "contract_address", "id"], how="left")

    loan, collateral, market = pl.col("loan_token"), pl.col("collateral_token"), pl.col("id")
    liquidate = of("morpho_blue__liquidate")
    parts = [
        flow_frame(of("morpho_blue__supply"), source="morpho_blue__supply", protocol=P,
                   action="supply", side="supply", account=pl.col("on_behalf"), token=loan,
                   market=market, amount=pl.col("assets")),
        flow_frame(of("morpho_blue__withdraw"), source="morpho_blue__withdraw", protocol=P,
                   action="withdraw", side="supply", account=pl.col("on_behalf"), token=loan,
                   market=market, amount=pl.col("assets")),
        flow_frame(of("morpho_blue__borrow"), source="morpho_blue__borrow", protocol=P,
                   action="borrow", side="debt", account=pl.col("on_behalf"), token=loan,
                   market=market, amount=pl.col("assets")),
        flow_frame(of("morpho_blue__repay"), source="morpho_blue__repay", protocol=P,
                   action="repay", side="debt", account=pl.col("on_behalf"), token=loan,
                   market=market, amount=pl.col("assets")),
        flow_frame(of("morpho_blue__supply_collateral"), source="morpho_blue__supply_collateral",
                   protocol=P, action="supply", side="collateral", account=pl.col("on_behalf"),
                   token=collateral, market=market, amount=pl.col("assets")),
        flow_frame(of("morpho_blue__withdraw_collateral"),
                   source="morpho_blue__withdraw_collateral", protocol=P, action="withdraw",
                   side="collateral", account=pl.col("on_behalf"), token=collateral,
                   market=market, amount=pl.col("assets")),
        flow_frame(liquidate, source="morpho_blue__liquidate", protocol=P,
                   action="liquidation_repay", side="debt", account=pl.col("borrower"),
                   token=loan, market=market, amount=pl.col("repaid_assets")),
        flow_frame(liquidate, source="morpho_blue__liquidate", protocol=P,
                   action="liquidation_seize", side="collateral", account=pl.col("borrower"),
                   token=collateral, market=market, amount=pl.col("seized_assets"),
                   flow_index=1),
        flow_frame(liquidate.filter(is_positive(pl.col("bad_debt_assets"))),
                   source="morpho_blue__liquidate", protocol=P, action="bad_debt", side="debt",
                   account=pl.col("borrower"), token=loan, market=market,
                   amount=pl.col("bad_debt_assets"), flow_index=2),
    ]
    return concat_flows(parts)
