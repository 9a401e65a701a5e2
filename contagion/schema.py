"""Shared by the strict YAML schemas (registry, scenarios): one way to say what is wrong."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def describe_validation_error(path: Path | str, what: str, exc: ValidationError) -> str:
    """`<file>: invalid <what>` and one line per problem, each naming its field."""
    lines = [f"{path}: invalid {what}"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)
