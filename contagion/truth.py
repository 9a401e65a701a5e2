"""Truth check: positions derived from events against the contracts' own state at a block.

For a sample of accounts at every venue, `eth_call` at the snapshot block asks each contract
what the account holds and compares it with `fct_positions` (exact integers, no tolerance):

- Aave v3: aToken `balanceOf` = collateral, variable-debt token `balanceOf` = debt, per reserve
  (interest to the snapshot's second included), and each token's `scaledBalanceOf`;
- Compound v3: `collateralBalanceOf(account, asset)`, `balanceOf` = base supply,
  `borrowBalanceOf` = debt;
- Morpho Blue: `position(id, account)`: supply shares, borrow shares, collateral; and the supply
  and debt in assets, those shares valued at the market's totals (`market(id)`) as the
  contract values them (supply rounded down, debt up, with Morpho's virtual shares);
- GMX-v1 perps: `getPosition(...)`'s collateral per position key (`int_perp_margin`), and the
  devnet vault's `lp_balances` = LP supply;
- the devnet options venue: each owner's vault collateral and short oTokens, summed over vaults;
- claim tokens in wallets (the LST, LP shares, oTokens): `balanceOf` = holding.

Known limits are documented in docs/schema.md (Comet base moved by `transferAsset` while it
borrows, options vaults after settlement); an account the check cannot describe is reported,
not skipped silently.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from contagion.chain.rpc import RpcClient, RpcItemError
from contagion.registry import Registry

__all__ = ["Mismatch", "TruthReport", "truth_check"]

# Morpho Blue's SharesMathLib: shares are valued against the totals plus these virtual amounts
_VIRTUAL_SHARES = 10**6
_VIRTUAL_ASSETS = 1


@dataclass(frozen=True)
class Mismatch:
    venue: str
    account: str
    what: str  # e.g. "collateral WETH", "debt shares 0x…"
    on_chain: int
    derived: int


@dataclass
class TruthReport:
    snapshot_block: int
    compared: int = 0  # values compared
    accounts: dict[str, int] = field(default_factory=dict)  # venue -> accounts sampled
    mismatches: list[Mismatch] = field(default_factory=list)
    # venues whose contracts refused a view this check reads (another chain's variant of the
    # protocol, say): venue -> the node's answer. Reported, never counted as equal.
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches and (self.compared > 0 or not self.unreadable)

    def summary(self) -> str:
        head = (f"block {self.snapshot_block}: {self.compared} values for "
                f"{sum(self.accounts.values())} accounts at {len(self.accounts)} venues")
        if self.unreadable:
            head += "; not readable: " + "; ".join(f"{v} ({why[:80]})"
                                                   for v, why in self.unreadable.items())
        if self.ok:
            return head + ": all equal the chain"
        lines = [f"{m.venue} {m.account} {m.what}: chain {m.on_chain}, derived {m.derived}"
                 for m in self.mismatches[:20]]
        return head + f": {len(self.mismatches)} differ\n" + "\n".join(lines)


@dataclass(frozen=True)
class _Call:
    to: str
    signature: str  # e.g. "balanceOf(address)"
    args: tuple[Any, ...]
    returns: tuple[str, ...]


class _Caller:
    """eth_call at one block, batched; each distinct call is sent once (a view's reply at a
    fixed block does not change, and one `position` reply serves several comparisons)."""

    def __init__(self, client: RpcClient, block: int) -> None:
        self.client, self.block = client, block
        self._answered: dict[_Call, tuple[Any, ...] | RpcItemError] = {}

    def run(self, calls: Sequence[_Call]) -> list[tuple[Any, ...]]:
        """Every call's decoded result; a call the node refuses raises _Refused."""
        out = self.try_run(calls)
        for call, result in zip(calls, out, strict=True):
            if isinstance(result, RpcItemError):
                raise _Refused(f"{call.signature} on {call.to}: {result.message}")
        return [r for r in out if not isinstance(r, RpcItemError)]

    def try_run(self, calls: Sequence[_Call]) -> list[tuple[Any, ...] | RpcItemError]:
        new = [c for c in dict.fromkeys(calls) if c not in self._answered]
        requests = []
        for c in new:
            types = c.signature[c.signature.index("(") + 1:-1]
            data = keccak(text=c.signature)[:4] + abi_encode(
                [t for t in types.split(",") if t], list(c.args))
            requests.append(("eth_call", [{"to": c.to, "data": "0x" + data.hex()},
                                          hex(self.block)]))
        for call, reply in zip(new, self.client.batch(requests) if requests else [],
                               strict=True):
            if isinstance(reply, RpcItemError):
                self._answered[call] = reply
                continue
            try:
                self._answered[call] = tuple(abi_decode(list(call.returns),
                                                        bytes.fromhex(reply[2:])))
            except Exception as exc:  # no code there, or a different return layout
                self._answered[call] = RpcItemError("eth_call", 0, f"undecodable reply: {exc}")
        return [self._answered[c] for c in calls]


class _Refused(RuntimeError):
    """The node refused a view (reverted, or no such function there)."""


def _sample(accounts: Sequence[str], size: int | None, seed: int) -> list[str]:
    ordered = sorted(set(accounts))
    if size is None or len(ordered) <= size:
        return ordered
    return sorted(random.Random(seed).sample(ordered, size))


def truth_check(client: RpcClient, con: duckdb.DuckDBPyConnection, registry: Registry,
                snapshot_block: int, *, sample: int | None = 25, seed: int = 0) -> TruthReport:
    """Compare `fct_positions` at `snapshot_block` with the contracts, for up to `sample`
    accounts per venue (None: all)."""
    snapshots = {int(b) for (b,) in con.execute(
        "select snapshot_block from ref_snapshots").fetchall()}
    if snapshot_block not in snapshots:
        raise ValueError(f"block {snapshot_block} is not a snapshot of this database "
                         f"(snapshots: {sorted(snapshots)[:10]}…); rebuild with it added")
    report = TruthReport(snapshot_block)
    caller = _Caller(client, snapshot_block)
    positions = con.execute(
        "select venue, protocol, market, account, token, side, amount_raw, shares_raw "
        "from fct_positions where snapshot_block = ?", [snapshot_block]).fetchall()
    derived: dict[tuple[str, ...], int] = {}
    accounts: dict[str, list[str]] = {}
    for venue, _, market, account, token, side, amount, shares in positions:
        if amount is not None:  # null: not derivable (int_morpho_shares says when)
            derived[venue, account, market or "", token or "", side] = int(amount)
        if shares is not None:
            derived[venue, account, market or "", token or "", side + " shares"] = int(shares)
        accounts.setdefault(venue, []).append(account)
    checks: list[tuple[str, str, str, _Call, int, tuple[str, ...]]] = []

    def expect(venue: str, account: str, what: str, call: _Call, index: int,
               key: tuple[str, ...]) -> None:
        checks.append((venue, account, what, call, index, key))

    tokens = {t.symbol: t for t in registry.tokens}
    for venue in registry.venues:
        chosen = _sample(accounts.get(venue.id, []), sample, seed)
        if not chosen:
            continue
        report.accounts[venue.id] = len(chosen)
        main = venue.main_contract
        if venue.protocol == "aave_v3":
            for t in registry.tokens:
                if t.issued_by != venue.id or t.kind not in ("atoken", "debt_token"):
                    continue
                reserve = tokens[t.underlying].address.lower() if t.underlying else ""
                side = "collateral" if t.kind == "atoken" else "debt"
                for a in chosen:
                    expect(venue.id, a, f"{side} {t.underlying}",
                           _Call(t.address, "balanceOf(address)", (a,), ("uint256",)), 0,
                           (venue.id, a, reserve, reserve, side))
                    expect(venue.id, a, f"scaled {side} {t.underlying}",
                           _Call(t.address, "scaledBalanceOf(address)", (a,), ("uint256",)), 0,
                           (venue.id, a, reserve, reserve, side + " shares"))
        elif venue.protocol == "compound_v3":
            base = next((m.loan for m in venue.markets if m.loan), None)
            base_address = tokens[base].address.lower() if base else ""
            for a in chosen:
                for m in venue.markets:
                    asset = tokens[m.collateral[0]].address.lower()
                    expect(venue.id, a, f"collateral {m.collateral[0]}",
                           _Call(main, "collateralBalanceOf(address,address)", (a, asset),
                                 ("uint128",)), 0, (venue.id, a, asset, asset, "collateral"))
                expect(venue.id, a, "base supply",
                       _Call(main, "balanceOf(address)", (a,), ("uint256",)), 0,
                       (venue.id, a, base_address, base_address, "supply"))
                expect(venue.id, a, "base debt",
                       _Call(main, "borrowBalanceOf(address)", (a,), ("uint256",)), 0,
                       (venue.id, a, base_address, base_address, "debt"))
        elif venue.protocol == "morpho_blue":
            for a in chosen:
                for m in venue.markets:
                    market = m.id.lower()
                    loan = tokens[m.loan].address.lower() if m.loan else ""
                    collateral = tokens[m.collateral[0]].address.lower()
                    call = _Call(main, "position(bytes32,address)",
                                 (bytes.fromhex(market[2:]), a),
                                 ("uint256", "uint128", "uint128"))
                    label = m.params.get("label", market)
                    expect(venue.id, a, f"supply shares {label}", call, 0,
                           (venue.id, a, market, loan, "supply shares"))
                    expect(venue.id, a, f"borrow shares {label}", call, 1,
                           (venue.id, a, market, loan, "debt shares"))
                    expect(venue.id, a, f"collateral {label}", call, 2,
                           (venue.id, a, market, collateral, "collateral"))
            try:
                _morpho_assets(caller, venue.id, main, [
                    (m.id.lower(), str(m.params.get("label", m.id.lower())),
                     tokens[m.loan].address.lower() if m.loan else "")
                    for m in venue.markets], chosen, derived, report)
            except _Refused as exc:
                report.unreadable[venue.id] = str(exc)
        elif venue.protocol == "gmx_v1":
            rows = con.execute(
                "select account, collateral_token, index_token, is_long, collateral_usd_raw, "
                "key from int_perp_margin where snapshot_block = ? and venue = ?",
                [snapshot_block, venue.id]).fetchall()
            chosen_set = set(chosen)
            for account, collateral_token, index_token, is_long, collateral, key in rows:
                if account not in chosen_set:
                    continue
                derived[venue.id, account, key, "", "position collateral"] = int(collateral)
                expect(venue.id, account, f"position collateral {key[:10]}",
                       _Call(main, "getPosition(address,address,address,bool)",
                             (account, collateral_token, index_token, bool(is_long)),
                             ("uint256",) * 6 + ("bool", "uint256")), 1,
                       (venue.id, account, key, "", "position collateral"))
            lp_token = next((t for t in {k[3] for k in derived if k[0] == venue.id
                                         and k[4] == "supply"}), None)
            for a in chosen:
                if lp_token is not None:
                    expect(venue.id, a, "LP liquidity",
                           _Call(main, "lp_balances(address)", (a,), ("uint256",)), 0,
                           (venue.id, a, lp_token, lp_token, "supply"))
        elif venue.protocol == "opyn_gamma":
            try:
                _options(caller, venue.id, main, chosen, derived, report)
            except _Refused as exc:
                report.unreadable[venue.id] = str(exc)
    holders = con.execute(
        "select venue, account, token from fct_positions where snapshot_block = ? "
        "and side = 'holding'", [snapshot_block]).fetchall()
    by_token: dict[str, list[tuple[str, str]]] = {}
    for venue_id, account, token in holders:
        by_token.setdefault(token, []).append((venue_id, account))
    for token, owners in sorted(by_token.items()):
        picked = _sample([a for _, a in owners], sample, seed)
        venue_id = owners[0][0]
        for a in picked:
            expect(venue_id, a, f"holding {token}",
                   _Call(token, "balanceOf(address)", (a,), ("uint256",)), 0,
                   (venue_id, a, token, token, "holding"))
    results = caller.try_run([c[3] for c in checks])
    refused: dict[str, str] = {}
    for (venue_id, _, _, call, _, _), result in zip(checks, results, strict=True):
        if isinstance(result, RpcItemError):
            refused.setdefault(venue_id, f"{call.signature} on {call.to}: {result.message}")
    report.unreadable.update(refused)
    for (venue_id, account, what, _, index, key), result in zip(checks, results, strict=True):
        if venue_id in refused or isinstance(result, RpcItemError):
            continue
        on_chain, mine = int(result[index]), derived.get(key, 0)
        report.compared += 1
        if on_chain != mine:
            report.mismatches.append(Mismatch(venue_id, account, what, on_chain, mine))
    return report


def _morpho_assets(caller: _Caller, venue: str, morpho: str,
                   markets: Sequence[tuple[str, str, str]], accounts: Sequence[str],
                   derived: dict[tuple[str, ...], int], report: TruthReport) -> None:
    """Morpho Blue: each account's supply and borrow shares in each market (market id, label,
    loan token), valued at the market's totals as the contract does (SharesMathLib: supply
    toAssetsDown, debt toAssetsUp, virtual shares 10^6 and assets 1), must equal its supply
    and debt positions."""
    if not markets or not accounts:
        return
    totals = caller.run([_Call(morpho, "market(bytes32)", (bytes.fromhex(m[2:]),),
                               ("uint128",) * 6) for m, _, _ in markets])
    pairs = [(m, label, loan, a) for m, label, loan in markets for a in accounts]
    held = caller.run([_Call(morpho, "position(bytes32,address)", (bytes.fromhex(m[2:]), a),
                             ("uint256", "uint128", "uint128")) for m, _, _, a in pairs])
    market_totals = {m: t for (m, _, _), t in zip(markets, totals, strict=True)}
    for (market, label, loan, account), (supply_shares, borrow_shares, _) in zip(
            pairs, held, strict=True):
        supply_assets, supply_total_shares, borrow_assets, borrow_total_shares = (
            int(x) for x in market_totals[market][:4])
        on_chain = {
            "supply": int(supply_shares) * (supply_assets + _VIRTUAL_ASSETS)
            // (supply_total_shares + _VIRTUAL_SHARES),
            "debt": -(-int(borrow_shares) * (borrow_assets + _VIRTUAL_ASSETS)
                      // (borrow_total_shares + _VIRTUAL_SHARES)),
        }
        for side, value in on_chain.items():
            mine = derived.get((venue, account, market, loan, side), 0)
            report.compared += 1
            if value != mine:
                report.mismatches.append(Mismatch(venue, account, f"{side} assets {label}",
                                                  value, mine))


def _options(caller: _Caller, venue: str, controller: str, owners: Sequence[str],
             derived: dict[tuple[str, ...], int], report: TruthReport) -> None:
    """The devnet options venue: Σ over an owner's vaults of collateral per asset and of short
    oTokens per series must equal its margin and debt positions."""
    counts = caller.run([_Call(controller, "vault_count(address)", (o,), ("uint256",))
                         for o in owners])
    vaults = [(o, i) for o, (n,) in zip(owners, counts, strict=True) for i in range(1, n + 1)]
    states = caller.run([_Call(controller, "vault_of(address,uint256)", (o, i),
                               ("address", "uint256", "bool")) for o, i in vaults])
    shorts = caller.run([_Call(controller, "shorts_of(address,uint256)", (o, i),
                               ("address[]",)) for o, i in vaults])
    pairs = [(o, i, s.lower()) for (o, i), (series,) in zip(vaults, shorts, strict=True)
             for s in series]
    amounts = caller.run([_Call(controller, "short_amount(address,uint256,address)",
                                (o, i, s), ("uint256",)) for o, i, s in pairs])
    chain: dict[tuple[str, str, str], int] = {}
    for (owner, _), (asset, amount, _) in zip(vaults, states, strict=True):
        key = (owner, asset.lower(), "margin")
        chain[key] = chain.get(key, 0) + int(amount)
    for (owner, _, series), (amount,) in zip(pairs, amounts, strict=True):
        chain[owner, series, "debt"] = chain.get((owner, series, "debt"), 0) + int(amount)
    mine: dict[tuple[str, str, str], int] = {}
    for (v, account, _market, token, side), amount in derived.items():
        if v == venue and account in owners and side in ("margin", "debt"):
            mine[account, token, side] = mine.get((account, token, side), 0) + amount
    for key in sorted(set(chain) | set(mine)):
        report.compared += 1
        if chain.get(key, 0) != mine.get(key, 0):
            owner, token, side = key
            report.mismatches.append(Mismatch(venue, owner, f"{side} {token}",
                                              chain.get(key, 0), mine.get(key, 0)))
