"""Issue #20 item 1 (an agency redirects the hub's writes) and item 11 (formula defusing in feedback).

The hub writes ``<drop>/<agency>/feedback/`` only through descriptors it checked: a ``feedback`` that is a
symlink, a file, or a folder owned by someone else is replaced by a real folder (with an audit entry),
and nothing is ever written where a link points.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path

import pytest

from data_sharing.feedback import FeedbackNotWritten, render_csv, write_feedback
from stages.intake import tell_agency
from tests.security.drop_support import resources, settings_for
from warehouse.audit import read_entries, verify

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)


def snapshot_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def review(tmp_path: Path) -> Path:
    """A folder the agency must never be able to write into (the linkage review folder of the issue)."""
    folder = tmp_path / "linkage" / "review"
    folder.mkdir(parents=True)
    (folder / "decisions.csv").write_bytes(b"pair,decision\n1,match\n")
    (folder / "students_20260815.csv").write_bytes(b"pending review of a file with the same stem\n")
    return folder


def test_symlinked_feedback_folder_is_replaced_and_never_written_through(drop: Path, review: Path) -> None:
    before = snapshot_tree(review)
    os.symlink(review, drop / "fps" / "feedback")

    files = write_feedback(drop, "fps", "students_20260815.csv", None, refusal="Refused: the header is wrong.", generated=NOW)

    assert snapshot_tree(review) == before  # not one byte written where the link pointed
    folder = drop / "fps" / "feedback"
    assert folder.is_dir() and not folder.is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == ["students_20260815.csv", "students_20260815.html"]
    assert "Refused: the header is wrong." in (folder / "students_20260815.csv").read_text()
    assert files.replaced is not None and files.replaced.startswith("a symbolic link")


def test_symlinked_report_inside_feedback_is_replaced_not_followed(drop: Path, review: Path) -> None:
    folder = drop / "fps" / "feedback"
    folder.mkdir()
    os.symlink(review / "decisions.csv", folder / "students_20260815.csv")
    before = snapshot_tree(review)
    write_feedback(drop, "fps", "students_20260815.csv", None, refusal="no", generated=NOW)
    assert snapshot_tree(review) == before
    assert not (folder / "students_20260815.csv").is_symlink()
    assert (folder / "students_20260815.csv").read_text().startswith("row_number,")


def test_feedback_that_is_a_file_is_set_aside_not_lost(drop: Path) -> None:
    (drop / "fps" / "feedback").write_bytes(b"the agency's own notes")
    files = write_feedback(drop, "fps", "students_20260815.csv", None, refusal="no", generated=NOW)
    assert (drop / "fps" / "feedback").is_dir()
    [aside] = [p for p in (drop / "fps").iterdir() if p.name.startswith("feedback.replaced-")]
    assert aside.read_bytes() == b"the agency's own notes"
    assert files.replaced == f"not a folder (renamed to {aside.name})"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder owned by another user")
def test_foreign_owned_feedback_folder_is_replaced(drop: Path) -> None:
    foreign = drop / "fps" / "feedback"
    foreign.mkdir()
    (foreign / "planted.html").write_bytes(b"x")
    os.chown(foreign, 54321, 54321)
    files = write_feedback(drop, "fps", "students_20260815.csv", None, refusal="no", generated=NOW)
    assert os.stat(drop / "fps" / "feedback").st_uid == os.geteuid()
    assert sorted(p.name for p in (drop / "fps" / "feedback").iterdir()) == ["students_20260815.csv", "students_20260815.html"]
    assert files.replaced is not None and files.replaced.startswith("a folder owned by another user")


def test_symlinked_agency_folder_gets_no_feedback(tmp_path: Path, drop: Path, review: Path) -> None:
    before = snapshot_tree(review)
    os.rmdir(drop / "fhd")
    os.symlink(review, drop / "fhd")
    with pytest.raises(FeedbackNotWritten):
        write_feedback(drop, "fhd", "patients_20260815.csv", None, refusal="no", generated=NOW)
    assert snapshot_tree(review) == before and not (review / "feedback").exists()


def test_replacing_a_redirected_feedback_folder_is_audited(tmp_path: Path, drop: Path, review: Path) -> None:
    settings = settings_for(tmp_path, drop)
    _, warehouse, _, _ = resources(settings)
    os.symlink(review, drop / "fps" / "feedback")
    before = snapshot_tree(review)

    tell_agency(drop, warehouse.engine(), "fps", "students_20260815.csv", "Refused: not UTF-8.", NOW)
    tell_agency(drop, warehouse.engine(), "fps", "students_20260816.csv", "Refused: not UTF-8.", NOW)  # now a real folder

    assert snapshot_tree(review) == before
    entries = [e for e in read_entries(warehouse.engine()) if e.event_type == "feedback_folder_replaced"]
    assert len(entries) == 1  # one repair, one entry
    assert entries[0].subject == "fps/feedback"
    assert entries[0].details["found"].startswith("a symbolic link")
    assert str(review) not in str(entries[0].details)  # where the link pointed is not repeated
    assert verify(warehouse.engine()).ok


# ---- item 11: formula defusing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["=1+1", " =1+1", "\u3000=1+1", "\uff1dHYPERLINK(1)", " \uff0b1", "\uff0d1", "\uff20SUM(A1)", "\t=1", "\r=1",
     "\n=1", "+1", "-1", "@SUM(A1)", "  @x"],
)
def test_formula_like_cells_are_defused(text: str) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(None, refusal=text), newline="")))
    assert rows[2][2:4] == ["intake", "refuse_file"]
    assert rows[2][4] == "'" + text


@pytest.mark.parametrize("text", ["plain words", "1-2", "a=b", "", "'already quoted"])
def test_ordinary_cells_are_left_alone(text: str) -> None:
    rows = list(csv.reader(io.StringIO(render_csv(None, refusal=text), newline="")))
    assert rows[2][4] == text
