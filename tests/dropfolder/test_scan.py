"""data_sharing.dropfolder: which drop-folder entries are complete, and what is handed on (SPEC, "How extracts arrive").

Every expected value is worked out by hand in the test: the fingerprint of a file is the SHA-256 of its bytes,
the run key is ``<partition key>@<fingerprint>`` (plus ``+done:<first 16 hex of the marker's SHA-256>``).
Modification times are set explicitly with os.utime so nothing depends on the file system's clock resolution.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from pathlib import Path

import pytest

from data_sharing.dropfolder import (
    ReadyEntry,
    ScanResult,
    list_drop_entries,
    partition_key_for,
    scan_drop_folder,
)

T0 = 1_780_000_000 * 10**9  # a fixed wall-clock time (ns) used as modification time
STUDENTS = "fps/students_20260815.csv"
# Substrings Dagster refuses in a partition key (dagster 1.13, partitions/utils/base.py; a private module,
# so the list is repeated here).
DAGSTER_INVALID_SUBSTRINGS = ["...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put(drop: Path, rel: str, data: bytes, mtime_ns: int = T0) -> Path:
    path = drop / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def rels(entries: list[ReadyEntry]) -> list[str]:
    return [r.entry.rel_path for r in entries]


def scan(drop: Path, state: dict | None, **kw) -> ScanResult:
    return scan_drop_folder(drop, state, **kw)


# ---- completeness: two looks, or a .done marker ---------------------------------------------------------


def test_file_seen_once_waits_and_is_taken_on_the_second_unchanged_look(drop: Path) -> None:
    data = b"student_id\nS1\n"
    put(drop, STUDENTS, data)

    first = scan(drop, None)
    assert first.ready == []
    assert first.waiting == [STUDENTS]
    assert first.deferred == 0

    second = scan(drop, first.state)
    assert rels(second.ready) == [STUDENTS]
    assert second.waiting == []
    ready = second.ready[0]
    assert ready.entry.kind == "file"
    assert ready.entry.size == len(data)
    assert ready.fingerprint == sha(data)
    assert ready.marker_sha256 is None
    assert ready.partition_key == STUDENTS
    assert ready.run_key == f"{STUDENTS}@{sha(data)}"

    third = scan(drop, second.state)
    assert third.ready == [] and third.waiting == []


def test_file_that_grew_between_looks_is_not_taken(drop: Path) -> None:
    path = put(drop, STUDENTS, b"student_id\n")
    first = scan(drop, None)
    assert first.waiting == [STUDENTS]

    with open(path, "ab") as fh:  # the transfer is still running
        fh.write(b"S1\n")
    os.utime(path, ns=(T0 + 10**9, T0 + 10**9))
    second = scan(drop, first.state)
    assert second.ready == []
    assert second.waiting == [STUDENTS]

    third = scan(drop, second.state)  # unchanged since the second look
    assert rels(third.ready) == [STUDENTS]
    assert third.ready[0].fingerprint == sha(b"student_id\nS1\n")


def test_same_size_rewrite_with_new_mtime_is_not_taken(drop: Path) -> None:
    path = put(drop, STUDENTS, b"aaaa")
    first = scan(drop, None)
    put(drop, STUDENTS, b"bbbb", mtime_ns=T0 + 1)  # same size, modification time moved by 1 ns
    second = scan(drop, first.state)
    assert second.ready == [] and second.waiting == [STUDENTS]
    assert path.read_bytes() == b"bbbb"


def test_done_marker_makes_file_ready_on_first_sight(drop: Path) -> None:
    data = b"student_id\nS1\nS2\n"
    marker = json.dumps({"rows": 2, "sha256": sha(data)}).encode()
    put(drop, STUDENTS, data)
    put(drop, STUDENTS + ".done", marker)

    first = scan(drop, None)
    assert first.waiting == []
    assert rels(first.ready) == [STUDENTS]  # the marker is consumed with its data file, not handed on alone
    ready = first.ready[0]
    assert ready.fingerprint == sha(data)
    assert ready.marker_sha256 == sha(marker)
    assert ready.run_key == f"{STUDENTS}@{sha(data)}+done:{sha(marker)[:16]}"

    assert scan(drop, first.state).ready == []


def test_marker_arriving_after_the_file_was_taken_hands_it_on_again_with_the_marker(drop: Path) -> None:
    data = b"student_id\nS1\n"
    put(drop, STUDENTS, data)
    s2 = scan(drop, scan(drop, None).state)
    assert [r.run_key for r in s2.ready] == [f"{STUDENTS}@{sha(data)}"]

    put(drop, STUDENTS + ".done", b"")  # e.g. to confirm a row-count drop
    s3 = scan(drop, s2.state)
    assert [r.run_key for r in s3.ready] == [f"{STUDENTS}@{sha(data)}+done:{sha(b'')[:16]}"]


def test_stray_marker_is_handed_on_only_after_two_stable_looks(drop: Path) -> None:
    rel = "fhd/patients_20260815.csv.done"
    put(drop, rel, b"")

    first = scan(drop, None)
    assert first.ready == [] and first.waiting == [rel]

    second = scan(drop, first.state)
    assert rels(second.ready) == [rel]
    assert second.ready[0].entry.kind == "marker"
    assert second.ready[0].fingerprint == sha(b"")
    assert second.ready[0].run_key == f"{rel}@{sha(b'')}"


# ---- what is listed: folders, symlinks, feedback/, the drop root ----------------------------------------


def test_folders_and_symlinks_are_handed_on_and_never_followed(drop: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (outside / "secret_20260815.csv").write_bytes(b"do not read")
    (outside / "deeper" / "students_20260815.csv").write_bytes(b"do not read either")
    (drop / "fps" / "sub").mkdir()
    (drop / "fps" / "sub" / "students_20260815.csv").write_bytes(b"inside a sub-folder")
    os.symlink(outside, drop / "fps" / "linked_dir")
    os.symlink(outside / "secret_20260815.csv", drop / "fps" / "students_20260101.csv")
    os.symlink(outside, drop / "toplink")  # a symlink at the top, where agency folders are

    entries = {e.rel_path: e.kind for e in list_drop_entries(drop)}
    assert entries == {
        "fps/linked_dir": "symlink",
        "fps/students_20260101.csv": "symlink",
        "fps/sub": "folder",
        "toplink": "symlink",
    }

    first = scan(drop, None)  # not regular files: handed on at once, for intake to refuse with a reason
    assert first.waiting == []
    by_rel = {r.entry.rel_path: r for r in first.ready}
    assert sorted(by_rel) == sorted(entries)
    for rel, kind in entries.items():
        assert by_rel[rel].entry.kind == kind
        # the fingerprint describes the entry, never the target's content
        assert by_rel[rel].fingerprint == sha(f"{kind}:{rel}".encode())
    assert by_rel["fps/students_20260101.csv"].fingerprint != sha(b"do not read")
    assert scan(drop, first.state).ready == []


def test_feedback_folder_is_ignored(drop: Path) -> None:
    put(drop, "fps/feedback/students_20260815_report.csv", b"report")
    put(drop, "fhd/feedback/x.csv", b"report")
    assert list_drop_entries(drop) == []
    s1 = scan(drop, None)
    s2 = scan(drop, s1.state)
    assert (s1.ready, s1.waiting, s2.ready, s2.waiting) == ([], [], [], [])


def test_files_at_the_drop_root_are_handed_on(drop: Path) -> None:
    put(drop, "students_20260815.csv", b"top")
    s1 = scan(drop, None)
    assert s1.waiting == ["students_20260815.csv"]
    s2 = scan(drop, s1.state)
    assert rels(s2.ready) == ["students_20260815.csv"]
    assert s2.ready[0].entry.kind == "file"
    assert s2.ready[0].run_key == f"students_20260815.csv@{sha(b'top')}"


def test_missing_drop_folder_is_an_empty_scan(tmp_path: Path) -> None:
    result = scan(tmp_path / "not-there", None)
    assert (result.ready, result.waiting, result.deferred) == ([], [], 0)


# ---- the state: restart, re-sends -------------------------------------------------------------------------


def test_state_survives_a_json_round_trip(drop: Path) -> None:
    put(drop, STUDENTS, b"one")
    put(drop, "fhd/patients_20260815.csv", b"two")
    s1 = scan(drop, None)
    s2 = scan(drop, json.loads(json.dumps(s1.state)))
    assert sorted(rels(s2.ready)) == ["fhd/patients_20260815.csv", STUDENTS]

    restarted = json.loads(json.dumps(s2.state))  # the sensor's cursor, as stored by Dagster
    s3 = scan(drop, restarted)
    assert s3.ready == [] and s3.waiting == []
    # and the state really carries that knowledge: without it, the files would be looked at again
    assert scan(drop, None).waiting == ["fhd/patients_20260815.csv", STUDENTS]


def test_unknown_state_version_is_treated_as_a_first_look(drop: Path) -> None:
    put(drop, STUDENTS, b"x")
    s2 = scan(drop, scan(drop, None).state)
    old = dict(s2.state, v=999)
    assert scan(drop, old).waiting == [STUDENTS]


def test_resend_with_different_content_is_handed_again_with_a_new_run_key(drop: Path) -> None:
    v1, v2 = b"version one\n", b"version two, corrected\n"
    put(drop, STUDENTS, v1)
    s2 = scan(drop, scan(drop, None).state)
    assert [r.run_key for r in s2.ready] == [f"{STUDENTS}@{sha(v1)}"]

    put(drop, STUDENTS, v2, mtime_ns=T0 + 60 * 10**9)
    s3 = scan(drop, s2.state)
    assert s3.ready == [] and s3.waiting == [STUDENTS]
    s4 = scan(drop, s3.state)
    assert [r.run_key for r in s4.ready] == [f"{STUDENTS}@{sha(v2)}"]
    assert s4.ready[0].run_key != s2.ready[0].run_key
    assert scan(drop, s4.state).ready == []


def test_touched_but_identical_file_is_not_handed_again(drop: Path) -> None:
    put(drop, STUDENTS, b"same bytes")
    s2 = scan(drop, scan(drop, None).state)
    assert rels(s2.ready) == [STUDENTS]
    put(drop, STUDENTS, b"same bytes", mtime_ns=T0 + 5 * 10**9)  # `touch`, or a copy of identical content
    s3 = scan(drop, s2.state)
    s4 = scan(drop, s3.state)
    assert s3.ready == [] and s4.ready == []


# ---- budgets: time and count; nothing is lost -----------------------------------------------------------


NAMES = [f"fps/{c}_20260815.csv" for c in "abcde"]


def _five_stable_files(drop: Path) -> dict:
    for i, rel in enumerate(NAMES):
        put(drop, rel, f"file {i}".encode())
    first = scan(drop, None)
    assert first.waiting == NAMES
    return first.state


def test_time_budget_defers_entries_to_the_next_scan(drop: Path) -> None:
    state = _five_stable_files(drop)
    ticks = itertools.count()  # 0, 1, 2, ... one "second" per call

    # started = 0; before each hash: 1 > 2.5? no (a); 2 > 2.5? no (b); 3 > 2.5: yes, c, d and e wait
    s2 = scan(drop, state, time_budget_s=2.5, clock=lambda: float(next(ticks)))
    assert rels(s2.ready) == NAMES[:2]
    assert s2.deferred == 3
    assert s2.waiting == []

    s3 = scan(drop, s2.state)
    assert rels(s3.ready) == NAMES[2:]
    assert s3.deferred == 0
    s4 = scan(drop, s3.state)
    assert s4.ready == [] and s4.deferred == 0
    handed = [r.fingerprint for r in s2.ready + s3.ready]
    assert handed == [sha(f"file {i}".encode()) for i in range(5)]


def test_max_ready_defers_entries_and_nothing_is_lost(drop: Path) -> None:
    state = _five_stable_files(drop)
    seen: list[str] = []
    deferred: list[int] = []
    for _ in range(4):
        result = scan(drop, state, max_ready=2)
        seen += rels(result.ready)
        deferred.append(result.deferred)
        state = result.state
    assert seen == NAMES  # each exactly once, in order
    assert deferred == [3, 1, 0, 0]


def test_settle_s_makes_old_files_ready_on_first_sight(drop: Path) -> None:
    put(drop, "fps/old_20260815.csv", b"old", mtime_ns=T0 - 120 * 10**9)
    put(drop, "fps/fresh_20260815.csv", b"fresh", mtime_ns=T0 - 10 * 10**9)
    result = scan(drop, None, settle_s=60.0, wall_clock_ns=lambda: T0)
    assert rels(result.ready) == ["fps/old_20260815.csv"]
    assert result.waiting == ["fps/fresh_20260815.csv"]
    # settle_s=0 (``c2c run --settle 0``): everything present counts as complete
    assert sorted(rels(scan(drop, None, settle_s=0.0, wall_clock_ns=lambda: T0).ready)) == [
        "fps/fresh_20260815.csv",
        "fps/old_20260815.csv",
    ]


# ---- markers that belong to nothing that could carry them -------------------------------------------------


@pytest.mark.parametrize("case", ["beside_folder", "beside_marker"])
def test_marker_without_a_data_file_is_never_lost(drop: Path, case: str) -> None:
    if case == "beside_folder":
        (drop / "fps" / "sub").mkdir()
        lost = "fps/sub.done"
    else:
        put(drop, "fps/students_20260815.csv.done", b"")
        lost = "fps/students_20260815.csv.done.done"
    put(drop, lost, b"")
    handed: list[str] = []
    state = None
    for _ in range(3):
        result = scan(drop, state)
        handed += rels(result.ready)
        state = result.state
    assert lost in handed


# ---- partition keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rel",
    [
        "fps/students_20260815.csv",
        "fps/students_20260815.tokens.csv",
        "fhd/patients_20260815.csv.done",
        "students_20260815.csv",
        "fps/sub",
        "fps/Report-2026.v2.csv",
    ],
)
def test_plain_paths_are_their_own_partition_key(rel: str) -> None:
    assert partition_key_for(rel) == rel


UNSAFE = [
    "fps/my students_20260815.csv",  # space
    "fps/élèves_20260815.csv",  # non-ASCII
    "fps/students...csv",  # Dagster forbids '...'
    "fps/a..b.csv",
    "fps/..",
    "fps/.hidden.csv",
    "fps/_leading_underscore.csv",
    "fps/new\nline.csv",
    "fps/tab\t.csv",
    "fps/nul\0.csv",
    "fps/bell\a\b\f\v\r.csv",
    os.fsdecode(b"fps/caf\xe9_20260815.csv"),  # Latin-1 byte in the name: a lone surrogate in Python
    "fps/" + "n" * 250 + ".csv",  # too long for one part
    "/".join(["fps"] + ["x" * 150] * 3),  # over 400 characters in all
    "fps/a,b|c.csv",
]


@pytest.mark.parametrize("rel", UNSAFE, ids=[f"unsafe{i}" for i in range(len(UNSAFE))])
def test_unsafe_paths_map_to_a_digest_key(rel: str) -> None:
    key = partition_key_for(rel)
    assert re.fullmatch(r"_unsafe/[0-9a-f]{24}", key), key
    assert key == partition_key_for(rel)  # stable
    assert not any(bad in key for bad in DAGSTER_INVALID_SUBSTRINGS)


def test_unsafe_keys_are_distinct_and_accepted_by_dagster() -> None:
    from dagster import DagsterInstance

    keys = [partition_key_for(r) for r in UNSAFE]
    assert len(set(keys)) == len(UNSAFE)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("drop_files", keys + ["fps/students_20260815.csv"])
        assert sorted(instance.get_dynamic_partitions("drop_files")) == sorted(keys + ["fps/students_20260815.csv"])


def test_ready_entry_for_unsafe_name_uses_the_digest_key(drop: Path) -> None:
    rel = "fps/my students.csv"
    put(drop, rel, b"x")
    ready = scan(drop, None, settle_s=0.0, wall_clock_ns=lambda: T0).ready
    assert len(ready) == 1
    assert ready[0].entry.rel_path == rel
    assert ready[0].partition_key == partition_key_for(rel) != rel
    assert ready[0].run_key == f"{partition_key_for(rel)}@{sha(b'x')}"
