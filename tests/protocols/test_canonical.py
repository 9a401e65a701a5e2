"""Canonical tables from decoded events: each protocol's mapping on hand-built logs (encoded with
eth-abi, decoded by the real decoder), exact amounts and the quarantine, and, on a devnet, the
flows summed per account against the contracts' own balances at the last block."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pytest
from eth_abi import encode as abi_encode

from contagion.lake import RAW_LOGS_SCHEMA
from contagion.protocols.canonical import (
    CANONICAL_SCHEMAS,
    FLOW_SIGNS,
    SIDES,
    USD,
    canonical_tables,
    decoded_frame,
)
from contagion.protocols.decode import CATALOG, decode_logs
from contagion.registry import Claim, Feed, Market, Registry, Token, Venue

if TYPE_CHECKING:
    from contagion.chain.rpc import RpcClient
    from contagion.devnet.driver import DevnetDriver


def addr(n: int) -> str:
    return f"0x{n:040x}"


ZERO = addr(0)
WETH, USDC, WBTC, AWETH, AUSDC, STETH = addr(0xE1), addr(0xE2), addr(0xE3), addr(0xA1), \
    addr(0xA2), addr(0x5E)
POOL, COMET, MORPHO, VAULT, OPTIONS, PAIR = addr(0xAA), addr(0xCC), addr(0xB0), addr(0x6E), \
    addr(0x0F), addr(0x90)
FEED_ETH, FEED_IV = addr(0xF1), addr(0xF2)
ALICE, BOB, CAROL, DAVE = addr(0x11), addr(0x22), addr(0x33), addr(0x44)
OTOKEN = addr(0x07)
LISTED = "0x" + "ab" * 32  # a Morpho market the registry lists
CREATED = "0x" + "cd" * 32  # one only a CreateMarket in the input describes
UNKNOWN = "0x" + "ef" * 32
E6, E8, E18, E30 = 10**6, 10**8, 10**18, 10**30

REGISTRY = Registry(
    network="test", chain_id=1,
    tokens=[
        Token(symbol="WETH", address=WETH, decimals=18),
        Token(symbol="USDC", address=USDC, decimals=6, kind="stablecoin"),
        Token(symbol="WBTC", address=WBTC, decimals=8),
        Token(symbol="aWETH", address=AWETH, decimals=18, kind="atoken", issued_by="aave_v3",
              underlying="WETH"),
        Token(symbol="aUSDC", address=AUSDC, decimals=6, kind="atoken", issued_by="aave_v3",
              underlying="USDC"),
        Token(symbol="stETH", address=STETH, decimals=18, kind="lst", issued_by="lido",
              underlying="WETH"),
        Token(symbol="UNIV2", address=PAIR, decimals=18, kind="lp_share",
              issued_by="uniswap_v2_weth_usdc"),
    ],
    feeds=[Feed(id="WETH/USD", address=FEED_ETH, decimals=8, base="WETH"),
           Feed(id="ETH_IV", address=FEED_IV, decimals=8, kind="implied_vol", base="WETH")],
    venues=[
        Venue(id="aave_v3", protocol="aave_v3", kind="lending", contracts={"pool": POOL},
              markets=[Market(id="WETH", collateral=["WETH"], loan="WETH")]),
        Venue(id="compound_v3_usdc", protocol="compound_v3", kind="lending",
              contracts={"comet": COMET},
              markets=[Market(id="WETH", collateral=["WETH"], loan="USDC")]),
        Venue(id="morpho_blue", protocol="morpho_blue", kind="lending",
              contracts={"morpho": MORPHO},
              markets=[Market(id=LISTED, collateral=["WBTC"], loan="USDC")]),
        Venue(id="gmx_v1", protocol="gmx_v1", kind="perps", contracts={"vault": VAULT}),
        Venue(id="opyn_gamma", protocol="opyn_gamma", kind="options",
              contracts={"controller": OPTIONS}),
        Venue(id="lido", protocol="lido", kind="staking", contracts={"lst": STETH}),
        Venue(id="uniswap_v2_weth_usdc", protocol="uniswap_v2", kind="amm",
              contracts={"pair": PAIR}, markets=[Market(id="WETH/USDC",
                                                        collateral=["WETH", "USDC"])]),
    ],
    claims=[Claim(token="aWETH", issuer="aave_v3", on=["WETH"], kind="atoken")],
)


@dataclass
class Chain:
    """Hand-written logs: `tx()` opens a transaction (its own block), `emit` appends a log."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    block: int = 99
    index: int = 0

    def tx(self, first_index: int = 0) -> Chain:
        self.block += 1
        self.index = first_index
        return self

    def emit(self, table: str, address: str, **values: Any) -> int:
        lay = CATALOG.layout(table)
        topics = [bytes.fromhex(lay.spec.topic0[2:])]
        types, data = [], []
        for slot in lay.slots:
            value = values[slot.name]
            if isinstance(value, str) and slot.abi_type.startswith("bytes"):
                value = bytes.fromhex(value[2:])
            if slot.topic is not None:
                topics.append(abi_encode([slot.abi_type], [value]))
            else:
                types.append(slot.abi_type)
                data.append(value)
        self.rows.append({"block": self.block, "index": self.index, "address": address,
                          "topics": topics, "data": abi_encode(types, data)})
        self.index += 1
        return self.index - 1

    def raw(self) -> pa.Table:
        n, rows = len(self.rows), self.rows
        return pa.table({
            "chain_id": pa.array([1] * n, pa.uint64()),
            "block_number": pa.array([r["block"] for r in rows], pa.uint64()),
            "block_hash": pa.array([r["block"].to_bytes(32, "big") for r in rows],
                                   pa.binary(32)),
            "transaction_hash": pa.array([(r["block"] * 7).to_bytes(32, "big") for r in rows],
                                         pa.binary(32)),
            "transaction_index": pa.array([0] * n, pa.uint32()),
            "log_index": pa.array([r["index"] for r in rows], pa.uint32()),
            "address": pa.array([bytes.fromhex(r["address"][2:]) for r in rows], pa.binary(20)),
            **{f"topic{i}": pa.array([r["topics"][i] if i < len(r["topics"]) else None
                                      for r in rows], pa.binary(32)) for i in range(4)},
            "data": pa.array([r["data"] for r in rows], pa.binary()),
        }, schema=RAW_LOGS_SCHEMA)

    def canonical(self, registry: Registry | None = REGISTRY) -> dict[str, pa.Table]:
        decoded = decode_logs(self.raw(), registry=registry)
        assert decoded.quarantine.num_rows == 0, decoded.quarantine.to_pylist()
        out = canonical_tables(decoded.tables, registry)
        for name, table in out.items():
            check_schema(name, table)
        return out


def flows_of(out: dict[str, pa.Table]) -> list[tuple[Any, ...]]:
    """(block, log_index, flow_index, account, token, market, action, side, amount_raw)."""
    return [(r["block_number"], r["log_index"], r["flow_index"], r["account"], r["token"],
             r["market"], r["action"], r["side"], int(r["amount_raw"]))
            for r in out["flows"].to_pylist()]


def check_schema(name: str, table: pa.Table) -> None:
    assert table.schema == CANONICAL_SCHEMAS[name], name
    for column in table.schema:
        if not column.nullable:
            assert table[column.name].null_count == 0, (name, column.name)


def check_flow_invariants(flows: pa.Table) -> None:
    df = frame(flows)
    key = ["chain_id", "block_number", "log_index", "flow_index"]
    assert df.select(key).is_unique().all(), "flow keys repeat"
    pairs = set(zip(df["action"].to_list(), df["side"].to_list(), strict=True))
    assert pairs <= set(FLOW_SIGNS), pairs - set(FLOW_SIGNS)
    assert set(df["side"].to_list()) <= set(SIDES)


# ---------------------------------------------------------------- hand-built, per protocol

def test_empty_input_gives_every_table_with_its_schema() -> None:
    for registry in (None, REGISTRY):
        out = canonical_tables({}, registry)
        assert set(out) == set(CANONICAL_SCHEMAS)
        assert all(t.num_rows == 0 and t.schema == CANONICAL_SCHEMAS[n] for n, t in out.items())


def test_aave_pool_events_liquidation_and_deficit() -> None:
    c = Chain()
    c.tx().emit("aave_v3__supply", POOL, reserve=WETH, user=BOB, on_behalf_of=ALICE,
                amount=5 * E18, referral_code=0)
    c.tx().emit("aave_v3__borrow", POOL, reserve=USDC, user=ALICE, on_behalf_of=ALICE,
                amount=3000 * E6, interest_rate_mode=2, borrow_rate=0, referral_code=0)
    c.tx().emit("aave_v3__repay", POOL, reserve=USDC, user=ALICE, repayer=BOB, amount=10 * E6,
                use_a_tokens=False)
    c.tx().emit("aave_v3__withdraw", POOL, reserve=WETH, user=ALICE, to=CAROL, amount=E18)
    c.tx(5)
    c.emit("aave_v3__deficit_created", POOL, user=ALICE, debt_asset=USDC, amount_created=7)
    c.emit("aave_v3__liquidation_call", POOL, collateral_asset=WETH, debt_asset=USDC,
           user=ALICE, debt_to_cover=1000 * E6, liquidated_collateral_amount=E18 // 2,
           liquidator=CAROL, receive_a_token=False)
    out = c.canonical()
    assert flows_of(out) == [
        (100, 0, 0, ALICE, WETH, WETH, "supply", "collateral", 5 * E18),
        (101, 0, 0, ALICE, USDC, USDC, "borrow", "debt", 3000 * E6),
        (102, 0, 0, ALICE, USDC, USDC, "repay", "debt", 10 * E6),
        (103, 0, 0, ALICE, WETH, WETH, "withdraw", "collateral", E18),
        (104, 5, 0, ALICE, USDC, USDC, "bad_debt", "debt", 7),
        (104, 6, 0, ALICE, USDC, USDC, "liquidation_repay", "debt", 1000 * E6),
        (104, 6, 1, ALICE, WETH, WETH, "liquidation_seize", "collateral", E18 // 2),
    ]
    rows = out["flows"].to_pylist()
    assert {r["venue"] for r in rows} == {"aave_v3"} and {r["protocol"] for r in rows} == {
        "aave_v3"}
    assert rows[0]["amount"] == 5.0 and rows[1]["amount"] == 3000.0
    assert rows[0]["source"] == "aave_v3__supply"
    check_flow_invariants(out["flows"])


def test_aave_atoken_transfers_mints_burns_and_receive_atoken() -> None:
    c = Chain()
    c.tx().emit("erc20__transfer", AWETH, **{"from": ZERO, "to": ALICE, "value": 5 * E18})
    c.tx().emit("erc20__transfer", AWETH, **{"from": ALICE, "to": COMET, "value": 2 * E18})
    c.tx().emit("erc20__transfer", AWETH, **{"from": ALICE, "to": ZERO, "value": E18})
    # Liquidation with receiveAToken: the aToken moves from the borrower to the liquidator.
    c.tx().emit("erc20__transfer", AWETH, **{"from": ALICE, "to": CAROL, "value": E18 // 4})
    c.emit("aave_v3__liquidation_call", POOL, collateral_asset=WETH, debt_asset=USDC,
           user=ALICE, debt_to_cover=400 * E6, liquidated_collateral_amount=E18 // 4,
           liquidator=CAROL, receive_a_token=True)
    # Repay with aTokens burns the repayer's aTokens: a collateral withdrawal too.
    c.tx().emit("erc20__transfer", AUSDC, **{"from": BOB, "to": ZERO, "value": 9 * E6})
    c.emit("aave_v3__repay", POOL, reserve=USDC, user=BOB, repayer=BOB, amount=9 * E6,
           use_a_tokens=True)
    out = c.canonical()
    assert flows_of(out) == [
        (101, 0, 0, ALICE, WETH, WETH, "transfer_out", "collateral", 2 * E18),
        (101, 0, 1, COMET, WETH, WETH, "transfer_in", "collateral", 2 * E18),
        (103, 0, 1, CAROL, WETH, WETH, "transfer_in", "collateral", E18 // 4),
        (103, 1, 0, ALICE, USDC, USDC, "liquidation_repay", "debt", 400 * E6),
        (103, 1, 1, ALICE, WETH, WETH, "liquidation_seize", "collateral", E18 // 4),
        (104, 1, 0, BOB, USDC, USDC, "repay", "debt", 9 * E6),
        (104, 1, 1, BOB, USDC, USDC, "withdraw", "collateral", 9 * E6),
    ]
    transfer = out["flows"].to_pylist()[0]
    assert (transfer["venue"], transfer["source"]) == ("aave_v3", "erc20__transfer")
    # Without a registry nothing says AWETH is an aToken: its transfers are not Aave flows.
    assert {r["source"] for r in c.canonical(None)["flows"].to_pylist()} == {
        "aave_v3__liquidation_call", "aave_v3__repay"}


def test_comet_supply_withdraw_absorb_pair_with_the_following_transfer() -> None:
    c = Chain()
    # Repays 30, supplies 70: Transfer(0x0, dst, 70) right after.
    c.tx(3).emit("compound_v3__supply", COMET, **{"from": ALICE, "dst": ALICE, "amount": 100})
    c.emit("compound_v3__transfer", COMET, **{"from": ZERO, "to": ALICE, "amount": 70})
    c.tx().emit("compound_v3__supply", COMET, **{"from": BOB, "dst": BOB, "amount": 50})  # repay
    # A following mint to someone else is not this Supply's: a base transfer into CAROL.
    c.tx().emit("compound_v3__supply", COMET, **{"from": DAVE, "dst": DAVE, "amount": 40})
    c.emit("compound_v3__transfer", COMET, **{"from": ZERO, "to": CAROL, "amount": 40})
    # Withdraws 25 of supply, borrows 75.
    c.tx().emit("compound_v3__withdraw", COMET, src=ALICE, to=ALICE, amount=100)
    c.emit("compound_v3__transfer", COMET, **{"from": ALICE, "to": ZERO, "amount": 25})
    # Absorb: 60 paid out, 15 of it credited as supply.
    c.tx().emit("compound_v3__absorb_collateral", COMET, absorber=DAVE, borrower=BOB,
                asset=WETH, collateral_absorbed=E18, usd_value=0)
    c.emit("compound_v3__absorb_debt", COMET, absorber=DAVE, borrower=BOB, base_paid_out=60,
           usd_value=0)
    c.emit("compound_v3__transfer", COMET, **{"from": ZERO, "to": BOB, "amount": 15})
    # transferAsset of base: Transfer(src, 0x0) and Transfer(0x0, dst); a plain one too.
    c.tx().emit("compound_v3__transfer", COMET, **{"from": ALICE, "to": ZERO, "amount": 5})
    c.emit("compound_v3__transfer", COMET, **{"from": ZERO, "to": DAVE, "amount": 5})
    c.emit("compound_v3__transfer", COMET, **{"from": DAVE, "to": CAROL, "amount": 1})
    c.tx().emit("compound_v3__supply_collateral", COMET, **{
        "from": ALICE, "dst": ALICE, "asset": WETH, "amount": 3 * E18})
    c.emit("compound_v3__transfer_collateral", COMET, **{
        "from": ALICE, "to": BOB, "asset": WETH, "amount": E18})
    c.emit("compound_v3__withdraw_collateral", COMET, src=ALICE, to=ALICE, asset=WETH,
           amount=E18)
    c.emit("compound_v3__buy_collateral", COMET, buyer=DAVE, asset=WETH, base_amount=9,
           collateral_amount=9)
    expected = [
        (100, 3, 0, ALICE, USDC, USDC, "repay", "debt", 30),
        (100, 3, 1, ALICE, USDC, USDC, "supply", "supply", 70),
        (101, 0, 0, BOB, USDC, USDC, "repay", "debt", 50),
        (102, 0, 0, DAVE, USDC, USDC, "repay", "debt", 40),
        (102, 1, 1, CAROL, USDC, USDC, "transfer_in", "supply", 40),
        (103, 0, 0, ALICE, USDC, USDC, "withdraw", "supply", 25),
        (103, 0, 1, ALICE, USDC, USDC, "borrow", "debt", 75),
        (104, 0, 0, BOB, WETH, WETH, "liquidation_seize", "collateral", E18),
        (104, 1, 0, BOB, USDC, USDC, "liquidation_repay", "debt", 45),
        (104, 1, 1, BOB, USDC, USDC, "supply", "supply", 15),
        (105, 0, 0, ALICE, USDC, USDC, "transfer_out", "supply", 5),
        (105, 1, 1, DAVE, USDC, USDC, "transfer_in", "supply", 5),
        (105, 2, 0, DAVE, USDC, USDC, "transfer_out", "supply", 1),
        (105, 2, 1, CAROL, USDC, USDC, "transfer_in", "supply", 1),
        (106, 0, 0, ALICE, WETH, WETH, "supply", "collateral", 3 * E18),
        (106, 1, 0, ALICE, WETH, WETH, "transfer_out", "collateral", E18),
        (106, 1, 1, BOB, WETH, WETH, "transfer_in", "collateral", E18),
        (106, 2, 0, ALICE, WETH, WETH, "withdraw", "collateral", E18),
    ]
    out = c.canonical()
    assert flows_of(out) == expected
    assert {r["venue"] for r in out["flows"].to_pylist()} == {"compound_v3_usdc"}
    check_flow_invariants(out["flows"])
    # Without a registry, Comet's Transfers decode as ERC-20 ones; the pairing still finds them
    # (their emitter emitted Comet events), only the base token is unknown.
    bare = c.canonical(None)
    assert flows_of(bare) == [
        (*f[:4], None if f[4] == USDC else f[4], None if f[5] == USDC else f[5], *f[6:])
        for f in expected]
    assert {r["venue"] for r in bare["flows"].to_pylist()} == {None}


def test_morpho_markets_from_registry_create_market_or_unknown() -> None:
    c = Chain()
    c.tx().emit("morpho_blue__create_market", MORPHO, id=CREATED, market_params_loan_token=WETH,
                market_params_collateral_token=STETH, market_params_oracle=ZERO,
                market_params_irm=ZERO, market_params_lltv=945 * 10**15)
    c.tx().emit("morpho_blue__supply", MORPHO, id=LISTED, caller=BOB, on_behalf=ALICE,
                assets=1000 * E6, shares=1000 * E6 * E6)
    c.tx().emit("morpho_blue__supply_collateral", MORPHO, id=CREATED, caller=ALICE,
                on_behalf=ALICE, assets=2 * E18)
    c.tx().emit("morpho_blue__borrow", MORPHO, id=UNKNOWN, caller=ALICE, on_behalf=ALICE,
                receiver=ALICE, assets=123, shares=123 * E6)
    c.tx().emit("morpho_blue__liquidate", MORPHO, id=LISTED, caller=CAROL, borrower=BOB,
                repaid_assets=500, repaid_shares=1, seized_assets=7, bad_debt_assets=20,
                bad_debt_shares=1)
    c.tx().emit("morpho_blue__liquidate", MORPHO, id=LISTED, caller=CAROL, borrower=DAVE,
                repaid_assets=5, repaid_shares=1, seized_assets=1, bad_debt_assets=0,
                bad_debt_shares=0)
    c.tx().emit("morpho_blue__withdraw", MORPHO, id=LISTED, caller=ALICE, on_behalf=ALICE,
                receiver=BOB, assets=10, shares=10 * E6)
    c.tx().emit("morpho_blue__repay", MORPHO, id=CREATED, caller=BOB, on_behalf=ALICE,
                assets=3, shares=3)
    c.tx().emit("morpho_blue__withdraw_collateral", MORPHO, id=CREATED, caller=ALICE,
                on_behalf=ALICE, receiver=ALICE, assets=E18)
    out = c.canonical()
    assert flows_of(out) == [
        (101, 0, 0, ALICE, USDC, LISTED, "supply", "supply", 1000 * E6),
        (102, 0, 0, ALICE, STETH, CREATED, "supply", "collateral", 2 * E18),
        (103, 0, 0, ALICE, None, UNKNOWN, "borrow", "debt", 123),
        (104, 0, 0, BOB, USDC, LISTED, "liquidation_repay", "debt", 500),
        (104, 0, 1, BOB, WBTC, LISTED, "liquidation_seize", "collateral", 7),
        (104, 0, 2, BOB, USDC, LISTED, "bad_debt", "debt", 20),
        (105, 0, 0, DAVE, USDC, LISTED, "liquidation_repay", "debt", 5),
        (105, 0, 1, DAVE, WBTC, LISTED, "liquidation_seize", "collateral", 1),
        (106, 0, 0, ALICE, USDC, LISTED, "withdraw", "supply", 10),
        (107, 0, 0, ALICE, WETH, CREATED, "repay", "debt", 3),
        (108, 0, 0, ALICE, STETH, CREATED, "withdraw", "collateral", E18),
    ]
    rows = out["flows"].to_pylist()
    assert rows[0]["amount"] == 1000.0 and rows[2]["amount"] is None  # unknown token: no decimals
    check_flow_invariants(out["flows"])


def test_gmx_margin_in_usd_liquidation_bad_debt_and_pool_token() -> None:
    key = "0x" + "11" * 32
    position = {"key": key, "account": ALICE, "collateral_token": USDC, "index_token": WETH,
                "is_long": True}
    c = Chain()
    c.tx().emit("gmx_v1__increase_position", VAULT, **position, collateral_delta=1000 * E30,
                size_delta=5000 * E30, price=2000 * E30, fee=5 * E30)
    c.emit("gmx_v1__update_position", VAULT, key=key, size=5000 * E30, collateral=995 * E30,
           average_price=2000 * E30, entry_funding_rate=0, reserve_amount=5000 * E6,
           realised_pnl=0)
    c.tx().emit("gmx_v1__decrease_position", VAULT, **position, collateral_delta=0,
                size_delta=1000 * E30, price=1900 * E30, fee=E30)
    c.tx().emit("gmx_v1__liquidate_position", VAULT, **position, size=4000 * E30,
                collateral=900 * E30, reserve_amount=0, realised_pnl=-100 * E30,
                mark_price=1500 * E30)
    c.emit("gmx_v1__bad_debt", VAULT, key=key, account=ALICE, collateral_token=USDC,
           amount_usd=12 * E30)
    c.tx().emit("erc20__transfer", USDC, **{"from": BOB, "to": VAULT, "value": 50_000 * E6})
    c.emit("gmx_v1__liquidity_deposited", VAULT, provider=BOB, amount=50_000 * E6)
    c.tx().emit("gmx_v1__liquidity_withdrawn", VAULT, provider=BOB, amount=E6)  # no transfer
    out = c.canonical()
    assert flows_of(out) == [
        (100, 0, 0, ALICE, USD, WETH, "margin_in", "margin", 1000 * E30),
        (102, 0, 0, ALICE, USD, WETH, "liquidation_seize", "margin", 900 * E30),
        (102, 1, 0, ALICE, USD, WETH, "bad_debt", "margin", 12 * E30),
        (103, 1, 0, BOB, USDC, USDC, "supply", "supply", 50_000 * E6),
        (104, 0, 0, BOB, USDC, USDC, "withdraw", "supply", E6),
    ]
    amounts = [r["amount"] for r in out["flows"].to_pylist()]
    assert amounts == [1000.0, 900.0, 12.0, 50_000.0, 1.0]
    positions = out["perp_positions"].to_pylist()
    assert [p["event"] for p in positions] == ["increase", "update", "decrease", "liquidate"]
    update = positions[1]
    assert (update["account"], update["index_token"], update["is_long"]) == (ALICE, WETH, True)
    assert update["size_usd"] == Decimal(5000 * E30) and update["size_delta_usd"] is None
    assert positions[3]["realised_pnl"] == Decimal(-100 * E30)
    assert positions[0]["fee"] == Decimal(5 * E30) and positions[0]["venue"] == "gmx_v1"
    assert all(p["unfit"] is None for p in positions)


def test_options_margin_shorts_liquidation_settlement_and_usd_scaling() -> None:
    c = Chain()
    c.tx().emit("opyn_gamma__otoken_created", OPTIONS, token_address=OTOKEN, creator=DAVE,
                underlying=WETH, strike=USDC, collateral=USDC, strike_price=1800 * E8,
                expiry=1_700_000_000, is_put=True)
    c.tx().emit("opyn_gamma__collateral_asset_deposited", OPTIONS, asset=USDC,
                account_owner=ALICE, **{"from": ALICE}, vault_id=1, amount=10_000 * E6)
    c.tx().emit("opyn_gamma__short_otoken_minted", OPTIONS, otoken=OTOKEN, account_owner=ALICE,
                to=BOB, vault_id=1, amount=3 * E8)
    c.tx().emit("opyn_gamma__short_otoken_burned", OPTIONS, otoken=OTOKEN, account_owner=ALICE,
                **{"from": ALICE}, vault_id=1, amount=E8)
    c.tx().emit("erc20__transfer", OTOKEN, **{"from": CAROL, "to": ZERO, "value": E8})
    c.emit("erc20__transfer", USDC, **{"from": OPTIONS, "to": CAROL, "value": 500 * E6})
    c.emit("opyn_gamma__vault_liquidated", OPTIONS, liquidator=CAROL, receiver=CAROL,
           vault_owner=ALICE, auction_price=0, auction_starting_round=0,
           collateral_payout=500 * E6, debt_amount=E8, vault_id=1)
    c.emit("opyn_gamma__vault_bad_debt", OPTIONS, vault_owner=ALICE, vault_id=1,
           shortfall_usd=12_345_678)  # $0.12345678
    c.tx().emit("opyn_gamma__collateral_asset_withdrawed", OPTIONS, asset=USDC,
                account_owner=ALICE, to=ALICE, vault_id=1, amount=E6)
    c.tx().emit("opyn_gamma__vault_settled", OPTIONS, account_owner=ALICE,
                o_token_address=OTOKEN, to=ALICE, payout=0, vault_id=1, vault_type=1)
    c.emit("opyn_gamma__vault_settled", OPTIONS, account_owner=ALICE, o_token_address=OTOKEN,
           to=ALICE, payout=42, vault_id=1, vault_type=1)
    c.tx().emit("opyn_gamma__vault_bad_debt", OPTIONS, vault_owner=BOB, vault_id=2,
                shortfall_usd=10**17)  # * 10**22 = 10**39: does not fit
    out = c.canonical()
    assert flows_of(out) == [
        (101, 0, 0, ALICE, USDC, None, "margin_in", "margin", 10_000 * E6),
        (102, 0, 0, ALICE, OTOKEN, OTOKEN, "short_open", "debt", 3 * E8),
        (103, 0, 0, ALICE, OTOKEN, OTOKEN, "short_close", "debt", E8),
        (104, 0, 0, CAROL, OTOKEN, OTOKEN, "burn", "holding", E8),
        (104, 2, 0, ALICE, OTOKEN, OTOKEN, "liquidation_repay", "debt", E8),
        (104, 2, 1, ALICE, USDC, None, "liquidation_seize", "margin", 500 * E6),
        (104, 3, 0, ALICE, USD, None, "bad_debt", "margin", 12_345_678 * 10**22),
        (105, 0, 0, ALICE, USDC, None, "margin_out", "margin", E6),
        (106, 1, 0, ALICE, USDC, None, "margin_out", "margin", 42),  # a zero payout is no flow
    ]
    by_action = {(r["action"], r["account"]): r for r in out["flows"].to_pylist()}
    repay = by_action["liquidation_repay", ALICE]
    assert (repay["token"], repay["market"], int(repay["amount_raw"]), repay["amount"]) == (
        OTOKEN, OTOKEN, E8, 1.0)  # oTokens have 8 decimals
    seize = by_action["liquidation_seize", ALICE]
    assert (seize["token"], seize["side"], seize["flow_index"], seize["amount"]) == (
        USDC, "margin", 1, 500.0)
    bad = by_action["bad_debt", ALICE]
    assert (bad["token"], int(bad["amount_raw"]), bad["amount"]) == (
        USD, 12_345_678 * 10**22, pytest.approx(0.12345678))
    burn = by_action["burn", CAROL]  # the OtokenCreated row makes the oToken a known claim
    assert (burn["protocol"], burn["venue"], burn["amount"]) == ("opyn_gamma", "opyn_gamma", 1.0)
    [quarantined] = out["flows_quarantine"].to_pylist()
    assert quarantined["amount_text"] == str(10**39) and quarantined["account"] == BOB
    assert quarantined["reason"] == "amount does not fit decimal(38,0)"
    assert quarantined["source"] == "opyn_gamma__vault_bad_debt"
    check_flow_invariants(out["flows"])


def test_option_trades_units_and_premium_token() -> None:
    c = Chain()
    c.tx().emit("erc20__transfer", USDC, **{"from": BOB, "to": ALICE, "value": 61_900_000})
    c.emit("erc20__transfer", OTOKEN, **{"from": ZERO, "to": BOB, "value": 2 * E8})
    c.emit("opyn_gamma__option_traded", OPTIONS, otoken=OTOKEN, buyer=BOB, seller=ALICE,
           vault_id=3, is_put=False, strike_price=2200 * E8, expiry=1_700_000_000,
           amount=2 * E8, premium=61_900_000, implied_vol=61_000_000)
    [trade] = c.canonical()["option_trades"].to_pylist()
    assert (trade["otoken"], trade["buyer"], trade["seller"], trade["vault_id"]) == (
        OTOKEN, BOB, ALICE, 3)
    assert trade["strike_price"] == Decimal(2200 * E8) and trade["strike_usd"] == 2200.0
    assert trade["expiry"].timestamp() == 1_700_000_000
    assert (trade["amount"], trade["premium_token"], trade["premium"]) == (2.0, USDC, 61.9)
    assert trade["implied_vol"] == pytest.approx(0.61) and trade["unfit"] is None
    assert trade["venue"] == "opyn_gamma"


def test_claim_token_holdings_mint_transfer_burn() -> None:
    c = Chain()
    c.tx().emit("erc20__transfer", STETH, **{"from": ZERO, "to": ALICE, "value": 3 * E18})
    c.tx().emit("erc20__transfer", STETH, **{"from": ALICE, "to": BOB, "value": E18})
    c.tx().emit("erc20__transfer", STETH, **{"from": BOB, "to": ZERO, "value": E18 // 2})
    c.tx().emit("erc20__transfer", PAIR, **{"from": ZERO, "to": CAROL, "value": 7})
    c.tx().emit("erc20__transfer", WETH, **{"from": ALICE, "to": BOB, "value": 1})  # not a claim
    out = c.canonical()
    assert flows_of(out) == [
        (100, 0, 0, ALICE, STETH, STETH, "mint", "holding", 3 * E18),
        (101, 0, 0, ALICE, STETH, STETH, "transfer_out", "holding", E18),
        (101, 0, 1, BOB, STETH, STETH, "transfer_in", "holding", E18),
        (102, 0, 0, BOB, STETH, STETH, "burn", "holding", E18 // 2),
        (103, 0, 0, CAROL, PAIR, PAIR, "mint", "holding", 7),
    ]
    rows = out["flows"].to_pylist()
    assert [(r["protocol"], r["venue"]) for r in (rows[0], rows[4])] == [
        ("lido", "lido"), ("uniswap_v2", "uniswap_v2_weth_usdc")]


def test_amounts_that_do_not_fit_are_quarantined_not_rounded() -> None:
    c = Chain()
    c.tx().emit("aave_v3__supply", POOL, reserve=WETH, user=ALICE, on_behalf_of=ALICE,
                amount=10**38 - 1, referral_code=0)
    c.tx().emit("aave_v3__supply", POOL, reserve=WETH, user=ALICE, on_behalf_of=ALICE,
                amount=10**38, referral_code=0)
    c.tx().emit("morpho_blue__liquidate", MORPHO, id=LISTED, caller=CAROL, borrower=BOB,
                repaid_assets=2**256 - 1, repaid_shares=1, seized_assets=7, bad_debt_assets=0,
                bad_debt_shares=0)
    # Comet: the supplied part does not fit, so neither does the repaid part (amount - supplied)
    c.tx().emit("compound_v3__supply", COMET, **{"from": ALICE, "dst": ALICE,
                                                 "amount": 10**40})
    c.emit("compound_v3__transfer", COMET, **{"from": ZERO, "to": ALICE, "amount": 10**39})
    c.tx().emit("gmx_v1__update_position", VAULT, key="0x" + "22" * 32, size=2 * 10**38,
                collateral=E30, average_price=E30, entry_funding_rate=0, reserve_amount=1,
                realised_pnl=-(10**40))
    out = c.canonical()
    [position] = out["perp_positions"].to_pylist()
    assert position["unfit"] == "size_usd,realised_pnl" and position["size_usd"] is None
    assert position["collateral_usd"] == Decimal(E30) and position["account"] is None
    assert [(f[0], f[6], f[8]) for f in flows_of(out)] == [
        (100, "supply", 10**38 - 1), (102, "liquidation_seize", 7)]
    quarantine = [(r["block_number"], r["flow_index"], r["action"], r["amount_text"], r["reason"])
                  for r in out["flows_quarantine"].to_pylist()]
    unfit = "amount does not fit decimal(38,0)"
    assert quarantine == [
        (101, 0, "supply", str(10**38), unfit),
        (102, 0, "liquidation_repay", str(2**256 - 1), unfit),
        (103, 0, "repay", f"{10**40} - {10**39}", unfit),
        (103, 1, "supply", str(10**39), unfit),
    ]


def test_prices_and_vol_marks_from_registry_feeds() -> None:
    c = Chain()
    c.tx().emit("chainlink__answer_updated", FEED_ETH, current=2000 * E8, round_id=1,
                updated_at=1)
    c.emit("chainlink__answer_updated", FEED_IV, current=61_000_000, round_id=1, updated_at=1)
    c.emit("chainlink__answer_updated", addr(0xF9), current=5, round_id=1, updated_at=1)
    c.tx().emit("chainlink__answer_updated", FEED_ETH, current=-123_456_789, round_id=2,
                updated_at=2)
    out = c.canonical()
    prices = [(r["block_number"], r["token"], r["symbol"], r["price_usd"], r["answer_raw"],
               r["source"], r["feed"]) for r in out["prices"].to_pylist()]
    assert prices == [(100, WETH, "WETH", 2000.0, Decimal(2000 * E8), "WETH/USD", FEED_ETH),
                      (101, WETH, "WETH", -1.23456789, Decimal(-123_456_789), "WETH/USD",
                       FEED_ETH)]
    [mark] = out["vol_marks"].to_pylist()
    assert (mark["source"], mark["kind"], mark["base"], mark["value"]) == (
        "ETH_IV", "implied_vol", "WETH", 0.61)
    assert canonical_tables(decode_logs(c.raw()).tables, None)["prices"].num_rows == 0


def test_lido_reports_price_wsteth_at_the_share_rate() -> None:
    """Each oracle report's share rate, ⌊10^18 · ether / shares⌋ exactly, prices wstETH in
    stETH: Lido v2 logs TokenRebased alone; v3 logs InternalShareRateUpdated after it in the
    same transaction, whose internal totals (vault shares left out) are the rate."""
    wsteth = addr(0x57)
    data = REGISTRY.model_dump()
    data["tokens"].append(Token(symbol="wstETH", address=wsteth, decimals=18, kind="lst",
                                underlying="stETH").model_dump())
    data["feeds"].append(Feed(id="RATE", address=STETH, decimals=18, protocol="lido",
                              base="wstETH", quote="stETH").model_dump())
    registry = Registry.model_validate(data)
    v2_shares, v2_ether = 8_000_000 * E18 + 12_345, 9_400_000 * E18 + 777
    # v3: shares minted against vaults, worth ⌊shares · internal rate⌋; on mainnet's totals that
    # floor moves the rate by less than 10^-18, so small totals make it show here
    shares, ether, vaults = 3, 4, 2
    total_shares, total_ether = shares + vaults, ether + vaults * ether // shares
    assert E18 * total_ether // total_shares != E18 * ether // shares  # the test can tell
    c = Chain()
    c.tx().emit("lido__token_rebased", STETH, report_timestamp=1, time_elapsed=86_400,
                pre_total_shares=v2_shares, pre_total_ether=v2_ether - E18,
                post_total_shares=v2_shares, post_total_ether=v2_ether,
                shares_minted_as_fees=0)
    c.tx().emit("lido__token_rebased", STETH, report_timestamp=2, time_elapsed=86_400,
                pre_total_shares=total_shares, pre_total_ether=total_ether - 1,
                post_total_shares=total_shares, post_total_ether=total_ether,
                shares_minted_as_fees=5)
    c.emit("lido__internal_share_rate_updated", STETH, report_timestamp=2,
           post_internal_shares=shares, post_internal_ether=ether, shares_minted_as_fees=5)
    # the same events elsewhere are no feed of the registry
    c.tx().emit("lido__internal_share_rate_updated", addr(0x99), report_timestamp=3,
                post_internal_shares=1, post_internal_ether=2, shares_minted_as_fees=0)
    got = [(r["block_number"], r["log_index"], r["token"], r["symbol"], r["quote"],
            r["price_usd"], r["answer_raw"], r["source"], r["feed"], r["price"])
           for r in c.canonical(registry)["prices"].to_pylist()]
    v2_rate, v3_rate = E18 * v2_ether // v2_shares, E18 * ether // shares
    assert got == [
        (100, 0, wsteth, "wstETH", STETH, None, Decimal(v2_rate), "RATE", STETH,
         pytest.approx(v2_rate / E18, rel=1e-15)),
        (101, 1, wsteth, "wstETH", STETH, None, Decimal(v3_rate), "RATE", STETH,
         pytest.approx(v3_rate / E18, rel=1e-15))]


def test_amm_swaps_v2_and_v3() -> None:
    pool3 = addr(0x33_33)
    c = Chain()
    c.tx().emit("uniswap_v2__swap", PAIR, sender=ALICE, amount0_in=0, amount1_in=2000 * E6,
                amount0_out=E18, amount1_out=0, to=BOB)
    c.tx().emit("uniswap_v3__swap", pool3, sender=ALICE, recipient=CAROL, amount0=-5,
                amount1=7 * E18, sqrt_price_x96=2**96, liquidity=10**20, tick=-200_000)
    c.tx().emit("uniswap_v2__swap", PAIR, sender=ALICE, amount0_in=10**39, amount1_in=0,
                amount0_out=0, amount1_out=1, to=BOB)
    swaps = c.canonical()["amm_swaps"].to_pylist()
    v2, v3, big = swaps
    # The registry lists the pair as WETH/USDC; the pool orders its tokens by address.
    assert WETH < USDC and (v2["token0"], v2["token1"]) == (WETH, USDC)
    assert (v2["amount0_delta"], v2["amount1_delta"]) == (Decimal(-E18), Decimal(2000 * E6))
    assert (v2["amount0"], v2["amount1"], v2["recipient"], v2["venue"]) == (
        -1.0, 2000.0, BOB, "uniswap_v2_weth_usdc")
    assert v2["tick"] is None and v2["sqrt_price_x96"] is None and v2["protocol"] == "uniswap_v2"
    assert (v3["amount0_delta"], v3["amount1_delta"], v3["tick"]) == (
        Decimal(-5), Decimal(7 * E18), -200_000)
    assert (v3["sqrt_price_x96"], v3["liquidity"], v3["token0"], v3["amount0"]) == (
        str(2**96), str(10**20), None, None)
    assert big["amount0_delta"] is None and big["unfit"] == "amount0_delta"
    assert big["amount1_delta"] == Decimal(-1)


# ---------------------------------------------------------------- devnet: flows vs chain state

DEVNET_SCENARIO = """
name: canonical
seed: {seed}
blocks: 30
accounts:
  loopers: {{count: 4}}
  borrowers: {{count: 5, collateral: [WETH, aWETH, stETH]}}
  basis_traders: {{count: 3, capital_usd: [10000, 30000]}}
  option_writers: {{count: 3, collateral: [WETH, USDC]}}
  option_buyers: {{count: 2}}
  liquidity_providers: {{count: 2}}
  liquidators: {{count: 1}}
  arbitrageurs: {{count: 1}}
prices:
  ETH: {{gbm: {{start: 2000, vol: 0.8}}}}
  BTC: {{gbm: {{start: 30000, vol: 0.5}}}}
  USDC: {{gbm: {{start: 1.0}}}}
shocks:
  - {{type: price_drop, asset: ETH, pct: 55, start_block: 8, blocks: 4}}
activity: 0.25
"""
FRESH = "0x000000000000000000000000000000000000c0de"


def signed_sums(flows: pl.DataFrame, keys: list[str]) -> dict[tuple[Any, ...], int]:
    """Σ sign(action, side) · amount_raw per key, exactly (Python ints)."""
    out: dict[tuple[Any, ...], int] = {}
    for row in flows.to_dicts():
        key = tuple(row[k] for k in keys)
        out[key] = out.get(key, 0) + FLOW_SIGNS[row["action"], row["side"]] * int(
            row["amount_raw"])
    return out


@pytest.mark.devnet
def test_flows_add_up_to_the_chain_state_on_a_devnet(tmp_path: Path) -> None:
    from contagion.chain.logs import get_headers, get_logs
    from contagion.chain.rpc import RpcClient
    from contagion.devnet.deploy import deploy_ecosystem
    from contagion.devnet.driver import DevnetDriver
    from contagion.devnet.node import free_port, start_node, stop_node
    from contagion.devnet.runner import run_scenario
    from contagion.devnet.scenario import load_scenario

    scenario_file = tmp_path / "canonical.yaml"
    scenario_file.write_text(DEVNET_SCENARIO.format(seed=7))
    data = tmp_path / "data"
    info = start_node(data, free_port(), attached=True)
    client = RpcClient(info.url)
    try:
        registry = deploy_ecosystem(info.url, data)
        spec, path = load_scenario(scenario_file)
        run_scenario(spec, path, info.url, data)
        driver = DevnetDriver(client)
        head = int(client.call("eth_blockNumber"), 16)
        before = canonical_of(client, registry, head)
        _base_transfer_and_lp_withdrawal(driver, registry, before, head)
        head = int(client.call("eth_blockNumber"), 16)
        logs = get_logs(client, registry.deployed_at_block, head, None, None,
                        chain_id=registry.chain_id)
        blocks = get_headers(client, range(registry.deployed_at_block, head + 1),
                             registry.chain_id)
        decoded = decode_logs(logs, blocks=blocks, registry=registry)
        assert decoded.quarantine.num_rows == 0
        out = canonical_tables(decoded.tables, registry)
        for name, table in out.items():
            check_schema(name, table)
        flows = frame(out["flows"])
        check_flow_invariants(out["flows"])
        assert out["flows_quarantine"].num_rows == 0
        assert flows.filter(pl.col("venue").is_null() | pl.col("token").is_null()
                            | pl.col("amount").is_null() | pl.col("block_time").is_null()
                            ).height == 0
        tables = {name: frame(t) for name, t in decoded.tables.items()}
        _check_aave(driver, registry, flows, tables, head)
        _check_comet(driver, registry, flows, head)
        _check_morpho(driver, registry, flows, head)
        _check_perps_and_options(driver, registry, flows, head)
        _check_holdings(driver, flows, head)
        _check_prices(registry, out, tables)
    finally:
        client.close()
        stop_node(data)


def frame(table: pa.Table) -> pl.DataFrame:
    return decoded_frame(table)


def canonical_of(client: RpcClient, registry: Registry, head: int) -> pl.DataFrame:
    """The flows of the chain so far (to pick accounts for more transactions)."""
    from contagion.chain.logs import get_logs

    logs = get_logs(client, registry.deployed_at_block, head, None, None,
                    chain_id=registry.chain_id)
    return frame(canonical_tables(decode_logs(logs, registry=registry).tables,
                                  registry)["flows"])


def _base_transfer_and_lp_withdrawal(driver: DevnetDriver, registry: Registry,
                                     flows: pl.DataFrame, head: int) -> None:
    """What the scenario does not do: a Comet base transferAsset between two supply-only
    accounts (Transfer(src, 0x0) then Transfer(0x0, dst)) and a perps LP withdrawal."""
    comet = driver.at("Comet", registry.venue("compound_v3_usdc").contracts["comet"])
    usdc = registry.token("USDC").address
    suppliers = flows.filter((pl.col("protocol") == "compound_v3")
                             & (pl.col("side") == "supply"))["account"].unique().sort()
    src = next(a for a in suppliers.to_list()
               if comet.call("balanceOf", a, block=head) > 10**6
               and comet.call("borrowBalanceOf", a, block=head) == 0)
    comet.tx(src, "transferAsset", FRESH, usdc, comet.call("balanceOf", src, block=head) // 2)
    vault = driver.at("PerpsVault", registry.venue("gmx_v1").contracts["vault"])
    providers = flows.filter(pl.col("source") == "gmx_v1__liquidity_deposited")["account"]
    provider = providers.sort().to_list()[0]
    vault.tx(provider, "withdraw_liquidity", vault.call("lp_balances", provider) // 100)
    latest = driver.client.call("eth_getBlockByNumber", ["latest", False])
    driver.mine_all(int(latest["timestamp"], 16) + 12)


def _check_aave(driver: DevnetDriver, registry: Registry, flows: pl.DataFrame,
                tables: dict[str, pl.DataFrame], head: int) -> None:
    """Σ collateral flows per reserve = aToken.balanceOf; Σ debt flows = variableDebt's; the
    devnet's index is RAY, so balances are the scaled balances."""
    ray = str(10**27)
    for name in ("aave_v3__mint", "aave_v3__burn", "aave_v3__balance_transfer"):
        assert set(tables[name]["index"].to_list()) <= {ray}, name
    assert tables["aave_v3__mint"].height > 0
    tokens = {}
    for t in registry.tokens:
        if t.kind in ("atoken", "debt_token") and t.underlying:
            reserve = registry.token(t.underlying).address.lower()
            contract = driver.at("AToken" if t.kind == "atoken" else "VariableDebtToken",
                                 t.address)
            tokens[reserve, "collateral" if t.kind == "atoken" else "debt"] = contract
    addresses = [c.address.lower() for c in tokens.values()]
    holders = tables["erc20__transfer"].filter(pl.col("contract_address").is_in(addresses))
    aave = flows.filter(pl.col("protocol") == "aave_v3")
    accounts = set(aave["account"].to_list()) | set(holders["to"].to_list()) - {ZERO}
    sums = signed_sums(aave, ["account", "token", "side"])
    nonzero = 0
    for account in sorted(accounts):
        for (reserve, side), contract in tokens.items():
            balance = contract.call("balanceOf", account, block=head)
            assert contract.call("scaledBalanceOf", account, block=head) == balance
            assert sums.get((account, reserve, side), 0) == balance, (account, reserve, side)
            nonzero += balance > 0
    assert nonzero > 10


def _check_comet(driver: DevnetDriver, registry: Registry, flows: pl.DataFrame,
                 head: int) -> None:
    """collateralBalanceOf exactly for everyone; balanceOf / borrowBalanceOf for accounts no
    base transfer touched, and balanceOf for touched accounts that never borrowed."""
    venue = registry.venue("compound_v3_usdc")
    comet = driver.at("Comet", venue.contracts["comet"])
    base = registry.token("USDC").address.lower()
    assets = [(driver.at("ERC20", t.address).address.lower()) for m in venue.markets
              for t in registry.tokens if t.symbol == m.collateral[0]]
    mine = flows.filter(pl.col("protocol") == "compound_v3")
    sums = signed_sums(mine, ["account", "token", "side"])
    touched = set(mine.filter(pl.col("action").str.starts_with("transfer_")
                              & (pl.col("side") == "supply"))["account"].to_list())
    borrowed = set(mine.filter(pl.col("side") == "debt")["account"].to_list())
    assert {FRESH} < touched
    checked = {"collateral": 0, "base": 0, "touched": 0}
    for account in sorted(set(mine["account"].to_list())):
        for asset in assets:
            held = comet.call("collateralBalanceOf", account, asset, block=head)
            assert sums.get((account, asset, "collateral"), 0) == held, (account, asset)
            checked["collateral"] += held > 0
        balance = comet.call("balanceOf", account, block=head)
        debt = comet.call("borrowBalanceOf", account, block=head)
        if account not in touched:
            assert sums.get((account, base, "supply"), 0) == balance, account
            assert sums.get((account, base, "debt"), 0) == debt, account
            checked["base"] += 1
        elif account not in borrowed and debt == 0:
            assert sums.get((account, base, "supply"), 0) == balance, account
            checked["touched"] += 1
    assert checked["collateral"] >= 2 and checked["base"] > 3 and checked["touched"] >= 2


def _check_morpho(driver: DevnetDriver, registry: Registry, flows: pl.DataFrame,
                  head: int) -> None:
    """Collateral exactly. Supply and borrow are shares on chain (1e6 virtual shares, so
    shares != assets): the flows (assets) must equal the shares' asset value up to Morpho's
    rounding, at most one unit per event of the position."""
    morpho = driver.at("MorphoBlue", registry.venue("morpho_blue").contracts["morpho"])
    mine = flows.filter(pl.col("protocol") == "morpho_blue")
    sums = signed_sums(mine, ["account", "market", "side"])
    events = signed_sums(mine.with_columns(pl.lit("supply").alias("action"),
                                           pl.lit("supply").alias("side"),
                                           pl.lit(1).cast(pl.Decimal(38, 0)).alias(
                                               "amount_raw")), ["account", "market"])
    bad_debt = set(mine.filter(pl.col("action") == "bad_debt")["market"].to_list())
    checked = 0
    for (account, market), count in sorted(events.items()):
        supply_shares, borrow_shares, collateral = morpho.call(
            "position", bytes.fromhex(market[2:]), account, block=head)
        supply_assets, supply_total, borrow_assets, borrow_total, _, _ = morpho.call(
            "market", bytes.fromhex(market[2:]), block=head)
        assert sums.get((account, market, "collateral"), 0) == collateral
        borrowed = -(-borrow_shares * (borrow_assets + 1) // (borrow_total + 10**6))
        assert abs(sums.get((account, market, "debt"), 0) - borrowed) <= count
        if market not in bad_debt:
            supplied = supply_shares * (supply_assets + 1) // (supply_total + 10**6)
            assert abs(sums.get((account, market, "supply"), 0) - supplied) <= count
        checked += supply_shares > 0 or borrow_shares > 0 or collateral > 0
    assert checked >= 3


def _check_perps_and_options(driver: DevnetDriver, registry: Registry, flows: pl.DataFrame,
                             head: int) -> None:
    """Perps LP balances exactly; options vault collateral and shorts exactly, summed over each
    owner's vaults (flows carry no vault id)."""
    vault = driver.at("PerpsVault", registry.venue("gmx_v1").contracts["vault"])
    usdc = registry.token("USDC").address.lower()
    perps = flows.filter(pl.col("protocol") == "gmx_v1")
    lp = signed_sums(perps.filter(pl.col("side") == "supply"), ["account", "token"])
    assert lp and {token for _, token in lp} == {usdc}
    assert perps.filter(pl.col("action") == "withdraw").height >= 1
    for (account, _), amount in lp.items():
        assert vault.call("lp_balances", account, block=head) == amount
    venue = driver.at("OptionsVenue", registry.venue("opyn_gamma").contracts["controller"])
    options = flows.filter(pl.col("protocol") == "opyn_gamma")
    assert options.filter(pl.col("source") == "opyn_gamma__vault_settled").height == 0
    margin = signed_sums(options.filter(pl.col("side") == "margin"), ["account", "token"])
    shorts = signed_sums(options.filter(pl.col("side") == "debt"), ["account", "token"])
    owners = {account for account, _ in margin}
    assert owners
    for owner in sorted(owners):
        collateral: dict[str, int] = {}
        short: dict[str, int] = {}
        for vault_id in range(1, venue.call("vault_count", owner, block=head) + 1):
            asset, amount, _ = venue.call("vault_of", owner, vault_id, block=head)
            collateral[asset.lower()] = collateral.get(asset.lower(), 0) + amount
            for otoken in venue.call("shorts_of", owner, vault_id, block=head):
                short[otoken.lower()] = short.get(otoken.lower(), 0) + venue.call(
                    "short_amount", owner, vault_id, otoken, block=head)
        assert {t: a for (o, t), a in margin.items() if o == owner} == collateral
        assert {t: a for (o, t), a in shorts.items() if o == owner} == short


def _check_holdings(driver: DevnetDriver, flows: pl.DataFrame, head: int) -> None:
    """Claim tokens (the LST, LP shares, oTokens): Σ holding flows = balanceOf."""
    sums = signed_sums(flows.filter(pl.col("side") == "holding"), ["account", "token"])
    protocols = set(flows.filter(pl.col("side") == "holding")["protocol"].to_list())
    assert {"lido", "uniswap_v2", "opyn_gamma"} <= protocols
    contracts: dict[str, Any] = {}
    for (account, token), amount in sums.items():
        contract = contracts.setdefault(token, driver.at("ERC20", token))
        assert contract.call("balanceOf", account, block=head) == amount, (account, token)


def _check_prices(registry: Registry, out: dict[str, pa.Table],
                  tables: dict[str, pl.DataFrame]) -> None:
    """Every AnswerUpdated of a price feed is a price, the feed's decimals applied."""
    feeds = {f.address.lower(): f for f in registry.feeds}
    expected, marks = [], 0
    for row in tables["chainlink__answer_updated"].to_dicts():
        feed = feeds[row["contract_address"]]
        if feed.kind != "price":
            marks += 1
            continue
        expected.append((registry.token(feed.base).address.lower(), row["block_number"],
                         row["log_index"], int(row["current"]) / 10**feed.decimals, feed.id))
    got = [(r["token"], r["block_number"], r["log_index"], r["price_usd"], r["source"])
           for r in out["prices"].to_pylist()]
    assert got == sorted(expected) and len(got) > 10
    assert out["vol_marks"].num_rows == marks > 0
