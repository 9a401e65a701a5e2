"""Shared by the strict YAML schemas (registry, scenarios): one way to find and read a file and
one way to say what is wrong with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["describe_validation_error", "read_yaml"]


def describe_validation_error(path: Path | str, what: str, exc: ValidationError) -> str:
    """`<file>: invalid <what>` and one line per problem, each naming its field."""
    lines = [f"{path}: invalid {what}"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def read_yaml(name_or_path: str | Path, bundled: Path, what: str, error: type[Exception],
              bundled_what: str | None = None) -> tuple[Any, Path]:
    """Parse a YAML file, or the bundled `<bundled>/<name>.yaml` when given a name that is not
    a file; returns the data with the path it came from. Failures raise `error`, saying what
    was looked for and, for a name, which bundled ones exist."""
    path = Path(name_or_path)
    if not path.exists():
        candidate = bundled / f"{name_or_path}.yaml"
        if not candidate.exists():
            names = ", ".join(sorted(p.stem for p in bundled.glob("*.yaml")))
            raise error(f"no {what} file {path} and no bundled {bundled_what or what} of that name "
                        f"(bundled: {names})")
        path = candidate
    try:
        return yaml.safe_load(path.read_text()), path
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
