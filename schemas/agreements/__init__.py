"""Data-sharing agreements (MOUs): one YAML file per agency in this folder, loaded into typed objects.

An MOU says which extracts an agency may send, exactly which fields each may carry (minimum
necessary), which are direct identifiers, when it is in force, how long raw files may be kept and the
smallest cell that may be published. A wrong file raises :class:`~schemas.errors.ContractError` that
names the file, the key path and what is wrong.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas._yaml import read_yaml_mapping
from schemas.contracts import NAME_RE, parse_model
from schemas.errors import ContractError, gather, raise_all

AGREEMENTS_DIR = Path(__file__).resolve().parent

Purpose = Literal["indicator_reporting", "program_evaluation"]
Tier = Literal["public", "partners"]
Name = Annotated[str, Field(pattern=NAME_RE.pattern, max_length=63)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Party(_Strict):
    name: str = Field(min_length=1)
    role: Literal["data_provider", "data_recipient", "data_processor"]
    signatory: str | None = None


class AccessTier(_Strict):
    description: str = Field(min_length=1)
    members: list[str] = Field(min_length=1)


class ExtractPermission(_Strict):
    """What one extract may carry under the agreement."""

    permitted_fields: list[Name] = Field(min_length=1)
    identifier_fields: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _identifiers_permitted(self) -> ExtractPermission:
        for field_list, label in ((self.permitted_fields, "permitted_fields"), (self.identifier_fields, "identifier_fields")):
            dupes = sorted({f for f in field_list if field_list.count(f) > 1})
            if dupes:
                raise ValueError(f"{label} lists {', '.join(dupes)} more than once")
        stray = [f for f in self.identifier_fields if f not in self.permitted_fields]
        if stray:
            raise ValueError(f"identifier_fields {', '.join(stray)} are not in permitted_fields")
        return self


class Agreement(_Strict):
    """One agency's MOU with the city's data office."""

    mou_id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9._-]*$", max_length=64)
    version: int = Field(ge=1)
    agency: Name
    agency_name: str = Field(min_length=1)
    parties: list[Party] = Field(min_length=2)
    legal_basis: str = Field(min_length=1)
    purposes: list[Purpose] = Field(min_length=1)
    effective_date: dt.date
    expiry_date: dt.date
    raw_retention_days: int = Field(default=7, ge=0, le=3650)
    min_cell_size: int = Field(default=10, ge=1, le=1000)
    delivery_cadence_days: int | None = Field(default=None, ge=1)
    access_tiers: dict[Tier, AccessTier]
    extracts: dict[Name, ExtractPermission] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        if self.expiry_date <= self.effective_date:
            raise ValueError(f"expiry_date {self.expiry_date} is not after effective_date {self.effective_date}")
        roles = {p.role for p in self.parties}
        if not {"data_provider", "data_recipient"} <= roles:
            raise ValueError("parties must include a data_provider and a data_recipient")
        if set(self.access_tiers) != {"public", "partners"}:
            missing = sorted({"public", "partners"} - set(self.access_tiers))
            raise ValueError(f"access_tiers must describe both tiers; missing: {', '.join(missing)}")
        return self

    @property
    def label(self) -> str:
        """How the agreement is cited in metadata and messages: ``MOU-FPS-CITY-2024 v2``."""
        return f"{self.mou_id} v{self.version}"

    def in_force(self, day: dt.date) -> bool:
        return self.effective_date <= day <= self.expiry_date


def load_agreement(path: Path) -> Agreement:
    path = Path(path)
    agreement: Agreement = parse_model(Agreement, read_yaml_mapping(path), path)
    if path.stem != agreement.agency:
        raise ContractError(path, "agency", f"is {agreement.agency!r} but the file is named {path.name!r}")
    return agreement


def load_agreements(root: Path = AGREEMENTS_DIR) -> dict[str, Agreement]:
    """Load every ``<root>/<agency>.yaml``; all problems are reported together."""
    root = Path(root)
    if not root.is_dir():
        raise ContractError(root, "", "the agreements folder does not exist")
    agreements: dict[str, Agreement] = {}
    errors: list[ContractError] = []
    for path in sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml")):
        agreement = gather(errors, load_agreement, path)
        if agreement is not None:
            agreements[agreement.agency] = agreement
    raise_all(errors)
    return agreements
