"""Extract contracts: the declarative schema of each agency extract, loaded into typed objects.

One YAML file per extract at ``schemas/extracts/<agency>/<extract>.yaml``. A wrong file raises
:class:`~schemas.errors.ContractError` naming the file, the key path and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas._yaml import read_yaml_mapping
from schemas.errors import ContractError, ContractErrors, format_loc, gather, raise_all

EXTRACTS_DIR = Path(__file__).resolve().parent / "extracts"

ColumnType = Literal["string", "integer", "number", "date", "code"]
Privacy = Literal["direct", "quasi", "none"]
Outcome = Literal["refuse_file", "quarantine_row", "warn"]
LinkageField = Literal["first_name", "middle_name", "last_name", "birth_date", "sex", "street_address", "zip"]
Generalization = Literal["year_month", "year", "zip3"]

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_IDENT = r"[a-z][a-z0-9_]*"
_CHECK_RE = re.compile(rf"^\s*({_IDENT})\s*(<=|>=|==|!=|<|>)\s*({_IDENT}|-?[0-9]+(?:\.[0-9]+)?)\s*$")
_WHEN_RE = re.compile(rf"^\s*({_IDENT})\s*==\s*([A-Za-z0-9_.-]+)\s*$")

Name = Annotated[str, Field(pattern=NAME_RE.pattern, max_length=63)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One column of an extract."""

    name: Name
    type: ColumnType
    required: bool = True
    description: str | None = None
    privacy: Privacy = "none"
    id_type: Name | None = None
    linkage: LinkageField | None = None
    generalize: Generalization | None = None
    codes: dict[str, str] | None = None
    min: int | float | dt.date | None = None
    max: int | float | dt.date | None = None
    pattern: str | None = None
    max_length: int | None = Field(default=None, ge=1)
    on_invalid: Outcome = "quarantine_row"

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_mapping(cls, value: Any) -> Any:
        # A list of codes is shorthand for codes that explain themselves.
        if isinstance(value, list):
            if len(set(map(str, value))) != len(value):
                raise ValueError("a code is listed twice")
            return {str(code): str(code) for code in value}
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _bounds_typed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("type")
        for bound in ("min", "max"):
            value = data.get(bound)
            if value is None:
                continue
            if kind == "date":
                if isinstance(value, dt.date):
                    continue
                try:
                    data[bound] = dt.date.fromisoformat(str(value))
                except ValueError:
                    raise ValueError(f"{bound} must be a date YYYY-MM-DD for a date column, not {value!r}") from None
            elif kind in ("integer", "number"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{bound} must be a number for a {kind} column, not {value!r}")
                if kind == "integer" and not float(value).is_integer():
                    raise ValueError(f"{bound} must be a whole number for an integer column, not {value!r}")
            else:
                raise ValueError(f"{bound} only applies to integer, number and date columns, not {kind}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.type == "code" and not self.codes:
            raise ValueError("a code column needs `codes` (a list, or a mapping of code to meaning)")
        if self.type != "code" and self.codes is not None:
            raise ValueError(f"`codes` only applies to code columns, not {self.type}")
        if self.pattern is not None and self.type not in ("string", "code"):
            raise ValueError(f"`pattern` only applies to string columns, not {self.type}")
        if self.id_type is not None and self.privacy != "direct":
            raise ValueError("a column with `id_type` is an agency identifier and must have privacy: direct")
        if self.linkage is not None and self.privacy == "none":
            raise ValueError("a column used for linkage is an identifier: privacy must be direct or quasi")
        if self.generalize in ("year_month", "year") and self.type != "date":
            raise ValueError(f"generalize: {self.generalize} needs a date column, not {self.type}")
        if self.generalize == "zip3" and self.type != "string":
            raise ValueError("generalize: zip3 needs a string column")
        if self.min is not None and self.max is not None and self.min > self.max:  # type: ignore[operator]
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


@dataclass(frozen=True)
class Comparison:
    """A parsed cross-field rule ``left op right``; ``right`` is a column or a numeric literal."""

    left: str
    op: str
    right: str
    right_is_column: bool


class RuleSpec(_Strict):
    """A cross-field rule, e.g. ``days_absent <= days_enrolled``; checked when both sides are present."""

    id: Name
    check: str
    when: str | None = None
    outcome: Outcome = "quarantine_row"
    explain: str

    @field_validator("check")
    @classmethod
    def _check_parses(cls, value: str) -> str:
        if not _CHECK_RE.match(value):
            raise ValueError(
                f"cannot read {value!r}: write `<column> <op> <column or number>` with op one of <= < >= > == !="
            )
        return value

    @field_validator("when")
    @classmethod
    def _when_parses(cls, value: str | None) -> str | None:
        if value is not None and not _WHEN_RE.match(value):
            raise ValueError(f"cannot read {value!r}: write `<column> == <value>`")
        return value

    @property
    def comparison(self) -> Comparison:
        m = _CHECK_RE.match(self.check)
        assert m is not None
        right = m.group(3)
        return Comparison(m.group(1), m.group(2), right, right_is_column=bool(re.match(_IDENT, right)))

    @property
    def condition(self) -> tuple[str, str] | None:
        if self.when is None:
            return None
        m = _WHEN_RE.match(self.when)
        assert m is not None
        return m.group(1), m.group(2)


class ReferenceSpec(_Strict):
    """Rows of this extract must find their key in another extract of the same drop."""

    id: Name
    columns: list[Name] = Field(min_length=1)
    extract: Name
    outcome: Outcome = "warn"
    explain: str


class ExtractContract(_Strict):
    """The contract of one extract: its columns, keys and rules."""

    extract: Name
    agency: Name
    version: int = Field(ge=1)
    title: str
    grain: str
    description: str | None = None
    period_column: Name | None = None
    unique_key: list[Name] = Field(default_factory=list)
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    rules: list[RuleSpec] = Field(default_factory=list)
    references: list[ReferenceSpec] = Field(default_factory=list)
    role: Name | None = None  # what the extract is to the warehouse (schemas.roles.ROLES); None: not stored
    fields: dict[Name, Name] = Field(default_factory=dict)  # role field -> this contract's column

    @model_validator(mode="before")
    @classmethod
    def _name_columns(cls, data: Any) -> Any:
        # Columns are written as a mapping name -> spec; the spec carries its own name too.
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            cols = {}
            for name, spec in data["columns"].items():
                if isinstance(spec, dict):
                    spec = {"name": name, **spec}
                cols[str(name)] = spec
            data = {**data, "columns": cols}
        return data

    @model_validator(mode="after")
    def _refs_resolve(self) -> ExtractContract:
        names = set(self.columns)
        if self.period_column is not None:
            if self.period_column not in names:
                raise ValueError(f"period_column {self.period_column!r} is not one of the columns")
            if self.columns[self.period_column].type != "integer":
                raise ValueError(f"period_column {self.period_column!r} must be an integer column")
        for col in self.unique_key:
            if col not in names:
                raise ValueError(f"unique_key names {col!r}, which is not one of the columns")
        for i, rule in enumerate(self.rules):
            cmp = rule.comparison
            sides = [cmp.left] + ([cmp.right] if cmp.right_is_column else [])
            for side in sides:
                if side not in names:
                    raise ValueError(f"rules[{i}] ({rule.id}) names {side!r}, which is not one of the columns")
            if cmp.right_is_column and self.columns[cmp.left].type != self.columns[cmp.right].type:
                raise ValueError(
                    f"rules[{i}] ({rule.id}) compares {cmp.left} ({self.columns[cmp.left].type}) "
                    f"with {cmp.right} ({self.columns[cmp.right].type})"
                )
            cond = rule.condition
            if cond is not None and cond[0] not in names:
                raise ValueError(f"rules[{i}] ({rule.id}) `when` names {cond[0]!r}, which is not one of the columns")
        for i, ref in enumerate(self.references):
            for col in ref.columns:
                if col not in names:
                    raise ValueError(f"references[{i}] ({ref.id}) names {col!r}, which is not one of the columns")
        ids = [r.id for r in self.rules] + [r.id for r in self.references]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(dupes)}")
        self._check_role()
        return self

    def _check_role(self) -> None:
        from schemas.roles import ROLES, resolve_fields

        if self.role is None:
            if self.fields:
                raise ValueError("`fields` maps columns onto a role: declare the extract's `role` too")
            return
        role = ROLES.get(self.role)
        if role is None:
            raise ValueError(f"role {self.role!r} is not a known role (one of: {', '.join(sorted(ROLES))})")
        mapped, problems = resolve_fields(role, self.fields, self.columns)
        if problems:
            raise ValueError(problems[0])
        if role.period_field is not None and mapped.get(role.period_field) != self.period_column:
            raise ValueError(
                f"period_column must be the column mapped to the role's {role.period_field} "
                f"({mapped.get(role.period_field)!r}), not {self.period_column!r}"
            )

    @property
    def role_fields(self) -> dict[str, str]:
        """Role field -> contract column (empty without a role)."""
        from schemas.roles import ROLES, resolve_fields

        if self.role is None:
            return {}
        return resolve_fields(ROLES[self.role], self.fields, self.columns)[0]

    # Derived views used by intake, privacy and validation.
    @property
    def key(self) -> tuple[str, str]:
        return (self.agency, self.extract)

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]

    @property
    def direct_identifiers(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.privacy == "direct"]

    @property
    def quasi_identifiers(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.privacy == "quasi"]

    @property
    def id_columns(self) -> dict[str, str]:
        """Agency identifier columns and their id type (student, patient, client, medicaid)."""
        return {c.name: c.id_type for c in self.columns.values() if c.id_type is not None}

    @property
    def linkage_columns(self) -> dict[str, str]:
        """Columns that feed linkage encodings, by the linkage field they provide."""
        return {c.name: c.linkage for c in self.columns.values() if c.linkage is not None}

    @property
    def describes_people(self) -> bool:
        """True when rows carry the personal details linkage needs (names and birth date)."""
        fields = set(self.linkage_columns.values())
        return {"first_name", "last_name", "birth_date"} <= fields


def _pydantic_errors(path: Path, exc: ValidationError) -> list[ContractError]:
    out = []
    for err in exc.errors():
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check its spelling against the documented keys)"
        out.append(ContractError(path, format_loc(err["loc"]), msg))
    return out


def parse_model(model: type[BaseModel], data: Mapping[str, Any], path: Path) -> Any:
    """Validate ``data`` as ``model``; errors name the file and the key path."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        errors = _pydantic_errors(path, exc)
        if len(errors) == 1:
            raise errors[0] from None
        raise ContractErrors(errors) from None


def load_extract_contract(path: Path) -> ExtractContract:
    """Load one extract contract; its folder must be its agency and its file name its extract."""
    path = Path(path)
    contract: ExtractContract = parse_model(ExtractContract, read_yaml_mapping(path), path)
    if path.stem != contract.extract:
        raise ContractError(path, "extract", f"is {contract.extract!r} but the file is named {path.name!r}")
    if path.parent.name != contract.agency:
        raise ContractError(path, "agency", f"is {contract.agency!r} but the file is in folder {path.parent.name!r}")
    return contract


def load_extract_contracts(root: Path = EXTRACTS_DIR) -> dict[tuple[str, str], ExtractContract]:
    """Load every ``<root>/<agency>/<extract>.yaml``; all problems are reported together."""
    root = Path(root)
    if not root.is_dir():
        raise ContractError(root, "", "the extract contracts folder does not exist")
    contracts: dict[tuple[str, str], ExtractContract] = {}
    errors: list[ContractError] = []
    for path in sorted(_yaml_files(root, depth=2)):
        contract = gather(errors, load_extract_contract, path)
        if contract is not None:
            contracts[contract.key] = contract
    for path in sorted(_yaml_files(root, depth=1)):
        errors.append(ContractError(path, "", "extract contracts belong in a folder named after their agency"))
    raise_all(errors)
    return contracts


def _yaml_files(root: Path, depth: int) -> Iterable[Path]:
    pattern = "/".join(["*"] * (depth - 1) + ["*.y*ml"])
    return (p for p in root.glob(pattern) if p.suffix in (".yaml", ".yml"))


def key_column_names(contract: ExtractContract, suffix: str) -> dict[str, str]:
    """Output column per id column: the first id column -> ``<suffix>``, others -> ``<id_type>_<suffix>``."""
    out: dict[str, str] = {}
    for i, (col, id_type) in enumerate(contract.id_columns.items()):
        name = suffix if i == 0 else f"{id_type}_{suffix}"
        if name in out.values():
            name = f"{col}_{suffix}"
        out[col] = name
    return out
