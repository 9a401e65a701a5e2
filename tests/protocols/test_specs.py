"""Every event spec's topic0, computed from its Solidity declaration, is the real one; every event
the devnet contracts can emit has a spec; the catalog maps each spec to its own table."""

from __future__ import annotations

from pathlib import Path

import pytest

from contagion.devnet.abi import event_topic0
from contagion.devnet.compile import compile_contract
from contagion.protocols import ALL_EVENTS
from contagion.protocols.decode import CATALOG, EventLayout, snake_case
from contagion.protocols.spec import event

CONTRACTS = sorted(p.stem for p in (Path(__file__).parents[2] / "contagion" / "devnet"
                                    / "contracts").glob("*.vy"))


@pytest.mark.parametrize("spec", ALL_EVENTS, ids=lambda s: f"{s.protocol}.{s.name}")
def test_topic0_from_the_declaration_is_the_onchain_one(spec: object) -> None:
    from contagion.protocols.spec import EventSpec

    assert isinstance(spec, EventSpec)
    assert spec.topic0 == spec.topic0_onchain, spec.declaration


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_devnet_event_has_a_spec(name: str) -> None:
    known = {(s.topic0, s.topic_count) for s in ALL_EVENTS}
    for entry in compile_contract(name).abi:
        if entry.get("type") == "event":
            topics = 1 + sum(bool(i.get("indexed")) for i in entry["inputs"])
            assert (event_topic0(entry), topics) in known, f"{name}.{entry['name']} has no spec"


def test_table_names_and_columns() -> None:
    assert snake_case("onBehalfOf") == "on_behalf_of"
    assert snake_case("AccountOwner") == "account_owner"
    assert snake_case("amount0In") == "amount0_in"
    assert snake_case("sqrtPriceX96") == "sqrt_price_x96"
    assert snake_case("OtokenCreated") == "otoken_created"
    morpho = CATALOG.layout("morpho_blue__create_market")
    assert morpho.schema.names[-5:] == [
        "market_params_loan_token", "market_params_collateral_token", "market_params_oracle",
        "market_params_irm", "market_params_lltv"]
    assert str(morpho.schema.field("market_params_lltv").type) == "string"
    sync = CATALOG.layout("uniswap_v2__sync")
    assert str(sync.schema.field("reserve0").type) == "string"  # uint112: exact decimal text
    borrow = CATALOG.layout("aave_v3__borrow")
    assert str(borrow.schema.field("interest_rate_mode").type) == "uint8"
    assert str(borrow.schema.field("referral_code").type) == "uint16"
    assert str(CATALOG.layout("uniswap_v3__swap").schema.field("tick").type) == "int32"
    # the shared Transfer signature: ERC-20 is the default, Comet claims its own contract's logs
    transfer_key = next(k for k, v in CATALOG.by_key.items()
                        if "erc20__transfer" in [lay.table for lay in v])
    assert [lay.table for lay in CATALOG.by_key[transfer_key]] == [
        "erc20__transfer", "compound_v3__transfer"]


def test_dynamic_types_and_clashing_names_are_refused() -> None:
    with pytest.raises(ValueError, match="static elementary"):
        EventLayout.of(event("x", "Note(string text)", "0x" + "0" * 64))
    with pytest.raises(ValueError, match="clash"):
        EventLayout.of(event("x", "Odd(uint256 blockNumber)", "0x" + "0" * 64))
