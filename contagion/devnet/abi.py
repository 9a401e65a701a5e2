"""Encode calls and decode results from a contract ABI, with selectors computed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

__all__ = ["ContractAbi", "canonical_type", "event_signature", "event_topic0"]


def canonical_type(param: dict[str, Any]) -> str:
    """The ABI's canonical type string; tuples (structs) expand to their components."""
    t: str = param["type"]
    if t.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){t[len('tuple'):]}"
    return t


def event_signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(canonical_type(p) for p in entry['inputs'])})"


def event_topic0(entry: dict[str, Any]) -> str:
    return "0x" + keccak(text=event_signature(entry)).hex()


@dataclass(frozen=True)
class _Function:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class ContractAbi:
    def __init__(self, abi: Sequence[dict[str, Any]]) -> None:
        self._functions: dict[tuple[str, int], _Function] = {}
        self.constructor_inputs: tuple[str, ...] = ()
        self.events = {e["name"]: e for e in abi if e["type"] == "event"}
        for entry in abi:
            if entry["type"] == "constructor":
                self.constructor_inputs = tuple(canonical_type(p) for p in entry["inputs"])
            if entry["type"] != "function":
                continue
            inputs = tuple(canonical_type(p) for p in entry["inputs"])
            outputs = tuple(canonical_type(p) for p in entry["outputs"])
            sig = f"{entry['name']}({','.join(inputs)})"
            # Vyper emits one ABI entry per arity for functions with default arguments.
            self._functions[(entry["name"], len(inputs))] = _Function(
                entry["name"], keccak(text=sig)[:4], inputs, outputs)

    def _fn(self, name: str, arity: int) -> _Function:
        try:
            return self._functions[(name, arity)]
        except KeyError:
            raise KeyError(f"the ABI has no function {name} taking {arity} arguments") from None

    def encode_call(self, name: str, *args: Any) -> str:
        fn = self._fn(name, len(args))
        return "0x" + (fn.selector + encode(list(fn.inputs), list(args))).hex()

    def encode_constructor(self, *args: Any) -> str:
        return encode(list(self.constructor_inputs), list(args)).hex() if args else ""

    def decode_result(self, name: str, arity: int, data: str) -> tuple[Any, ...]:
        fn = self._fn(name, arity)
        return tuple(decode(list(fn.outputs), bytes.fromhex(data.removeprefix("0x"))))
