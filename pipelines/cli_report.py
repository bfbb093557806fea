"""`c2c report`: write the cabinet's report of the current (or a kept) release as a static site."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from pipelines import cli
    from warehouse.db import make_engine
    from warehouse.reports.cabinet import ReportError, build_cabinet_report

    settings = cli._settings(args)
    out = Path(args.out).expanduser().absolute() if args.out else settings.home / "reports"
    try:
        url = make_url(settings.warehouse_url)
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            raise ReportError(f"there is no warehouse at {url.database}: run `c2c run` (it publishes a release) first")
        engine = make_engine(settings.warehouse_url, settings.warehouse_schema)
        with engine.connect() as conn:
            if not inspect(conn).has_table("releases"):
                raise ReportError("the warehouse has no release table yet: run `c2c run` (it publishes a release) first")
        result = build_cabinet_report(engine, out, args.release)
    except ReportError as exc:
        print(f"c2c report: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"c2c report: the warehouse cannot be read ({type(exc).__name__}); check --warehouse / C2C_WAREHOUSE_URL", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"c2c report: cannot write the report under {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"c2c report: release {result.release_id}: {len(result.pages)} pages, {result.charts} charts in {result.seconds:.1f} s")
    print(f"  open {result.directory / 'index.html'}")
    return 0


def add_report_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="write the cabinet's report of the current release (static HTML, opens offline)")
    p.add_argument("--home", help="data directory (default $C2C_HOME or ./c2c-data)")
    p.add_argument("--warehouse", help="warehouse URL (default $C2C_WAREHOUSE_URL or SQLite under the data directory)")
    p.add_argument("--schema", help="PostgreSQL schema for the warehouse (default $C2C_WAREHOUSE_SCHEMA)")
    p.add_argument("--release", type=int, help="a kept release id (default: the current release)")
    p.add_argument("--out", help="reports folder (default <home>/reports); the report goes in <out>/<release_id>/")
    p.set_defaults(func=cmd_report)
