"""A city's partnership (agreements, extract contracts, indicator definitions, linkage settings), loaded and
checked for the doors: `c2c partnership export|check`, `c2c check-config` and every command that needs the
MOUs. Plain Python (no Dagster); errors are ``ContractError``/``ContractErrors`` (:mod:`stages.errors`).
"""

from __future__ import annotations

from pathlib import Path

from data_sharing.partnership import Partnership
from data_sharing.partnership import load_partnership as _load_partnership
from data_sharing.partnership import load_partnership_dir as _load_partnership_dir

__all__ = ["Partnership"]


def load_partnership(agreements_dir: Path | str | None = None, extracts_dir: Path | str | None = None, *,
                     root: Path | str | None = None) -> Partnership:
    """The partnership the hub runs under (the shipped reference one unless ``root`` or the folders name another)."""
    return _load_partnership(agreements_dir, extracts_dir, root=root)


def load_partnership_dir(root: Path | str) -> Partnership:
    """Load and check a partnership directory, its linkage settings included (every problem at once)."""
    return _load_partnership_dir(root)


def export_reference(dest: Path | str) -> list[Path]:
    """Write the packaged reference partnership as a partnership directory at ``dest`` (new or empty)."""
    from schemas.partnership import export_reference as _export

    return _export(dest)


def indicator_names(partnership: Partnership) -> list[str]:
    """The partnership's indicator definitions, by name, sorted."""
    from schemas.indicators import load_indicator_definitions

    return sorted(load_indicator_definitions(partnership.indicators_dir))
