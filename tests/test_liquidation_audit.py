"""The liquidation audit (fct_liquidation_audit) against the chain.

On the shared crisis (Aave and Compound liquidate) and on a short crash where every venue
liquidates, with one Aave borrower liquidated twice in one block right after its price fell:
every liquidation is audited and valid, and the recomputed health equals what the venue's own
views answer at the block before, with the feeds set to the answers the liquidation read (taken
from its call trace). A borrower healthy on the registry's parameters but not after a
RiskOracle margin cut is liquidated at Aave, at Morpho and (absorbed) at Compound: valid on the
cut in force, flagged by a registry that does not know the venues obey the oracle. A price
changed in the lake turns a liquidation invalid; a risk parameter missing from the registry
leaves the ones it decides undecided.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import (
    Views,
    World,
    aave_health_from_trace,
    named_address,
    scenario_world,
    trace_calls,
)
from eth_abi import decode as abi_decode
from eth_utils import keccak

from contagion.chain.rpc import RpcError
from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.graph.load import ecosystem_at
from contagion.lake import Lake
from contagion.registry import Registry
from contagion.warehouse import build_database, connect_readonly, run_checks

LIQUIDATIONS = ("aave_v3__liquidation_call", "compound_v3__absorb_debt",
                "morpho_blue__liquidate", "gmx_v1__liquidate_position",
                "opyn_gamma__vault_liquidated")
VENUE_OF = {"aave_v3": "aave_v3", "compound_v3": "compound_v3_usdc",
            "morpho_blue": "morpho_blue", "gmx_v1": "gmx_v1", "opyn_gamma": "opyn_gamma"}
LATEST_ROUND_DATA = "0x" + keccak(text="latestRoundData()")[:4].hex()
WAD = 10**18

# ETH and BTC halve within three blocks: levered borrowers at every lending venue, long perps
# and thinly collateralised option writers all fall below their venue's limit.
EVERY_VENUE = """
name: every-venue
seed: 3
blocks: 14
accounts:
  loopers: {count: 3, venues: [morpho_blue], target_ltv: [0.95, 0.99]}
  borrowers: {count: 12, collateral: [WETH, WBTC], target_ltv: [0.8, 0.86]}
  basis_traders: {count: 6, leverage: [5, 6]}
  option_writers: {count: 4, capital_usd: [800, 1500], collateral: [WETH],
                   target_utilisation: [0.9, 0.97]}
  option_buyers: {count: 8}
  liquidity_providers: {count: 2}
  liquidators: {count: 1}
  arbitrageurs: {count: 1}
prices:
  ETH: {gbm: {start: 2000, vol: 0.2}}
  BTC: {gbm: {start: 30000, vol: 0.2}}
  USDC: {gbm: {start: 1.0}}
shocks:
  - {type: price_drop, asset: ETH, pct: 50, start_block: 3, blocks: 3}
  - {type: price_drop, asset: BTC, pct: 40, start_block: 3, blocks: 3}
activity: 0.5
"""


@pytest.fixture(scope="module")
def every_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    def more(driver: DevnetDriver, registry: Registry) -> None:
        _liquidate_twice_in_one_block(driver, registry)
        _liquidate_under_a_margin_cut(driver, registry)

    with scenario_world(tmp_path_factory.mktemp("every_venue") / "data", EVERY_VENUE,
                        after_scenario=more) as built:
        yield built


TWICE_BORROWER = named_address("liquidated-twice")


def _aave_borrower(driver: DevnetDriver, registry: Registry, borrower: str, percent: int
                   ) -> tuple[Contract, Contract, Contract, Contract, int, int, int]:
    """A fresh Aave borrower of USDC against 10 WETH, `percent` % of its value borrowed, and the
    deployer ready to repay for it: (pool, WETH, USDC, WETH feed, borrowed, price, last time)."""
    pool = driver.at("AavePool", registry.venue("aave_v3").contracts["pool"])
    weth, usdc = (driver.at("ERC20", registry.token(s).address) for s in ("WETH", "USDC"))
    feed = driver.at("ChainlinkAggregator",
                     next(f.address for f in registry.feeds if f.id == "WETH/USD"))
    price = int(feed.call("latestAnswer"))
    supplied = 10 * WAD
    borrowed = supplied * price * percent // 100 // 10**8 // 10**12  # in USDC
    weth.tx(DEPLOYER, "mint", borrower, supplied)
    usdc.tx(DEPLOYER, "mint", DEPLOYER, borrowed)
    latest = driver.client.call("eth_getBlockByNumber", ["latest", False])
    _, ts = driver.mine_all(int(latest["timestamp"], 16) + 12)
    weth.tx(borrower, "approve", pool.address, 2**256 - 1)
    pool.tx(borrower, "supply", weth.address, supplied, borrower, 0)
    pool.tx(borrower, "borrow", usdc.address, borrowed, 2, 0, borrower)
    usdc.tx(DEPLOYER, "approve", pool.address, 2**256 - 1)
    _, ts = driver.mine_all(ts + 12)
    return pool, weth, usdc, feed, borrowed, price, ts


def _liquidate_twice_in_one_block(driver: DevnetDriver, registry: Registry) -> None:
    """A fresh Aave borrower at 78% of its value (health about 1.06); then in one block the
    WETH price falls 15% and the borrower is liquidated twice (one sender, so the price comes
    first and the liquidations in that order)."""
    pool, weth, usdc, feed, borrowed, price, ts = _aave_borrower(driver, registry,
                                                                 TWICE_BORROWER, 78)
    feed.tx(DEPLOYER, "transmit", price * 85 // 100)
    for _ in range(2):
        pool.tx(DEPLOYER, "liquidationCall", weth.address, usdc.address, TWICE_BORROWER,
                borrowed // 10, False, gas=3_000_000)
    driver.mine_all(ts + 12)


MARGIN_CUT_BPS = 500
COMET_BORROW_PERCENT = 82  # of the collateral's value, within Comet's WETH borrow CF of 82.5%
COMET_DROP_PERCENT = 5  # WETH's fall before the cut at Comet
CUT_VENUES = ("aave_v3", "compound_v3_usdc", "morpho_blue")  # where the cut borrower is liquidated
CUT_BORROWER = named_address("liquidated-under-a-cut")


def _liquidate_under_a_margin_cut(driver: DevnetDriver, registry: Registry) -> None:
    """A fresh Aave borrower at 80% of its value: healthy on the registry's 83% threshold
    (health 1.04). The RiskOracle then cuts WETH's margin at Aave by MARGIN_CUT_BPS, to 78%
    (health 0.975), and in the next block, at unchanged prices, the borrower is liquidated:
    allowed only by the threshold in force. The same at Morpho's WETH/USDC market: 84% of the
    collateral's value borrowed against an LLTV of 86%, which the cut lowers to 81%. And at
    Comet: 82% of 10 WETH's value borrowed (borrow CF 82.5%), then WETH falls 5%, to 86.3% of
    it: healthy on the registry's liquidate CF of 89.5% (health 1.037), not on the 84.5% the
    cut leaves (health 0.979); the absorb in the block after the cut succeeds, while before the
    cut it reverts as NotLiquidatable."""
    from contagion.devnet.risk_oracle import devnet_oracle_signer
    from contagion.devnet.venues.compound_v3 import CompoundV3Venue
    from contagion.feed.oracle import RiskUpdate, sign_update, submit_update

    oracle = registry.risk_oracle
    assert oracle is not None

    def cut(venue: str, asset: str, nonce: int, ts: int) -> None:
        """Relay a signed raise_margin in the next block (at ts + 12)."""
        update = RiskUpdate(venue=venue, asset=asset, action="raise_margin",
                            margin_cut_bps=MARGIN_CUT_BPS, nonce=nonce, expiry=ts + 3600,
                            snapshot_hash=bytes([nonce]) * 32)
        signed = sign_update(devnet_oracle_signer(), registry.chain_id, oracle, update)
        submit_update(driver.client, oracle, DEPLOYER, signed, mine_at=ts + 12)
        driver.nonces.clear()  # the relay sent from the deployer behind the driver's back

    pool, weth, usdc, _, borrowed, _, ts = _aave_borrower(driver, registry, CUT_BORROWER, 80)
    cut(pool.address, weth.address, 1, ts)
    pool.tx(DEPLOYER, "liquidationCall", weth.address, usdc.address, CUT_BORROWER,
            borrowed // 10, False, gas=3_000_000)
    _, ts = driver.mine_all(ts + 24)

    morpho = driver.at("MorphoBlue", registry.venue("morpho_blue").main_contract)
    market = next(m for m in registry.venue("morpho_blue").markets
                  if m.params.get("label") == "WETH/USDC")
    params = morpho.call("idToMarketParams", bytes.fromhex(market.id[2:]))
    price = int(driver.at("MorphoChainlinkOracle", str(market.params["oracle"])).call("price"))
    supplied = 10 * WAD
    borrowed = supplied * price // 10**36 * 84 // 100
    weth.tx(DEPLOYER, "mint", CUT_BORROWER, supplied)
    usdc.tx(DEPLOYER, "mint", DEPLOYER, 3 * borrowed)
    _, ts = driver.mine_all(ts + 12)
    weth.tx(CUT_BORROWER, "approve", morpho.address, 2**256 - 1)
    usdc.tx(DEPLOYER, "approve", morpho.address, 2**256 - 1)
    morpho.tx(DEPLOYER, "supply", params, 2 * borrowed, 0, DEPLOYER, b"")
    morpho.tx(CUT_BORROWER, "supplyCollateral", params, supplied, CUT_BORROWER, b"")
    morpho.tx(CUT_BORROWER, "borrow", params, borrowed, 0, CUT_BORROWER, CUT_BORROWER)
    _, ts = driver.mine_all(ts + 12)
    cut(morpho.address, weth.address, 2, ts)
    morpho.tx(DEPLOYER, "liquidate", params, CUT_BORROWER, supplied // 10, 0, b"",
              gas=3_000_000)
    _, ts = driver.mine_all(ts + 24)

    # Comet's borrow CF (82.5%) is below its liquidate CF less the cut (84.5%): no borrow the
    # market allows is liquidatable by the cut alone, so WETH first falls COMET_DROP_PERCENT.
    comet = CompoundV3Venue(driver.at("Comet", registry.venue("compound_v3_usdc").main_contract),
                            "USDC", usdc.address, {"WETH": weth.address})
    weth_feed = driver.at("ChainlinkAggregator",
                          next(f.address for f in registry.feeds if f.id == "WETH/USD"))
    price = int(comet.comet.call("getPrice", weth_feed.address))
    base_price = int(comet.comet.call("getPrice", comet.comet.call("baseTokenPriceFeed")))
    borrowed = supplied * price // WAD * COMET_BORROW_PERCENT // 100 * 10**6 // base_price
    weth.tx(DEPLOYER, "mint", CUT_BORROWER, supplied)
    usdc.tx(DEPLOYER, "mint", DEPLOYER, 2 * borrowed)
    _, ts = driver.mine_all(ts + 12)
    weth.tx(CUT_BORROWER, "approve", comet.comet.address, 2**256 - 1)
    usdc.tx(DEPLOYER, "approve", comet.comet.address, 2**256 - 1)
    comet.supply(DEPLOYER, 2 * borrowed)
    comet.supply_collateral(CUT_BORROWER, "WETH", supplied)
    comet.withdraw(CUT_BORROWER, borrowed)
    _, ts = driver.mine_all(ts + 12)
    assert comet.borrow_balance(CUT_BORROWER) == borrowed
    weth_feed.tx(DEPLOYER, "transmit", price * (100 - COMET_DROP_PERCENT) // 100)
    _, ts = driver.mine_all(ts + 12)
    # healthy on the registry's liquidate CF: absorbing it now would revert
    assert not comet.is_liquidatable(CUT_BORROWER)
    absorb = comet.comet.data("absorb", DEPLOYER, [CUT_BORROWER])
    with pytest.raises(RpcError, match="NotLiquidatable"):
        driver.client.call("eth_call", [{"from": DEPLOYER, "to": comet.comet.address,
                                         "data": absorb}, "latest"])
    cut(comet.comet.address, weth.address, 3, ts)
    assert comet.is_liquidatable(CUT_BORROWER)
    comet.absorb(DEPLOYER, [CUT_BORROWER])
    block, _ = driver.mine_all(ts + 24)  # every transaction succeeded, or it raises
    (tx_hash,) = driver.labels
    receipt = driver.receipts([tx_hash])[0]
    assert receipt["status"] == "0x1" and int(receipt["blockNumber"], 16) == block
    assert comet.borrow_balance(CUT_BORROWER) == 0
    assert comet.collateral_balance(CUT_BORROWER, "WETH") == 0


# ------------------------------------------------------------------------------- helpers

def _rows(world: World, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    with connect_readonly(world.db) as con:
        result = con.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def _audit(world: World) -> list[dict[str, Any]]:
    return _rows(world, "select * from fct_liquidation_audit order by block_number, log_index")


@cache
def _feed_slots() -> tuple[int, int]:
    """(latestRound, rounds) storage slots of the devnet's Chainlink aggregator."""
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    from contagion.devnet.compile import CONTRACTS_DIR

    bundle = FilesystemInputBundle([CONTRACTS_DIR])
    out = vyper.compile_from_file_input(
        bundle.load_file(CONTRACTS_DIR / "ChainlinkAggregator.vy"),
        output_formats=["layout"], input_bundle=bundle)
    layout = out["layout"]["storage_layout"]
    return int(layout["latestRound"]["slot"]), int(layout["rounds"]["slot"])


def _word(value: int) -> str:
    return "0x" + (value % 2**256).to_bytes(32, "big").hex()


def _answers_read(calls: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """feed -> (round id, answer) of every latestRoundData() the transaction made."""
    out = {}
    for call in calls:
        if call["type"] == "STATICCALL" and call["input"][:10] == LATEST_ROUND_DATA:
            round_id, answer, *_ = abi_decode(["uint80", "int256", "uint256", "uint256",
                                               "uint80"], bytes.fromhex(call["output"][2:]))
            out[call["to"].lower()] = (round_id, answer)
    return out


def _feeds_as_read(answers: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """State overrides that make each feed's latest round the one the transaction read."""
    latest, rounds = _feed_slots()
    return {feed: {"stateDiff": {
        _word(latest): _word(round_id),
        "0x" + keccak(rounds.to_bytes(32, "big") + round_id.to_bytes(32, "big")).hex():
            _word(answer)}}
        for feed, (round_id, answer) in answers.items()}


def _judged_alone(world: World) -> list[dict[str, Any]]:
    """Liquidations whose state at the block before is the state they were judged on, up to
    prices: the only liquidation of that borrower at its venue in the block, after no other
    log of the borrower there in the block (for Morpho: of anyone in the market)."""
    return _rows(world, """
        select a.*
        from fct_liquidation_audit as a
        where (select count(*) from fct_liquidation_audit as b
               where b.block_number = a.block_number and b.venue = a.venue
                 and b.borrower = a.borrower) = 1
          and not exists (
              select 1 from stg_flows as f
              where f.block_number = a.block_number and f.venue = a.venue
                and f.log_index < a.state_before_log_index
                and (f.account = a.borrower
                     or a.protocol = 'morpho_blue' and f.market = a.market))
        order by a.block_number, a.log_index""")


def _check_against_views(world: World, row: dict[str, Any]) -> None:
    client, registry = world.client, world.registry
    driver = DevnetDriver(client)
    block = int(row["block_number"]) - 1
    view = Views(client, block, _feeds_as_read(_answers_read(trace_calls(client,
                                                                      row["transaction_hash"]))))
    user, health, threshold = row["borrower"], int(row["health_raw"]), int(row["threshold_raw"])
    venue = registry.venue(str(row["venue"]))
    main = venue.main_contract
    if row["protocol"] == "aave_v3":
        account = view(driver.at("AavePool", main), "getUserAccountData", user)
        assert int(account[5]) == health and threshold == WAD
    elif row["protocol"] == "compound_v3":
        comet = driver.at("Comet", main)
        assert view(comet, "isLiquidatable", user) is True
        borrow = int(view(comet, "borrowBalanceOf", user))
        base_price = int(view(comet, "getPrice", view(comet, "baseTokenPriceFeed")))
        assert threshold == borrow * base_price // int(view(comet, "baseScale"))
        # each factor less the margin cut of the RiskOracle the market itself reads (if set)
        oracle = driver.at("RiskOracle", str(view(comet, "riskOracle")))
        factored = 0
        for i in range(int(view(comet, "numAssets"))):
            _, asset, feed, scale, _, liquidate_cf, _, _ = view(comet, "getAssetInfo", i)
            held = int(view(comet, "collateralBalanceOf", user, asset))
            value = held * int(view(comet, "getPrice", feed)) // int(scale)
            cut = (int(view(oracle, "marginCutBps", main, asset)) * 10**14
                   if int(oracle.address, 16) else 0)
            factored += value * (int(liquidate_cf) - min(cut, int(liquidate_cf))) // WAD
        assert health == factored
    elif row["protocol"] == "morpho_blue":
        morpho = driver.at("MorphoBlue", main)
        market = bytes.fromhex(str(row["market"])[2:])
        _, borrow_shares, collateral = view(morpho, "position", market, user)
        _, _, total_assets, total_shares, _, _ = view(morpho, "market", market)
        _, collateral_token, oracle, _, lltv = view(morpho, "idToMarketParams", market)
        price = int(view(driver.at("MorphoChainlinkOracle", oracle), "price"))
        cut = int(view(driver.at("RiskOracle", str(registry.risk_oracle)), "marginCutBps",
                       main, collateral_token)) * 10**14
        assert threshold == -(-int(borrow_shares) * (int(total_assets) + 1)
                              // (int(total_shares) + 10**6))
        lltv = int(lltv) - min(cut, int(lltv))
        assert health == int(collateral) * price // 10**36 * lltv // WAD
    elif row["protocol"] == "gmx_v1":
        vault = driver.at("PerpsVault", main)
        event = _rows(world, "select collateral_token, index_token, is_long "
                             "from stg_perp_positions where block_number = ? and log_index = ?",
                      [row["block_number"], row["log_index"]])[0]
        key = (user, event["collateral_token"], event["index_token"], event["is_long"])
        assert view(vault, "liquidation_state", *key) == 1
        size, collateral, *_ = view(vault, "getPosition", *key)
        has_profit, delta = view(vault, "getPositionDelta", *key)
        assert health == int(collateral) - (0 if has_profit else int(delta))
        assert threshold == int(view(vault, "getPositionFee", size)) + max(
            int(size) * int(view(vault, "maintenance_margin_bps")) // 10_000,
            int(view(vault, "liquidation_fee_usd")))
    else:
        options = driver.at("OptionsVenue", main)
        vault_id = int(_rows(world, "select vault_id from int_liquidations where block_number = ? "
                                    "and log_index = ?",
                             [row["block_number"], row["log_index"]])[0]["vault_id"])
        assert view(options, "is_liquidatable", user, vault_id) is True
        assert health == int(view(options, "collateral_value", user, vault_id))
        assert threshold == int(view(options, "margin_requirement", user, vault_id))


# ------------------------------------------------------------------------------- tests

def test_exact_arithmetic_rounds_as_the_contracts_and_goes_past_128_bits() -> None:
    import duckdb

    from contagion.exact import mul_div, register

    assert mul_div(7, 3, 2, "down") == 10 and mul_div(7, 3, 2, "up") == 11
    assert mul_div(5, 1, 2, "half_up") == 3 and mul_div(5, 1, 3, "half_up") == 2
    assert mul_div(1, 1, 0, "down") is None
    with pytest.raises(ValueError, match="non-negative"):
        mul_div(-1, 1, 1, "down")
    with duckdb.connect() as con:
        register(con)
        # a Morpho WBTC/USDC oracle price (scale 10^34) passes 38 digits; the borrow does not
        price = con.execute("select exact_mul_div('1' || repeat('0', 34), '1800000000000', "
                            "'100000000', 'down')").fetchall()[0][0]
        assert price == str(18 * 10**37)
        got = con.execute("select mul_div_down(134048131, ?, '1' || repeat('0', 36)), "
                          "mul_div_up(10, 20, 3), mul_div_half_up(5, 1, 2), "
                          "mul_div_down(1, 1, 0), mul_div_down(10::decimal(38, 0), 10, 1), "
                          "mul_div_down('1' || repeat('0', 38), 1, 1)", [price]).fetchall()
        assert got == [(Decimal(134048131 * 18 * 10**37 // 10**36), Decimal(67), Decimal(3), None,
                        Decimal(100), None)]


@pytest.mark.devnet
@pytest.mark.parametrize("crisis", ["world", "every_venue"])
def test_every_liquidation_is_audited_and_valid(crisis: str,
                                                request: pytest.FixtureRequest) -> None:
    world: World = request.getfixturevalue(crisis)
    decoded = {t: _rows(world, f"select count(*) as n from src_{t}")[0]["n"]
               for t in LIQUIDATIONS}
    audit = _audit(world)
    assert len(audit) == sum(decoded.values()) > 0
    assert [r for r in audit if r["valid"] is not True] == []
    assert all(r["reason"] is None and r["prices"] and r["health"] < 1 for r in audit)
    assert all(r["state_before_log_index"] <= r["log_index"] for r in audit)
    venues = {r["protocol"] for r in audit}
    expected = ({"aave_v3", "compound_v3"} if crisis == "world" else set(VENUE_OF))
    assert venues == expected, decoded
    for r in audit:  # what was seized and repaid is named, exactly
        assert r["collateral_seized"] and all(s["amount_raw"] > 0 for s in r["collateral_seized"])
        assert r["protocol"] == "gmx_v1" or (r["debt_asset"] and r["debt_amount_raw"] > 0)


@pytest.mark.devnet
@pytest.mark.parametrize("crisis", ["world", "every_venue"])
def test_health_equals_the_venues_own_views_the_block_before(
        crisis: str, request: pytest.FixtureRequest) -> None:
    world: World = request.getfixturevalue(crisis)
    alone = _judged_alone(world)
    for row in alone:
        _check_against_views(world, row)
    compared = {r["protocol"] for r in alone}
    assert compared == {r["protocol"] for r in _audit(world)}, "a venue was never compared"
    # and prices updated earlier in the same block were among those used
    assert any(p["price_block"] == r["block_number"] for r in alone for p in r["prices"])


@pytest.mark.devnet
def test_a_borrower_liquidated_twice_in_a_block_is_judged_on_what_the_first_left(
        every_venue: World) -> None:
    rows = [r for r in _audit(every_venue) if r["protocol"] == "aave_v3"]
    last = max(r["block_number"] for r in rows if r["borrower"] == TWICE_BORROWER.lower())
    first, second = [r for r in rows if r["block_number"] == last]
    assert first["borrower"] == second["borrower"]
    assert second["state_before_log_index"] > first["log_index"]
    # the price fell in that block, before both: both read the new answer
    assert all(p["price_block"] == last for p in first["prices"] if p["token"] ==
               first["collateral_asset"])
    for row in (first, second):
        assert int(row["health_raw"]) == aave_health_from_trace(every_venue, row)
        assert row["valid"] is True
    assert second["health_raw"] != first["health_raw"]
    for row in rows:  # every other one as well, however many shared its block
        assert int(row["health_raw"]) == aave_health_from_trace(every_venue, row)


@pytest.mark.devnet
def test_a_liquidation_the_risk_oracle_margin_cut_allowed_is_valid(every_venue: World,
                                                                   tmp_path: Path) -> None:
    cuts = _rows(every_venue, "select venue, asset, action, cut_bps from int_margin_cuts "
                              "order by ordinal")
    weth = every_venue.registry.token("WETH").address.lower()
    assert cuts == [{"venue": venue, "asset": weth, "action": 1, "cut_bps": MARGIN_CUT_BPS}
                    for venue in ("aave_v3", "morpho_blue", "compound_v3_usdc")]
    rows = {r["venue"]: r for r in _audit(every_venue) if r["borrower"] == CUT_BORROWER.lower()}
    assert set(rows) == {"aave_v3", "morpho_blue", "compound_v3_usdc"}
    assert all(r["valid"] is True and r["reason"] is None for r in rows.values())
    assert 0.97 < rows["aave_v3"]["health"] < 0.98  # 78% / 80%, on the threshold in force
    # Morpho's health is max borrow over borrowed: 81% / 84% (the seizure left it below 1)
    assert 0.96 < rows["morpho_blue"]["health"] < 0.97
    # Comet's is collateral × liquidate CF over the borrow: 84.5% / (82% / 95%)
    comet = rows["compound_v3_usdc"]
    assert 0.975 < comet["health"] < 0.98
    # exactly the 10 WETH at the price read, times the registry's factor less cut × 10^14
    factor = int(next(m for m in every_venue.registry.venue("compound_v3_usdc").markets
                      if m.id == "WETH").params["liquidate_collateral_factor"])
    (answer,) = [p["answer_raw"] for p in comet["prices"] if p["token"] == weth]
    value = 10 * WAD * int(answer) // WAD
    assert int(comet["health_raw"]) == value * (factor - MARGIN_CUT_BPS * 10**14) // WAD
    # the same lake with a registry that does not know the venues obey the oracle: the
    # borrower was healthy on the registry's thresholds, so each liquidation is flagged
    data = every_venue.registry.model_dump()
    for venue in data["venues"]:
        venue["obeys_risk_oracle"] = False
    db = tmp_path / "unaware.duckdb"
    build_database(db, every_venue.lake, Registry.model_validate(data))
    with connect_readonly(db) as con:
        assert con.execute("select count(*) from int_margin_cuts").fetchall() == [(0,)]
        unaware = {r[0]: r[1:] for r in con.execute(
            "select venue, valid, reason, health, health_raw from fct_liquidation_audit "
            "where borrower = ?", [CUT_BORROWER.lower()]).fetchall()}
    assert set(unaware) == set(rows)
    valid, reason, health, _ = unaware["aave_v3"]
    assert valid is False and "is not below 1" in reason and 1.03 < health < 1.04
    valid, reason, health, _ = unaware["morpho_blue"]
    assert valid is False and 1.02 < health < 1.03  # 86% / 84%
    valid, reason, health, raw = unaware["compound_v3_usdc"]  # 89.5% / (82% / 95%)
    assert valid is False and "covers the borrow" in reason and 1.035 < health < 1.04
    assert int(raw) == value * factor // WAD


@pytest.mark.devnet
def test_the_risk_marts_and_the_cascade_read_the_threshold_in_force(every_venue: World) -> None:
    """After the cut, the thresholds the risk marts and the contagion engine use are the
    registry's less the cut, and the health of every Aave borrower at the last snapshot equals
    what the pool itself answers there."""
    world, registry = every_venue, every_venue.registry
    weth = registry.token("WETH").address.lower()
    cut_blocks = {r["venue"]: r["b"] for r in _rows(
        world, "select venue, min(block_number) as b from int_margin_cuts group by venue")}
    assert set(cut_blocks) == set(CUT_VENUES)
    rows = _rows(world, "select * from int_market_thresholds where collateral_token = ?",
                 [weth])
    in_force = [r["venue"] in cut_blocks and r["snapshot_block"] >= cut_blocks[r["venue"]]
                for r in rows]
    assert any(in_force) and not all(in_force)
    for venue in CUT_VENUES:  # each venue's WETH market seen both before and after its cut
        assert {cut for r, cut in zip(rows, in_force, strict=True)
                if r["venue"] == venue} == {False, True}, venue
    for row, cut in zip(rows, in_force, strict=True):
        assert row["margin_cut_bps"] == (MARGIN_CUT_BPS if cut else 0)
        if row["registry_threshold"] is None:  # a market the registry gives no threshold
            assert row["liquidation_threshold"] is None
            continue
        assert row["liquidation_threshold"] == pytest.approx(
            row["registry_threshold"] - (MARGIN_CUT_BPS / 10**4 if cut else 0.0))

    last = max(r["snapshot_block"] for r in rows)
    pool = DevnetDriver(world.client).at("AavePool", registry.venue("aave_v3").main_contract)
    view = Views(world.client, last)
    groups = _rows(world, "select account, health_factor from int_account_health "
                          "where snapshot_block = ? and venue = 'aave_v3' and debt_usd > 0",
                   [last])
    assert CUT_BORROWER.lower() in {g["account"] for g in groups}
    for group in groups:
        on_chain = int(view(pool, "getUserAccountData", group["account"])[5]) / WAD
        assert group["health_factor"] == pytest.approx(on_chain, rel=1e-9), group

    with connect_readonly(world.db) as con:
        eco = ecosystem_at(con, registry, last)
    assert eco.margin_cuts == {(venue, weth): 0.05 for venue in CUT_VENUES}
    legs = [leg for leg in eco.legs if leg.venue == "aave_v3" and leg.token == weth]
    assert legs and all(leg.threshold == pytest.approx(
        next(m for m in registry.venue("aave_v3").markets if m.collateral == ["WETH"])
        .params["liquidation_threshold_bps"] / 10**4 - 0.05) for leg in legs)


@pytest.mark.devnet
def test_what_the_oracle_holds_is_lifted_once_calm(every_venue: World, tmp_path: Path) -> None:
    """int_oracle_markets holds the cut from its block on; with every window calm (a policy
    that lifts after one calm window), the recommendations lift it where it is held, once per
    cooldown."""
    import polars as pl

    from contagion.graph.marts import write_graph_marts
    from contagion.policy.model import Condition, load_policy
    from contagion.risk.marts import freeze_recommendations

    world, registry = every_venue, every_venue.registry
    weth = registry.token("WETH").address.lower()
    cut_blocks = {r["venue"]: r["b"] for r in _rows(
        world, "select venue, min(block_number) as b from int_margin_cuts group by venue")}
    assert set(cut_blocks) == set(CUT_VENUES)
    held = _rows(world, "select snapshot_block, venue, asset, frozen, margin_cut_bps "
                        "from int_oracle_markets order by snapshot_block, venue")
    snapshots = sorted({r["snapshot_block"] for r in
                        _rows(world, "select snapshot_block from ref_snapshots")})
    after = {v: [b for b in snapshots if b >= cut_blocks[v]] for v in CUT_VENUES}
    assert all(after.values())
    assert held == [{"snapshot_block": b, "venue": v, "asset": weth, "frozen": False,
                     "margin_cut_bps": MARGIN_CUT_BPS}
                    for b in snapshots for v in CUT_VENUES if b in after[v]]
    policy = load_policy()
    policy = policy.model_copy(update={"min_loss_cut_usd": 1e12, "rules": [
        r.model_copy(update={"when": Condition(calm_windows=1)}) if r.action == "normal"
        else r for r in policy.rules]})
    green = pl.DataFrame([{"snapshot_block": b, "venue": v.id, "level": "green", "score": 0.0,
                           "features": []} for b in snapshots for v in registry.venues],
                         schema={"snapshot_block": pl.UInt64(), "venue": pl.Utf8(),
                                 "level": pl.Utf8(), "score": pl.Float64(),
                                 "features": pl.List(pl.Struct({"feature": pl.Utf8(),
                                                                "value": pl.Float64(),
                                                                "contribution": pl.Float64()}))})
    calm = pl.DataFrame({"snapshot_block": snapshots, "level": ["green"] * len(snapshots)},
                        schema={"snapshot_block": pl.UInt64(), "level": pl.Utf8()})
    db = tmp_path / "calm.duckdb"  # with the contagion marts the counterfactual reads
    shutil.copy(world.db, db)
    write_graph_marts(db, registry)
    with connect_readonly(db) as con:
        ecosystems = {b: ecosystem_at(con, registry, b) for b in snapshots}
        recs = freeze_recommendations(con, ecosystems, green, calm, policy).to_dicts()
    cooldown = policy.guardrails.cooldown_windows
    # each market's lifts from its first held snapshot on, once per cooldown
    assert [(r["snapshot_block"], r["venue"], r["asset"], r["action"]) for r in recs] == [
        (b, v, weth, "normal") for b in snapshots for v in CUT_VENUES
        if b in after[v] and after[v].index(b) % (cooldown + 1) == 0]


@pytest.mark.devnet
def test_a_price_that_left_the_borrower_healthy_is_flagged(world: World,
                                                           tmp_path: Path) -> None:
    audit = _audit(world)
    target = next(r for r in audit if r["protocol"] == "aave_v3")
    used = next(p for p in target["prices"] if p["token"] == target["collateral_asset"])
    lake = tmp_path / "lake"
    shutil.copytree(world.data / "lake", lake)
    changed = 0
    for path in sorted((lake / "prices").rglob("*.parquet")):
        prices = pq.read_table(path)
        hit = pc.and_(pc.equal(prices["block_number"], used["price_block"]),
                      pc.equal(prices["log_index"], used["price_log_index"]))
        if pc.any(hit).as_py():
            answers = prices["answer_raw"].to_pylist()
            usd = prices["price_usd"].to_pylist()
            for i in pc.indices_nonzero(hit).to_pylist():
                answers[i] *= 3  # the collateral worth three times as much: healthy
                usd[i] *= 3
                changed += 1
            prices = prices.set_column(prices.schema.get_field_index("answer_raw"), "answer_raw",
                                       pa.array(answers, prices.schema.field("answer_raw").type))
            prices = prices.set_column(prices.schema.get_field_index("price_usd"), "price_usd",
                                       pa.array(usd, pa.float64()))
            pq.write_table(prices, path)
    assert changed == 1
    # and a registry that forgets one of Comet's liquidate collateral factors
    comet = next(r for r in audit if r["protocol"] == "compound_v3")
    forgotten = next(t.symbol for t in world.registry.tokens
                     if t.address.lower() == comet["collateral_asset"])
    data = world.registry.model_dump()
    for venue in data["venues"]:
        for market in venue["markets"]:
            if venue["id"] == comet["venue"] and market["id"] == forgotten:
                del market["params"]["liquidate_collateral_factor"]
    registry = Registry.model_validate(data)
    db = tmp_path / "tampered.duckdb"
    build_database(db, Lake(str(lake)), registry)

    with connect_readonly(db) as con:
        checks = {r.check.name: r for r in run_checks(con, sample=100)}
        rows = con.execute("select block_number, log_index, protocol, valid, reason, prices "
                           "from fct_liquidation_audit").fetchall()
    invalid = checks["liquidations_valid"]
    assert invalid.check.severity == "error" and not invalid.passed
    flagged = {(r["block_number"], r["log_index"]): r for r in invalid.sample}
    assert (target["block_number"], target["log_index"]) in flagged
    assert "is not below 1" in str(flagged[target["block_number"], target["log_index"]]["reason"])
    by_key = {(r[0], r[1]): r for r in rows}
    for key in flagged:  # only liquidations that read the changed answer
        assert any(p["price_block"] == used["price_block"]
                   and p["price_log_index"] == used["price_log_index"] for p in by_key[key][5])
    undecided = {key for key, r in by_key.items() if r[3] is None}
    assert (comet["block_number"], comet["log_index"]) in undecided
    assert all(by_key[k][2] == "compound_v3" and f"liquidate_collateral_factor in the registry "
               f"for {forgotten}" in by_key[k][4] for k in undecided)
    warned = checks["liquidations_decidable"]
    assert warned.check.severity == "warn" and warned.failing_rows == len(undecided)
    assert not undecided & set(flagged)
