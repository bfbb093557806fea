"""Column schemas and column lineage for the Dagster UI, derived from the declarative sources of truth.

Nothing here is hand-maintained per column where a declaration exists:

* an extract's columns and types come from its contract (``schemas/extracts/**.yaml``);
* the pseudonymous record (``protected_file``) follows the contract's column roles, exactly as
  ``data_sharing.protect`` builds it (id -> ``source_key``, generalised quasi-identifiers, kept columns);
* the partner-tier tables (``warehouse_tables``) come from the SQLAlchemy models (``warehouse/models.py``)
  and the staging-column -> table-column map of ``warehouse.load.EXTRACT_TABLES`` (tables by extract role);
* the published table (``indicator_release``) comes from the ``IndicatorValue`` model, and its lineage
  from the indicator definitions (``schemas/indicators/*.yaml``: kind and dimensions), through
  :data:`KIND_COLUMNS` (the warehouse columns each computation kind reads: each kind's ``lineage`` in
  ``schemas/kinds.py``, by role; checked against the kind's roles and the models by
  ``tests/operations/test_auditor_lineage.py``).

Column names of the multi-table asset ``warehouse_tables`` are qualified: ``<table>.<column>``.
Lineage from an unpartitioned asset to a per-file asset names the per-file asset's column; which
partitions (files) stand behind it is in the materialisation's ``source_files`` metadata.
Only names, types and documentation are used: no value from any file ever reaches this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from dagster import (
    AssetKey,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
)
from sqlalchemy import Table

from assets import names
from schemas.contracts import ExtractContract, key_column_names
from schemas.indicators import IndicatorDefinition, load_indicator_definitions

TABLE_NAME = "dagster/table_name"
ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"
COLUMN_LINEAGE = "dagster/column_lineage"
TABLE_KEYS = (TABLE_NAME, ROW_COUNT, COLUMN_SCHEMA, COLUMN_LINEAGE)

ROW_NUMBER = "row_number"
SOURCE_KEY = "source_key"
CHILD_KEY = "child_key"

# --------------------------------------------------------------------------------------------------
# Extract files (intake_file, validated_file) and their pseudonymous records (protected_file)


def extract_schema(contract: ExtractContract | None) -> TableSchema:
    """The extract's columns as its contract declares them (type, required, privacy role)."""
    if contract is None:
        return TableSchema(columns=[])
    cols = []
    for spec in contract.columns.values():
        tags: dict[str, str] = {"privacy": spec.privacy}
        if spec.id_type:
            tags["id_type"] = spec.id_type
        cols.append(
            TableColumn(
                name=spec.name,
                type=spec.type,
                description=spec.description,
                constraints=TableColumnConstraints(nullable=not spec.required),
                tags=tags,
            )
        )
    return TableSchema(columns=cols)


def staging_lineage(contract: ExtractContract) -> dict[str, list[str]]:
    """Pseudonymous-record column -> the extract fields it is made from (``row_number``: the row's position).

    Mirrors ``data_sharing.protect`` (a test checks the two agree): the first agency id becomes
    ``source_key`` (others ``<id_type>_source_key``) plus ``<id>_id_token``; generalised columns become
    ``<column>_<generalisation>``; other direct identifiers are dropped; the rest is kept as it is.
    """
    keys = key_column_names(contract, SOURCE_KEY)
    out: dict[str, list[str]] = {}
    for col, spec in contract.columns.items():
        if col in keys:
            out[keys[col]] = [col]
        elif spec.generalize is not None:
            out[f"{col}_{spec.generalize}"] = [col]
        elif spec.privacy != "direct":
            out[col] = [col]
    for col in contract.id_columns:
        out[f"{col}_id_token"] = [col]
    out[ROW_NUMBER] = []
    return out


def staging_schema(contract: ExtractContract, present: Iterable[str] | None = None) -> TableSchema:
    """Schema of the pseudonymous record (strings; ``row_number`` an integer), optionally only ``present`` columns."""
    keep = None if present is None else set(present)
    cols = []
    for name, sources in staging_lineage(contract).items():
        if keep is not None and name not in keep:
            continue
        if name == ROW_NUMBER:
            cols.append(TableColumn(ROW_NUMBER, "int64", "1-based row of the source file",
                                    constraints=TableColumnConstraints(nullable=False)))
            continue
        src = contract.columns[sources[0]]
        role = ("keyed pseudonym" if name.endswith(SOURCE_KEY) else "linkage token (linkage area only)"
                if name.endswith("_id_token") else f"generalised ({src.generalize})" if src.generalize else "as sent")
        cols.append(TableColumn(name, "string", f"{role}, from {sources[0]}", tags={"privacy": src.privacy}))
    return TableSchema(columns=cols)


def lineage_to(asset: str, mapping: Mapping[str, Iterable[str]]) -> TableColumnLineage:
    """``{column: [upstream columns]}`` of one upstream asset as a TableColumnLineage."""
    key = AssetKey(asset)
    return TableColumnLineage(
        deps_by_column={out: [TableColumnDep(asset_key=key, column_name=c) for c in dict.fromkeys(src)] for out, src in mapping.items()}
    )


def table_metadata(table_name: str, row_count: int, schema: TableSchema, lineage: TableColumnLineage | None) -> dict:
    """The four ``dagster/*`` table keys every c2c materialisation carries (no lineage: a root asset)."""
    return {
        TABLE_NAME: table_name,
        ROW_COUNT: int(row_count),
        COLUMN_SCHEMA: schema,
        COLUMN_LINEAGE: lineage if lineage is not None else TableColumnLineage(deps_by_column={}),
    }


def model_schema(*tables: Table, qualify: bool = False, only: Iterable[str] | None = None) -> TableSchema:
    """Columns of SQLAlchemy tables (type, nullability, documentation), ``<table>.<column>`` if ``qualify``."""
    keep = None if only is None else set(only)
    cols = []
    for table in tables:
        for c in table.columns:
            if keep is not None and c.name not in keep:
                continue
            cols.append(
                TableColumn(
                    name=f"{table.name}.{c.name}" if qualify else c.name,
                    type=str(c.type).lower(),
                    description=c.doc,
                    constraints=TableColumnConstraints(nullable=bool(c.nullable), unique=False),
                )
            )
    return TableSchema(columns=cols)


# --------------------------------------------------------------------------------------------------
# Partner tier (warehouse_tables)


def _fact_tables() -> dict[str, tuple[str, Table, Mapping[str, tuple[str, str]]]]:
    """table name -> (agency/extract, table, staging column -> (table column, parse))."""
    from warehouse.load import EXTRACT_TABLES

    # one entry per table (a role's table): the first extract of the role names it
    out: dict[str, tuple[str, Table, Mapping[str, tuple[str, str]]]] = {}
    for key, et in sorted(EXTRACT_TABLES.items()):
        out.setdefault(et.table.name, (key, et.table, et.columns))
    return out


def warehouse_tables_schema() -> TableSchema:
    from warehouse.models import Child

    tables = [t for _, t, _ in _fact_tables().values()] + [Child.__table__]
    return model_schema(*tables, qualify=True)  # type: ignore[arg-type]


def warehouse_extract_tables() -> dict[str, str]:
    """Partner-tier table -> the extract (``agency/extract``) it is loaded from."""
    return {name: key for name, (key, _, _) in _fact_tables().items()}


def warehouse_lineage() -> TableColumnLineage:
    """Every partner-tier column -> protected_file columns (and linked_persons for child keys)."""
    from warehouse.models import Child

    protected, linked = AssetKey(names.PROTECTED_FILE), AssetKey(names.LINKED_PERSONS)
    deps: dict[str, list[TableColumnDep]] = {}
    person_sources: dict[str, list[str]] = {}
    for name, (_, _table, columns) in _fact_tables().items():
        for staging_col, (table_col, _) in columns.items():
            deps[f"{name}.{table_col}"] = [TableColumnDep(asset_key=protected, column_name=staging_col)]
            person_sources.setdefault(table_col, []).append(staging_col)
        deps[f"{name}.{SOURCE_KEY}"] = [TableColumnDep(asset_key=protected, column_name=SOURCE_KEY)]
        deps[f"{name}.{CHILD_KEY}"] = [TableColumnDep(asset_key=protected, column_name=SOURCE_KEY),
                                        TableColumnDep(asset_key=linked, column_name=CHILD_KEY)]
        deps[f"{name}.source_row"] = [TableColumnDep(asset_key=protected, column_name=ROW_NUMBER)]
        deps[f"{name}.manifest_id"] = []  # the file itself (source_files metadata), not a column
        deps[f"{name}.source_sha256"] = []
    child = Child.__table__
    for c in child.columns:  # type: ignore[attr-defined]
        if c.name == CHILD_KEY:
            sources = [TableColumnDep(asset_key=linked, column_name=CHILD_KEY)]
        elif c.name.startswith("has_"):
            sources = [TableColumnDep(asset_key=protected, column_name=SOURCE_KEY)]
        else:
            sources = [TableColumnDep(asset_key=protected, column_name=s) for s in dict.fromkeys(person_sources.get(c.name, []))]
        deps[f"{child.name}.{c.name}"] = sources  # type: ignore[attr-defined]
    return TableColumnLineage(deps_by_column=deps)


# --------------------------------------------------------------------------------------------------
# Linkage (linked_persons)


def crosswalk_lineage() -> tuple[TableSchema, TableColumnLineage]:
    schema = TableSchema(columns=[
        TableColumn(SOURCE_KEY, "string", "per-agency pseudonym of a record", constraints=TableColumnConstraints(nullable=False)),
        TableColumn(CHILD_KEY, "string", "persistent linked person key", constraints=TableColumnConstraints(nullable=False)),
    ])
    return schema, lineage_to(names.PROTECTED_FILE, {SOURCE_KEY: [SOURCE_KEY], CHILD_KEY: [SOURCE_KEY]})


# --------------------------------------------------------------------------------------------------
# Public tier (indicator_release)

# The pure part (which warehouse columns each published column reads) lives in warehouse.lineage, so the
# warehouse's own audit report (warehouse/reports/audit.py) uses the same map without importing Dagster.
from warehouse.lineage import DIMENSION_COLUMNS, KIND_COLUMNS, _expand, indicator_column_sources  # noqa: E402,F401


@lru_cache(maxsize=1)
def _default_definitions() -> Mapping[str, IndicatorDefinition]:
    return load_indicator_definitions()


def indicator_release_lineage(definition_ids: Iterable[str] | None = None) -> tuple[TableSchema, TableColumnLineage]:
    """Schema of ``indicator_values`` and its lineage to ``warehouse_tables`` for these definitions (default: all)."""
    from warehouse.models import IndicatorValue

    defs = _default_definitions()
    if definition_ids is not None:
        wanted = set(definition_ids)
        defs = {k: v for k, v in defs.items() if k in wanted}
    schema = model_schema(IndicatorValue.__table__)  # type: ignore[arg-type]
    return schema, lineage_to(names.WAREHOUSE_TABLES, indicator_column_sources(defs))
