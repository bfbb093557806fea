"""Loading the partnership with every check, the linkage settings' included (the doors' loader).

The typed model (``Partnership``, ``ExtractTerms``) and the loader of MOUs and contracts live in
``schemas.partnership`` (the warehouse reads them); the linkage settings are checked here, where
``data_sharing.linkage`` is.
"""

from __future__ import annotations

from pathlib import Path

from schemas.agreements import Agreement
from schemas.errors import ContractError, gather
from schemas.partnership import Partnership
from schemas.partnership import load_partnership as load_partnership_folders
from schemas.partnership import load_partnership_dir as _load_partnership_dir


def _linkage_problems(paths: dict[str, Path], agreements: dict[str, Agreement]) -> list[ContractError]:
    """The linkage settings of a partnership directory: readable, and guarding only its agencies."""
    from data_sharing.linkage.settings import load_settings

    errors: list[ContractError] = []
    linkage = gather(errors, load_settings, paths["linkage"])
    if linkage is not None and agreements:
        for i, guard in enumerate(linkage.guards.concurrent_ids):
            if guard.agency not in agreements:
                errors.append(ContractError(
                    paths["linkage"], f"guards.concurrent_ids[{i}].agency", f"{guard.agency!r} is not an agency of the partnership"
                ))
    return errors


def load_partnership_dir(root: Path | str) -> Partnership:
    """Load and check a partnership directory (``schemas.partnership``), its linkage settings included."""
    return _load_partnership_dir(root, extra_check=_linkage_problems)


def load_partnership(
    agreements_dir: Path | str | None = None,
    extracts_dir: Path | str | None = None,
    *,
    root: Path | str | None = None,
) -> Partnership:
    """Load and cross-check the MOUs and extract contracts.

    ``root``: a partnership directory (:func:`load_partnership_dir`). Otherwise the two folders given (the
    settings' ``C2C_AGREEMENTS_DIR`` / ``C2C_EXTRACTS_DIR``), each defaulting to the one shipped with c2c.
    """
    if root:
        return load_partnership_dir(root)
    return load_partnership_folders(agreements_dir, extracts_dir)
