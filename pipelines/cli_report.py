"""`c2c report`: write the cabinet's report of the current (or a kept) release as a static site."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from pipelines import cli
    from stages.report import ReportError, report_release

    settings = cli._settings(args)
    out = Path(args.out).expanduser().absolute() if args.out else settings.home / "reports"
    try:
        result = report_release(settings.warehouse_url, settings.warehouse_schema, out, args.release)
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
