"""The `c2c` command line: the data lead's and the agencies' door into the pipeline."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pipelines import cli_hub
from pipelines.auditkey import keyed_audit
from pipelines.cli_ops import add_ops_commands
from pipelines.cli_partnership import add_partnership_commands
from pipelines.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    # flags > environment > c2c.yaml > defaults; audit entries written or verified use the hub's audit key
    return keyed_audit(cli_hub.settings_from_args(args))


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.runner import format_summary, run_pipeline

    settings = _settings(args)
    cli_hub.preflight_run(settings)
    summary = run_pipeline(settings, settle_s=args.settle, verbose=args.verbose)
    print(format_summary(summary))
    return summary.exit_code  # 0 all taken in, 3 finished with refused files, 1 the pipeline failed


def cmd_keys(args: argparse.Namespace) -> int:
    from stages.errors import KeyMaterialError
    from stages.hub import PURPOSES, export_linkage, init_keys, load_keys, rotate_keys

    settings = _settings(args)
    try:
        if args.keys_command == "init":
            keyset = init_keys(settings.key_file, settings.landing_dir, settings.linkage_dir, force=args.force_new_hub)
            print(f"c2c keys: created {settings.key_file} (mode 0600). Back it up somewhere safe: without it the")
            print("  pseudonyms cannot be recomputed and the landing zone cannot be read.")
        elif args.keys_command == "rotate":
            purposes = tuple(args.purposes.split(",")) if args.purposes else PURPOSES
            keyset = rotate_keys(settings.key_file, settings.key_env(), purposes)
            print(f"c2c keys: rotated {', '.join(purposes)}; the next run re-keys pseudonyms through the crosswalk")
        elif args.keys_command == "export-linkage":
            keyset, label = export_linkage(settings.key_file, settings.key_env(), Path(args.out))
            print(f"c2c keys: wrote the linkage key {label} to {args.out} (mode 0600) for agencies that tokenize")
        else:
            keyset = load_keys(settings.key_file, env=settings.key_env())
        for purpose, label in keyset.key_labels().items():
            print(f"  {purpose}: {label}")
    except KeyMaterialError as exc:
        hint = f" ({cli_hub.keys_hint(settings)})" if exc.reason == "missing" or not settings.key_file.exists() else ""
        print(f"c2c keys: {exc}{hint}", file=sys.stderr)
        return 2
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    from stages.errors import IdentifierDataError, KeyMaterialError
    from stages.hub import tokenize_extract
    from stages.partnership import load_partnership

    settings = _settings(args)
    settings.apply_process_defaults()
    partnership = load_partnership(settings.agreements_dir, settings.extracts_dir, root=settings.partnership)
    terms = partnership.terms(args.agency, args.extract)
    if terms is None:
        print(f"c2c tokenize: {args.agency!r} has no extract {args.extract!r} under its MOU", file=sys.stderr)
        return 2
    try:
        result = tokenize_extract(Path(args.input), terms, Path(args.linkage_key))
        if result.unknown or result.tokens is None:
            print(f"c2c tokenize: columns the MOU does not permit: {', '.join(result.unknown[:10])}", file=sys.stderr)
            return 2
        tokens = result.tokens
    except (KeyMaterialError, IdentifierDataError, ValueError, OSError) as exc:
        print(f"c2c tokenize: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tokens.to_csv(out, index=False)
    print(f"c2c tokenize: wrote {len(tokens):,} rows to {out} (linkage key {result.key_label}); no name, birth date,")
    print(f"  address or agency id is in it. Drop it as {args.extract}_<YYYYMMDD>.tokens.csv.")
    return 0


def _ensure_demo_keys(settings: Settings) -> None:
    from stages.hub import create_keys

    if not settings.key_file.exists() and not settings.master_key:
        create_keys(settings.key_file)
        print(f"c2c demo: created a key set for this demo at {settings.key_file} (0600; never commit it)")


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.runner import format_summary, run_pipeline
    from stages.synth import generate_city

    settings = Settings.from_env(home=args.home)
    city_dir = settings.home / "synthetic"
    settings = settings.with_overrides(drop_dir=city_dir / "drop")
    print(f"c2c demo: generating a synthetic city of {args.children:,} children (seed {args.seed}) in {city_dir}")
    started = time.perf_counter()
    generate_city(args.children, args.seed, city_dir)
    print(f"c2c demo: generated in {time.perf_counter() - started:.1f} s; running the pipeline")
    _ensure_demo_keys(settings)
    summary = run_pipeline(settings, settle_s=0.0)
    print(format_summary(summary))
    print(f"  synthetic truth: {city_dir / 'truth'} (for checking linkage and indicators; the pipeline never reads it)")
    return 0 if summary.ok else 1


def cmd_check_extract(args: argparse.Namespace) -> int:
    from stages.hub import check_extract_file
    from stages.partnership import load_partnership

    settings = _settings(args)
    report = check_extract_file(Path(args.file), args.agency,
                                load_partnership(settings.agreements_dir, settings.extracts_dir, root=settings.partnership))
    print(report.text())
    return report.exit_code


def cmd_check_config(args: argparse.Namespace) -> int:
    from stages.errors import ContractError, ContractErrors
    from stages.partnership import load_partnership

    try:
        settings = _settings(args)
        partnership = load_partnership(args.agreements or settings.agreements_dir, args.extracts or settings.extracts_dir)
    except (ContractError, ContractErrors) as exc:
        print(f"c2c: configuration is wrong:\n{exc}", file=sys.stderr)
        return 2
    for agency in partnership.agencies:
        a = partnership.agreements[agency]
        print(f"{agency}: {a.label} ({a.agency_name}), in force {a.effective_date} to {a.expiry_date}, "
              f"min cell {a.min_cell_size}, raw kept {a.raw_retention_days} days")
        for extract in partnership.extracts_of(agency):
            t = partnership.terms(agency, extract)
            assert t is not None
            print(f"  {extract}: {len(t.contract.columns)} columns, {len(t.identifier_fields)} identifiers, "
                  f"{len(t.contract.rules)} rules")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from stages.hub import manifest_entries

    entries = manifest_entries(_engine(args), agency=args.agency, status=args.status)
    for e in entries:
        line = f"{e.id:>5}  {e.status:<10}  {e.rel_path}"
        if e.rows is not None:
            line += f"  ({e.rows:,} rows)"
        if e.reason:
            line += f"\n       {e.reason_code}: {e.reason}"
        if e.superseded_by:
            line += f"\n       superseded by #{e.superseded_by}"
        print(line)
    print(f"{len(entries)} file(s)")
    return 0


def cmd_warehouse_upgrade(args: argparse.Namespace) -> int:
    from stages.hub import warehouse_revision

    engine = cli_hub.open_warehouse(_settings(args), create=True)
    print(f"c2c: warehouse at revision {warehouse_revision(engine)}")
    return 0


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return cli_hub.open_warehouse(_settings(args), create=False)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from stages.hub import verify_audit

    expected = None
    if args.head:
        seq, _, digest = args.head.partition(":")
        expected = (int(seq), digest)
    result = verify_audit(_engine(args), expected_head=expected)
    if result.ok:
        head = f"head {result.head[0]}:{result.head[1]}" if result.head else "empty"
        print(f"c2c audit: OK, {result.entries} entries, chain intact ({head}; keyed from entry {result.keyed_from or '-'})")
        return 0
    print(f"c2c audit: TAMPERED: {result.problem}", file=sys.stderr)
    return 1


def cmd_audit_export(args: argparse.Namespace) -> int:
    from stages.hub import export_audit

    def when(value: str | None) -> dt.datetime | None:
        if not value:
            return None
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)

    text = export_audit(_engine(args), start=when(args.start), end=when(args.end))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"c2c audit: wrote {text.count(chr(10)) - 1} entries to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_warehouse_grant(args: argparse.Namespace) -> int:
    from stages.hub import grant_tiers
    from stages.partnership import load_partnership

    settings = _settings(args)
    report = grant_tiers(_engine(args), load_partnership(settings.agreements_dir, settings.extracts_dir,
                                                                root=settings.partnership))
    print(f"c2c warehouse: {report.message}")
    for role, relations in sorted(report.grants.items()):
        print(f"  {role}: SELECT on {', '.join(relations)}")
    return 0 if report.supported else 2


def cmd_linkage_train(args: argparse.Namespace) -> int:
    from stages.hub import load_keys, manifest_store
    from stages.linkage import train
    from stages.partnership import load_partnership

    settings = _settings(args)
    settings.apply_process_defaults()
    parts = load_partnership(settings.agreements_dir, settings.extracts_dir, root=settings.partnership)
    keyset = load_keys(settings.key_file, env=settings.key_env())
    trained = train(manifest_store(_engine(args)), parts, keyset, settings.linkage_dir)
    if trained is None:
        print("c2c linkage: no person extracts have been taken in yet", file=sys.stderr)
        return 2
    print(f"c2c linkage: trained model {trained.model_id} on {trained.files} current file(s); the nightly run uses it from now on")
    return 0


def _review_error(exc: Exception) -> int:
    print(f"c2c linkage review: {exc}", file=sys.stderr)
    return 2


def cmd_review_list(args: argparse.Namespace) -> int:
    from stages.review import QUEUE_REASONS, DecisionError, levels_text, review_listing

    settings = _settings(args)
    if args.reason and args.reason not in QUEUE_REASONS:
        return _review_error(DecisionError(f"--reason must be one of {', '.join(QUEUE_REASONS)}"))
    if args.limit is not None and args.limit < 1:
        return _review_error(DecisionError("--limit must be 1 or more"))
    try:
        listing = review_listing(settings.linkage_dir, reason=args.reason, agency=args.agency, limit=args.limit)
    except DecisionError as exc:
        return _review_error(exc)
    queue, total, matching = listing.queue, listing.total, listing.matching
    if args.format == "csv":
        sys.stdout.write(queue.to_csv(index=False, lineterminator="\n"))
        return 0
    run = str(queue.run_id.iloc[0])[:8] if len(queue) else "-"
    print(f"c2c linkage review: {total} pair(s) in the queue" + (f" of run {run}" if len(queue) else "")
          + (f", {matching} matching" if matching != total else "") + f", showing {len(queue)}; "
          f"{listing.pending} decision(s) pending for the next run")
    if len(queue) == 0:
        return 0
    print(f"  {'#':>3}  {'source_key_l':<16}  {'source_key_r':<16}  {'agencies':<9}  {'prob.':>6}  {'reason':<22}  pending")
    for i, row in enumerate(queue.itertuples(index=False), start=1):  # display only (at most --limit rows)
        agencies = f"{row.agency_l}-{row.agency_r}"
        print(f"  {i:>3}  {row.source_key_l[:16]:<16}  {row.source_key_r[:16]:<16}  {agencies:<9}  "
              f"{row.match_probability:>6.3f}  {row.reason:<22}  {row.pending or '-'}")
        print(f"       {levels_text(row.levels)}")
    print("  Decide with: c2c linkage review decide SOURCE_KEY_L SOURCE_KEY_R --decision match|non_match --by NAME --why TEXT")
    print("  (a source key may be shortened to its first 12 or more characters; --format csv gives them in full)")
    return 0


def _record_decisions(args: argparse.Namespace, new, *, via: str, resolve: bool = False):  # type: ignore[no-untyped-def]
    """Check decisions, then append them to the pending file and the audit log together (or neither)."""
    from stages.review import record_decisions

    settings = _settings(args)
    return record_decisions(settings.linkage_dir, lambda: _engine(args), new, via=via, allow_unqueued=args.allow_unqueued,
                            supersede=args.supersede, resolve=resolve)


def cmd_review_decide(args: argparse.Namespace) -> int:
    import pandas as pd

    from stages.review import DECISIONS, DecisionError

    decision = str(args.decision).strip().lower()
    if decision not in DECISIONS:
        return _review_error(DecisionError(f"--decision must be one of {', '.join(DECISIONS)}"))
    if not str(args.by).strip() or len(str(args.by).strip()) > 200:
        return _review_error(DecisionError("--by must name the reviewer (1 to 200 characters)"))
    why = str(args.why).strip()
    if not why or len(why) > 1000:
        return _review_error(DecisionError("--why must say why in 1 to 1000 characters (e.g. 'same school and "
                                           "address history'); never a name, birth date, address or agency id"))
    new = pd.DataFrame([{"source_key_l": args.source_key_l, "source_key_r": args.source_key_r, "decision": decision,
                         "decided_by": args.by, "decided_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                         "reason": why}])
    try:
        decisions, entries, waiting, path = _record_decisions(args, new, via="decide", resolve=True)
    except DecisionError as exc:  # one pair: its messages' "row 0" is this pair
        message = str(exc).replace("the pair in row(s) 0", "the pair").replace("row(s) 0 name", "the pair names")
        return _review_error(DecisionError(message.replace(" in row(s) 0", "").removeprefix("decisions: ")))
    d = decisions.iloc[0]
    print(f"c2c linkage review: recorded {d.decision} for {d.source_key_l[:16]} / {d.source_key_r[:16]} by {d.decided_by} "
          f"at {d.decided_at} (audit entry {entries[0].seq})")
    print(f"  {waiting} decision(s) pending in {path}; the next nightly run applies them, and every run after keeps them")
    return 0


def cmd_review_audit(args: argparse.Namespace) -> int:
    from stages.review import DecisionError, audit_summary

    try:
        print(audit_summary(_settings(args).linkage_dir))
    except DecisionError as exc:
        return _review_error(exc)
    return 0


def cmd_review_import(args: argparse.Namespace) -> int:
    import pandas as pd

    from stages.review import DECISION_COLUMNS, DecisionError

    path = Path(args.file)
    try:
        new = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        return _review_error(DecisionError(f"{path} does not exist"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        detail = str(exc) if isinstance(exc, pd.errors.ParserError) else type(exc).__name__  # positions, no values
        return _review_error(DecisionError(f"{path} cannot be read as a CSV file: {detail}"))
    ignored = [str(c) for c in new.columns if c not in DECISION_COLUMNS]
    try:
        decisions, entries, waiting, pending = _record_decisions(args, new, via=f"import {path.name}")
    except DecisionError as exc:
        print(f"c2c linkage review: {path} was not imported (nothing recorded): {exc}", file=sys.stderr)
        print("  rows are counted from 0, the first line after the header", file=sys.stderr)
        return 2
    counts = decisions.decision.value_counts()
    print(f"c2c linkage review: imported {len(decisions)} decision(s) from {path} ({int(counts.get('match', 0))} match, "
          f"{int(counts.get('non_match', 0))} non_match; audit entries {entries[0].seq}-{entries[-1].seq})")
    if ignored:
        print(f"  ignored column(s) not in the decisions format: {', '.join(ignored)}")
    print(f"  {waiting} decision(s) pending in {pending}; the next nightly run applies them")
    return 0


REVIEW_REASONS = ("score_band", "possible_sibling", "conflict_within_agency", "conflict_birth_years", "decision_conflict",
                  "concurrent_ids", "audit")
"""The review queue's reasons for `--reason`'s help, written out so that building the parser does not load the
linkage package (tests/pipelines/test_cli_startup.py checks they are `stages.review.QUEUE_REASONS`)."""


def _common(p: argparse.ArgumentParser) -> None:
    """The options every hub command takes: where the data and the warehouse are."""
    p.add_argument("--home", help="data directory (default $C2C_HOME or ./c2c-data)")
    p.add_argument("--warehouse", help="warehouse URL (default $C2C_WAREHOUSE_URL or SQLite under the data directory)")
    p.add_argument("--schema", help="PostgreSQL schema for the warehouse (default $C2C_WAREHOUSE_SCHEMA)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c2c", description="Cradle-to-Career Data Hub",
                                     epilog="exit codes: 0 done, 2 a usage or setup error (one line on stderr); "
                                            "--debug (anywhere) shows the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_hub.add_synth_parser(sub)
    cli_hub.add_hub_parsers(sub, _common)
    _add_run_and_keys_parsers(sub, _common)
    _add_agency_parsers(sub, _common)
    _add_admin_parsers(sub, _common)
    _add_linkage_parsers(sub, _common)
    add_ops_commands(sub, _common)
    add_partnership_commands(sub)  # pipelines/cli_partnership.py

    from pipelines.cli_report import add_report_parser

    add_report_parser(sub)
    return parser


def _add_run_and_keys_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """`c2c run` and `c2c keys ...`."""
    p = sub.add_parser("run", help="take in every complete file in the drop folder, then run the nightly stages")
    common(p)
    p.add_argument("--drop", help="drop folder (default $C2C_DROP_DIR or <home>/drop)")
    p.add_argument("--settle", type=float, default=None, help="a file without a .done marker is complete when "
                   "unchanged for this many seconds (default $C2C_DROP_SETTLE_S or 60)")
    p.add_argument("--verbose", action="store_true", help="also show Dagster's own event log")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("keys", help="the hub's keys: init, rotate, export-linkage, show")
    ksub = p.add_subparsers(dest="keys_command", required=True)
    for name, text in (("init", "create a new key set (0600 key file)"), ("show", "show key versions and ids (never keys)")):
        k = ksub.add_parser(name, help=text)
        common(k)
        if name == "init":
            k.add_argument("--force-new-hub", action="store_true", help="create keys although this hub already holds data")
        k.set_defaults(func=cmd_keys)
    k = ksub.add_parser("rotate", help="start a new key version; the next run re-keys the pseudonyms")
    common(k)
    k.add_argument("--purposes", help="comma-separated: linkage,pseudonym,landing,linkage_hub,audit (default all)")
    k.set_defaults(func=cmd_keys)
    k = ksub.add_parser("export-linkage", help="write the linkage key for agencies that tokenize at source")
    common(k)
    k.add_argument("out")
    k.set_defaults(func=cmd_keys)


def _add_agency_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """What agencies and first-time users run: tokenize, demo, check-extract, check-config."""
    p = sub.add_parser("tokenize", help="(agencies) replace identifiers with linkage tokens before dropping a file")
    p.add_argument("--agency", required=True)
    p.add_argument("--extract", required=True)
    p.add_argument("--linkage-key", required=True, help="the key file from `c2c keys export-linkage`")
    p.add_argument("input")
    p.add_argument("output")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("demo", help="synthetic city + full run on the embedded default (SQLite)")
    p.add_argument("--home", help="data directory (default $C2C_HOME or ./c2c-data)")
    p.add_argument("--children", type=int, default=2000, help="children in the synthetic city, exactly (default 2000)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the synthetic city (default 42)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-extract", help="(agencies) check a file with the hub's rules before dropping it")
    p.add_argument("file")
    p.add_argument("--agency", required=True)
    p.set_defaults(func=cmd_check_extract)

    p = sub.add_parser("check-config", help="load and cross-check the MOUs and extract contracts")
    p.add_argument("--agreements", help="MOU folder (default: the shipped schemas/agreements)")
    p.add_argument("--extracts", help="extract contracts folder (default: the shipped schemas/extracts)")
    p.set_defaults(func=cmd_check_config)


def _add_admin_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The manifest, the warehouse and the audit log."""
    p = sub.add_parser("manifest", help="list every file received, with its status and reason")
    common(p)
    p.add_argument("--status", choices=["accepted", "refused", "duplicate", "superseded"])
    p.add_argument("--agency")
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("warehouse", help="warehouse administration")
    wsub = p.add_subparsers(dest="warehouse_command", required=True)
    w = wsub.add_parser("upgrade", help="apply the warehouse migrations (Alembic)")
    common(w)
    w.set_defaults(func=cmd_warehouse_upgrade)
    w = wsub.add_parser("grant", help="create the public and partners access tiers from the MOUs (PostgreSQL)")
    common(w)
    w.set_defaults(func=cmd_warehouse_grant)

    p = sub.add_parser("audit", help="the hash-chained audit log")
    asub = p.add_subparsers(dest="audit_command", required=True)
    a = asub.add_parser("verify", help="detect any edited, deleted or reordered entry")
    common(a)
    a.add_argument("--head", help="the head SEQ:HASH recorded earlier, to detect entries removed from the end")
    a.set_defaults(func=cmd_audit_verify)
    a = asub.add_parser("export", help="export entries as CSV for an auditor")
    common(a)
    a.add_argument("--from", dest="start", help="from this time (ISO 8601, UTC if no offset), inclusive")
    a.add_argument("--to", dest="end", help="up to this time, exclusive")
    a.add_argument("--out", help="CSV file (default: standard output)")
    a.set_defaults(func=cmd_audit_export)


def _add_linkage_parsers(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """`c2c linkage train` and `c2c linkage review ...`."""
    p = sub.add_parser("linkage", help="the linkage model and clerical review")
    lsub = p.add_subparsers(dest="linkage_command", required=True)
    lt = lsub.add_parser("train", help="retrain the linkage model on the current encodings (versioned artefact)")
    common(lt)
    lt.set_defaults(func=cmd_linkage_train)

    lr = lsub.add_parser("review", help="clerical review: the pseudonymous queue and reviewers' decisions")
    rsub = lr.add_subparsers(dest="review_command", required=True)
    r = rsub.add_parser("list", help="show the latest run's review queue (source keys, agencies, probability, levels)")
    common(r)
    r.add_argument("--reason", help="only pairs queued for this reason (" + ", ".join(REVIEW_REASONS) + ")")
    r.add_argument("--agency", help="only pairs with a record of this agency")
    r.add_argument("--limit", type=int, help="show at most this many pairs (most probable first)")
    r.add_argument("--format", choices=["table", "csv"], default="table", help="csv: every column, full source keys")
    r.set_defaults(func=cmd_review_list)

    def recording(r: argparse.ArgumentParser) -> None:
        common(r)
        r.add_argument("--allow-unqueued", action="store_true",
                       help="also accept pairs outside the queue (both source keys seen by the latest run)")
        r.add_argument("--supersede", action="store_true",
                       help="replace a pending (not yet applied) decision on the same pair with a later one")

    r = rsub.add_parser("decide", help="record a decision on a pair; the next nightly run applies it (audited)")
    r.add_argument("source_key_l", metavar="SOURCE_KEY_L", help="a source key (or its first 12+ characters)")
    r.add_argument("source_key_r", metavar="SOURCE_KEY_R", help="the other source key of the pair")
    r.add_argument("--decision", required=True, metavar="{match,non_match}")
    r.add_argument("--by", required=True, help="the reviewer's name or staff id")
    r.add_argument("--why", required=True,
                   help="why (up to 1000 characters); never a name, birth date, address or agency id")
    recording(r)
    r.set_defaults(func=cmd_review_decide)
    r = rsub.add_parser("import", help="record many decisions from a CSV file (all or none; audited)")
    r.add_argument("file", help="CSV: source_key_l, source_key_r, decision, decided_by, decided_at (ISO 8601), reason")
    recording(r)
    r.set_defaults(func=cmd_review_import)
    r = rsub.add_parser("audit", help="estimated precision (95%% interval) from decisions on the queue's audit sample")
    common(r)
    r.set_defaults(func=cmd_review_audit)


def main(argv: list[str] | None = None) -> int:
    from pipelines.hardening import apply_umask

    apply_umask()  # everything the hub writes is private to its user (files 0600, folders 0700)
    argv, debug = cli_hub.strip_debug(argv)
    args = build_parser().parse_args(argv)
    return cli_hub.run_command(args.func, args, debug=debug)


if __name__ == "__main__":
    sys.exit(main())
