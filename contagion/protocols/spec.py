"""Event specifications: each protocol module declares its events once, as Solidity text.

The declaration is the real protocol's (names, types, `indexed`), so the topic0 computed from it
is the one on mainnet; each spec also carries the real topic0 as seen on chain, and a test checks
the two agree. Devnet-only events (no real counterpart) say so with `real=False`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from eth_utils import keccak

__all__ = ["EventParam", "EventSpec", "event"]

_PARAM = re.compile(r"^(?P<type>.+?)(?:\s+(?P<indexed>indexed))?(?:\s+(?P<name>[A-Za-z_]\w*))?$")


@dataclass(frozen=True)
class EventParam:
    name: str
    type: str  # canonical ABI type, tuples as (t1,t2,...)
    indexed: bool
    components: tuple[EventParam, ...] = ()  # a tuple's members, with their names


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _components(type_text: str) -> tuple[EventParam, ...]:
    if not type_text.startswith("(") or not type_text.endswith(")"):
        return ()  # not a tuple (arrays of tuples are not used by any event here)
    members = []
    for raw in _split_top_level(type_text[1:-1]):
        m = _PARAM.match(raw)
        if m is None:
            raise ValueError(f"cannot parse tuple member {raw!r}")
        members.append(EventParam(m.group("name") or "", _canonical(m.group("type").strip()),
                                  False, _components(m.group("type").strip())))
    return tuple(members)


def _canonical(type_text: str) -> str:
    if type_text.startswith("("):
        close = type_text.rindex(")")
        inner = ",".join(_canonical(_PARAM.match(p).group("type"))  # type: ignore[union-attr]
                         for p in _split_top_level(type_text[1:close]))
        return f"({inner}){type_text[close + 1:]}"
    aliases = {"uint": "uint256", "int": "int256"}
    return aliases.get(type_text, type_text)


@dataclass(frozen=True)
class EventSpec:
    protocol: str
    declaration: str  # e.g. "Supply(address indexed reserve, address user, ...)"
    topic0_onchain: str  # the real topic0 (0x…); for devnet-only events, the computed one
    real: bool = True
    note: str = ""
    name: str = field(init=False)
    params: tuple[EventParam, ...] = field(init=False)

    def __post_init__(self) -> None:
        name, rest = self.declaration.split("(", 1)
        params = []
        for raw in _split_top_level(rest[: rest.rindex(")")]):
            m = _PARAM.match(raw)
            if m is None:
                raise ValueError(f"cannot parse parameter {raw!r} of {self.declaration}")
            type_text = m.group("type").strip()
            params.append(EventParam(m.group("name") or "", _canonical(type_text),
                                     m.group("indexed") is not None, _components(type_text)))
        object.__setattr__(self, "name", name.strip())
        object.__setattr__(self, "params", tuple(params))

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(p.type for p in self.params)})"

    @property
    def topic0(self) -> str:
        return "0x" + keccak(text=self.signature).hex()

    @property
    def topic_count(self) -> int:
        return 1 + sum(p.indexed for p in self.params)


def event(protocol: str, declaration: str, topic0_onchain: str, *, real: bool = True,
          note: str = "") -> EventSpec:
    return EventSpec(protocol, declaration, topic0_onchain.lower(), real, note)
