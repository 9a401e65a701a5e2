from __future__ import annotations

from typing import Any

import pytest
from conftest import contract_events, mine_receipts

from contagion.devnet.abi import event_topic0
from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.compile import compile_contract
from contagion.devnet.driver import DEPLOYER, DevnetDriver
from contagion.devnet.venues.compound_v3 import (
    MAX_UINT256,
    CompoundV3Venue,
    deploy_compound_v3,
)
from contagion.protocols import compound_v3 as spec

pytestmark = pytest.mark.devnet

ZERO = "0x" + "00" * 20
LP = "0x00000000000000000000000000000000000001f0"
ALICE = "0x00000000000000000000000000000000000a11ce"
BOB = "0x0000000000000000000000000000000000000b0b"
CAROL = "0x00000000000000000000000000000000000ca201"
DAVE = "0x000000000000000000000000000000000000da7e"
ABSORBER = "0x0000000000000000000000000000000000ab5042"

E18 = 10**18
USDC = 10**6
TARGET_RESERVES = 1_000 * USDC


def _deploy(driver: DevnetDriver, world: BaseWorld, ts: int) -> tuple[CompoundV3Venue, int]:
    # A plain ERC-20 stands in for an Aave aWETH: another venue's claim, priced by WETH's feed.
    aweth = driver.deploy("ERC20", "Aave Ethereum WETH", "aEthWETH", 18, label="aWETH")
    weth_feed = world.feeds["WETH"].address
    venue = deploy_compound_v3(
        driver,
        world,
        {
            "WETH": (
                world.tokens["WETH"].address,
                weth_feed,
                825 * 10**15,
                895 * 10**15,
                95 * 10**16,
                1_000 * E18,
            ),
            "aWETH": (aweth.address, weth_feed, 80 * 10**16, 85 * 10**16, 90 * 10**16, 1_000 * E18),
        },
        target_reserves=TARGET_RESERVES,
    )
    mint(world, "USDC", LP, 100_000 * USDC)
    world.tokens["USDC"].tx(LP, "approve", venue.comet.address, 2**256 - 1)
    venue.supply(LP, 100_000 * USDC)
    _, ts = driver.mine_all(ts + 12)
    return venue, ts


def _fund(world: BaseWorld, venue: CompoundV3Venue, account: str, symbol: str, amount: int) -> None:
    if symbol == "aWETH":
        venue.comet.driver.at("ERC20", venue.collaterals["aWETH"]).tx(
            DEPLOYER, "mint", account, amount
        )
        token = venue.comet.driver.at("ERC20", venue.collaterals["aWETH"])
    else:
        mint(world, symbol, account, amount)
        token = world.tokens[symbol]
    token.tx(account, "approve", venue.comet.address, 2**256 - 1)




def _reverts(driver: DevnetDriver, ts: int) -> int:
    """Mine the queue and check that its last transaction, and only that one, reverted."""
    hashes = driver.flush()
    ts += 12
    driver.mine(ts)
    *before, last = driver.receipts(hashes)
    assert all(r["status"] == "0x1" for r in before), before
    assert last["status"] == "0x0"
    return ts





def _events(receipts: list[dict[str, Any]], comet: str) -> list[tuple[Any, ...]]:
    events: list[tuple[Any, ...]] = contract_events(receipts, comet, spec.EVENTS)
    return events

def test_supply_borrow_repay_withdraw(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    venue, ts = _deploy(driver, world, ts)
    comet, usdc, weth = venue.comet, world.tokens["USDC"], world.tokens["WETH"]
    w = weth.address.lower()
    assert comet.call("baseToken") == usdc.address.lower()
    assert comet.call("baseTokenPriceFeed") == world.feeds["USDC"].address.lower()
    assert comet.call("numAssets") == 2
    assert comet.call("getAssetInfoByAddress", weth.address) == (
        0,
        w,
        world.feeds["WETH"].address.lower(),
        E18,
        825 * 10**15,
        895 * 10**15,
        95 * 10**16,
        1_000 * E18,
    )
    assert comet.call("getPrice", world.feeds["WETH"].address) == usd_feed_answer(2000)
    assert comet.call("totalSupply") == 100_000 * USDC
    assert venue.supply_balance(LP) == 100_000 * USDC

    _fund(world, venue, ALICE, "WETH", 10 * E18)
    venue.supply_collateral(ALICE, "WETH", 10 * E18)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [("SupplyCollateral", ALICE, ALICE, w, 10 * E18)]
    assert venue.collateral_balance(ALICE, "WETH") == 10 * E18
    assert comet.call("totalsCollateral", weth.address) == (10 * E18, 0)

    # Below the minimum borrow, then beyond the borrow CF (10 WETH x 2000 x 0.825 = 16,500).
    venue.withdraw(ALICE, 99 * USDC)
    ts = _reverts(driver, ts)
    venue.withdraw(ALICE, 16_500 * USDC + 1)
    ts = _reverts(driver, ts)
    venue.withdraw(ALICE, 16_500 * USDC)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [("Withdraw", ALICE, ALICE, 16_500 * USDC)]
    assert venue.borrow_balance(ALICE) == 16_500 * USDC
    assert venue.supply_balance(ALICE) == 0
    assert comet.call("totalBorrow") == 16_500 * USDC
    assert usdc.call("balanceOf", ALICE) == 16_500 * USDC
    assert comet.call("isBorrowCollateralized", ALICE) is True
    assert venue.reserves() == 0
    # At the boundary, not a wei of collateral may leave.
    venue.withdraw_collateral(ALICE, "WETH", 1)
    ts = _reverts(driver, ts)

    # Repay with 17,000: 16,500 wipes the debt, only the 500 left over is minted as supply.
    mint(world, "USDC", ALICE, 500 * USDC)
    usdc.tx(ALICE, "approve", comet.address, 2**256 - 1)
    venue.supply(ALICE, 17_000 * USDC)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("Supply", ALICE, ALICE, 17_000 * USDC),
        ("Transfer", ZERO, ALICE, 500 * USDC),
    ]
    assert venue.borrow_balance(ALICE) == 0
    assert venue.supply_balance(ALICE) == 500 * USDC
    assert comet.call("totalBorrow") == 0
    assert comet.call("totalSupply") == 100_500 * USDC

    # Withdraw 600 of a 500 supply: 500 burned (Transfer), 100 borrowed.
    venue.withdraw(ALICE, 600 * USDC)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("Withdraw", ALICE, ALICE, 600 * USDC),
        ("Transfer", ALICE, ZERO, 500 * USDC),
    ]
    assert venue.borrow_balance(ALICE) == 100 * USDC
    assert comet.call("totalSupply") == 100_000 * USDC
    assert comet.call("totalBorrow") == 100 * USDC

    # supplyTo from the LP repays Alice's debt exactly: no supply minted, no Transfer.
    mint(world, "USDC", LP, 100 * USDC)
    comet.tx(LP, "supplyTo", ALICE, usdc.address, 2**256 - 1)  # max = her whole debt
    venue.withdraw_collateral(ALICE, "WETH", 10 * E18)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("Supply", LP.lower(), ALICE, 100 * USDC),
        ("WithdrawCollateral", ALICE, ALICE, w, 10 * E18),
    ]
    assert venue.borrow_balance(ALICE) == 0
    assert venue.collateral_balance(ALICE, "WETH") == 0
    assert weth.call("balanceOf", ALICE) == 10 * E18
    assert comet.call("totalsCollateral", weth.address) == (0, 0)
    assert venue.reserves() == 0

    # Collateral transfer: Alice's claim moves to Bob's account.
    venue.supply_collateral(ALICE, "WETH", 2 * E18)
    comet.tx(ALICE, "transferAsset", BOB, weth.address, E18)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address)[1] == ("TransferCollateral", ALICE, BOB, w, E18)
    assert venue.collateral_balance(BOB, "WETH") == E18

    # Governance: only the owner re-risks an asset; the new cap binds the next supply.
    comet.tx(ALICE, "set_asset_risk", weth.address, 1, 2, 3, 4)
    ts = _reverts(driver, ts)
    venue.set_asset_risk("WETH", 5 * 10**17, 6 * 10**17, 9 * 10**17, 3 * E18)
    _, ts = mine_receipts(driver, ts)
    assert comet.call("getAssetInfoByAddress", weth.address)[4:] == (
        5 * 10**17,
        6 * 10**17,
        9 * 10**17,
        3 * E18,
    )
    venue.supply_collateral(ALICE, "WETH", E18)  # total 3: at the cap
    venue.supply_collateral(ALICE, "WETH", 1)
    ts = _reverts(driver, ts)


def test_absorb_credits_excess_and_buy_collateral(
    base: tuple[DevnetDriver, BaseWorld, int],
) -> None:
    driver, world, ts = base
    venue, ts = _deploy(driver, world, ts)
    comet = venue.comet
    aweth = venue.collaterals["aWETH"]
    _fund(world, venue, BOB, "aWETH", 10 * E18)
    venue.supply_collateral(BOB, "aWETH", 10 * E18)
    venue.withdraw(BOB, 16_000 * USDC)  # 10 x 2000 x 0.80
    _, ts = mine_receipts(driver, ts)

    assert venue.is_liquidatable(BOB) is False
    venue.absorb(ABSORBER, [BOB])
    ts = _reverts(driver, ts)

    # 10 x 1800 x 0.85 = 15,300 < 16,000: liquidatable; 10 x 1800 x 0.9 = 16,200 > debt.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1800))
    _, ts = mine_receipts(driver, ts)
    assert venue.is_liquidatable(BOB) is True
    assert venue.reserves() == 0
    venue.absorb(ABSORBER, [BOB])
    receipts, ts = mine_receipts(driver, ts)
    a, b = ABSORBER.lower(), BOB.lower()
    assert _events(receipts, comet.address) == [
        ("AbsorbCollateral", a, b, aweth.lower(), 10 * E18, 18_000 * 10**8),
        ("AbsorbDebt", a, b, 16_200 * USDC, 16_200 * 10**8),
        ("Transfer", ZERO, b, 200 * USDC),
    ]
    assert venue.borrow_balance(BOB) == 0
    assert venue.supply_balance(BOB) == 200 * USDC
    assert venue.collateral_balance(BOB, "aWETH") == 0
    assert comet.call("totalsCollateral", aweth) == (0, 0)
    assert comet.call("getCollateralReserves", aweth) == 10 * E18
    assert comet.call("totalBorrow") == 0
    assert comet.call("totalSupply") == 100_200 * USDC
    assert venue.reserves() == -16_200 * USDC  # falls by basePaidOut
    assert venue.is_liquidatable(BOB) is False

    # Store front: 1800 x (1 - 0.6 x (1 - 0.9)) = 1692 per aWETH.
    quote = venue.quote_collateral("aWETH", 1_000 * USDC)
    assert quote == 1_000 * E18 // 1692
    mint(world, "USDC", DAVE, 50_000 * USDC)
    world.tokens["USDC"].tx(DAVE, "approve", comet.address, 2**256 - 1)
    venue.buy_collateral(DAVE, "aWETH", 1_000 * USDC, min_amount=quote + 1)
    ts = _reverts(driver, ts)
    venue.buy_collateral(DAVE, "aWETH", 20_000 * USDC)  # more than the 10 aWETH held
    ts = _reverts(driver, ts)
    venue.buy_collateral(DAVE, "aWETH", 1_000 * USDC, min_amount=quote)
    receipts, ts = mine_receipts(driver, ts)
    assert _events(receipts, comet.address) == [
        ("BuyCollateral", DAVE, aweth.lower(), 1_000 * USDC, quote)
    ]
    assert driver.at("ERC20", aweth).call("balanceOf", DAVE) == quote
    assert comet.call("getCollateralReserves", aweth) == 10 * E18 - quote
    assert venue.reserves() == -15_200 * USDC

    # Once reserves reach the target the store front closes.
    world.tokens["USDC"].tx(DAVE, "transfer", comet.address, 16_200 * USDC)
    _, ts = mine_receipts(driver, ts)
    assert venue.reserves() == TARGET_RESERVES
    venue.buy_collateral(DAVE, "aWETH", 100 * USDC)
    ts = _reverts(driver, ts)


def test_bad_debt_drives_reserves_negative(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    venue, ts = _deploy(driver, world, ts)
    comet = venue.comet
    weth, aweth = world.tokens["WETH"].address.lower(), venue.collaterals["aWETH"].lower()
    _fund(world, venue, CAROL, "WETH", 5 * E18)
    _fund(world, venue, CAROL, "aWETH", 5 * E18)
    venue.supply_collateral(CAROL, "WETH", 5 * E18)
    venue.supply_collateral(CAROL, "aWETH", 5 * E18)
    venue.withdraw(CAROL, 16_250 * USDC)  # 5 x 2000 x 0.825 + 5 x 2000 x 0.80
    _fund(world, venue, DAVE, "WETH", E18)
    venue.supply_collateral(DAVE, "WETH", E18)
    venue.withdraw(DAVE, 500 * USDC)
    _, ts = mine_receipts(driver, ts)
    assert venue.reserves() == 0

    # The WETH feed also prices aWETH: one crash hits both collaterals.
    world.feeds["WETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1000))
    _, ts = mine_receipts(driver, ts)
    assert venue.is_liquidatable(CAROL) and not venue.is_liquidatable(DAVE)
    venue.absorb(ABSORBER, [CAROL, DAVE])  # one healthy account fails the whole batch
    ts = _reverts(driver, ts)
    assert venue.borrow_balance(CAROL) == 16_250 * USDC

    venue.absorb(ABSORBER, [CAROL])
    receipts, ts = mine_receipts(driver, ts)
    a, c = ABSORBER.lower(), CAROL.lower()
    # Seized value x liquidation factor = 5000 x 0.95 + 5000 x 0.90 = 9,250 < 16,250 of debt.
    assert _events(receipts, comet.address) == [
        ("AbsorbCollateral", a, c, weth, 5 * E18, 5_000 * 10**8),
        ("AbsorbCollateral", a, c, aweth, 5 * E18, 5_000 * 10**8),
        ("AbsorbDebt", a, c, 16_250 * USDC, 16_250 * 10**8),
    ]
    assert venue.borrow_balance(CAROL) == 0 and venue.supply_balance(CAROL) == 0
    assert venue.collateral_balance(CAROL, "WETH") == 0
    assert venue.collateral_balance(CAROL, "aWETH") == 0
    assert comet.call("totalBorrow") == 500 * USDC  # Dave's
    assert comet.call("totalSupply") == 100_000 * USDC
    # The whole debt leaves reserves; the 7,000 not covered by the credited collateral value
    # is bad debt that selling the seized collateral cannot recover.
    assert venue.reserves() == -16_250 * USDC
    assert comet.call("getCollateralReserves", weth) == 5 * E18
    assert comet.call("getCollateralReserves", aweth) == 5 * E18

    # No rates were set: a year on, Dave still owes exactly what he took, indexes at 1e15.
    driver.mine(ts + 365 * 86_400)
    assert venue.borrow_balance(DAVE) == 500 * USDC and venue.principal(DAVE) == -500 * USDC
    assert venue.totals_basic()[:2] == (spec.BASE_INDEX_SCALE, spec.BASE_INDEX_SCALE)
    assert venue.reserves() == -16_250 * USDC


def test_event_topics_match_real_comet() -> None:
    for s in spec.EVENTS:
        assert s.topic0 == s.topic0_onchain, s.declaration
        assert s.real
    by_topic = {s.topic0: s for s in spec.EVENTS}
    abi_events = [e for e in compile_contract("Comet").abi if e["type"] == "event"]
    assert len(abi_events) == len(spec.EVENTS)
    for entry in abi_events:
        s = by_topic[event_topic0(entry)]
        assert s.name == entry["name"]
        assert [p.indexed for p in s.params] == [i["indexed"] for i in entry["inputs"]]


# -- interest: Comet's accounting tracked beside the chain, its math from the protocol module --
EVE = "0x0000000000000000000000000000000000000e7e"  # buys the absorbed collateral
TREASURY = "0x000000000000000000000000000000000000fee5"
MAX = MAX_UINT256
BCF, LCF, LF = 825 * 10**15, 895 * 10**15, 95 * 10**16  # WETH's factors
STORE_FRONT = 6 * 10**17
# USDC-like curves, given per year and divided to per second as Comet's constructor does:
# supply 3 % a year at the 90 % kink, +250 % beyond; borrow 1.5 % base, +3.5 % to the kink, +300 %
USDC_RATES = spec.InterestRates.per_year(
    supply_kink=9 * 10**17, supply_slope_low=3 * 10**16, supply_slope_high=25 * 10**17,
    supply_base=0, borrow_kink=9 * 10**17, borrow_slope_low=35 * 10**15,
    borrow_slope_high=3 * E18, borrow_base=15 * 10**15)

Ev = tuple[Any, ...]


def sdiv(a: int, b: int) -> int:
    """The EVM's signed division: rounds toward zero (b > 0)."""
    return -(-a // b) if a < 0 else a // b


def repay_and_supply(old: int, new: int) -> tuple[int, int]:
    if new < old:
        return 0, 0
    if new <= 0:
        return new - old, 0
    if old >= 0:
        return 0, new - old
    return -old, new


def withdraw_and_borrow(old: int, new: int) -> tuple[int, int]:
    if new > old:
        return 0, 0
    if new >= 0:
        return old - new, 0
    if old <= 0:
        return 0, old - new
    return old, -new


class CometModel:
    """One Comet market as Compound III runs it: signed principals, the repay/supply and
    withdraw/borrow splits, collateral checks, absorb and the store front; the interest math is
    contagion.protocols.compound_v3's. Each action returns the events it should log."""

    def __init__(self, weth: str, weth_price: int) -> None:
        self.si = self.bi = spec.BASE_INDEX_SCALE
        self.supply_base = self.borrow_base = 0  # principal totals
        self.last = self.now = 0
        self.rates = spec.ZERO_RATES
        self.principal: dict[str, int] = {}
        self.collateral: dict[str, int] = {}  # WETH by account
        self.held = 0  # USDC the market holds
        self.weth, self.weth_price, self.base_price = weth.lower(), weth_price, 10**8

    # -- interest ---------------------------------------------------------------------------
    def indices(self) -> tuple[int, int]:
        """The indexes brought forward to `now` (what the views use), not stored."""
        return spec.accrued_indices(self.si, self.bi, self.supply_base, self.borrow_base,
                                    self.rates, self.now - self.last)

    def accrue(self) -> None:
        self.si, self.bi = self.indices()
        self.last = self.now

    def stored(self) -> tuple[int, ...]:
        """totalsBasic()."""
        return (self.si, self.bi, 0, 0, self.supply_base, self.borrow_base, self.last, 0)

    # -- views ------------------------------------------------------------------------------
    def balance_of(self, who: str) -> int:
        p = self.principal.get(who, 0)
        return spec.present_value_supply(self.indices()[0], p) if p > 0 else 0

    def borrow_balance_of(self, who: str) -> int:
        p = self.principal.get(who, 0)
        return spec.present_value_borrow(self.indices()[1], -p) if p < 0 else 0

    def total_supply(self) -> int:
        return spec.present_value_supply(self.indices()[0], self.supply_base)

    def total_borrow(self) -> int:
        return spec.present_value_borrow(self.indices()[1], self.borrow_base)

    def reserves(self) -> int:
        return self.held - self.total_supply() + self.total_borrow()

    def liquidity(self, who: str, factor: int, accrued: bool = False) -> int | None:
        """Collateral x factor - debt in USD (8 dp), None without debt; at the stored indexes
        as Comet's checks are (or brought forward to `now`)."""
        p = self.principal.get(who, 0)
        if p >= 0:
            return None
        si, bi = self.indices() if accrued else (self.si, self.bi)
        debt = spec.present_value(si, bi, p)
        value = self.collateral.get(who, 0) * self.weth_price // E18
        return sdiv(debt * self.base_price, USDC) + value * factor // E18

    def collateralized(self, who: str) -> bool:
        liquidity = self.liquidity(who, BCF)
        return liquidity is None or liquidity >= 0

    def liquidatable(self, who: str, accrued: bool = False) -> bool:
        liquidity = self.liquidity(who, LCF, accrued)
        return liquidity is not None and liquidity < 0

    # -- actions ----------------------------------------------------------------------------
    def _present(self, principal: int) -> int:
        return spec.present_value(self.si, self.bi, principal)

    def _principal(self, balance: int) -> int:
        return spec.principal_value(self.si, self.bi, balance)

    def _minted(self, principal: int) -> int:
        return spec.present_value_supply(self.si, principal)

    def _check_borrow(self, who: str, balance: int) -> None:
        if balance < 0:
            assert -balance >= 100 * USDC and self.collateralized(who), who

    def set_rates(self, rates: spec.InterestRates) -> list[Ev]:
        self.accrue()  # at the old rates
        self.rates = rates
        return []

    def accrue_account(self) -> list[Ev]:
        self.accrue()
        return []

    def supply(self, who: str, amount: int) -> list[Ev]:
        if amount == MAX:
            amount = self.borrow_balance_of(who)
        self.held += amount
        self.accrue()
        old = self.principal.get(who, 0)
        new = self._principal(self._present(old) + amount)
        repay, supplied = repay_and_supply(old, new)
        self.supply_base += supplied
        self.borrow_base -= repay
        self.principal[who] = new
        out: list[Ev] = [("Supply", who, who, amount)]
        if supplied:
            out.append(("Transfer", ZERO, who, self._minted(supplied)))
        return out

    def withdraw(self, who: str, amount: int) -> list[Ev]:
        if amount == MAX:
            amount = self.balance_of(who)
        self.accrue()
        old = self.principal.get(who, 0)
        balance = self._present(old) - amount
        new = self._principal(balance)
        withdrawn, borrowed = withdraw_and_borrow(old, new)
        self.supply_base -= withdrawn
        self.borrow_base += borrowed
        self.principal[who] = new
        self._check_borrow(who, balance)
        self.held -= amount
        assert self.held >= 0
        out: list[Ev] = [("Withdraw", who, who, amount)]
        if withdrawn:
            out.append(("Transfer", who, ZERO, self._minted(withdrawn)))
        return out

    def transfer(self, src: str, dst: str, amount: int) -> list[Ev]:
        if amount == MAX:
            amount = self.balance_of(src)
        self.accrue()
        src_old, dst_old = self.principal.get(src, 0), self.principal.get(dst, 0)
        src_balance = self._present(src_old) - amount
        dst_balance = self._present(dst_old) + amount
        src_new, dst_new = self._principal(src_balance), self._principal(dst_balance)
        withdrawn, borrowed = withdraw_and_borrow(src_old, src_new)
        repay, supplied = repay_and_supply(dst_old, dst_new)
        self.supply_base += supplied - withdrawn
        self.borrow_base += borrowed - repay
        self.principal[src], self.principal[dst] = src_new, dst_new
        self._check_borrow(src, src_balance)
        out: list[Ev] = []
        if withdrawn:
            out.append(("Transfer", src, ZERO, self._minted(withdrawn)))
        if supplied:
            out.append(("Transfer", ZERO, dst, self._minted(supplied)))
        return out

    def supply_collateral(self, who: str, amount: int) -> list[Ev]:
        self.collateral[who] = self.collateral.get(who, 0) + amount
        return [("SupplyCollateral", who, who, self.weth, amount)]

    def withdraw_collateral(self, who: str, amount: int) -> list[Ev]:
        self.collateral[who] -= amount
        assert self.collateralized(who)
        return [("WithdrawCollateral", who, who, self.weth, amount)]

    def absorb(self, absorber: str, who: str) -> list[Ev]:
        self.accrue()
        assert self.liquidatable(who)
        old = self.principal[who]
        old_balance = self._present(old)
        seized = self.collateral.pop(who, 0)
        value = seized * self.weth_price // E18
        out: list[Ev] = [("AbsorbCollateral", absorber, who, self.weth, seized, value)]
        credit = value * LF // E18 * USDC // self.base_price
        new_balance = max(old_balance + credit, 0)
        new = self._principal(new_balance)
        repay, supplied = repay_and_supply(old, new)
        self.supply_base += supplied
        self.borrow_base -= repay
        self.principal[who] = new
        paid = new_balance - old_balance
        out.append(("AbsorbDebt", absorber, who, paid, paid * self.base_price // USDC))
        if new > 0:
            out.append(("Transfer", ZERO, who, self._minted(new)))
        return out

    def buy_collateral(self, buyer: str, base_amount: int) -> list[Ev]:
        """No accrual: the reserves are read brought forward, as in Comet."""
        assert self.reserves() < TARGET_RESERVES
        self.held += base_amount
        discount = STORE_FRONT * (E18 - LF) // E18
        price = self.weth_price * (E18 - discount) // E18
        amount = self.base_price * base_amount * E18 // price // USDC
        return [("BuyCollateral", buyer, self.weth, base_amount, amount)]

    def withdraw_reserves(self, to: str, amount: int) -> list[Ev]:
        """No accrual either."""
        assert 0 <= amount <= self.reserves()
        self.held -= amount
        return [("WithdrawReserves", to, amount)]


def test_interest_accrues_as_compound_iii(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    """A USDC market with USDC-like curves over two weeks of chain time: supplies, borrows up
    and past the kink, partial and max repayments and withdrawals, a transferAsset of base
    that turns a supply into a debt, a supply and a withdrawal that cross zero the other way,
    accrueAccount, reserves withdrawn (no accrual), a borrower absorbed once interest alone
    put them under water, the absorbed collateral bought, and everyone's exit. After each block
    the stored totals, utilization, rates, every account's principal, balances (brought
    forward to the block's time) and collateral checks, the totals, reserves and every event's
    values equal the model's, computed from its own previous state."""
    driver, world, ts = base
    usdc, weth = world.tokens["USDC"], world.tokens["WETH"]
    t0 = ts + 12
    venue = deploy_compound_v3(
        driver, world,
        {"WETH": (weth.address, world.feeds["WETH"].address, BCF, LCF, LF, 1_000 * E18)},
        target_reserves=TARGET_RESERVES)
    comet = venue.comet
    lp, alice, bob, carol = LP.lower(), ALICE.lower(), BOB.lower(), CAROL.lower()
    dave, eve, absorber, treasury = DAVE.lower(), EVE.lower(), ABSORBER.lower(), TREASURY.lower()
    people = [lp, alice, bob, carol, dave, eve, absorber, treasury]
    for who, symbol, amount in ((lp, "USDC", 100_000 * USDC), (bob, "USDC", 60_000 * USDC),
                                (carol, "USDC", 20_000 * USDC), (dave, "USDC", 200_000 * USDC),
                                (eve, "USDC", 20_000 * USDC), (alice, "WETH", 10 * E18),
                                (dave, "WETH", 100 * E18), (carol, "WETH", 5 * E18)):
        mint(world, symbol, who, amount)
        world.tokens[symbol].tx(who, "approve", comet.address, MAX)
    _, ts = driver.mine_all(t0)
    assert ts == t0
    model = CometModel(weth.address, usd_feed_answer(2000))
    model.now = model.last = t0

    def check(at: int | str) -> None:
        assert venue.totals_basic(at) == model.stored()
        u = spec.utilization(model.si, model.bi, model.supply_base, model.borrow_base)
        assert venue.utilization(at) == u
        assert venue.rates(at) == model.rates
        kink = USDC_RATES.supply_kink
        for x in (u, 0, kink // 2, kink, kink + 1, 95 * 10**16, E18, 12 * 10**17):
            assert comet.call("getSupplyRate", x, block=at) == spec.supply_rate(model.rates, x)
            assert comet.call("getBorrowRate", x, block=at) == spec.borrow_rate(model.rates, x)
        assert comet.call("totalSupply", block=at) == model.total_supply()
        assert comet.call("totalBorrow", block=at) == model.total_borrow()
        assert venue.reserves(at) == model.reserves()
        assert usdc.call("balanceOf", comet.address, block=at) == model.held
        for who in people:
            assert venue.principal(who, at) == model.principal.get(who, 0), who
            assert venue.supply_balance(who, at) == model.balance_of(who), who
            assert venue.borrow_balance(who, at) == model.borrow_balance_of(who), who
            assert comet.call("isLiquidatable", who, block=at) == model.liquidatable(who), who
            assert comet.call("isBorrowCollateralized", who, block=at) == \
                model.collateralized(who), who
            assert comet.call("collateralBalanceOf", who, weth.address, block=at) == \
                model.collateral.get(who, 0)

    def block(*expected: list[Ev]) -> None:
        """Mine the queue in one block at model.now: its Comet events and the state after it
        must be the model's."""
        receipts, _ = mine_at(driver, model.now)
        assert [r["status"] for r in receipts] == ["0x1"] * len(receipts)
        assert _events(receipts, comet.address) == [e for evs in expected for e in evs]
        check(int(receipts[0]["blockNumber"], 16))

    def reverts() -> None:
        receipts, _ = mine_at(driver, model.now)
        assert [r["status"] for r in receipts] == ["0x0"]

    # Deployed with zero rates: the indexes start at 1e15, the clock at the deploy block.
    check("latest")
    assert venue.rates() == spec.ZERO_RATES

    # The curves (accruing first, at the old, zero rates), liquidity and collateral.
    model.now = t1 = t0 + 12
    venue.set_rates(USDC_RATES)
    venue.supply(LP, 100_000 * USDC)
    venue.supply(BOB, 50_000 * USDC)
    venue.supply(CAROL, 10_000 * USDC)
    venue.supply_collateral(ALICE, "WETH", 10 * E18)
    venue.supply_collateral(DAVE, "WETH", 100 * E18)
    venue.supply_collateral(CAROL, "WETH", 5 * E18)
    block(model.set_rates(USDC_RATES), model.supply(lp, 100_000 * USDC),
          model.supply(bob, 50_000 * USDC), model.supply(carol, 10_000 * USDC),
          model.supply_collateral(alice, 10 * E18), model.supply_collateral(dave, 100 * E18),
          model.supply_collateral(carol, 5 * E18))
    assert venue.rates() == USDC_RATES and model.si == model.bi == spec.BASE_INDEX_SCALE

    # An hour on (the borrow index grew at the base rate on no borrows): two borrows, 85 %.
    model.now = t1 + 3600
    venue.withdraw(ALICE, 16_400 * USDC)  # 20,000 x 0.825 = 16,500 of borrowing power
    venue.withdraw(DAVE, 120_000 * USDC)
    block(model.withdraw(alice, 16_400 * USDC), model.withdraw(dave, 120_000 * USDC))
    assert model.bi > spec.BASE_INDEX_SCALE == model.si

    # A day on: Bob's top-up mints less principal than it brings (the index is above 1); Dave
    # borrows past the kink; the LP takes a little out.
    model.now = t1 + 86_400
    venue.supply(BOB, 5_000 * USDC)
    venue.withdraw(DAVE, 15_000 * USDC)
    venue.withdraw(LP, 1_000 * USDC)
    block(model.supply(bob, 5_000 * USDC), model.withdraw(dave, 15_000 * USDC),
          model.withdraw(lp, 1_000 * USDC))
    assert model.si > spec.BASE_INDEX_SCALE
    assert spec.utilization(model.si, model.bi, model.supply_base, model.borrow_base) > \
        USDC_RATES.borrow_kink

    # Three days: Carol sends Bob more than her supply; the rest she borrows against her WETH.
    model.now = t1 + 3 * 86_400
    venue.transfer_base(CAROL, BOB, 12_000 * USDC)
    block(model.transfer(carol, bob, 12_000 * USDC))
    assert model.principal[carol] < 0

    # Five days: WETH falls to just above Alice's liquidation price (2 bps of headroom at the
    # stored index); Dave repays part of his debt (no Transfer: nothing becomes supply).
    model.now = t1 + 5 * 86_400
    debt = model.borrow_balance_of(alice)
    price = -(-debt * 100 * 10_002 * E18 // (10_000 * 10 * LCF))
    world.feeds["WETH"].tx(DEPLOYER, "transmit", price)
    model.weth_price = price
    venue.supply(DAVE, 50_000 * USDC)
    block(model.supply(dave, 50_000 * USDC))
    assert not model.liquidatable(alice)

    # Six hours on: reserves have grown (borrowers pay more than suppliers earn); the governor
    # cannot take a unit more than them, takes half, and nothing accrues: the view is enough.
    model.now = t1 + 5 * 86_400 + 6 * 3600
    reserves = model.reserves()
    assert reserves > 0
    venue.withdraw_reserves(TREASURY, reserves + 1)
    reverts()
    model.now += 12
    half = model.reserves() // 2
    venue.withdraw_reserves(TREASURY, half)
    block(model.withdraw_reserves(treasury, half))
    assert model.last == t1 + 5 * 86_400
    assert usdc.call("balanceOf", TREASURY) > 0

    # Six days: anyone may store the accrual (no event); Alice is still safe.
    model.now = t1 + 6 * 86_400
    venue.accrue_account(ABSORBER, BOB)
    block(model.accrue_account())
    assert model.last == model.now and not model.liquidatable(alice)

    # Eight days, an empty block: with interest brought forward Alice is under water, but the
    # stored index (what isLiquidatable reads) does not say so yet.
    model.now = t1 + 8 * 86_400
    driver.mine(model.now)
    check("latest")
    assert model.liquidatable(alice, accrued=True) and not model.liquidatable(alice)
    assert venue.is_liquidatable(ALICE) is False
    # absorb accrues first: interest alone made her liquidatable. Her WETH, at 95 %, covers
    # more than the debt: the rest becomes her supply (the Transfer after AbsorbDebt).
    model.now += 12
    venue.absorb(ABSORBER, [ALICE])
    block(model.absorb(absorber, alice))
    assert model.principal[alice] > 0 and model.reserves() < 0

    # The store front sells the seized WETH at 1 - 0.6 x (1 - 0.95) of its price.
    model.now += 3600
    venue.buy_collateral(EVE, "WETH", 17_600 * USDC)
    block(model.buy_collateral(eve, 17_600 * USDC))

    # Nine days: Dave repays everything (max) and takes his WETH back; Carol repays her debt
    # and 500 more, which becomes supply.
    model.now = t1 + 9 * 86_400
    carol_pays = model.borrow_balance_of(carol) + 500 * USDC
    venue.supply(DAVE, MAX)
    venue.withdraw_collateral(DAVE, "WETH", 100 * E18)
    venue.supply(CAROL, carol_pays)
    block(model.supply(dave, MAX), model.withdraw_collateral(dave, 100 * E18),
          model.supply(carol, carol_pays))
    assert model.principal[dave] == 0 and model.principal[carol] > 0

    # Half a day later Carol withdraws more than her supply: burn and borrow in one Withdraw.
    model.now += 12 * 3600
    venue.withdraw(CAROL, 1_000 * USDC)
    block(model.withdraw(carol, 1_000 * USDC))
    assert model.principal[carol] < 0

    # Twelve days: everyone leaves with exactly what they are owed (max repay and withdrawals).
    model.now = t1 + 12 * 86_400
    venue.supply(CAROL, MAX)
    venue.withdraw_collateral(CAROL, "WETH", 5 * E18)
    for who in (LP, BOB, ALICE):
        venue.withdraw(who, MAX)
    block(model.supply(carol, MAX), model.withdraw_collateral(carol, 5 * E18),
          *(model.withdraw(w, MAX) for w in (lp, bob, alice)))
    assert model.supply_base == model.borrow_base == 0
    assert not any(model.principal.values())

    # What is left is reserves: the governor takes them all and the market holds no USDC.
    model.now += 3600
    reserves = model.reserves()
    venue.withdraw_reserves(TREASURY, reserves)
    block(model.withdraw_reserves(treasury, reserves))
    assert model.held == 0


def mine_at(driver: DevnetDriver, when: int) -> tuple[list[dict[str, Any]], int]:
    """Send the queue and mine it in one block at `when`; returns (receipts, next time)."""
    hashes = driver.flush()
    driver.mine(when)
    assert int(driver.client.call("txpool_status")["pending"], 16) == 0
    return driver.receipts(hashes), when + 12
