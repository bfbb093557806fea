"""Intake content checks rewritten for CPU (issue 16): known answers, counted by hand."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from data_sharing.intake import _count_duplicate_rows, examine_drop
from tests.conftest import STUDENT_HEADER, TODAY, student_row


def _line(values: list[str], quoted: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    return ",".join(f'"{v}"' if i in quoted else v for i, v in enumerate(values))


def test_rows_equal_once_parsed_are_duplicates_and_whitespace_is_not_ignored(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    a, b = student_row(1), student_row(2)
    spaced = list(a)
    spaced[STUDENT_HEADER.index("last_name")] += " "  # trailing space: a different value
    other_column = list(a)
    other_column[STUDENT_HEADER.index("sex")] = "M"
    lines = [
        _line(STUDENT_HEADER),
        _line(a),
        _line(a, quoted={0, 3}),  # same values, quoted: repeat 1 of a
        _line(b),
        _line(spaced),  # not a repeat
        _line(a),  # repeat 2 of a
        _line(other_column),  # not a repeat
        _line(b, quoted=set(range(len(b)))),  # every field quoted: repeat 1 of b
        _line(spaced),  # repeat 1 of spaced
    ]
    path = drop / "fps" / "students_20260815.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    d = examine_drop(path, drop, partnership, TODAY)
    assert d.status == "accepted", d.reason
    assert (d.rows, d.duplicate_rows) == (8, 4)
    assert d.warnings == ["4 rows exactly repeat an earlier row of the file; each counts once."]


def test_known_answers_on_tables() -> None:
    t = pa.table({"x": ["1", "1", "1", "2", "", ""], "y": ["a", "a", "b", "a", "", " "]})
    assert _count_duplicate_rows(t) == 1  # only (1, a) repeats
    assert _count_duplicate_rows(pa.table({"x": ["z"]})) == 0
    assert _count_duplicate_rows(pa.table({"x": pa.array([], pa.string())})) == 0
    assert _count_duplicate_rows(pa.table({"x": ["q"] * 7})) == 6
    # Values that would collide if the columns were joined without a separator: ("ab", "c") vs ("a", "bc").
    assert _count_duplicate_rows(pa.table({"x": ["ab", "a"], "y": ["c", "bc"]})) == 0


def test_wide_tables_whose_codes_would_overflow_are_counted_exactly() -> None:
    # 40 columns of 64 distinct values each: 64**40 row codes, far past int64, so the codes are made dense
    # again along the way. Rows 64..79 repeat rows 0..15; row 80 differs from row 0 in the last column only.
    width, distinct = 40, 64
    rows = [[f"v{(r * 7 + c) % distinct}-{r}" for c in range(width)] for r in range(distinct)]
    rows += [list(rows[r]) for r in range(16)]
    rows.append(rows[0][:-1] + ["other"])
    t = pa.table({f"c{c}": [row[c] for row in rows] for c in range(width)})
    assert _count_duplicate_rows(t) == 16


def test_agrees_with_a_hand_count_on_random_tables() -> None:
    rng = random.Random(16)
    for _ in range(40):
        width, n = rng.randint(1, 12), rng.randint(0, 300)
        alphabet = [rng.choice(["", " ", "a", "a ", "b", "ab", '"', ",", "é", "x" * rng.randint(1, 9)]) for _ in range(6)]
        rows = [tuple(rng.choice(alphabet) for _ in range(width)) for _ in range(n)]
        t = pa.table({f"c{c}": pa.array([r[c] for r in rows], pa.string()) for c in range(width)})
        assert _count_duplicate_rows(t) == len(rows) - len(set(rows))


def test_a_null_is_a_value_of_its_own() -> None:
    t = pa.table({"x": pa.array([None, None, "", "a"], pa.string()), "y": pa.array(["b", "b", "b", None], pa.string())})
    assert _count_duplicate_rows(t) == 1


def _longest_line_rule(data: bytes, limit: int) -> int | None:
    """The hand rule: the number of the first line (split at newlines) longer than ``limit`` bytes."""
    return next((n for n, line in enumerate(data.split(b"\n"), 1) if len(line) > limit), None)


def test_line_length_check_names_the_first_long_line() -> None:
    from data_sharing.header import Refuse
    from data_sharing.intake import _check_line_length

    rng = random.Random(16)
    cases = [(b"", 0), (b"\n\n", 0), (b"a\n", 0), (b"ab\ncd", 2), (b"ab\ncde", 2), (b"abc\n", 2), (b"x" * 10, 9)]
    for _ in range(400):
        lines = [b"y" * rng.choice([0, 1, 2, 3, 5, 8, 13]) for _ in range(rng.randint(0, 12))]
        cases.append((b"\n".join(lines) + rng.choice([b"", b"\n"]), rng.randint(0, 9)))
    for data, limit in cases:
        expected = _longest_line_rule(data, limit)
        try:
            _check_line_length(data, limit)
            found = None
        except Refuse as refusal:
            assert refusal.code == "line_too_long"
            found = int(refusal.message.split()[1].replace(",", ""))
        assert found == expected, (data, limit)
