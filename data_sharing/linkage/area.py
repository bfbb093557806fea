"""The linkage area (``$C2C_HOME/linkage``, ``C2C_LINKAGE_DIR``): its one owner.

Every path in the area and every writer that replaces a file there is here; nothing else joins a
file name onto the area's root. The layout:

==============================================  =======================================================
path                                            holds (written by)
==============================================  =======================================================
``validation/<agency>/<extract>/<artifact>``    the row numbers validation accepted (validation)
``profiles/<agency>/<extract>.json``            the extract's drift profile (validation)
``staging/<agency>/<extract>/<artifact>``       the pseudonymous record of one file (privacy)
``encodings/<agency>/<extract>/<artifact>``     its linkage encodings (privacy)
``linkage.duckdb``                              the linkage state (:mod:`.state`)
``duckdb_tmp/``                                 DuckDB's spill files of a linkage run
``spark/``                                      the Spark backend's records and predictions of a step
                                                (removed after it), checkpoints, spill files
``models/<model_id>.json``                      trained linkage models (the newest is used)
``crosswalk.parquet``                           ``source_key -> child_key`` of the latest run
``linkage_quality.json``                        the latest run's quality summary (read by the release)
``review/queue.csv``                            the latest run's clerical review queue (mode 0600)
``review/decisions.csv``                        reviewers' pending decisions (mode 0600), under
                                                ``review/.decisions.lock``; claimed by a run as
                                                ``decisions.claimed.<run>.csv``, then
                                                ``decisions.applied.<run>.csv``
``linkage_keys.json``                           the pseudonym key the linkage state was built under
``warehouse_state.json``                        the pseudonym key the warehouse tables were loaded under
``nightly_inputs.json``                         the fingerprint of the last full nightly run
==============================================  =======================================================

``<artifact>`` is the manifest entry's ``artifact_name`` (id and content hash). The two key records
are one kind (:class:`KeyRecord`): which pseudonym key a product of the area was built under, so a
rotation is seen and carried over.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from data_sharing._files import write_private_file


class AreaEntry(Protocol):
    """What the area needs of a manifest entry to place its artefacts."""

    @property
    def agency(self) -> str | None: ...

    @property
    def extract(self) -> str | None: ...

    @property
    def artifact_name(self) -> str: ...


class MissingArtifactError(RuntimeError):
    """A file the area should hold for a current manifest entry is not there (not retryable: re-run its intake)."""


def _replace_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename (default file mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class KeyRecord:
    """Which pseudonym key one product of the area was built under: ``{field: label}`` in one JSON file."""

    path: Path
    field: str

    def label(self) -> str | None:
        if not self.path.exists():
            return None
        value = json.loads(self.path.read_text(encoding="utf-8")).get(self.field)
        return None if value is None else str(value)

    def changed(self, current: str) -> bool:
        """Whether the product was built under another key than ``current`` (never when not yet built)."""
        return self.label() not in (None, current)

    def record(self, label: str) -> None:
        _replace_bytes(self.path, json.dumps({self.field: label}).encode("utf-8"))


@dataclass(frozen=True)
class LinkageArea:
    """The linkage area rooted at ``root``: its paths, readers and atomic writers."""

    root: Path

    CROSSWALK = "crosswalk.parquet"
    QUALITY = "linkage_quality.json"
    STATE_DB = "linkage.duckdb"
    LINKAGE_KEYS = "linkage_keys.json"
    WAREHOUSE_STATE = "warehouse_state.json"
    NIGHTLY_INPUTS = "nightly_inputs.json"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, where: LinkageArea | Path | str) -> LinkageArea:
        """The area itself, or the area rooted at a path."""
        return where if isinstance(where, LinkageArea) else cls(Path(where))

    # ------------------------------------------------------------------ one file's artefacts (intake)

    def _per_file(self, kind: str, entry: AreaEntry) -> Path:
        return self.root / kind / str(entry.agency) / str(entry.extract) / entry.artifact_name

    def staging(self, entry: AreaEntry) -> Path:
        """The pseudonymous record of one file."""
        return self._per_file("staging", entry)

    def encodings(self, entry: AreaEntry) -> Path:
        """The linkage encodings of one file."""
        return self._per_file("encodings", entry)

    def require(self, path: Path, what: str, rel_path: str) -> Path:
        """``path``, or :class:`MissingArtifactError` naming the drop file (``rel_path``) whose ``what`` is missing."""
        if not path.exists():
            raise MissingArtifactError(f"{rel_path}: its {what} is missing; re-run its intake partition")
        return path

    @property
    def validation_dir(self) -> Path:
        return self.root / "validation"

    def validation_rows(self, entry: AreaEntry) -> Path:
        """The row numbers validation accepted of one file."""
        return self._per_file("validation", entry)

    def profile(self, agency: str, extract: str) -> Path:
        """The drift profile of one extract."""
        return self.root / "profiles" / str(agency) / f"{extract}.json"

    # ------------------------------------------------------------------ linkage state and models

    @property
    def state_db(self) -> Path:
        return self.root / self.STATE_DB

    @property
    def duckdb_tmp(self) -> Path:
        return self.root / "duckdb_tmp"

    @property
    def spark_dir(self) -> Path:
        return self.root / "spark"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_file(self, model_id: str) -> Path:
        return self.models_dir / f"{model_id}.json"

    def model_files(self) -> list[Path]:
        """The saved models, oldest first (by modification time)."""
        if not self.models_dir.is_dir():
            return []
        return sorted(self.models_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)

    def latest_model(self) -> Path | None:
        models = self.model_files()
        return models[-1] if models else None

    # ------------------------------------------------------------------ the latest run's products

    @property
    def crosswalk(self) -> Path:
        return self.root / self.CROSSWALK

    def read_crosswalk(self) -> pd.DataFrame | None:
        return pd.read_parquet(self.crosswalk) if self.crosswalk.exists() else None

    def write_crosswalk(self, crosswalk: pd.DataFrame) -> None:
        """Replace the crosswalk (``source_key``, ``child_key``) atomically."""
        tmp = self.root / (self.CROSSWALK + ".tmp")
        crosswalk.to_parquet(tmp, index=False)
        os.replace(tmp, self.crosswalk)

    @property
    def quality(self) -> Path:
        return self.root / self.QUALITY

    def read_quality(self) -> dict[str, Any] | None:
        return json.loads(self.quality.read_text()) if self.quality.exists() else None

    def write_quality(self, summary: dict[str, Any]) -> None:
        _replace_bytes(self.quality, json.dumps(summary, sort_keys=True, default=str).encode("utf-8"))

    # ------------------------------------------------------------------ clerical review files

    @property
    def review_dir(self) -> Path:
        return self.root / "review"

    @property
    def queue(self) -> Path:
        return self.review_dir / "queue.csv"

    def write_queue(self, queue: pd.DataFrame) -> None:
        """Replace the review queue atomically (a reviewer listing it never reads half a queue), mode 0600."""
        self.review_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(self.queue, queue.to_csv(index=False, lineterminator="\n").encode("utf-8"), overwrite=True)

    @property
    def pending_decisions(self) -> Path:
        return self.review_dir / "decisions.csv"

    @property
    def review_lock(self) -> Path:
        return self.review_dir / ".decisions.lock"

    def claimed_decisions(self, run_tag: str) -> Path:
        return self.review_dir / f"decisions.claimed.{run_tag}.csv"

    def applied_decisions(self, run_tag: str) -> Path:
        return self.review_dir / f"decisions.applied.{run_tag}.csv"

    # ------------------------------------------------------------------ which keys things were built under

    @property
    def linkage_keys(self) -> KeyRecord:
        """The pseudonym key the linkage state's source keys are under."""
        return KeyRecord(self.root / self.LINKAGE_KEYS, "pseudonym")

    @property
    def warehouse_keys(self) -> KeyRecord:
        """The pseudonym key the warehouse tables were last loaded under."""
        return KeyRecord(self.root / self.WAREHOUSE_STATE, "pseudonym_key")

    @property
    def nightly_inputs(self) -> Path:
        return self.root / self.NIGHTLY_INPUTS


__all__ = ["AreaEntry", "KeyRecord", "LinkageArea", "MissingArtifactError"]
