"""The partnership: every agency's MOU together with its extract contracts, checked against each other.

This is what the rest of c2c asks "may agency A send extract E with these columns on this date?".
A city adds an agency by adding files (an MOU in ``agreements/`` and one contract per extract in
``extracts/<agency>/``), never code.

A partnership is a directory (``C2C_PARTNERSHIP``; default: the packaged reference partnership)::

    partnership.yaml            name, title, agencies: [...]   (the agency list; must match agreements/)
    agreements/<agency>.yaml    one MOU per agency
    extracts/<agency>/<extract>.yaml   one contract per extract, each with its role (schemas/roles.py)
    indicators/<id>.yaml        indicator definitions (they name kinds and roles, never agencies)
    linkage/settings.yaml       linkage settings

Agency ids are free names. ``c2c partnership export DIR`` writes the reference partnership as a starting
point; ``c2c partnership check DIR`` validates one.

This module is the typed model and its loader (the warehouse reads it); the linkage settings' checks
are added by ``data_sharing.partnership.load_partnership_dir``, which the doors use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from schemas.agreements import AGREEMENTS_DIR, Agreement, load_agreements
from schemas.contracts import EXTRACTS_DIR, ExtractContract, load_extract_contracts
from schemas.errors import ContractError, gather, raise_all


@dataclass(frozen=True)
class ExtractTerms:
    """One extract as the partnership allows it: the contract and the MOU permission joined."""

    agreement: Agreement
    contract: ExtractContract
    permitted_fields: frozenset[str]
    identifier_fields: frozenset[str]

    @property
    def agency(self) -> str:
        return self.contract.agency

    @property
    def extract(self) -> str:
        return self.contract.extract


REFERENCE_INDICATORS_DIR = Path(__file__).resolve().parent / "indicators"
REFERENCE_LINKAGE_SETTINGS = Path(__file__).resolve().parent / "linkage" / "settings.yaml"
REFERENCE_DESCRIPTOR = Path(__file__).resolve().parent / "partnership.yaml"

#: a further check of a partnership directory: (its paths, its MOUs) -> the problems found
DirCheck = Callable[[dict[str, Path], dict[str, Agreement]], list[ContractError]]


@dataclass(frozen=True)
class Partnership:
    agreements: dict[str, Agreement]
    contracts: dict[tuple[str, str], ExtractContract]
    agreements_dir: Path = AGREEMENTS_DIR
    extracts_dir: Path = EXTRACTS_DIR
    indicators_dir: Path = REFERENCE_INDICATORS_DIR
    linkage_settings_path: Path = REFERENCE_LINKAGE_SETTINGS
    root: Path | None = None
    _terms: dict[tuple[str, str], ExtractTerms] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for agency, agreement in self.agreements.items():
            for extract, permission in agreement.extracts.items():
                contract = self.contracts[(agency, extract)]
                self._terms[(agency, extract)] = ExtractTerms(
                    agreement=agreement,
                    contract=contract,
                    permitted_fields=frozenset(permission.permitted_fields),
                    identifier_fields=frozenset(permission.identifier_fields),
                )

    @property
    def agencies(self) -> list[str]:
        return sorted(self.agreements)

    def terms(self, agency: str, extract: str) -> ExtractTerms | None:
        return self._terms.get((agency, extract))

    def extracts_of(self, agency: str) -> list[str]:
        agreement = self.agreements.get(agency)
        return sorted(agreement.extracts) if agreement else []

    def __iter__(self) -> Iterator[ExtractTerms]:
        return iter(self._terms[k] for k in sorted(self._terms))

    def extracts_of_role(self, role: str) -> list[tuple[str, str]]:
        """(agency, extract) of every extract with this role (several agencies may share a role)."""
        return sorted(k for k, c in self.contracts.items() if c.role == role)


def _cross_check(
    agreements: dict[str, Agreement],
    contracts: dict[tuple[str, str], ExtractContract],
    agreements_dir: Path,
    extracts_dir: Path,
) -> list[ContractError]:
    errors: list[ContractError] = []
    for agency, agreement in sorted(agreements.items()):
        mou_path = agreements_dir / f"{agency}.yaml"
        for extract, permission in sorted(agreement.extracts.items()):
            contract = contracts.get((agency, extract))
            where = f"extracts.{extract}"
            if contract is None:
                errors.append(
                    ContractError(mou_path, where, f"has no contract file {extracts_dir / agency / (extract + '.yaml')}")
                )
                continue
            columns = set(contract.columns)
            unknown = [f for f in permission.permitted_fields if f not in columns]
            if unknown:
                errors.append(
                    ContractError(
                        mou_path,
                        f"{where}.permitted_fields",
                        f"{', '.join(unknown)} not defined in the contract {agency}/{extract}.yaml",
                    )
                )
            unpermitted = [c for c in contract.required_columns if c not in permission.permitted_fields]
            if unpermitted:
                errors.append(
                    ContractError(
                        mou_path,
                        f"{where}.permitted_fields",
                        f"the contract requires {', '.join(unpermitted)}, which the MOU does not permit",
                    )
                )
            direct = {c for c in contract.direct_identifiers if c in permission.permitted_fields}
            if direct != set(permission.identifier_fields):
                missing = sorted(direct - set(permission.identifier_fields))
                extra = sorted(set(permission.identifier_fields) - direct)
                parts = []
                if missing:
                    parts.append(f"the contract marks {', '.join(missing)} as direct identifiers but the MOU does not")
                if extra:
                    parts.append(f"the MOU lists {', '.join(extra)} but the contract does not mark them privacy: direct")
                errors.append(ContractError(mou_path, f"{where}.identifier_fields", "; ".join(parts)))
            for i, ref in enumerate(contract.references):
                if ref.extract not in agreement.extracts:
                    errors.append(
                        ContractError(
                            extracts_dir / agency / f"{extract}.yaml",
                            f"references[{i}].extract",
                            f"{ref.extract!r} is not an extract of agency {agency!r}",
                        )
                    )
                elif ref_contract := contracts.get((agency, ref.extract)):
                    missing_cols = [c for c in ref.columns if c not in ref_contract.columns]
                    if missing_cols:
                        errors.append(
                            ContractError(
                                extracts_dir / agency / f"{extract}.yaml",
                                f"references[{i}].columns",
                                f"{', '.join(missing_cols)} not in extract {agency}/{ref.extract}",
                            )
                        )
    for agency, extract in sorted(contracts):
        mou = agreements.get(agency)
        if mou is None or extract not in mou.extracts:
            errors.append(
                ContractError(
                    extracts_dir / agency / f"{extract}.yaml",
                    "",
                    f"no MOU in {agreements_dir} covers extract {extract!r} of agency {agency!r}",
                )
            )
    return errors


def partnership_paths(root: Path | str) -> dict[str, Path]:
    """The files of a partnership directory."""
    root = Path(root)
    return {
        "descriptor": root / "partnership.yaml", "agreements": root / "agreements", "extracts": root / "extracts",
        "indicators": root / "indicators", "linkage": root / "linkage" / "settings.yaml",
    }


def _check_descriptor(path: Path, agreements: dict[str, Agreement]) -> list[ContractError]:
    from schemas._yaml import read_yaml_mapping

    if not path.is_file():
        return [ContractError(path, "", "the partnership has no partnership.yaml (name, title, agencies)")]
    data = read_yaml_mapping(path)
    errors = []
    for key in ("name", "title"):
        if not isinstance(data.get(key), str) or not data.get(key):
            errors.append(ContractError(path, key, "is missing (a short text)"))
    listed = data.get("agencies")
    if not isinstance(listed, list) or not all(isinstance(a, str) for a in listed):
        return errors + [ContractError(path, "agencies", "must be a list of agency ids, one per MOU in agreements/")]
    for agency in sorted(set(listed) - set(agreements)):
        errors.append(ContractError(path, "agencies", f"lists {agency!r}, which has no MOU agreements/{agency}.yaml"))
    for agency in sorted(set(agreements) - set(listed)):
        errors.append(ContractError(path, "agencies", f"does not list {agency!r}, which has an MOU agreements/{agency}.yaml"))
    unknown = sorted(set(data) - {"name", "title", "agencies", "description"})
    errors += [ContractError(path, k, "unknown key (name, title, agencies, description)") for k in unknown]
    return errors


def load_partnership_dir(root: Path | str, *, extra_check: DirCheck | None = None) -> Partnership:
    """Load and check a partnership directory (see the module docstring): every problem reported together,
    with those ``extra_check`` finds (``data_sharing.partnership`` adds the linkage settings')."""
    from schemas.indicators import load_indicator_definitions

    paths = partnership_paths(root)
    if not Path(root).is_dir():
        raise ContractError(Path(root), "", "the partnership directory does not exist")
    errors: list[ContractError] = []
    agreements = gather(errors, load_agreements, paths["agreements"]) or {}
    contracts = gather(errors, load_extract_contracts, paths["extracts"]) or {}
    if not errors:
        errors = _cross_check(agreements, contracts, paths["agreements"], paths["extracts"])
        errors += _check_descriptor(paths["descriptor"], agreements)
    definitions = gather(errors, load_indicator_definitions, paths["indicators"])
    if definitions is not None and contracts:
        have = {c.role for c in contracts.values() if c.role}
        for d in sorted(definitions.values(), key=lambda d: d.id):
            missing = [r for r in d.roles_read if r not in have]
            if missing:
                errors.append(ContractError(
                    paths["indicators"] / f"{d.id}.yaml", "kind",
                    f"{d.kind} reads role {', '.join(missing)}, which no extract of the partnership has",
                ))
    if extra_check is not None:
        errors += extra_check(paths, agreements)
    raise_all(errors)
    return Partnership(
        agreements=agreements, contracts=contracts, agreements_dir=paths["agreements"], extracts_dir=paths["extracts"],
        indicators_dir=paths["indicators"], linkage_settings_path=paths["linkage"], root=Path(root),
    )


def export_reference(dest: Path | str) -> list[Path]:
    """Write the packaged reference partnership as a partnership directory at ``dest`` (new or empty)."""
    import shutil

    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ContractError(dest, "", "exists and is not an empty folder; choose a new folder")
    paths = partnership_paths(dest)
    copies = [(REFERENCE_DESCRIPTOR, paths["descriptor"]), (REFERENCE_LINKAGE_SETTINGS, paths["linkage"])]
    copies += [(p, paths["agreements"] / p.name) for p in sorted(AGREEMENTS_DIR.glob("*.yaml"))]
    copies += [(p, paths["extracts"] / p.parent.name / p.name) for p in sorted(EXTRACTS_DIR.glob("*/*.yaml"))]
    copies += [(p, paths["indicators"] / p.name) for p in sorted(REFERENCE_INDICATORS_DIR.glob("*.yaml"))]
    for src, dst in copies:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return [dst for _, dst in copies]


def load_partnership(agreements_dir: Path | str | None = None, extracts_dir: Path | str | None = None) -> Partnership:
    """Load and cross-check the MOUs and extract contracts of two folders, each defaulting to the one
    shipped with c2c (the settings' ``C2C_AGREEMENTS_DIR`` / ``C2C_EXTRACTS_DIR`` name a city's own)."""
    a_dir = Path(agreements_dir or AGREEMENTS_DIR)
    e_dir = Path(extracts_dir or EXTRACTS_DIR)
    errors: list[ContractError] = []
    agreements = gather(errors, load_agreements, a_dir) or {}
    contracts = gather(errors, load_extract_contracts, e_dir) or {}
    if not errors:
        errors = _cross_check(agreements, contracts, a_dir, e_dir)
    raise_all(errors)
    return Partnership(agreements=agreements, contracts=contracts, agreements_dir=a_dir, extracts_dir=e_dir)
