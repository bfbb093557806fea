"""Same arguments, same bytes; another seed, another city."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from synthetic.city import CitySummary, generate_city, main

SMALL = 400


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = generate_city(SMALL, 11, tmp_path / "a")
    b = generate_city(SMALL, 11, tmp_path / "b")
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(fa) == sorted(fb)
    assert len(fa) == 9 + 6  # nine extracts; persons, identities, addresses, schools, noise, summary
    for name in fa:
        assert fa[name] == fb[name], name
    assert a.rows == b.rows and a.hard_cases == b.hard_cases


def test_other_seed_gives_another_city(tmp_path: Path) -> None:
    generate_city(SMALL, 11, tmp_path / "a")
    generate_city(SMALL, 12, tmp_path / "b")
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    differ = [name for name in fa if fa[name] != fb.get(name)]
    assert len(differ) == len(fa)  # every file, truth included


def test_other_window_and_as_of(tmp_path: Path) -> None:
    s = generate_city(SMALL, 3, tmp_path, as_of=dt.date(2024, 3, 1), first_school_year=2021, last_school_year=2024)
    assert all(p.name.endswith("_20240301.csv") for p in s.files.values())
    assert all(n > 0 for n in s.rows.values())


@pytest.mark.parametrize(
    ("children", "kwargs", "message"),
    [
        (0, {}, "positive"),
        (10, {"last_school_year": 2028}, "after as_of"),
        (10, {"first_school_year": 2026, "last_school_year": 2025}, "after last_school_year"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, children: int, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_city(children, 1, tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_command_line_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--children", "150", "--seed", "5", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "fps/students" in printed and "twin_pairs" in printed
    assert (tmp_path / "truth" / "summary.json").is_file()
    assert isinstance(generate_city(150, 5, tmp_path / "again"), CitySummary)
