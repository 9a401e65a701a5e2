from __future__ import annotations

from contagion.devnet.base import BaseWorld, mint, usd_feed_answer
from contagion.devnet.driver import DevnetDriver

ALICE = "0x00000000000000000000000000000000000a11ce"


def test_tokens_feeds_and_amm(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    assert world.tokens["USDC"].call("decimals") == 6
    assert world.tokens["WBTC"].call("decimals") == 8
    round_id, answer, _, updated, _ = world.feeds["WETH"].call("latestRoundData")
    assert answer == usd_feed_answer(2000) and round_id == 1 and updated > 0

    pair = world.pairs["WETH/USDC"]
    weth, usdc = world.tokens["WETH"], world.tokens["USDC"]
    mint(world, "WETH", ALICE, 110 * 10**18)
    mint(world, "USDC", ALICE, 200_000 * 10**6)
    weth.tx(ALICE, "approve", pair.address, 2**256 - 1)
    usdc.tx(ALICE, "approve", pair.address, 2**256 - 1)
    token0 = pair.call("token0")
    amounts = (100 * 10**18, 200_000 * 10**6)
    if token0.lower() != weth.address.lower():
        amounts = amounts[::-1]
    pair.tx(ALICE, "add_liquidity", *amounts, ALICE)
    _, ts = driver.mine_all(ts + 12)
    r0, r1, _ = pair.call("getReserves")
    assert (r0, r1) == amounts

    # A 10 ETH sell moves the price along x*y=k with the 0.3% fee.
    expected_out = pair.call("getAmountOut", weth.address, 10 * 10**18)
    pair.tx(ALICE, "swap_exact_in", weth.address, 10 * 10**18, expected_out, ALICE)
    _, ts = driver.mine_all(ts + 12)
    reserve_weth, reserve_usdc = 110 * 10**18, 200_000 * 10**6 - expected_out
    fee_in = 10 * 10**18 * 997
    assert expected_out == fee_in * 200_000 * 10**6 // (100 * 10**18 * 1000 + fee_in)
    r0, r1, _ = pair.call("getReserves")
    assert {r0, r1} == {reserve_weth, reserve_usdc}
    assert usdc.call("balanceOf", ALICE) == expected_out


def test_feed_update_and_lst_stake(base: tuple[DevnetDriver, BaseWorld, int]) -> None:
    driver, world, ts = base
    from contagion.devnet.driver import DEPLOYER

    world.feeds["stETH"].tx(DEPLOYER, "transmit", usd_feed_answer(1800))
    world.tokens["stETH"].tx(DEPLOYER, "set_redemption_rate", 11 * 10**17)
    _, ts = driver.mine_all(ts + 12)
    assert world.feeds["stETH"].call("latestAnswer") == usd_feed_answer(1800)
    assert world.feeds["stETH"].call("latestRound") == 2
    mint(world, "stETH", ALICE, 10 * 10**18)  # 11 WETH staked at 1.1 -> 10 shares
    _, ts = driver.mine_all(ts + 12)
    assert world.tokens["stETH"].call("balanceOf", ALICE) == 10 * 10**18
    assert world.tokens["stETH"].call("getStETHByWstETH", 10 * 10**18) == 11 * 10**18
