"""The partnership: every agency's MOU together with its extract contracts, checked against each other.

This is what the rest of c2c asks "may agency A send extract E with these columns on this date?".
A city adds an agency by adding files (an MOU in ``data_sharing/agreements/`` and one contract per
extract in ``schemas/extracts/<agency>/``), never code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from data_sharing.agreements import AGREEMENTS_DIR, Agreement, load_agreements
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


@dataclass(frozen=True)
class Partnership:
    agreements: dict[str, Agreement]
    contracts: dict[tuple[str, str], ExtractContract]
    agreements_dir: Path = AGREEMENTS_DIR
    extracts_dir: Path = EXTRACTS_DIR
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
        agreement = agreements.get(agency)
        if agreement is None or extract not in agreement.extracts:
            errors.append(
                ContractError(
                    extracts_dir / agency / f"{extract}.yaml",
                    "",
                    f"no MOU in {agreements_dir} covers extract {extract!r} of agency {agency!r}",
                )
            )
    return errors


def load_partnership(
    agreements_dir: Path | str | None = None,
    extracts_dir: Path | str | None = None,
) -> Partnership:
    """Load and cross-check the MOUs and extract contracts.

    Folders default to ``C2C_AGREEMENTS_DIR`` / ``C2C_EXTRACTS_DIR`` when set, else the ones shipped with c2c.
    """
    a_dir = Path(agreements_dir or os.environ.get("C2C_AGREEMENTS_DIR") or AGREEMENTS_DIR)
    e_dir = Path(extracts_dir or os.environ.get("C2C_EXTRACTS_DIR") or EXTRACTS_DIR)
    errors: list[ContractError] = []
    agreements = gather(errors, load_agreements, a_dir) or {}
    contracts = gather(errors, load_extract_contracts, e_dir) or {}
    if not errors:
        errors = _cross_check(agreements, contracts, a_dir, e_dir)
    raise_all(errors)
    return Partnership(agreements=agreements, contracts=contracts, agreements_dir=a_dir, extracts_dir=e_dir)
