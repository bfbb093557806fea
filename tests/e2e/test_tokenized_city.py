"""Tokenize at source (issue 4 item 3): the same city sent raw and sent tokenized gives the same result.

One key set is made with ``c2c keys init`` (a key file, no C2C_MASTER_KEY) and its linkage key exported
with ``c2c keys export-linkage``. The same synthetic city is generated twice; in the second copy every
extract is replaced by ``c2c tokenize`` output, dropped as ``<extract>_20260815.tokens.csv``. The
pipeline runs over each (separate homes, Dagster instances and SQLite warehouses, same key file).

Asserted: every file is accepted in both; per (agency, extract) the staging frames (pseudonymous rows)
and the encodings frames are identical, compared sorted by row_number and ignoring file names; the
tokenized drop files hold no raw identifier (no identifier column, no cell equal to a name, birth date,
address, zip or agency id of the raw files, no street address anywhere). The expensive part (keys,
two cities, tokenizing, two pipeline runs) runs once for the module.

Also: exact repeated rows count once on both paths; the encodings' Bloom columns have one Arrow type;
and a .tokens.csv file whose hash and generalised columns carry raw values (a home-made or
misconfigured tokenizer) is refused before anything reaches the linkage area.

The two warehouses end the same too: the same published indicator values and suppression, and the
same partner-tier rows (apart from which file each row came from).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from e2e_support import AS_OF, drop_files, isolate_env, read_csv, settings_env

CHILDREN = 150
SEED = 4242


def _tables(linkage: Path, kind: str) -> dict[tuple[str, str], pa.Table]:
    """(agency, extract) -> the one parquet file of that extract in ``<linkage>/<kind>/``, sorted by row_number."""
    import pyarrow.parquet as pq

    out: dict[tuple[str, str], pd.DataFrame] = {}
    for folder in sorted(p for p in (linkage / kind).glob("*/*") if p.is_dir()):
        files = sorted(folder.glob("*.parquet"))
        assert len(files) == 1, f"{folder}: expected one file, found {[f.name for f in files]}"
        out[(folder.parent.name, folder.name)] = pq.read_table(files[0]).sort_by("row_number")
    return out


def _identifier_values(raw_drop: Path) -> tuple[dict[str, str], set[str]]:
    """(every direct-identifier cell of the raw files, upper-cased and stripped -> its column; the
    street addresses), from the contracts' ``privacy: direct`` columns."""
    from data_sharing.partnership import load_partnership

    partnership = load_partnership()
    cells: dict[str, str] = {}
    addresses: set[str] = set()
    for path in drop_files(raw_drop):
        agency, extract = path.parent.name, path.name.rsplit("_", 1)[0]
        contract = partnership.terms(agency, extract).contract
        header, rows = read_csv(path)
        direct = [i for i, c in enumerate(header) if contract.columns[c].privacy == "direct"]
        for row in rows:
            for i in direct:
                value = row[i].strip().upper()
                if len(value) > 1:  # a one-letter cell (a middle initial) identifies no one and equals codes (sex M/F)
                    cells.setdefault(value, header[i])
                    if header[i] == "street_address":
                        addresses.add(value)
    return cells, addresses



@dataclass
class TwoRuns:
    tmp: Path
    raw_files: dict[Path, bytes]  # relative path -> bytes, as generated (the raw drop empties as files are taken)
    tokens_files: dict[Path, bytes]
    summaries: dict[str, object]
    key_file: Path

    def tables(self, name: str, kind: str) -> dict[tuple[str, str], pa.Table]:
        return _tables(self.tmp / f"home-{name}" / "linkage", kind)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    from pipelines.cli import main
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from synthetic.city import generate_city

    tmp = tmp_path_factory.mktemp("tokenized")
    with pytest.MonkeyPatch.context() as mp:
        keys_home = tmp / "hub"
        isolate_env(mp, keys_home)
        mp.delenv("C2C_MASTER_KEY", raising=False)
        mp.delenv("C2C_KEY_FILE", raising=False)
        assert main(["keys", "init", "--home", str(keys_home)]) == 0
        key_file = keys_home / "keys" / "master.key"
        linkage_key = tmp / "agency-side" / "linkage.key"
        linkage_key.parent.mkdir()
        assert main(["keys", "export-linkage", "--home", str(keys_home), str(linkage_key)]) == 0

        generate_city(CHILDREN, SEED, tmp / "raw-city")
        generate_city(CHILDREN, SEED, tmp / "tok-city")
        raw_drop, tok_drop = tmp / "raw-city" / "drop", tmp / "tok-city" / "drop"
        raw_files = {p.relative_to(raw_drop): p.read_bytes() for p in drop_files(raw_drop)}
        assert len(raw_files) == 9
        assert raw_files == {p.relative_to(tok_drop): p.read_bytes() for p in drop_files(tok_drop)}, "not the same city"
        for path in drop_files(tok_drop):
            agency, extract = path.parent.name, path.name.rsplit("_", 1)[0]
            out = path.with_name(f"{extract}_{AS_OF}.tokens.csv")
            argv = ["tokenize", "--agency", agency, "--extract", extract, "--linkage-key", str(linkage_key), str(path), str(out)]
            assert main(argv) == 0, argv
            path.unlink()
        tokens_files = {p.relative_to(tok_drop): p.read_bytes() for p in sorted(tok_drop.glob("*/*.tokens.csv"))}

        summaries = {}
        for name, drop in (("raw", raw_drop), ("tok", tok_drop)):
            home = tmp / f"home-{name}"
            env = {**settings_env(home), "C2C_DROP_DIR": str(drop), "C2C_KEY_FILE": str(key_file)}
            mp.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
            mp.setenv("C2C_KEY_FILE", str(key_file))
            summaries[name] = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
        yield TwoRuns(tmp, raw_files, tokens_files, summaries, key_file)


def _has_repeats(data: bytes) -> bool:
    lines = data.decode("utf-8").splitlines()[1:]
    return len(lines) != len(set(lines))


def test_tokenized_files_hold_no_raw_identifier(two_runs: TwoRuns, tmp_path: Path) -> None:
    from data_sharing.partnership import load_partnership

    assert len(two_runs.tokens_files) == 9
    assert all(p.name == f"{p.name.rsplit('_', 1)[0]}_{AS_OF}.tokens.csv" for p in two_runs.tokens_files)
    for rel, data in two_runs.raw_files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    cells, addresses = _identifier_values(tmp_path)
    kinds = set(cells.values())
    assert len(cells) > 500 and {"first_name", "last_name", "birth_date", "street_address", "student_id"} <= kinds
    partnership = load_partnership()
    leaks: list[str] = []
    for rel, data in two_runs.tokens_files.items():
        contract = partnership.terms(rel.parent.name, rel.name.rsplit("_", 1)[0]).contract
        text = data.decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        direct_cols = [c for c in header if c in contract.columns and contract.columns[c].privacy == "direct"]
        if direct_cols:
            leaks.append(f"{rel}: identifier columns {direct_cols}")
        # columns the contract keeps as sent (event dates, codes...) may equal a birth date or a zip
        kept_as_sent = {c for c in header if c in contract.columns and contract.columns[c].privacy == "none"}
        for n, row in enumerate(reader, 2):
            for col, value in zip(header, row, strict=False):
                source = cells.get(value.strip().upper())
                if source is None or (col in kept_as_sent and source in ("birth_date", "zip")):
                    continue
                leaks.append(f"{rel} line {n} column {col}: a raw {source} value")
        upper = text.upper()
        if any(a in upper for a in addresses):
            leaks.append(f"{rel}: raw street address(es)")
    assert not leaks, "\n".join(leaks[:40])


def test_every_file_is_accepted_both_ways(two_runs: TwoRuns) -> None:
    raw, tok = two_runs.summaries["raw"], two_runs.summaries["tok"]
    for name, summary in (("raw", raw), ("tok", tok)):
        assert summary.ok, (name, summary)
        assert [f.status for f in summary.files] == ["accepted"] * 9, (name, summary.files)
    assert [f.rel_path for f in tok.files] == [f.rel_path.replace(".csv", ".tokens.csv") for f in raw.files]
    assert [f.rows for f in raw.files] == [f.rows for f in tok.files]


def _compare(raw: dict, tok: dict, keys: list, kind: str) -> None:
    for key in keys:
        r, t = raw[key], tok[key]
        assert r.schema.remove_metadata() == t.schema.remove_metadata(), f"{kind} {key}: schemas differ"
        pd.testing.assert_frame_equal(
            r.to_pandas(ignore_metadata=True), t.to_pandas(ignore_metadata=True), obj=f"{kind} {key[0]}/{key[1]}"
        )


def test_staging_identical_for_extracts_without_repeated_rows(two_runs: TwoRuns) -> None:
    raw, tok = two_runs.tables("raw", "staging"), two_runs.tables("tok", "staging")
    assert sorted(raw) == sorted(tok) and len(raw) == 9
    plain = [k for k in sorted(raw) if not _has_repeats(two_runs.raw_files[Path(k[0]) / f"{k[1]}_{AS_OF}.csv"])]
    assert len(plain) >= 5, plain
    _compare(raw, tok, plain, "staging")


def test_staging_identical_for_extracts_with_repeated_rows(two_runs: TwoRuns) -> None:
    raw, tok = two_runs.tables("raw", "staging"), two_runs.tables("tok", "staging")
    repeated = [k for k in sorted(raw) if _has_repeats(two_runs.raw_files[Path(k[0]) / f"{k[1]}_{AS_OF}.csv"])]
    assert ("fps", "attendance") in repeated and ("fps", "assessments") in repeated, repeated
    _compare(raw, tok, repeated, "staging")


def test_encodings_have_identical_values(two_runs: TwoRuns) -> None:
    raw, tok = two_runs.tables("raw", "encodings"), two_runs.tables("tok", "encodings")
    assert sorted(raw) == sorted(tok) == [("dhs", "clients"), ("fhd", "patients"), ("fps", "students")]
    for key in sorted(raw):
        r, t = raw[key], tok[key]
        assert r.column_names == t.column_names, key
        assert r.num_rows == t.num_rows > 0, key
        for col in r.column_names:
            assert r.column(col).to_pylist() == t.column(col).to_pylist(), f"encodings {key}: column {col} differs"


def test_encodings_frames_identical(two_runs: TwoRuns) -> None:
    raw, tok = two_runs.tables("raw", "encodings"), two_runs.tables("tok", "encodings")
    _compare(raw, tok, sorted(raw), "encodings")
    for name in ("raw", "tok"):
        for path in sorted((two_runs.tmp / f"home-{name}" / "linkage" / "encodings").glob("*/*/*.parquet")):
            pd.read_parquet(path)


def test_a_tokens_file_carrying_raw_values_does_not_reach_the_linkage_area(
    two_runs: TwoRuns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from e2e_support import file_docs, find_needles
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings

    home = tmp_path / "home"
    isolate_env(monkeypatch, home, C2C_KEY_FILE=str(two_runs.key_file))
    monkeypatch.delenv("C2C_MASTER_KEY")
    rel = Path("dhs") / f"clients_{AS_OF}.tokens.csv"
    rows = list(csv.reader(io.StringIO(two_runs.tokens_files[rel].decode("utf-8"), newline="")))
    header, row = rows[0], rows[1]
    canaries = {
        "first name in first_name_hash": "Qxcanaryfirsttok",
        "last name in last_name_hash": "Zzyzxcanarylasttok",
        "address in street_address_hash": "4246 Canaryvale Qz Road",
        "full birth date in birth_date_year_month": "1899-12-31",  # before any date of the city
    }
    row[header.index("first_name_hash")] = canaries["first name in first_name_hash"]
    row[header.index("last_name_hash")] = canaries["last name in last_name_hash"]
    row[header.index("street_address_hash")] = canaries["address in street_address_hash"]
    row[header.index("birth_date_year_month")] = canaries["full birth date in birth_date_year_month"]
    row[header.index("zip_zip3")] = "24601"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    dropped = home / "drop" / rel
    dropped.parent.mkdir(parents=True)
    dropped.write_text(buf.getvalue(), encoding="utf-8")
    assert all(v in buf.getvalue() for v in canaries.values())  # control

    env = {**settings_env(home), "C2C_KEY_FILE": str(two_runs.key_file)}
    summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
    assert summary.ok, summary
    hits = find_needles(file_docs(home, exclude=[home / "landing", dropped]), canaries)
    staging = [pq.read_table(p) for p in (home / "linkage" / "staging").rglob("*.parquet")]
    for table in staging:
        zips = [z for z in table.column("zip_zip3").to_pylist() if z is not None]
        hits += [f"a full zip in staging zip_zip3 ({len([z for z in zips if len(z) != 3])} rows)"] if any(len(z) != 3 for z in zips) else []
    assert not hits, "raw values from a .tokens.csv file outside the landing zone:\n" + "\n".join(hits[:40])


def test_same_warehouse_and_indicators_both_ways(two_runs: TwoRuns) -> None:
    import pandas as pd
    from sqlalchemy import create_engine

    from warehouse.releases import current_indicator_values

    frames = {}
    tables = {}
    for name in ("raw", "tok"):
        engine = create_engine(f"sqlite:///{two_runs.tmp / f'home-{name}' / 'warehouse.db'}")
        values = current_indicator_values(engine).drop(columns=["release_id"], errors="ignore")
        frames[name] = values.sort_values(["indicator", "period", "school_id", "dimension", "group"]).reset_index(drop=True)
        with engine.connect() as conn:
            enrol = pd.read_sql_table("enrolments", conn)
        drop = [c for c in ("id", "manifest_id", "source_sha256", "loaded_at") if c in enrol.columns]
        enrol = enrol.drop(columns=drop).sort_values(["source_key", "source_row"]).reset_index(drop=True)
        # child keys are random per hub: compare who is grouped with whom, not the key values
        enrol["child_key"] = pd.factorize(enrol["child_key"])[0]
        tables[name] = enrol
        engine.dispose()
    assert len(frames["raw"]) > 100
    assert frames["raw"]["suppressed"].any() and (~frames["raw"]["suppressed"].astype(bool)).any()
    pd.testing.assert_frame_equal(frames["raw"], frames["tok"])
    pd.testing.assert_frame_equal(tables["raw"], tables["tok"])
