"""Compound v3 base positions once a Comet market pays interest.

The warehouse still values them as Σ flows (docs/schema.md, "Snapshots"): Comet logs neither
its indexes nor principals. Until it reads them, the truth check is what stands between that
gap and a user: here it must name every base balance interest moved — supply and debt, chain
above the derived value — and nothing else. When the warehouse values Compound with interest,
this test becomes an equality test like tests/test_aave_positions.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import World, named_address, scenario_world

from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.protocols.compound_v3 import InterestRates
from contagion.registry import Registry
from contagion.truth import truth_check
from contagion.warehouse import connect_readonly

pytestmark = pytest.mark.devnet

SCENARIO = """
name: compound-interest
seed: 5
blocks: 10
accounts:
  liquidity_providers: {count: 2}
prices:
  ETH: {gbm: {start: 2000, vol: 0.1}}
  BTC: {gbm: {start: 30000, vol: 0.1}}
  USDC: {gbm: {start: 1.0}}
activity: 0.3
"""

WAD, DAY = 10**18, 86_400
VENUE = "compound_v3_usdc"
# USDC-like curves, yearly (1e18 = 100 %): kinks at 90 %
RATES = InterestRates.per_year(9 * 10**17, 5 * 10**16, 2 * WAD, 0,
                               9 * 10**17, 6 * 10**16, 3 * WAD, 15 * 10**15)


LENDER, BORROWER = named_address("compound/lender"), named_address("compound/borrower")


def _interest_at_compound(driver: DevnetDriver, registry: Registry) -> None:
    comet = driver.at("Comet", registry.venue(VENUE).main_contract)
    usdc, weth = (driver.at("ERC20", registry.token(s).address) for s in ("USDC", "WETH"))
    ts = int(driver.client.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16) + 12
    comet.tx(DEPLOYER, "setRates", *RATES)
    usdc.tx(DEPLOYER, "mint", LENDER, 500_000 * 10**6)
    weth.tx(DEPLOYER, "mint", BORROWER, 100 * WAD)
    usdc.tx(LENDER, "approve", comet.address, 2**256 - 1)
    weth.tx(BORROWER, "approve", comet.address, 2**256 - 1)
    comet.tx(LENDER, "supply", usdc.address, 500_000 * 10**6)
    comet.tx(BORROWER, "supply", weth.address, 100 * WAD)
    _, ts = driver.mine_all(ts)
    comet.tx(BORROWER, "withdraw", usdc.address, 100_000 * 10**6)
    _, ts = driver.mine_all(ts + 12)
    # a month of interest; the last block holds a log so the lake has its header
    usdc.tx(DEPLOYER, "mint", DEPLOYER, 1)
    driver.mine_all(ts + 30 * DAY)


@pytest.fixture(scope="module")
def interest_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with scenario_world(tmp_path_factory.mktemp("compound_interest") / "data", SCENARIO,
                        after_scenario=_interest_at_compound) as built:
        yield built


def test_the_truth_check_names_the_interest_compound_positions_miss(
        interest_world: World) -> None:
    world = interest_world
    (last,), = world.sql("select max(snapshot_block) from ref_snapshots")
    with connect_readonly(world.db) as con:
        report = truth_check(world.client, con, world.registry, last, sample=None)
    assert report.accounts[VENUE] >= 2
    missed = {(m.account.lower(), m.what): m for m in report.mismatches}
    # only Compound base balances differ, each by interest the flows do not carry
    assert {m.venue for m in report.mismatches} == {VENUE}
    assert {what for _, what in missed} <= {"base supply", "base debt"}
    assert all(m.on_chain > m.derived > 0 for m in report.mismatches)
    lent = missed[(LENDER.lower(), "base supply")]
    owed = missed[(BORROWER.lower(), "base debt")]
    assert lent.derived == 500_000 * 10**6 and owed.derived == 100_000 * 10**6
    # borrowers pay more than suppliers earn: the debt grew by a larger fraction
    assert owed.on_chain * lent.derived > lent.on_chain * owed.derived
