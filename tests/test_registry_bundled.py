"""The bundled registries (contagion/registries/*.yaml): they load, every address is checksummed,
and they agree with real data — the Aave pools and reserves seen in real logs, and the mainnet
aToken list."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from contagion.registry import Registry, RegistryError, load_registry, parse_registry

SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
LOGS = SHARED_REAL / "logs"
AAVE_SUPPLY = "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61"
MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"

NETWORKS = {"ethereum": 1, "arbitrum": 42161, "optimism": 10, "base": 8453}
AAVE_VENUE = {"ethereum": "aave_v3_core", "arbitrum": "aave_v3", "optimism": "aave_v3",
              "base": "aave_v3"}


def _logs_for(chain_id: int) -> list[dict[str, Any]]:
    if not LOGS.is_dir():
        pytest.skip(f"real log data not found at {LOGS} (shared/ sits beside the repo)")
    files = sorted(LOGS.glob(f"chain-{chain_id}-*.json"))
    if not files:
        pytest.skip(f"no real logs for chain {chain_id} in {LOGS}")
    out: list[dict[str, Any]] = []
    for f in files:
        out.extend(json.loads(f.read_text()))
    return out


def _topic_address(topic: str) -> str:
    return to_checksum_address("0x" + topic[-40:])


def _all_addresses(reg: Registry) -> list[tuple[str, str]]:
    out = [(f"tokens[{t.symbol}]", t.address) for t in reg.tokens]
    out += [(f"feeds[{f.id}]", f.address) for f in reg.feeds]
    out += [(f"venues[{v.id}].contracts[{role}]", a)
            for v in reg.venues for role, a in v.contracts.items()]
    if reg.multicall is not None:
        out.append(("multicall", reg.multicall))
    return out


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_bundled_registry_loads_with_right_chain(network: str) -> None:
    reg = load_registry(network)
    assert reg.network == network
    assert reg.chain_id == NETWORKS[network]
    assert reg.multicall == MULTICALL3
    aave = reg.venue(AAVE_VENUE[network])
    assert aave.protocol == "aave_v3" and aave.kind == "lending"
    assert next(iter(aave.contracts)) == "pool"
    # every aToken is a claim of the Aave venue on its underlying, and has a debt-token sibling
    atokens = [t for t in reg.tokens if t.kind == "atoken"]
    assert atokens
    claims = {c.token: c for c in reg.claims}
    for t in atokens:
        assert t.issued_by == aave.id and t.underlying is not None
        assert claims[t.symbol].issuer == aave.id and claims[t.symbol].on == [t.underlying]
    debt_underlyings = {t.underlying for t in reg.tokens if t.kind == "debt_token"}
    assert {t.underlying for t in atokens} <= debt_underlyings
    assert {m.id for m in aave.markets} == {t.underlying for t in atokens}


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_every_address_is_checksummed_and_unique(network: str) -> None:
    reg = load_registry(network)
    for where, value in _all_addresses(reg):
        assert value == to_checksum_address(value), f"{network} {where}: {value} not checksummed"
    token_addrs = [t.address for t in reg.tokens]
    assert len(token_addrs) == len(set(token_addrs)), f"{network}: duplicate token address"


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_aave_pool_and_reserves_match_real_logs(network: str) -> None:
    chain_id = NETWORKS[network]
    logs = _logs_for(chain_id)
    reg = load_registry(network)
    pool = reg.venue(AAVE_VENUE[network]).contracts["pool"]
    supplies = [log for log in logs if log["topics"] and log["topics"][0] == AAVE_SUPPLY]
    assert supplies, f"no Aave Supply events in the chain-{chain_id} logs"
    assert {to_checksum_address(log["address"]) for log in supplies} == {pool}
    reserves = {_topic_address(log["topics"][1]) for log in supplies}
    known = {t.address for t in reg.tokens if t.kind not in ("atoken", "debt_token")}
    missing = sorted(reserves - known)
    assert not missing, f"{network}: reserves supplied in real logs but not in registry: {missing}"


def test_ethereum_atokens_match_csv() -> None:
    path = SHARED_REAL / "aave_atokens_v3.csv"
    if not path.is_file():
        pytest.skip(f"real aToken list not found at {path} (shared/ sits beside the repo)")
    reg = load_registry("ethereum")
    by_underlying = {t.underlying: t for t in reg.tokens if t.kind == "atoken"}
    debt = {t.underlying: t for t in reg.tokens if t.kind == "debt_token"}
    rows = list(csv.DictReader(path.open()))
    assert rows
    for row in rows:
        sym = row["symbol"]
        underlying = reg.token(sym)
        assert underlying.address == to_checksum_address(row["address"])
        assert underlying.decimals == int(row["decimals"])
        atoken = by_underlying[sym]
        assert atoken.address == to_checksum_address(row["aTokenAddress"])
        assert atoken.symbol == f"aEth{sym}"
        assert atoken.decimals == int(row["decimals"])
        assert debt[sym].address == to_checksum_address(row["variableDebtTokenAddress"])


def test_ethereum_other_venues() -> None:
    reg = load_registry("ethereum")
    assert reg.venue("compound_v3_usdc").contracts["comet"] == \
        "0xc3d688B66703497DAA19211EEdff47f25384cdc3"
    assert reg.venue("compound_v3_weth").contracts["comet"] == \
        "0xA17581A9E3356d9A858b789D68B4d866e593aE94"
    assert reg.venue("morpho_blue").contracts["morpho"] == \
        "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"
    assert reg.venue("lido").protocol == "lido"
    lst_claims = {c.token: c for c in reg.claims if c.kind == "lst"}
    assert lst_claims["stETH"].on == ["WETH"] and lst_claims["wstETH"].on == ["WETH"]
    assert lst_claims["stETH"].issuer == lst_claims["wstETH"].issuer == "lido"
    feeds = {f.id: f for f in reg.feeds}
    assert feeds["chainlink_eth_usd"].address == "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
    assert feeds["chainlink_btc_usd"].base == "WBTC"
    for f in reg.feeds:  # Chainlink's USD feeds have 8 decimals, its ETH ones 18
        if f.protocol == "chainlink":
            assert (f.decimals, f.quote) in {(8, "USD"), (18, "WETH")}, f.id
    # wstETH: Lido's share rate as stEthPerToken() reads it, at the stETH contract
    rate = feeds["lido_wsteth_steth"]
    assert (rate.protocol, rate.address, rate.decimals, rate.base, rate.quote) == (
        "lido", reg.token("stETH").address, 18, "wstETH", "stETH")


# Tokens a bundled registry still cannot price: no Chainlink feed of their own was confirmed
# (USDG, the L2 bridged stablecoins, Base's ETH-quoted feeds, weETH).
UNPRICED = {
    "ethereum": {"USDG"},
    "arbitrum": {"USDCe", "WBTC", "weETH", "DAI", "LINK"},
    "optimism": {"USDCe", "USDT", "DAI"},
    "base": {"USDbC", "wstETH", "weETH"},
}


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_every_market_token_has_a_price_but_the_known_gaps(network: str) -> None:
    """A market's collateral or loan token is priced by a feed of its own (in USD or in a token
    priced so), or as an aToken by its underlying's; the gaps are listed, so a new one shows."""
    reg = load_registry(network)
    by_symbol = {t.symbol: t for t in reg.tokens}
    priced = {f.base for f in reg.feeds if f.kind == "price"}

    def has_price(symbol: str) -> bool:
        token = by_symbol[symbol]
        return symbol in priced or (token.kind in ("atoken", "debt_token")
                                    and token.underlying in priced)

    used = {s for v in reg.venues for m in v.markets for s in [*m.collateral, m.loan] if s}
    assert {s for s in used if not has_price(s)} == UNPRICED[network]


# --- negative: the schema rejects bad registries and names the field ---------------------------

def _minimal() -> dict[str, Any]:
    return {
        "network": "t", "chain_id": 1,
        "tokens": [{"symbol": "WETH", "address": "0x" + "11" * 20, "decimals": 18},
                   {"symbol": "aWETH", "address": "0x" + "22" * 20, "decimals": 18,
                    "kind": "atoken", "issued_by": "pool", "underlying": "WETH"}],
        "venues": [{"id": "pool", "protocol": "aave_v3", "kind": "lending",
                    "contracts": {"pool": "0x" + "33" * 20}}],
        "claims": [{"token": "aWETH", "issuer": "pool", "on": ["WETH"], "kind": "atoken"}],
    }


def test_minimal_registry_parses() -> None:
    assert parse_registry(_minimal()).venue("pool").protocol == "aave_v3"


def test_unknown_field_is_rejected_by_name() -> None:
    data = _minimal()
    data["tokens"][0]["colour"] = "blue"
    with pytest.raises(RegistryError, match="colour"):
        parse_registry(data)


def test_bad_address_is_rejected_by_name() -> None:
    data = copy.deepcopy(_minimal())
    data["venues"][0]["contracts"]["pool"] = "0x1234"
    with pytest.raises(RegistryError) as exc:
        parse_registry(data)
    assert "contracts.pool" in str(exc.value) and "0x1234" in str(exc.value)


def test_claim_to_unknown_venue_is_rejected_by_name() -> None:
    data = _minimal()
    data["claims"][0]["issuer"] = "nowhere"
    with pytest.raises(RegistryError) as exc:
        parse_registry(data)
    assert "claims[aWETH].issuer" in str(exc.value) and "nowhere" in str(exc.value)


def test_unknown_bundled_network_is_an_error() -> None:
    with pytest.raises(RegistryError, match="bundled"):
        load_registry("no-such-network")


@pytest.mark.parametrize("spelling", [str.lower, lambda a: a])
def test_duplicate_token_address_is_rejected_by_address(spelling: Any) -> None:
    """Two tokens at one address (even spelt in another case) would double every position."""
    data = _minimal()
    address = "0x" + "aB" * 20
    data["tokens"][0]["address"] = address
    data["tokens"].append({"symbol": "GOV", "address": spelling(address), "decimals": 18})
    with pytest.raises(RegistryError) as exc:
        parse_registry(data)
    assert "duplicate token address" in str(exc.value)
    assert spelling(address) in str(exc.value) and "WETH" in str(exc.value)


def test_two_venues_sharing_a_contract_are_rejected_by_name() -> None:
    data = _minimal()
    data["venues"].append({"id": "pool2", "protocol": "aave_v3", "kind": "lending",
                           "contracts": {"pool": "0x" + "33" * 20}})
    with pytest.raises(RegistryError) as exc:
        parse_registry(data)
    assert "pool and pool2" in str(exc.value) and "0x" + "33" * 20 in str(exc.value)


def test_a_venue_contract_may_be_a_token_it_issues() -> None:
    """Lido's entry point is the stETH token itself."""
    data = _minimal()
    data["tokens"].append({"symbol": "stETH", "address": "0x" + "44" * 20, "decimals": 18,
                           "kind": "lst", "issued_by": "lido", "underlying": "WETH"})
    data["venues"].append({"id": "lido", "protocol": "lido", "kind": "staking",
                           "contracts": {"lst": "0x" + "44" * 20}})
    assert parse_registry(data).venue("lido").main_contract == "0x" + "44" * 20


@pytest.mark.parametrize("kind", ["price", "implied_vol", "risk_reversal"])
def test_feed_on_unknown_token_is_rejected_by_name(kind: str) -> None:
    data = _minimal()
    data["feeds"] = [{"id": "ETH_X", "address": "0x" + "55" * 20, "decimals": 8, "kind": kind,
                      "base": "ETHH"}]
    with pytest.raises(RegistryError) as exc:
        parse_registry(data)
    assert "feeds[ETH_X].base" in str(exc.value) and "ETHH" in str(exc.value)


def _quoted(*feeds: tuple[str, str, str]) -> dict[str, Any]:
    """The minimal registry with stETH and rETH, and price feeds (id, base, quote)."""
    data = _minimal()
    data["tokens"] += [{"symbol": "stETH", "address": "0x" + "44" * 20, "decimals": 18},
                       {"symbol": "rETH", "address": "0x" + "66" * 20, "decimals": 18}]
    data["feeds"] = [{"id": fid, "address": "0x" + f"{0x70 + k:02x}" * 20, "decimals": 18,
                      "base": base, "quote": quote}
                     for k, (fid, base, quote) in enumerate(feeds)]
    return data


def test_a_price_feed_quotes_in_usd_or_a_token_of_the_registry() -> None:
    """A price in another token is multiplied by that token's USD price, so the quote must be
    a token the registry knows; what a feed is in says `quote_address` (USD's address too)."""
    reg = parse_registry(_quoted(("ETH/USD", "WETH", "USD"), ("STETH/ETH", "stETH", "WETH")))
    usd, in_eth = reg.feeds
    assert reg.quote_address(usd) == "0x0000000000000000000000000000000000000348"
    assert reg.quote_address(in_eth) == "0x" + "11" * 20
    with pytest.raises(RegistryError) as exc:
        parse_registry(_quoted(("STETH/ETH", "stETH", "ETH")))
    assert "feeds[STETH/ETH].quote" in str(exc.value) and "'ETH'" in str(exc.value)


def test_price_feeds_quoting_in_a_circle_are_rejected() -> None:
    """stETH in rETH, rETH in stETH: neither would ever reach USD."""
    with pytest.raises(RegistryError) as exc:
        parse_registry(_quoted(("ETH/USD", "WETH", "USD"), ("S/R", "stETH", "rETH"),
                               ("R/S", "rETH", "stETH")))
    assert "circle" in str(exc.value) and "stETH in rETH in stETH" in str(exc.value)
    # a chain is fine: rETH in stETH in WETH in USD
    parse_registry(_quoted(("ETH/USD", "WETH", "USD"), ("S/E", "stETH", "WETH"),
                           ("R/S", "rETH", "stETH")))


def test_a_lido_feed_is_a_share_rate_in_a_token() -> None:
    """Lido's share rate is logged by the stETH contract itself and is in stETH: a lido feed
    quoted in USD, of a vol kind, or with aggregators is refused by name."""
    data = _quoted(("ETH/USD", "WETH", "USD"), ("S/E", "stETH", "WETH"), ("RATE", "rETH", "stETH"))
    data["feeds"][2]["protocol"] = "lido"
    assert parse_registry(data).feeds[2].protocol == "lido"
    for wrong in ({"quote": "USD"}, {"kind": "implied_vol"},
                  {"aggregators": [{"aggregator": "0x" + "99" * 20}]}):
        bad = _quoted(("ETH/USD", "WETH", "USD"), ("RATE", "rETH", "stETH"))
        bad["feeds"][1] |= {"protocol": "lido", **wrong}
        with pytest.raises(RegistryError) as exc:
            parse_registry(bad)
        assert "feeds[RATE]: a lido feed" in str(exc.value), wrong
