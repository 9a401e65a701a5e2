"""Drive a devnet: deploy contracts, queue transactions from impersonated accounts, send them
in JSON-RPC batches and mine blocks at chosen timestamps.

Nonces are tracked here so a whole block's transactions go out in one round trip; the node
runs with `--order fifo`, so they execute in the order they were queued.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rlp
from eth_utils import keccak, to_checksum_address

from contagion.chain.rpc import RpcClient, RpcError, RpcItemError
from contagion.devnet.abi import ContractAbi
from contagion.devnet.compile import CompiledContract, compile_contract

__all__ = ["Contract", "DevnetDriver", "TxFailed", "create_address", "traced_revert_reason"]

DEFAULT_GAS = 1_500_000
DEPLOY_GAS = 12_000_000
# Anvil's first default account (mnemonic "test test ... junk"): the well-known devnet deployer.
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


class TxFailed(RuntimeError):
    """A transaction that had to succeed reverted or was refused by the node."""


def create_address(sender: str, nonce: int) -> str:
    """The address CREATE gives a contract deployed by `sender` at `nonce`."""
    raw = keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:]
    return to_checksum_address(raw)


def traced_revert_reason(client: RpcClient, tx_hash: str) -> str:
    """The innermost revert reason of a mined transaction, from the node's call tracer."""
    try:
        frame = client.call("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    except RpcError as exc:
        return f"(no trace: {exc.message})"
    reason = ""
    while frame:
        reason = frame.get("revertReason") or reason or frame.get("error", "")
        frame = next((c for c in frame.get("calls", []) if c.get("error")), None)
    return reason or "no reason given"


@dataclass
class Contract:
    name: str
    address: str
    abi: ContractAbi
    driver: DevnetDriver = field(repr=False)

    def data(self, fn: str, *args: Any) -> str:
        return self.abi.encode_call(fn, *args)

    def tx(self, sender: str, fn: str, *args: Any, gas: int | None = None,
           value: int = 0, label: str = "") -> int:
        """Queue a transaction; returns its index in the pending queue."""
        return self.driver.send(sender, self.address, self.data(fn, *args), gas=gas,
                                value=value, label=label or f"{self.name}.{fn}")

    def call(self, fn: str, *args: Any, block: str | int = "latest") -> Any:
        raw = self.driver.eth_call(self.address, self.data(fn, *args), block)
        out = self.abi.decode_result(fn, len(args), raw)
        return out[0] if len(out) == 1 else out


@dataclass
class _Pending:
    tx: dict[str, str]
    label: str


class DevnetDriver:
    def __init__(self, client: RpcClient) -> None:
        self.client = client
        self.nonces: dict[str, int] = {}
        self.queue: list[_Pending] = []
        self.sent: int = 0
        self.labels: dict[str, str] = {}  # hash -> label, for the last batch sent

    # -- accounts -----------------------------------------------------------------------------
    def load_nonces(self, accounts: Iterable[str]) -> None:
        unknown = [a for a in accounts if a not in self.nonces]
        counts = self.client.batch_strict(
            [("eth_getTransactionCount", [a, "pending"]) for a in unknown])
        for account, count in zip(unknown, counts, strict=True):
            self.nonces[account] = int(count, 16)

    def set_eth_balances(self, accounts: Sequence[str], wei: int) -> None:
        self.client.batch_strict([("anvil_setBalance", [a, hex(wei)]) for a in accounts])

    # -- transactions --------------------------------------------------------------------------
    def send(self, sender: str, to: str | None, data: str, *, gas: int | None = None,
             value: int = 0, label: str = "") -> int:
        if sender not in self.nonces:
            self.load_nonces([sender])
        nonce = self.nonces[sender]
        self.nonces[sender] = nonce + 1
        tx = {"from": sender, "data": data, "nonce": hex(nonce), "gasPrice": "0x0",
              "gas": hex(gas or DEFAULT_GAS)}
        if to is not None:
            tx["to"] = to
        if value:
            tx["value"] = hex(value)
        self.queue.append(_Pending(tx, label))
        return len(self.queue) - 1

    def flush(self) -> list[str]:
        """Submit every queued transaction in one batch; returns their hashes in order."""
        if not self.queue:
            return []
        queue, self.queue = self.queue, []
        results = self.client.batch([("eth_sendTransaction", [p.tx]) for p in queue])
        failures = [(p, r) for p, r in zip(queue, results, strict=True)
                    if isinstance(r, RpcItemError)]
        if failures:
            # A refused submission leaves a nonce gap; resynchronise before reporting.
            self.nonces.clear()
            pending, err = failures[0]
            raise TxFailed(f"node refused {pending.label} from {pending.tx['from']}: "
                           f"{err.message} ({len(failures)} of {len(queue)} refused)")
        self.sent += len(results)
        hashes = [str(r) for r in results]
        self.labels = dict(zip(hashes, (p.label for p in queue), strict=True))
        return hashes

    def mine(self, timestamp: int) -> int:
        """Mine one block holding everything submitted, at the given Unix time."""
        self.client.call("evm_mine", [timestamp])
        return int(self.client.call("eth_blockNumber"), 16)

    def mine_all(self, timestamp: int, seconds_per_block: int = 12, check: bool = True,
                 block_size: int = 400) -> tuple[int, int]:
        """Send the queue and mine until it is all included, at most `block_size` transactions
        a block; returns (last block, timestamp). With check, every transaction must have
        succeeded.

        Anvil builds each receipt by walking its block, so a block of n transactions costs
        O(n^2) to read back: ten thousand setup transactions in one block take minutes, in
        blocks of a few hundred they take seconds. Splitting keeps each sender's order, since
        a sender's later transactions land in later blocks.
        """
        queue, self.queue = self.queue, []
        block, hashes = 0, list[str]()
        labels: dict[str, str] = {}
        for start in range(0, max(len(queue), 1), block_size):
            self.queue = queue[start:start + block_size]
            hashes.extend(self.flush())
            labels.update(self.labels)
            if start:
                timestamp += seconds_per_block
            block = self.mine(timestamp)
            while int(self.client.call("txpool_status")["pending"], 16) > 0:
                timestamp += seconds_per_block
                block = self.mine(timestamp)
        self.labels = labels
        if check:
            self.require_success(hashes)
        return block, timestamp

    def receipts(self, hashes: Sequence[str]) -> list[dict[str, Any]]:
        out = self.client.batch_strict([("eth_getTransactionReceipt", [h]) for h in hashes])
        return [dict(r) for r in out]

    def require_success(self, hashes: Sequence[str]) -> None:
        for h, receipt in zip(hashes, self.receipts(hashes), strict=True):
            if receipt is None or receipt.get("status") != "0x1":
                what = self.labels.get(h, "transaction")
                if receipt is None:
                    raise TxFailed(f"{what} ({h}) was not mined")
                raise TxFailed(f"{what} ({h}) reverted in block "
                               f"{int(receipt['blockNumber'], 16)}: {self.revert_reason(h)}")

    def revert_reason(self, tx_hash: str) -> str:
        return traced_revert_reason(self.client, tx_hash)

    def eth_call(self, to: str, data: str, block: str | int = "latest") -> str:
        tag = hex(block) if isinstance(block, int) else block
        return str(self.client.call("eth_call", [{"to": to, "data": data}, tag]))

    # -- contracts -----------------------------------------------------------------------------
    def deploy(self, name: str, *args: Any, sender: str = DEPLOYER,
               label: str | None = None) -> Contract:
        """Queue the deployment of contracts/<name>.vy; the address is known before mining."""
        return self._deploy(compile_contract(name), args, sender, label, DEPLOY_GAS)

    def deploy_file(self, source: Path, *args: Any, sender: str = DEPLOYER,
                    label: str | None = None, gas: int = DEPLOY_GAS) -> Contract:
        """Queue the deployment of a Vyper source outside the devnet's contracts (a test's, a
        bench's), compiled on each call."""
        import vyper

        out = vyper.compile_code(source.read_text(), output_formats=["abi", "bytecode"])
        return self._deploy(CompiledContract(source.stem, out["abi"], out["bytecode"]), args,
                            sender, label, gas)

    def _deploy(self, compiled: CompiledContract, args: Sequence[Any], sender: str,
                label: str | None, gas: int) -> Contract:
        abi = ContractAbi(compiled.abi)
        if sender not in self.nonces:
            self.load_nonces([sender])
        address = create_address(sender, self.nonces[sender])
        self.send(sender, None, compiled.bytecode + abi.encode_constructor(*args),
                  gas=gas, label=label or f"deploy {compiled.name}")
        return Contract(label or compiled.name, address, abi, self)

    def at(self, name: str, address: str, label: str | None = None) -> Contract:
        return Contract(label or name, address, ContractAbi(compile_contract(name).abi), self)
