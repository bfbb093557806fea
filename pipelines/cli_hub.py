"""The hub's own commands (`c2c init`, `c2c status`) and the CLI's errors for people.

Every user error (a wrong setting, a missing drop folder or key set, a warehouse that cannot be reached)
is one line on stderr that says what to do, with exit code 2; a traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.settings import (
    CONFIG_FILE,
    Settings,
    SettingsError,
    check_warehouse_url,
    debug_enabled,
    point_dagster_at,
    read_config_file,
    write_config_file,
)

EXIT_USER_ERROR = 2
KEYS_HINT = "create a key set with `c2c init` (a new hub) or `c2c keys init`, or restore the key file from your backup"


class UserError(SettingsError):
    """Something the person running c2c can fix; the message says how (one line)."""


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Flags over the environment over c2c.yaml over the defaults (the flags every command shares)."""
    settings = Settings.from_env(home=getattr(args, "home", None))
    overrides: dict[str, object] = {}
    if getattr(args, "drop", None):
        overrides["drop_dir"] = Path(args.drop).expanduser().absolute()
    if getattr(args, "warehouse", None):
        overrides["warehouse_url"] = check_warehouse_url(args.warehouse)
    if getattr(args, "schema", None):
        overrides["warehouse_schema"] = args.schema
    return settings.with_overrides(**overrides)


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a URL)"


def _db_reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(orig).__name__).removeprefix("FATAL:").strip()


def open_warehouse(settings: Settings, *, create: bool):  # type: ignore[no-untyped-def]
    """An engine on the configured warehouse, migrated to head; a one-line :class:`UserError` if it cannot be.

    With ``create=False`` a SQLite warehouse must already exist: no command but ``init``/``run`` makes one
    (so a command reading the wrong place says so instead of showing an empty warehouse).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from stages.hub import open_engine

    url = check_warehouse_url(settings.warehouse_url)
    parsed = make_url(url)
    if parsed.drivername == "sqlite" and not create and parsed.database and not Path(parsed.database).exists():
        raise UserError(f"no warehouse at {parsed.database}: run `c2c init` (or `c2c run`) first, or name yours with "
                        f"--warehouse URL or `warehouse:` in {settings.home / CONFIG_FILE}")
    try:
        engine = open_engine(url, settings.warehouse_schema)
    except DBAPIError as exc:
        raise UserError(f"cannot open the warehouse {safe_url(url)}: {_db_reason(exc)}; check the host, port and "
                        f"database in --warehouse or `warehouse:` in {settings.home / CONFIG_FILE}") from exc
    return engine


def keys_hint(settings: Settings) -> str:
    """What to do without a key set: restore it where the hub holds data, else create one."""
    from stages.hub import restore_hint

    return restore_hint(settings.landing_dir, settings.linkage_dir) or KEYS_HINT


def check_keys(settings: Settings) -> None:
    """The key set loads, or a one-line :class:`UserError` with the `c2c init` / `c2c keys init` hint."""
    from stages.errors import KeyMaterialError
    from stages.hub import load_keys

    try:
        load_keys(settings.key_file, env=settings.key_env())
    except KeyMaterialError as exc:
        if exc.reason == "missing" or not settings.key_file.exists():
            raise UserError(f"no key set at {settings.key_file}: {keys_hint(settings)}") from exc
        raise UserError(f"the key set cannot be used: {exc}") from exc


def preflight_run(settings: Settings) -> None:
    """What `c2c run` needs before it takes anything in: a drop folder, a key set, a reachable warehouse."""
    drop = settings.drop_dir
    if not drop.is_dir() or drop.is_symlink():
        what = "is not a folder" if drop.exists() or drop.is_symlink() else "does not exist"
        raise UserError(f"the drop folder {drop} {what} (a typo, or a share not mounted?); create it with "
                        f"`c2c init --drop {drop}` or pass the right --drop")
    check_keys(settings)
    open_warehouse(settings, create=True).dispose()


def user_message(exc: BaseException) -> str | None:
    """The one line for an error a person can fix (None: not one of those)."""
    from sqlalchemy.exc import DBAPIError

    from stages.errors import KeyMaterialError

    if isinstance(exc, SettingsError):
        return str(exc)
    if isinstance(exc, KeyMaterialError):
        return f"{exc} ({KEYS_HINT})" if exc.reason == "missing" else str(exc)
    if isinstance(exc, DBAPIError):
        return f"the warehouse refused: {_db_reason(exc)}; check --warehouse or `warehouse:` in c2c.yaml"
    if isinstance(exc, (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError)):
        return f"{exc.strerror}: {exc.filename}"
    return None


def run_command(func: Callable[[argparse.Namespace], Any], args: argparse.Namespace, *, debug: bool) -> int:
    """Run one command: user errors become one line and exit 2; anything else one line and exit 1."""
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # a reader that went away (`c2c status | head -2`) is seen here, not at exit
        return code
    except (KeyboardInterrupt, SystemExit):
        raise
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to write to it at exit
        print("c2c: the output was closed before the command finished (broken pipe)", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            raise
        message = user_message(exc)
        if message is not None:
            print(f"c2c: {message}", file=sys.stderr)
            return EXIT_USER_ERROR
        # no message text: an unexpected error's text could quote data; the type and the way to see more
        print(f"c2c: internal error ({type(exc).__name__}); run the command again with --debug for details", file=sys.stderr)
        return 1


def strip_debug(argv: list[str] | None) -> tuple[list[str], bool]:
    """``--debug`` is accepted anywhere on the command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or debug_enabled()
    return [a for a in argv if a != "--debug"], debug


def cmd_synth(args: argparse.Namespace) -> int:
    import time

    from stages.synth import check_profile, generate_city

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    started = time.perf_counter()
    profile = getattr(args, "profile", None) or None
    if profile:
        try:
            check_profile(profile)
        except ValueError as exc:  # an unknown or malformed profile: one line, exit 2
            print(f"c2c synth: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
    summary = generate_city(args.children, args.seed, Path(args.out), as_of=as_of, profile=profile)
    elapsed = time.perf_counter() - started
    out = Path(args.out).absolute()
    print(synth_headline(out, args.children, args.seed, elapsed))
    for (agency, extract), rows in sorted(summary.rows.items()):
        print(f"  {agency}/{extract}: {rows:,} rows")
    print(f"  drop folder: {out / 'drop'}")
    print(f"  ground truth (never read by the pipeline): {out / 'truth'}")
    return 0


def add_synth_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write a synthetic city's extracts (drop-folder layout) and its ground truth")
    p.add_argument("--children", type=int, default=2000,
                   help="exactly this many children in the city (default 2000): those aged 0-18 on the as-of date and "
                        "their older siblings still school-age in the school years covered (the first line counts each)")
    p.add_argument("--seed", type=int, default=42, help="random seed: the same seed gives byte-identical files (default 42)")
    p.add_argument("--out", required=True, help="folder to write into: <out>/drop (the extracts) and <out>/truth")
    p.add_argument("--as-of", help="as-of date of the extracts (YYYY-MM-DD; default 2026-08-15)")
    p.add_argument("--profile", default=None,
                   help="error profile: default, sloppy, elsewhere (synthetic/error_profiles/NAME.yaml) or a YAML path")
    p.set_defaults(func=cmd_synth)


def synth_headline(out: Path, children: int, seed: int, elapsed: float) -> str:
    """`c2c synth`'s first line: the exact count asked for, and how many of them are aged 0-18 or older siblings."""
    import json

    summary = json.loads((out / "truth" / "summary.json").read_text(encoding="utf-8"))
    young, every = int(summary["population"]["children_aged_0_18"]), int(summary["population"]["children_all"])
    as_of = summary["parameters"]["as_of"]
    return (f"c2c synth: a synthetic city of {every:,} children ({young:,} aged 0-18 on {as_of}, {every - young:,} older "
            f"siblings still school-age in the years covered; seed {seed}) in {elapsed:.1f} s")


# --------------------------------------------------------------------------------------------------
# c2c init


def cmd_init(args: argparse.Namespace) -> int:
    from stages.errors import KeyMaterialError
    from stages.hub import KEY_ENV_VAR, init_keys, load_keys

    base = Settings.from_env(home=args.home)
    values = read_config_file(base.home)
    values["drop"] = str(Path(args.drop).expanduser().absolute()) if args.drop else values.get("drop", str(base.drop_dir))
    values["warehouse"] = args.warehouse or values.get("warehouse") or base.warehouse_url
    for key, flag in (("schema", args.schema), ("partnership", args.partnership)):
        if flag:
            values[key] = str(Path(flag).expanduser().absolute()) if key == "partnership" else flag
    check_warehouse_url(values["warehouse"])
    settings = base.with_overrides(drop_dir=Path(values["drop"]), warehouse_url=values["warehouse"],
                                   warehouse_schema=values.get("schema"))
    drop = settings.drop_dir
    if drop.is_symlink() or (drop.exists() and not drop.is_dir()):
        raise UserError(f"{drop} exists and is not a folder: choose another --drop")
    open_warehouse(settings, create=True).dispose()
    drop.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        keyset = load_keys(settings.key_file, env=settings.key_env())
        keys = f"kept the existing key set ({keyset.source or KEY_ENV_VAR})"
    except KeyMaterialError as exc:
        if exc.reason != "missing" or settings.key_file.exists():
            raise UserError(f"the key set cannot be used: {exc}") from exc
        init_keys(settings.key_file, settings.landing_dir, settings.linkage_dir)  # refused over existing data
        keys = f"created {settings.key_file} (0600): back it up somewhere safe, never commit it"
    path = write_config_file(settings.home, values)
    print(f"c2c init: wrote {path} (every c2c command reads it; flags and environment variables override it)")
    print(f"  drop folder: {drop}")
    print(f"  warehouse:   {safe_url(settings.warehouse_url)}" + (f" (schema {settings.warehouse_schema})" if settings.warehouse_schema else ""))
    print(f"  keys:        {keys}")
    print("  next: agencies drop files into <drop>/<agency>/; then `c2c run` (cron) and `c2c status`")
    return 0


# --------------------------------------------------------------------------------------------------
# c2c status


def _last_run(settings: Settings) -> str:
    """The newest run in the hub's Dagster instance: read straight from its local SQLite run storage when it
    has the default one (no Dagster import: `c2c status` stays quick), through ``DagsterInstance`` otherwise."""
    config = settings.dagster_home / "dagster.yaml"
    if not config.exists():
        return "none yet"
    runs_db = settings.dagster_home / "history" / "runs.db"
    import yaml

    declared = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    if not {"storage", "run_storage"} & set(declared) and runs_db.exists():  # the default (a PostgreSQL one is declared)
        newest = _newest_run_in_sqlite(runs_db)
    else:
        newest = _newest_run_in_instance(settings)
    if newest is None:
        return "none yet"
    run_id, job, status, when, outcome = newest
    return f"{when:%Y-%m-%d %H:%M UTC}  {job}  {status.lower()}" + (f", outcome {outcome}" if outcome else "") + f"  (run {run_id[:8]})"


LastRun = tuple[str, str, str, dt.datetime, str | None]
"""(run id, job, status, when it ended or started or was created (UTC), the ``*outcome`` tag)."""


def _newest_run_in_sqlite(runs_db: Path) -> LastRun | None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{runs_db}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT run_id, pipeline_name, status, end_time, start_time, create_timestamp "
                           "FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        tag = conn.execute("SELECT value FROM run_tags WHERE run_id = ? AND key LIKE '%outcome' ORDER BY id LIMIT 1",
                           (row[0],)).fetchone()
    stamp = row[3] or row[4]
    when = (dt.datetime.fromtimestamp(stamp, dt.timezone.utc) if stamp
            else dt.datetime.fromisoformat(row[5]).replace(tzinfo=dt.timezone.utc))
    return row[0], row[1], row[2], when, tag[0] if tag else None


def _newest_run_in_instance(settings: Settings) -> LastRun | None:
    from dagster import DagsterInstance

    point_dagster_at(settings.dagster_home)
    instance = DagsterInstance.get()
    try:
        records = instance.get_run_records(limit=1)
        if not records:
            return None
        rec, run = records[0], records[0].dagster_run
        when = dt.datetime.fromtimestamp(rec.end_time or rec.start_time or rec.create_timestamp.timestamp(), dt.timezone.utc)
        outcome = next((v for k, v in run.tags.items() if k.endswith("outcome")), None)
        return run.run_id, run.job_name, run.status.value, when, outcome
    finally:
        instance.dispose()


def _waiting_files(settings: Settings, store) -> str:  # type: ignore[no-untyped-def]
    from stages.hub import drop_waiting

    if not settings.drop_dir.is_dir():
        return f"{settings.drop_dir} does not exist (create it with `c2c init --drop DIR`)"
    waiting = drop_waiting(settings.drop_dir, store)
    refused = f", {waiting.refused} refused and left as it was (replace or remove)" if waiting.refused else ""
    return f"{waiting.new} new file(s) to take in, {waiting.being_written} still being written{refused}  ({settings.drop_dir})"


def _late_agencies(settings: Settings, store) -> str:  # type: ignore[no-untyped-def]
    from stages.intake import late_agencies
    from stages.partnership import load_partnership

    late = late_agencies(store, load_partnership(settings.agreements_dir, settings.extracts_dir, root=settings.partnership), settings.today())
    if not late:
        return "none"
    return ", ".join(f"{a} (newest as-of {v['newest_as_of'] or 'never'}, every {v['cadence_days']} days)" for a, v in sorted(late.items()))


def cmd_status(args: argparse.Namespace) -> int:
    from stages.hub import manifest_store, release_and_audit_head

    settings = settings_from_args(args)
    engine = open_warehouse(settings, create=False)
    try:
        store = manifest_store(engine)
        release, audit = release_and_audit_head(engine)
        lines = [
            f"c2c status ({settings.config_file or 'no ' + str(settings.home / CONFIG_FILE) + ': defaults'})",
            f"  last run:        {_last_run(settings)}",
            f"  drop folder:     {_waiting_files(settings, store)}",
            f"  agencies late:   {_late_agencies(settings, store)}",
            "  current release: " + (f"{release.release_id}, published {release.created_at:%Y-%m-%d %H:%M UTC}, "
                                     f"{release.rows:,} rows ({release.suppressed_rows:,} suppressed)" if release else "none yet"),
            "  audit head:      " + (f"entry {audit[0]}, hash {audit[1][:16]}  (check: c2c audit verify)" if audit else "empty"),
            f"  warehouse:       {safe_url(settings.warehouse_url)}",
        ]
        report = settings.home / "reports" / str(release.release_id) / "audit.html" if release else None
        if report is not None and report.exists():
            lines.append(f"  audit report:    {report}")
    finally:
        engine.dispose()
    print("\n".join(lines))
    return 0


def add_hub_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("init", help="set up a hub: write $C2C_HOME/c2c.yaml, create the drop folder and the key set")
    common(p)
    p.add_argument("--drop", help="drop folder agencies write to (default <home>/drop); created if missing")
    p.add_argument("--partnership", help="partnership directory (default: the shipped reference partnership)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("status", help="the hub at a glance: last run, files waiting, late agencies, release, audit head")
    common(p)
    p.add_argument("--drop", help="drop folder (default from c2c.yaml)")
    p.set_defaults(func=cmd_status)
