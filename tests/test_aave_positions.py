"""Aave v3 collateral and debt positions against the contracts, with interest accruing.

A short devnet crisis, then the Aave USDC reserve given rates (50 % a year at zero usage, more
above) and a 10 % reserve factor: two lenders and a third supply odd amounts of USDC, two
borrowers post WETH and borrow USDC, one at its LTV limit. Days pass between the steps, several
steps share a block: a partial repay, an aToken transfer, a lender withdrawing everything, the
treasury's accrual minted. After forty days the debt has grown past the limit borrower's
liquidation threshold, with no price move: it is liquidated twice, once for aTokens. At every
snapshot each Aave position's amount_raw equals the token's `balanceOf` at that block, interest
to the block's second included, and shares_raw its `scaledBalanceOf`; the liquidations are
decided and valid; every blocking check holds, and the truth check agrees.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import World, aave_health_from_trace, named_address, scenario_world
from eth_utils import to_checksum_address

from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.registry import Registry
from contagion.truth import truth_check
from contagion.warehouse import connect_readonly, run_checks

pytestmark = pytest.mark.devnet

SCENARIO = """
name: aave-interest
seed: 11
blocks: 10
accounts:
  loopers: {count: 2, venues: [aave_v3]}
  borrowers: {count: 3, collateral: [WETH, stETH]}
  liquidity_providers: {count: 2}
prices:
  ETH: {gbm: {start: 2000, vol: 0.2}}
  BTC: {gbm: {start: 30000, vol: 0.2}}
  USDC: {gbm: {start: 1.0}}
activity: 0.5
"""

RAY, WAD, DAY = 10**27, 10**18, 86_400
MAX = 2**256 - 1


LENDER_A, LENDER_B, LENDER_C = (named_address(f"aave/lender-{x}") for x in "abc")
LIMIT_BORROWER, BORROWER = named_address("aave/limit-borrower"), named_address("aave/borrower")
LIQUIDATOR, TREASURY = named_address("aave/liquidator"), named_address("aave/treasury")


def _interest_at_aave(driver: DevnetDriver, registry: Registry) -> None:
    pool = driver.at("AavePool", registry.venue("aave_v3").main_contract)
    usdc, weth = (driver.at("ERC20", registry.token(s).address) for s in ("USDC", "WETH"))
    ausdc = driver.at("AToken", registry.token("aUSDC").address)
    ts = int(driver.client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) + 12

    pool.tx(DEPLOYER, "setReserveInterestRateData", usdc.address, 80 * RAY // 100,
            50 * RAY // 100, 20 * RAY // 100, 300 * RAY // 100)
    pool.tx(DEPLOYER, "setReserveFactor", usdc.address, 1_000)
    pool.tx(DEPLOYER, "setTreasury", TREASURY)
    for who, amount in ((LENDER_A, 300_000 * 10**6 + 7), (LENDER_B, 123_456_789_012),
                        (LENDER_C, 50_000 * 10**6), (BORROWER, 10_000 * 10**6),
                        (LIMIT_BORROWER, 10_000 * 10**6), (LIQUIDATOR, 1_000_000 * 10**6)):
        usdc.tx(DEPLOYER, "mint", who, amount)
    for who in (LIMIT_BORROWER, BORROWER):
        weth.tx(DEPLOYER, "mint", who, 50 * WAD)
    _, ts = driver.mine_all(ts)
    for who in (LENDER_A, LENDER_B, LENDER_C, BORROWER, LIMIT_BORROWER, LIQUIDATOR):
        usdc.tx(who, "approve", pool.address, MAX)
        weth.tx(who, "approve", pool.address, MAX)
    pool.tx(LENDER_A, "supply", usdc.address, 300_000 * 10**6 + 7, LENDER_A, 0)
    pool.tx(LENDER_B, "supply", usdc.address, 123_456_789_012, LENDER_B, 0)
    pool.tx(LIMIT_BORROWER, "supply", weth.address, 50 * WAD, LIMIT_BORROWER, 0)
    pool.tx(BORROWER, "supply", weth.address, 50 * WAD, BORROWER, 0)
    _, ts = driver.mine_all(ts + 12)
    # the limit borrower takes all its LTV allows; the other about half
    available = int(pool.call("getUserAccountData", LIMIT_BORROWER)[2])  # USD, 8 decimals
    pool.tx(LIMIT_BORROWER, "borrow", usdc.address, available * 10**6 // 10**8 - 1, 2, 0,
            LIMIT_BORROWER)
    pool.tx(BORROWER, "borrow", usdc.address, 40_000 * 10**6 + 3, 2, 0, BORROWER)
    _, ts = driver.mine_all(ts + 12)
    pool.tx(BORROWER, "repay", usdc.address, 5_555_555_555, 2, BORROWER)
    ausdc.tx(LENDER_A, "transfer", LENDER_C, 77_777_777_777)
    pool.tx(LENDER_C, "supply", usdc.address, 50_000 * 10**6, LENDER_C, 0)
    _, ts = driver.mine_all(ts + 3 * DAY)
    pool.tx(LENDER_B, "withdraw", usdc.address, MAX, LENDER_B)
    pool.tx(DEPLOYER, "mintToTreasury", [usdc.address])
    _, ts = driver.mine_all(ts + DAY)
    pool.tx(BORROWER, "repay", usdc.address, MAX, 2, BORROWER)
    _, ts = driver.mine_all(ts + 40 * DAY)
    # forty days of interest, no price move: the limit borrower's health factor is below 1
    assert int(pool.call("getUserAccountData", LIMIT_BORROWER)[5]) < WAD
    pool.tx(LIQUIDATOR, "liquidationCall", weth.address, usdc.address, LIMIT_BORROWER,
            10_000 * 10**6, False, gas=3_000_000)
    _, ts = driver.mine_all(ts + 12)
    pool.tx(LIQUIDATOR, "liquidationCall", weth.address, usdc.address, LIMIT_BORROWER,
            5_000 * 10**6, True, gas=3_000_000)
    pool.tx(DEPLOYER, "mintToTreasury", [usdc.address])
    _, ts = driver.mine_all(ts + DAY)
    pool.tx(LENDER_C, "withdraw", usdc.address, 1_000 * 10**6, LENDER_C)
    driver.mine_all(ts + 12)


@pytest.fixture(scope="module")
def interest_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with scenario_world(tmp_path_factory.mktemp("aave_interest") / "data", SCENARIO,
                        after_scenario=_interest_at_aave,
                        snapshot_every_header=True) as built:
        yield built


def test_positions_equal_the_tokens_at_every_snapshot(interest_world: World) -> None:
    world = interest_world
    driver = DevnetDriver(world.client)
    tokens = {(t.issued_by, t.underlying, "collateral" if t.kind == "atoken" else "debt"):
              (driver.at("AToken" if t.kind == "atoken" else "VariableDebtToken", t.address),
               world.registry.token(t.underlying).address.lower())
              for t in world.registry.tokens
              if t.kind in ("atoken", "debt_token") and t.underlying}
    named = world.sql("select distinct venue, reserve, side, account from stg_aave_scaled_moves")
    (first,), = world.sql("select min(block_number) from stg_aave_scaled_moves")
    compared = grown = 0
    for block in (b for b in world.snapshots() if b >= first):  # the tokens exist by then
        mine = {(m, a, s): (int(x), int(n)) for m, a, s, x, n in world.sql(
            "select market, account, side, amount_raw, shares_raw from fct_positions "
            "where snapshot_block = ? and venue = 'aave_v3'", [block])}
        for (issuer, underlying, side), (token, reserve) in tokens.items():
            for venue, held_reserve, held_side, account in named:
                if (venue, held_reserve, held_side) != (issuer, reserve, side):
                    continue
                who = to_checksum_address(account)
                balance = int(token.call("balanceOf", who, block=block))
                scaled = int(token.call("scaledBalanceOf", who, block=block))
                assert mine.get((reserve, account, side), (0, 0)) == (balance, scaled), (
                    block, underlying, side, account)
                compared += bool(scaled)
                grown += balance > scaled
    assert compared > 150 and grown > 25


def test_interest_made_the_balances_outgrow_the_principal(interest_world: World) -> None:
    world = interest_world
    last = max(world.snapshots())
    usdc = world.registry.token("USDC").address.lower()
    (updates,), = world.sql("select count(*) from stg_aave_reserve_updates where reserve = ? "
                            "and variable_borrow_rate > 0", [usdc])
    assert updates >= 8
    for account, side in ((LENDER_C, "collateral"), (LIMIT_BORROWER, "debt")):
        (held, principal), = world.sql(
            "select p.amount_raw, (select sum(sign * amount_raw) from stg_flows as f "
            "  where f.venue = 'aave_v3' and f.token = p.token and f.account = p.account "
            "  and f.side = p.side) "
            "from fct_positions as p where p.snapshot_block = ? and p.venue = 'aave_v3' "
            "and p.token = ? and p.account = ? and p.side = ?",
            [last, usdc, account.lower(), side])
        assert held > principal > 0, (account, side)
    (treasury,), = world.sql("select amount_raw from fct_positions where snapshot_block = ? "
                             "and venue = 'aave_v3' and account = ?", [last, TREASURY.lower()])
    assert treasury > 0
    # each mintToTreasury logged what it minted: the treasury aToken Mint's value less the
    # interest its balance had earned since
    minted = world.sql(
        "select m.amount_minted::hugeint, t.value::hugeint - t.balance_increase::hugeint "
        "from src_aave_v3__minted_to_treasury as m join src_aave_v3__mint as t "
        "  on t.transaction_hash = m.transaction_hash and t.log_index < m.log_index "
        "where '0x' || lower(hex(t.on_behalf_of)) = ? order by m.block_number",
        [TREASURY.lower()])
    assert len(minted) == 2 and all(logged == value > 0 for logged, value in minted)


def test_liquidations_after_interest_are_decided_and_valid(interest_world: World) -> None:
    rows = interest_world.sql(
        "select h.valid, h.reason, h.health_raw, h.block_number, h.transaction_hash "
        "from fct_liquidation_audit as h "
        "where h.venue = 'aave_v3' and h.borrower = ?", [LIMIT_BORROWER.lower()])
    assert len(rows) == 2
    for valid, reason, health, block, tx in rows:
        assert valid is True, reason
        assert 9 * 10**17 < int(health) < 10**18
        # the health the pool computed, from the scaled balances its trace shows it read
        row = {"block_number": block, "transaction_hash": tx}
        assert int(health) == aave_health_from_trace(interest_world, row)


def test_truth_check_compares_aave_balances_and_scaled_balances(interest_world: World) -> None:
    world = interest_world
    with connect_readonly(world.db) as con:
        for block in world.snapshots()[-3:]:
            report = truth_check(world.client, con, world.registry, block, sample=None)
            assert report.ok, report.summary()
            assert report.accounts["aave_v3"] >= 6


def test_the_blocking_checks_hold_with_interest(interest_world: World) -> None:
    with connect_readonly(interest_world.db) as con:
        failed = [(r.check.name, r.sample) for r in run_checks(con)
                  if r.check.severity == "error" and not r.passed]
    assert failed == []

