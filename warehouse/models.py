"""SQLAlchemy 2.x typed declarative models of the warehouse.

Every table here is created by an Alembic migration in ``warehouse/migrations``; change a model, then add
a migration (``c2c warehouse upgrade`` applies them).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


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
