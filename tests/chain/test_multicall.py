"""The hand-written Multicall3 codec agrees with eth_abi, and aggregate3 on the devnet returns
what the same calls return one by one."""

from __future__ import annotations

import pytest
from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from contagion.chain.multicall import (
    AGGREGATE3,
    Call,
    aggregate3,
    decode_aggregate3,
    encode_aggregate3,
    words,
)

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
calls = st.lists(st.builds(Call, addresses, st.binary(max_size=200)), max_size=12)


@given(calls)
def test_encoding_matches_eth_abi(batch: list[Call]) -> None:
    expected = AGGREGATE3 + encode(["(address,bool,bytes)[]"],
                                   [[(c.target, True, c.data) for c in batch]])
    assert encode_aggregate3(batch) == expected


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200)), max_size=12))
def test_decoding_matches_eth_abi(results: list[tuple[bool, bytes]]) -> None:
    data = encode(["(bool,bytes)[]"], [results])
    assert decode_aggregate3(data) == results
    assert list(decode(["(bool,bytes)[]"], data)[0]) == results


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=2**256 - 1), max_size=6))
def test_static_words(values: list[int]) -> None:
    assert words(encode(["uint256"] * len(values), values)) == tuple(values)


@pytest.mark.devnet
def test_aggregate3_on_the_devnet(base: tuple) -> None:  # type: ignore[type-arg]
    driver, world, _ = base
    weth, usdc = world.tokens["WETH"], world.tokens["USDC"]
    batch = [Call(weth.address, bytes.fromhex(weth.data("decimals")[2:])),
             Call(usdc.address, bytes.fromhex(usdc.data("decimals")[2:])),
             Call(usdc.address, bytes.fromhex(usdc.data("totalSupply")[2:])),
             # a call that reverts: transfer from the multicall itself, which holds nothing
             Call(usdc.address, bytes.fromhex(usdc.data("transfer", weth.address, 1)[2:]))]
    out = aggregate3(driver.client, world.multicall.address, batch)
    assert [words(x)[0] if x is not None else None for x in out] == \
        [weth.call("decimals"), usdc.call("decimals"), usdc.call("totalSupply"), None]
    # more calls than one eth_call carries are split and keep their order
    many = [batch[i % 3] for i in range(2500)]
    assert [words(x or b"")[0] for x in aggregate3(driver.client, world.multicall.address,
                                                   many)] == \
        [18, 6, usdc.call("totalSupply")] * 833 + [18]
