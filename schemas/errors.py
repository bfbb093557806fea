"""The one error type for a contract file (extract schema, MOU, indicator definition) that is wrong."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ContractError(ValueError):
    """A configuration file is wrong. The message names the file, the key path and what is wrong.

    Contract files are written by the city, never by agencies, and hold no personal data, so the
    offending value may be shown.
    """

    def __init__(self, path: Path | str, key_path: str, problem: str) -> None:
        self.path = Path(path)
        self.key_path = key_path
        self.problem = problem
        where = f"{self.path}" + (f": {key_path}" if key_path else "")
        super().__init__(f"{where}: {problem}")


class ContractErrors(ValueError):
    """Several contract files are wrong at once; every problem is listed."""

    def __init__(self, errors: Sequence[ContractError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} problem(s) in the contract files:\n{lines}")


def gather(errors: list[ContractError], load: Callable[..., T], *args: Any) -> T | None:
    """Run one loader, adding its problems to ``errors`` instead of stopping at the first file."""
    try:
        return load(*args)
    except ContractError as exc:
        errors.append(exc)
    except ContractErrors as exc:
        errors.extend(exc.errors)
    return None


def raise_all(errors: Sequence[ContractError]) -> None:
    """Raise the problems gathered: one error as itself, several together."""
    if errors:
        raise errors[0] if len(errors) == 1 else ContractErrors(errors)


def format_loc(loc: Sequence[str | int]) -> str:
    """Turn a pydantic location tuple into a readable key path: columns.zip.pattern, rules[0].check."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
