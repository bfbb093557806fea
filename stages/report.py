"""The cabinet's report: after every release, the static site of the current release (the builder is
``warehouse.reports.cabinet``). Plain Python (no Dagster): the ``cabinet_report`` asset calls it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from schemas.partnership import Partnership
from warehouse.reports.errors import ReportError

if TYPE_CHECKING:  # the builder (altair, vl-convert) is imported when a report is written, not at start-up
    from warehouse.reports.cabinet import ReportResult

__all__ = ["CabinetOutcome", "ReportError", "REPORTS_DIR", "report_release", "write_cabinet_report"]

REPORTS_DIR = "reports"  # <home>/reports/<release_id>/: the cabinet's site and the release's audit.html


@dataclass(frozen=True)
class CabinetOutcome:
    """The report written (``result``), or why not (``status``: a new hub before its first release)."""

    result: ReportResult | None = None
    status: str | None = None

    @property
    def written(self) -> bool:
        return self.result is not None


def write_cabinet_report(engine: Engine, home: Path, partnership: Partnership) -> CabinetOutcome:
    """Build the current release's site under ``<home>/reports/<release_id>/``."""
    from warehouse.reports.cabinet import build_cabinet_report

    try:
        return CabinetOutcome(result=build_cabinet_report(engine, Path(home) / REPORTS_DIR, partnership=partnership))
    except ReportError as exc:  # a new hub before its first release: nothing to report yet
        return CabinetOutcome(status=str(exc))


def report_release(warehouse_url: str, warehouse_schema: str | None, out: Path, release: int | None = None) -> ReportResult:
    """`c2c report`: the site of the current (or a kept) release under ``out/<release_id>/``; a
    :class:`ReportError` saying what to run first when there is no warehouse or no release table yet."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from warehouse.db import make_engine
    from warehouse.reports.cabinet import build_cabinet_report

    url = make_url(warehouse_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise ReportError(f"there is no warehouse at {url.database}: run `c2c run` (it publishes a release) first")
    engine = make_engine(warehouse_url, warehouse_schema)
    with engine.connect() as conn:
        if not inspect(conn).has_table("releases"):
            raise ReportError("the warehouse has no release table yet: run `c2c run` (it publishes a release) first")
    return build_cabinet_report(engine, out, release)
