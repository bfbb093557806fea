"""`c2c ui` and `c2c doctor`: the operator's doors to the Dagster UI and to the hub's file modes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from pipelines.cli import _settings as settings_from_args

    return settings_from_args(args)


def cmd_ui(args: argparse.Namespace) -> int:
    from pipelines.instance import ensure_dagster_home
    from pipelines.ui import LOOPBACK, serve

    settings = _settings(args)
    if not args.read_only and args.host not in (LOOPBACK, "localhost"):
        print(f"c2c ui: the writable UI listens on {LOOPBACK} only; for auditors on other machines use `c2c ui --read-only`",
              file=sys.stderr)
        return 2
    ensure_dagster_home(settings.dagster_home)
    if not args.read_only:  # the daemon's door: runs a dead process left STARTED are failed first (audited)
        from pipelines.runner import fail_stale_runs_at_start

        fail_stale_runs_at_start(settings)
    env = settings.subprocess_environment()
    root = Path(__file__).resolve().parent.parent
    workspace = str(root / "workspace.yaml")

    def command(port: int) -> list[str]:
        if args.read_only:
            return [sys.executable, "-m", "dagster_webserver", "-w", workspace, "-h", args.host, "-p", str(port), "--read-only"]
        return [sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", LOOPBACK, "-p", str(port)]

    host = args.host if args.read_only else LOOPBACK
    print(f"c2c: starting the Dagster UI on http://{host}:{args.port} (DAGSTER_HOME={settings.dagster_home})", flush=True)
    return serve(command, env=env, cwd=str(root), port=args.port, guard=not args.read_only)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report any file or folder of the hub that others than its user may read (exit 1 when one is found)."""
    from pipelines.hardening import find_loose, hub_roots, tighten

    settings = _settings(args)
    loose = find_loose(settings)
    if loose and args.fix:
        tighten(loose)
        print(f"c2c doctor: made {len(loose)} path(s) private (files 0600, folders 0700)")
        loose = find_loose(settings)
    if not loose:
        print(f"c2c doctor: every file and folder under {', '.join(str(r) for r in hub_roots(settings) if r.exists())} "
              "is private to its user (files 0600, folders 0700; the drop folder is the agencies' and not checked)")
        return 0
    print(f"c2c doctor: {len(loose)} path(s) that others than the hub's user may access:")
    for item in loose[:200]:
        print(f"  {item.describe()}")
    if len(loose) > 200:
        print(f"  ... and {len(loose) - 200} more")
    return 1


def add_ops_commands(sub, common: Callable[[argparse.ArgumentParser], None]) -> None:  # type: ignore[no-untyped-def]
    p = sub.add_parser("ui", help="start the Dagster UI (and daemon: sensor and schedule) for this data directory")
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="the read-only UI may listen elsewhere; the writable one only on 127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--read-only", action="store_true", help="read-only UI for auditors (no launching, no edits)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("doctor", help="check that the hub's data at rest is private (files 0600, folders 0700); exit 1 if not")
    common(p)
    p.add_argument("--fix", action="store_true", help="make every path found private (chmod 600 files, 700 folders)")
    p.set_defaults(func=cmd_doctor)
