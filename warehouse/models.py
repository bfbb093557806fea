"""SQLAlchemy 2.x typed declarative models of the warehouse.

Every table here is created by an Alembic migration in ``warehouse/migrations``; change a model, then add
a migration (``c2c warehouse upgrade`` applies them).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Double, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    __table__: ClassVar[Table]  # every model here is a plain table (SQLAlchemy types it as any FromClause)


class IntakeManifest(Base):
    """Every file ever seen in the drop folder, with what intake decided and why.

    Holds no file content: names, checksums, counts and decisions only. A file is identified by where it
    was dropped (``rel_path``) and its content (``fingerprint``: the SHA-256 of its bytes, or of a
    description of an entry that is not a regular file, such as a symlink).
    """

    __tablename__ = "intake_manifest"
    __table_args__ = (
        UniqueConstraint("rel_path", "fingerprint", name="uq_intake_manifest_path_fingerprint"),
        Index("ix_intake_manifest_extract", "agency", "extract", "as_of_date"),
        Index("ix_intake_manifest_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rel_path: Mapped[str] = mapped_column(Text, doc="Path under the drop folder, as dropped (escaped, see intake.escape_name)")
    file_name: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64), doc="SHA-256 of the file's bytes (regular files only)")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    agency: Mapped[str | None] = mapped_column(String(64))
    extract: Mapped[str | None] = mapped_column(String(64))
    as_of_date: Mapped[dt.date | None] = mapped_column(Date)
    tokenized: Mapped[bool] = mapped_column(Boolean, default=False)
    rows: Mapped[int | None] = mapped_column(BigInteger, doc="Data rows (header excluded)")
    duplicate_rows: Mapped[int | None] = mapped_column(BigInteger, doc="Rows that exactly repeat an earlier row")
    period_rows: Mapped[str | None] = mapped_column(Text, doc="JSON: rows per period, for period extracts")
    status: Mapped[str] = mapped_column(String(16), doc="accepted | superseded | refused | duplicate")
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text, doc="Plain-language reason an agency clerk can act on")
    warnings: Mapped[str | None] = mapped_column(Text, doc="JSON list of warnings")
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("intake_manifest.id"))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("intake_manifest.id"))
    mou_id: Mapped[str | None] = mapped_column(String(64))
    mou_version: Mapped[int | None] = mapped_column(Integer)
    marker_sha256: Mapped[str | None] = mapped_column(String(64), doc="SHA-256 of the .done marker, if any")
    partition_key: Mapped[str | None] = mapped_column(String(1024))
    run_id: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    """Append-only, hash-chained record of every decision (files, MOUs, keys, linkage, releases, destruction).

    ``entry_hash`` = SHA-256 over the previous entry's hash and this entry's canonical content, so an edited,
    deleted or reordered entry breaks the chain (``c2c audit verify``). Details never hold an identifier value.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(String(32), doc="UTC time, ISO 8601 with microseconds")
    actor: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(1024))
    details: Mapped[str] = mapped_column(Text, doc="Canonical JSON (sorted keys)")
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


# ==================================================================================================
# Partner tier: pseudonymous row-level tables (issue 7). Keyed by ``child_key`` (NULL while a record is
# not linked); ``source_key`` is the record's per-agency pseudonym, kept so links can be refreshed when
# linkage changes without reloading. No names, addresses, full birth dates or agency ids of a child (the
# ``agency`` column names the agency that sent the row: a free name of the partnership). Tables are keyed by
# extract role (``schemas.roles``), never by agency: several agencies may share one. Every fact row
# records its source file (``manifest_id`` + ``source_sha256``) and its row in that file (``source_row``).
# Loaded by ``warehouse.load.load_current``.


class _FactRow:
    manifest_id: Mapped[int] = mapped_column(Integer, primary_key=True, doc="intake_manifest.id of the source file")
    source_row: Mapped[int] = mapped_column(Integer, primary_key=True, doc="1-based row in the source file")
    source_sha256: Mapped[str] = mapped_column(String(64), doc="SHA-256 of the source file")
    source_key: Mapped[str] = mapped_column(String, doc="Per-agency pseudonym (HMAC) of the record's agency id")
    child_key: Mapped[str | None] = mapped_column(String, doc="Linked child (crosswalk); NULL while not linked")
    agency: Mapped[str | None] = mapped_column(String(64), doc="The agency that sent the row (opaque; not an identifier)")


def _fact_indexes(name: str, *extra: Index) -> tuple[Index, ...]:
    return (Index(f"ix_{name}_child_key", "child_key"), Index(f"ix_{name}_source_key", "source_key"), *extra)


class Enrolment(_FactRow, Base):
    """role school_enrolment: one row per student per school enrolment in a school year."""

    __tablename__ = "enrolments"
    __table_args__ = _fact_indexes("enrolments", Index("ix_enrolments_school_year", "school_year"))

    school_year: Mapped[int | None] = mapped_column(Integer)
    school_id: Mapped[str | None] = mapped_column(String)
    grade_level: Mapped[str | None] = mapped_column(String)
    enroll_date: Mapped[dt.date | None] = mapped_column(Date)
    exit_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String)
    race_ethnicity: Mapped[str | None] = mapped_column(String)
    english_learner: Mapped[str | None] = mapped_column(String)
    disability: Mapped[str | None] = mapped_column(String)
    econ_disadvantaged: Mapped[str | None] = mapped_column(String)
    homeless: Mapped[str | None] = mapped_column(String)
    birth_year_month: Mapped[str | None] = mapped_column(String(7), doc="YYYY-MM (generalised birth date)")
    zip3: Mapped[str | None] = mapped_column(String(3), doc="First three ZIP digits")


class Attendance(_FactRow, Base):
    """role school_attendance: days enrolled and absent per student, school and school year."""

    __tablename__ = "attendance"
    __table_args__ = _fact_indexes("attendance")

    school_id: Mapped[str | None] = mapped_column(String)
    school_year: Mapped[int | None] = mapped_column(Integer)
    days_enrolled: Mapped[int | None] = mapped_column(Integer)
    days_absent: Mapped[int | None] = mapped_column(Integer)


class Assessment(_FactRow, Base):
    """role school_assessment: one result per student, subject and sitting."""

    __tablename__ = "assessments"
    __table_args__ = _fact_indexes("assessments")

    school_year: Mapped[int | None] = mapped_column(Integer)
    grade_level: Mapped[str | None] = mapped_column(String)
    subject: Mapped[str | None] = mapped_column(String)
    scale_score: Mapped[int | None] = mapped_column(Integer)
    performance_level: Mapped[int | None] = mapped_column(Integer)


class GraduationOutcome(_FactRow, Base):
    """role school_graduation: a student's outcome in a graduation cohort."""

    __tablename__ = "graduation_outcomes"
    __table_args__ = _fact_indexes("graduation_outcomes")

    cohort_year: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String)


class HealthPatient(_FactRow, Base):
    """role health_person: non-identifying attributes of a health record (medicaid id is not kept)."""

    __tablename__ = "health_patients"
    __table_args__ = _fact_indexes("health_patients")

    birth_year_month: Mapped[str | None] = mapped_column(String(7))
    sex: Mapped[str | None] = mapped_column(String)
    zip3: Mapped[str | None] = mapped_column(String(3))


class HealthEncounter(_FactRow, Base):
    """role health_encounter: clinic encounters."""

    __tablename__ = "health_encounters"
    __table_args__ = _fact_indexes("health_encounters")

    encounter_id: Mapped[str | None] = mapped_column(String)
    encounter_date: Mapped[dt.date | None] = mapped_column(Date)
    encounter_type: Mapped[str | None] = mapped_column(String)
    diagnosis_code: Mapped[str | None] = mapped_column(String)


class Immunization(_FactRow, Base):
    """role health_immunization: one row per recorded dose (``vaccine_code`` as canonical CVX, e.g. ``03``)."""

    __tablename__ = "immunizations"
    __table_args__ = _fact_indexes("immunizations")

    vaccine_code: Mapped[str | None] = mapped_column(String)
    administered_date: Mapped[dt.date | None] = mapped_column(Date)


class HumanServicesClient(_FactRow, Base):
    """role services_person: non-identifying attributes of a human-services record (adults included)."""

    __tablename__ = "dhs_clients"
    __table_args__ = _fact_indexes("dhs_clients")

    birth_year_month: Mapped[str | None] = mapped_column(String(7))
    sex: Mapped[str | None] = mapped_column(String)
    zip3: Mapped[str | None] = mapped_column(String(3))


class ProgramEnrolment(_FactRow, Base):
    """role services_program_spell: one row per client per program spell (``end_date`` NULL while ongoing)."""

    __tablename__ = "program_enrolments"
    __table_args__ = _fact_indexes("program_enrolments")

    program: Mapped[str | None] = mapped_column(String)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)


class Child(Base):
    """One row per linked ``child_key`` with non-identifying attributes only, rebuilt by every load that
    changes a person role (school enrolment, health person, services person). ``birth_year_month`` and
    ``sex`` come from the school record when there is one, else health, else human services. The linkage key is named
    ``child_key`` throughout, but a key seen only in human services may be an adult (a parent)."""

    __tablename__ = "children"

    child_key: Mapped[str] = mapped_column(String, primary_key=True)
    birth_year_month: Mapped[str | None] = mapped_column(String(7))
    sex: Mapped[str | None] = mapped_column(String)
    has_school_record: Mapped[bool] = mapped_column(Boolean)
    has_health_record: Mapped[bool] = mapped_column(Boolean)
    has_human_services_record: Mapped[bool] = mapped_column(Boolean)


class LoadedFile(Base):
    """The source files whose rows are in the partner tier now (the current set of each extract)."""

    __tablename__ = "loaded_files"

    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    extract: Mapped[str] = mapped_column(String(64), primary_key=True)
    manifest_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    periods: Mapped[str | None] = mapped_column(Text, doc="JSON list of the periods loaded from the file; NULL = all rows")
    rows: Mapped[int] = mapped_column(BigInteger, doc="Rows loaded")
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# ==================================================================================================
# Public tier: releases of indicator_values (issue 7). Readers use the ``current_indicator_values`` view
# (or ``warehouse.releases.current_indicator_values``), which follows the ``current_release`` pointer.


class Release(Base):
    """One published release of every indicator (kept: the last N, see warehouse.releases)."""

    __tablename__ = "releases"

    release_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    definitions: Mapped[str] = mapped_column(Text, doc="JSON: definition id -> version, kind, indicator, file sha256")
    source_files: Mapped[str] = mapped_column(Text, doc="JSON list: agency, extract, manifest_id, sha256 of every contributing file")
    linkage_quality: Mapped[str] = mapped_column(Text, doc="JSON: records and link rates per agency pair, as passed by the caller")
    rows: Mapped[int] = mapped_column(Integer)
    suppressed_rows: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, doc="Release notes: known limitations")
    audit_head: Mapped[str | None] = mapped_column(
        Text, doc="JSON: the audit log's head after this release's entry: seq, entry_hash, key (audit key label)"
    )


class CurrentRelease(Base):
    """The pointer readers follow; flipped in the same transaction that writes the release."""

    __tablename__ = "current_release"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.release_id"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class IndicatorValue(Base):
    """Published, suppressed indicator values (SPEC "What the cabinet publishes"), one release at a time."""

    __tablename__ = "indicator_values"

    release_id: Mapped[int] = mapped_column(ForeignKey("releases.release_id", ondelete="CASCADE"), primary_key=True)
    indicator: Mapped[str] = mapped_column(String(63), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    school_id: Mapped[str] = mapped_column(String, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(32), primary_key=True)
    group: Mapped[str] = mapped_column(String, primary_key=True)
    numerator: Mapped[int | None] = mapped_column(BigInteger)
    denominator: Mapped[int | None] = mapped_column(BigInteger)
    rate: Mapped[float | None] = mapped_column(Double)
    suppressed: Mapped[bool] = mapped_column(Boolean)
    suppression_reason: Mapped[str | None] = mapped_column(String(32))
