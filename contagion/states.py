"""Contract state a partition's events cannot tell, read from the chain at the partition's own
blocks: today Compound v3's indexes, rates and principals (`protocols.compound_v3`, "state
reads"), which Comet changes without logging them.

Every read names its block by hash (EIP-1898, `requireCanonical`), never by number: the state
comes from the same chain as the stored logs, or the node refuses and the run fails. A reorg
since the logs were read then shows up at the next run's reorg check, which re-indexes the
partition, reads included. Mainnet history needs an archive node for this; the live tail does
not.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from contagion.chain.multicall import BlockId, Call, aggregate3_at
from contagion.chain.rpc import RpcClient
from contagion.ingest import BLOCKS
from contagion.lake import Lake, PartitionFile
from contagion.protocols import compound_v3
from contagion.protocols.canonical import Tables
from contagion.registry import Registry

__all__ = ["STATE_SCHEMAS", "STATE_TABLES", "comets", "read_states", "state_partition"]

STATE_SCHEMAS = dict(compound_v3.STATE_SCHEMAS)
STATE_TABLES = tuple(STATE_SCHEMAS)


def comets(registry: Registry | None) -> list[str]:
    """The Comet contracts (lowercase) of the registry's Compound v3 venues."""
    if registry is None:
        return []
    return sorted(v.contracts["comet"].lower() for v in registry.venues
                  if v.protocol == compound_v3.PROTOCOL and "comet" in v.contracts)


def read_states(client: RpcClient, registry: Registry | None, part: PartitionFile,
                decoded: Mapping[str, pa.Table], blocks: pa.Table) -> dict[str, pa.Table]:
    """The state tables of one partition from its decoded events and block headers (`blocks`
    must hold every block with a log and the last block, as the lake's does)."""
    out = {name: schema.empty_table() for name, schema in STATE_SCHEMAS.items()}
    markets = comets(registry)
    if not markets:
        return out
    assert registry is not None
    if registry.multicall is None:
        raise ValueError(f"{registry.network}'s registry lists Compound v3 venues but no "
                         "multicall contract: their state cannot be read")
    tables = Tables(decoded)
    plan, accounts = compound_v3.read_plan(tables, markets, part.stop - 1)
    headers = {int(n): ("0x" + bytes(h).hex(), int(t)) for n, h, t in zip(
        blocks["block_number"].to_pylist(), blocks["block_hash"].to_pylist(),
        blocks["timestamp"].to_pylist(), strict=True)}
    named_at: dict[tuple[int, str], list[str]] = {}
    for number, comet, account in accounts.iter_rows():
        named_at.setdefault((number, comet), []).append(account)
    reads: list[tuple[BlockId, list[Call]]] = []
    keys: list[tuple[int, str, list[str], bool]] = []
    for number, comet, logged in plan.iter_rows():
        if number not in headers:
            raise ValueError(f"block {number} of partition {part} has no header in `blocks`: "
                             "its state cannot be bound to a hash")
        named = named_at.get((number, comet), [])
        calls = [*compound_v3.state_calls(comet),
                 *(compound_v3.principal_call(comet, a) for a in named)]
        reads.append((headers[number][0], calls))
        keys.append((number, comet, named, logged))
    replies = aggregate3_at(client, registry.multicall, reads)
    states: list[dict[str, object]] = []
    principals: list[dict[str, object]] = []
    width = len(compound_v3.STATE_READS)
    for (number, comet, named, logged), returned in zip(keys, replies, strict=True):
        if not logged and returned[0] == b"":
            continue  # a partition's end before the Comet was deployed: nothing to read
        key = {"chain_id": part.chain_id, "block_number": number,
               "block_time": headers[number][1], "contract_address": comet}
        values, reason = compound_v3.decode_state(returned[:width])
        states.append({**key, **values, "unread_reason": reason})
        for account, reply in zip(named, returned[width:], strict=True):
            principal, why = compound_v3.decode_principal(reply)
            principals.append({**key, "account": account, "principal": principal,
                               "unread_reason": why})
    for name, rows in ((compound_v3.STATES, states), (compound_v3.PRINCIPALS, principals)):
        out[name] = pa.Table.from_pylist(rows, schema=STATE_SCHEMAS[name])
    return out


def state_partition(client: RpcClient, lake: Lake, registry: Registry | None,
                    part: PartitionFile, decoded: Mapping[str, pa.Table] | None = None,
                    blocks: pa.Table | None = None) -> dict[str, pa.Table]:
    """Read a partition's state tables (`read_states`; decoded tables and headers from the lake
    unless given) and write them."""
    if decoded is None:
        decoded = {name: lake.read(name, part) for name in compound_v3.READ_FROM}
    tables = read_states(client, registry, part, decoded,
                         lake.read(BLOCKS, part) if blocks is None else blocks)
    for name, table in tables.items():
        lake.write(name, part, table)
    return tables
