"""`c2c partnership export DIR` and `c2c partnership check DIR`: a city's partnership as a directory.

``export`` writes the packaged reference partnership (agreements, extract contracts with their roles,
indicator definitions, linkage settings, the agency list) as a starting point; ``check`` loads one and
prints every problem on its own line (``<file>: <key path>: <problem>``), exit 2, or a short summary, exit 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_partnership_export(args: argparse.Namespace) -> int:
    from stages.errors import ContractError
    from stages.partnership import export_reference

    try:
        written = export_reference(args.dir)
    except ContractError as exc:
        print(f"c2c: {exc}", file=sys.stderr)
        return 2
    print(f"c2c: wrote the reference partnership ({len(written)} files) to {args.dir}; "
          f"edit it, then `c2c partnership check {args.dir}` and set C2C_PARTNERSHIP={args.dir}")
    return 0


def cmd_partnership_check(args: argparse.Namespace) -> int:
    from stages.errors import ContractError, ContractErrors
    from stages.partnership import indicator_names, load_partnership_dir

    try:
        p = load_partnership_dir(args.dir)
    except (ContractError, ContractErrors) as exc:
        errors = exc.errors if isinstance(exc, ContractErrors) else [exc]
        for e in errors:
            print(f"c2c: {e}", file=sys.stderr)
        print(f"c2c: the partnership in {args.dir} has {len(errors)} problem(s); nothing was changed", file=sys.stderr)
        return 2
    for agency in p.agencies:
        roles = ", ".join(f"{e} ({p.contracts[(agency, e)].role or 'no role: not stored'})" for e in p.extracts_of(agency))
        print(f"{agency}: {p.agreements[agency].agency_name}: {roles}")
    defs = indicator_names(p)
    print(f"indicators: {len(defs)} definitions ({', '.join(defs)})")
    print(f"c2c: the partnership in {args.dir} is consistent")
    return 0


def _synth_for_partnership(args: argparse.Namespace, original: Any) -> int:
    """``c2c synth --partnership DIR``: a synthetic city in DIR's files (synthetic/partnership_city.py)."""
    if not args.partnership:
        return int(original(args) or 0)
    import datetime as dt
    from pathlib import Path

    from stages.synth import generate_partnership_city

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    rows = generate_partnership_city(args.partnership, args.children, args.seed, Path(args.out), as_of=as_of)
    print(f"c2c synth: a synthetic city of {args.children:,} children (seed {args.seed}) for {args.partnership}")
    for (agency, extract), n in sorted(rows.items()):
        print(f"  {agency}/{extract}: {n:,} rows")
    print(f"  drop folder: {Path(args.out).absolute() / 'drop'}")
    return 0


def _demo_for_partnership(args: argparse.Namespace, original: Any) -> int:
    """``c2c demo --partnership DIR``: synthesise DIR's city and run the whole pipeline on it."""
    if not args.partnership:
        return int(original(args) or 0)
    from pathlib import Path

    from pipelines.cli import _ensure_demo_keys
    from pipelines.runner import format_summary, run_pipeline
    from pipelines.settings import Settings
    from stages.synth import generate_partnership_city

    root = Path(args.partnership).absolute()
    settings = Settings.from_env(home=args.home).with_overrides(partnership=root)
    city_dir = settings.home / "synthetic"
    settings = settings.with_overrides(drop_dir=city_dir / "drop")
    print(f"c2c demo: a synthetic city of {args.children:,} children (seed {args.seed}) for {root} in {city_dir}")
    generate_partnership_city(root, args.children, args.seed, city_dir)
    _ensure_demo_keys(settings)
    summary = run_pipeline(settings, settle_s=0.0)
    print(format_summary(summary))
    return 0 if summary.ok else 1


def _wrap(sub: Any, name: str, wrapper: Any) -> None:
    p = sub.choices[name]
    original = p.get_default("func")
    p.add_argument("--partnership", metavar="DIR", help="a partnership directory (default: the reference partnership)")
    p.set_defaults(func=lambda args: wrapper(args, original))


def add_partnership_commands(sub: Any) -> None:
    """Add ``partnership export|check`` to the ``c2c`` parser's subcommands, and ``--partnership`` to synth/demo."""
    _wrap(sub, "synth", _synth_for_partnership)
    _wrap(sub, "demo", _demo_for_partnership)
    p = sub.add_parser("partnership", help="a city's partnership as a directory: export the reference one, check one")
    psub = p.add_subparsers(dest="partnership_command", required=True)
    e = psub.add_parser("export", help="write the reference partnership's files to DIR as a starting point")
    e.add_argument("dir", metavar="DIR")
    e.set_defaults(func=cmd_partnership_export)
    c = psub.add_parser("check", help="validate the partnership directory DIR (one line per problem)")
    c.add_argument("dir", metavar="DIR")
    c.set_defaults(func=cmd_partnership_check)
