"""`c2c linkage review` (issues 6 and 8): a clerk lists the pseudonymous queue, records decisions from the
command line or a CSV file, the next nightly run applies them (and every run after keeps them), and every
decision is in the hash-chained audit log -- when recorded and when applied. Bad input is refused with a
clerk-readable message that never repeats what was typed. Every value is made up by the synthetic city.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from data_sharing.linkage.review import levels_text
from e2e_support import drop_files, isolate_env, read_csv, settings_env, write_csv
from pipelines.cli import main
from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from synthetic.city import generate_city
from warehouse.audit import read_entries, verify
from warehouse.db import make_engine

REASON_CANARY = "Qxreasoncanary same school and address history"


@dataclass(frozen=True)
class Night:
    home: Path
    env: dict[str, str]
    key: str
    identifiers: set[str] = field(repr=False)  # every direct-identifier cell of the raw extracts, upper-cased


def _identifier_cells(drop: Path) -> set[str]:
    from data_sharing.partnership import load_partnership

    partnership = load_partnership()
    cells: set[str] = set()
    for path in drop_files(drop):
        contract = partnership.terms(path.parent.name, path.name.rsplit("_", 1)[0]).contract
        header, rows = read_csv(path)
        direct = [i for i, c in enumerate(header) if contract.columns[c].privacy == "direct"]
        # a one-letter cell (a middle initial) identifies no one and equals codes shown as such (sex M/F)
        cells |= {row[i].strip().upper() for row in rows for i in direct if len(row[i].strip()) > 1}
    return cells


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    """A small city taken in and linked once (its queue and crosswalk written)."""
    tmp = tmp_path_factory.mktemp("review_city")
    home = tmp / "home"
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    generate_city(300, 5, tmp / "city")
    identifiers = _identifier_cells(tmp / "city" / "drop")
    env = {**settings_env(home), "C2C_DROP_DIR": str(tmp / "city" / "drop")}
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, home, C2C_DATA_DOCS="0", C2C_MASTER_KEY=key)
        assert run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None).ok
    assert (home / "linkage" / "review" / "queue.csv").is_file(), "the first night did not link (no model could be trained?)"
    return Night(home, env, key, identifiers)


@pytest.fixture
def home(night: Night, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_env(monkeypatch, night.home, C2C_DATA_DOCS="0", C2C_MASTER_KEY=night.key)
    return night.home


def _queue(home: Path) -> pd.DataFrame:
    return pd.read_csv(home / "linkage" / "review" / "queue.csv", dtype=str)


def _crosswalk(home: Path) -> pd.Series:
    return pd.read_parquet(home / "linkage" / "crosswalk.parquet").set_index("source_key").child_key


def _linked_pair(crosswalk: pd.Series, queue: pd.DataFrame) -> tuple[str, str]:
    """Two source keys the last run put in one person and did not queue (the queue's audit sample holds some
    linked pairs, so the first shared person is not enough)."""
    queued = {tuple(sorted(p)) for p in zip(queue.source_key_l, queue.source_key_r)}
    sizes = crosswalk.groupby(crosswalk).transform("size")
    shared = crosswalk[sizes >= 2].sort_values(kind="stable")
    for _, keys in shared.groupby(shared, sort=True):
        members = sorted(keys.index)
        for i, left in enumerate(members):
            for right in members[i + 1:]:
                if (left, right) not in queued:
                    return left, right
    raise AssertionError("the city must give a linked pair outside the review queue")


def _review_events(home: Path, event: str) -> list:  # type: ignore[type-arg]
    engine = make_engine(f"sqlite:///{home / 'warehouse.db'}", None)
    try:
        return [e for e in read_entries(engine) if e.event_type == event]
    finally:
        engine.dispose()


def _leaks(text: str, identifiers: set[str]) -> int:
    """How many identifier cells are in ``text``: as a whole token, or anywhere if 8+ characters long
    (the count only: a failure never prints a value)."""
    upper = text.upper()
    tokens = set(re.split(r"[\s,;:()|/]+", upper))
    return sum(1 for c in identifiers if c in tokens or (len(c) >= 8 and c in upper))


def test_bad_input_is_refused_and_nothing_is_recorded(home: Path, night: Night, capsys: pytest.CaptureFixture) -> None:
    queue, crosswalk = _queue(home), _crosswalk(home)
    assert len(queue) >= 2, "the city must give a review queue of at least two pairs"
    ql, qr = queue.source_key_l.iloc[0], queue.source_key_r.iloc[0]
    h = ["--home", str(home)]
    agency_id = sorted(c for c in night.identifiers if re.fullmatch(r"[A-Z]+\d{3,}", c))[0]  # a made-up agency id

    def refused(argv: list[str], expect: str) -> str:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expect in err, err
        return err

    base = ["linkage", "review", "decide", ql, qr, "--by", "clerk-ann", "--why", "checked", *h]
    refused([*base, "--decision", "maybe"], "--decision must be one of match, non_match")
    err = refused(["linkage", "review", "decide", agency_id, qr, "--decision", "match", "--by", "clerk-ann",
                   "--why", "checked", *h], "the first source key is not a source key")
    assert agency_id not in err.upper()
    refused(["linkage", "review", "decide", ql[:8], qr, "--decision", "match", "--by", "c", "--why", "w", *h],
            "12 to 64 hexadecimal characters")
    refused(["linkage", "review", "decide", ql, ql, "--decision", "match", "--by", "c", "--why", "w", *h],
            "names the same source key twice")
    pair = ["linkage", "review", "decide", ql, qr, "--decision", "match", *h]
    refused([*pair, "--by", " ", "--why", "checked"], "--by must name the reviewer")
    refused([*pair, "--by", "clerk-ann", "--why", " "], "--why must say why")
    lk, rk = _linked_pair(crosswalk, queue)
    refused(["linkage", "review", "decide", lk, rk, "--decision", "non_match", "--by", "c", "--why", "w", *h],
            "the pair is not in the current review queue")
    refused(["linkage", "review", "decide", lk, "f" * 64, "--decision", "non_match", "--by", "c", "--why", "w",
             "--allow-unqueued", *h], "the latest run did not see")
    refused(["linkage", "review", "decide", "0" * 12, qr, "--decision", "match", "--by", "c", "--why", "w", *h],
            "matches no source key of the review queue")

    # bulk import: all or nothing; rows named by position, values never repeated
    header = ["source_key_l", "source_key_r", "decision", "decided_by", "decided_at", "reason"]
    row = [ql, qr, "match", "clerk-ann", "2026-11-23T09:00:00Z", "checked"]
    other = [queue.source_key_l.iloc[1], queue.source_key_r.iloc[1], "non_match", "clerk-ann", "2026-11-23T09:00:00Z", ""]
    f = home.parent / "bad.csv"
    write_csv(f, header, [row, [*other[:2], "perhaps", *other[3:]]])
    refused(["linkage", "review", "import", str(f), *h], "decision must be one of match, non_match in row(s) 1")
    write_csv(f, header, [row, [agency_id, *other[1:]]])
    err = refused(["linkage", "review", "import", str(f), *h], "source_key_l is not a 64-hex source key in row(s) 1")
    assert agency_id not in err.upper()
    write_csv(f, header, [row, [qr, ql, "non_match", "clerk-bo", "2026-11-23T10:00:00Z", "x"]])
    refused(["linkage", "review", "import", str(f), *h], "the same pair is decided more than once in row(s) 0, 1")
    write_csv(f, header, [row, [lk, rk, *other[2:]]])
    refused(["linkage", "review", "import", str(f), *h], "the pair in row(s) 1 is not in the current review queue")
    write_csv(f, header, [[*row[:4], "2100-01-01T00:00:00Z", "x"]])
    refused(["linkage", "review", "import", str(f), *h], "decided_at is in the future in row(s) 0")
    write_csv(f, header[:3], [row[:3]])
    refused(["linkage", "review", "import", str(f), *h], "decisions lack column(s) decided_by, decided_at")
    refused(["linkage", "review", "import", str(home.parent / "missing.csv"), *h], "does not exist")
    # no queue yet on a new hub
    refused(["linkage", "review", "list", "--home", str(home.parent / "empty-home")], "there is no review queue yet")

    assert not (home / "linkage" / "review" / "decisions.csv").exists(), "a refused decision is never pending"
    assert _review_events(home, "review_decision_recorded") == []
    out = capsys.readouterr()
    leaked = _leaks(out.out + out.err, night.identifiers)  # a count: a failure never prints the values
    assert leaked == 0


def test_decisions_round_trip_through_the_nightly_run_and_the_audit_log(
    home: Path, night: Night, capsys: pytest.CaptureFixture
) -> None:
    h = ["--home", str(home)]
    queue, before = _queue(home), _crosswalk(home)
    shown: list[str] = []

    # list: a table (shortened keys, levels) and CSV (full keys, filters)
    assert main(["linkage", "review", "list", *h]) == 0
    table = capsys.readouterr().out
    shown.append(table)
    assert f"{len(queue)} pair(s) in the queue" in table and "0 decision(s) pending" in table
    assert queue.source_key_l.iloc[0][:16] in table and levels_text(queue.levels.iloc[0]) in table
    assert re.search(r"\b[a-z_]+=[a-z_]+, ", levels_text(queue.levels.iloc[0]))
    assert main(["linkage", "review", "list", "--format", "csv", "--limit", "2", *h]) == 0
    listed = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)
    assert list(listed.source_key_l) == list(queue.source_key_l[:2]) and list(listed.pending) == ["", ""]
    reason = queue.reason.iloc[0]
    assert main(["linkage", "review", "list", "--format", "csv", "--reason", reason, *h]) == 0
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == int((queue.reason == reason).sum())

    # A: a queued pair the run kept apart -> match (keys shortened to 16 characters, as the table shows them)
    al, ar = queue.source_key_l.iloc[0], queue.source_key_r.iloc[0]
    assert before[al] != before[ar]
    assert main(["linkage", "review", "decide", al[:16], ar[:16], "--decision", "match", "--by", "clerk-ann",
                 "--why", REASON_CANARY, *h]) == 0
    out = capsys.readouterr().out
    shown.append(out)
    assert "recorded match" in out and "1 decision(s) pending" in out
    # the same pair again: refused (a pending decision is only replaced with --supersede)
    assert main(["linkage", "review", "decide", al, ar, "--decision", "non_match", "--by", "clerk-bo",
                 "--why", "second look", *h]) == 2
    assert "already has a pending decision" in capsys.readouterr().err
    # B: two source keys the run linked -> non_match (outside the queue: needs --allow-unqueued)
    bl, br = _linked_pair(before, queue)
    assert main(["linkage", "review", "decide", br, bl, "--decision", "non_match", "--by", "clerk-ann",
                 "--why", "different children per the agencies", "--allow-unqueued", *h]) == 0
    shown.append(capsys.readouterr().out)
    # C: bulk import of the second queued pair, with a column the format ignores
    cl, cr = queue.source_key_l.iloc[1], queue.source_key_r.iloc[1]
    f = home.parent / "decisions-batch.csv"
    write_csv(f, ["source_key_l", "source_key_r", "decision", "decided_by", "decided_at", "reason", "note"],
              [[cl, cr, "non_match", "clerk-bo", "2026-11-23T09:30:00+01:00", "", "n/a"]])
    assert main(["linkage", "review", "import", str(f), *h]) == 0
    out = capsys.readouterr().out
    shown.append(out)
    assert "imported 1 decision(s)" in out and "ignored column(s) not in the decisions format: note" in out

    pending = pd.read_csv(home / "linkage" / "review" / "decisions.csv", dtype=str)
    assert list(zip(pending.source_key_l, pending.source_key_r, pending.decision, strict=True)) == [
        (al, ar, "match"), (min(bl, br), max(bl, br), "non_match"), (cl, cr, "non_match")]
    assert (home / "linkage" / "review" / "decisions.csv").stat().st_mode & 0o777 == 0o600
    assert main(["linkage", "review", "list", "--format", "csv", "--limit", "2", *h]) == 0
    assert list(pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str).pending) == ["match", "non_match"]
    recorded = _review_events(home, "review_decision_recorded")
    assert [(e.subject, e.details["decision"], e.details["decided_by"], e.actor) for e in recorded] == [
        (f"{al}:{ar}", "match", "clerk-ann", "c2c.review"),
        (f"{min(bl, br)}:{max(bl, br)}", "non_match", "clerk-ann", "c2c.review"),
        (f"{cl}:{cr}", "non_match", "clerk-bo", "c2c.review")]
    assert recorded[0].details["reason_chars"] == len(REASON_CANARY) and recorded[0].details["queued_as"] == reason
    assert recorded[1].details["queued_as"] is None and recorded[2].details["via"] == "import decisions-batch.csv"

    # the next nightly run applies them: A one person, B and C apart
    assert run_pipeline(Settings.from_env(night.env), settle_s=0, echo=lambda _m: None).ok
    after = _crosswalk(home)
    assert after[al] == after[ar]
    assert after[bl] != after[br] and after[cl] != after[cr]
    review = home / "linkage" / "review"
    assert not (review / "decisions.csv").exists() and len(list(review.glob("decisions.applied.*.csv"))) == 1
    assert not list(review.glob("decisions.claimed.*"))
    applied = _review_events(home, "review_decision_applied")
    assert sorted(e.subject for e in applied) == sorted(e.subject for e in recorded)
    assert {e.details["decision"] for e in applied if e.subject == f"{al}:{ar}"} == {"match"}
    runs = _review_events(home, "linkage_run")
    assert [r.details["decisions_applied"] for r in runs] == [0, 3] and runs[-1].details["decisions_in_force"] == 3
    # the reason is kept in the linkage state, never in the warehouse (free text may hold anything)
    from data_sharing.linkage import read_state

    state = read_state(home / "linkage")["decisions"]
    assert REASON_CANARY in set(state.reason)
    assert REASON_CANARY.encode() not in (home / "warehouse.db").read_bytes()

    # and the run after, with nothing new, is a quiet night: no relinking, nothing new to audit, links kept
    assert run_pipeline(Settings.from_env(night.env), settle_s=0, echo=lambda _m: None).ok
    again = _crosswalk(home)
    assert again[al] == again[ar] and again[bl] != again[br] and again[cl] != again[cr]
    runs = _review_events(home, "linkage_run")
    assert [r.details["decisions_applied"] for r in runs] == [0, 3] and runs[-1].details["decisions_in_force"] == 3
    assert len(_review_events(home, "review_decision_applied")) == 3

    engine = make_engine(f"sqlite:///{home / 'warehouse.db'}", None)
    assert verify(engine).ok
    engine.dispose()
    assert main(["audit", "verify", *h]) == 0
    assert "chain intact" in capsys.readouterr().out
    leaked = _leaks("\n".join(shown), night.identifiers)  # counts: a failure never prints the values
    assert leaked == 0
    leaked = _leaks((home / "linkage" / "review" / "queue.csv").read_text(), night.identifiers)  # pseudonymous
    assert leaked == 0
    found = _leaks(" ".join(sorted(night.identifiers)[:3]), night.identifiers)
    assert found >= 3  # the scan does find cells
