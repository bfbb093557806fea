"""Nothing linkage keeps or returns holds a raw identifier: only keyed hashes, pseudonyms and counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd

from data_sharing.linkage import LinkageArea, read_state
from data_sharing.linkage.truth import PERSON_EXTRACTS

IDENTIFIERS = ("student_id", "patient_id", "client_id", "medicaid_id", "first_name", "middle_name", "last_name",
               "birth_date", "street_address")
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_HEX = re.compile(r"^(ck_)?[0-9a-f]{16,64}$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _raw(inputs) -> tuple[set[str], set[str], set[str]]:  # noqa: ANN001
    """(tokens of names and ids, birth dates, whole values) of the raw person extracts."""
    tokens, dates, whole = set(), set(), set()
    for agency in PERSON_EXTRACTS:
        frame = inputs.raw[agency]
        for col in IDENTIFIERS:
            if col not in frame.columns:
                continue
            for v in frame[col].dropna().astype(str):
                v = v.strip()
                if not v:
                    continue
                if col == "birth_date":
                    dates.add(v)
                    continue
                whole.add(v)
                if col != "street_address":  # street words (Street, Avenue) are ordinary vocabulary
                    tokens.update(t.lower() for t in _TOKEN.findall(v) if len(t) >= 5 and not t.isdigit())
                if col.endswith("_id"):
                    tokens.add(v.lower())
    return tokens, dates, whole


def _cells(frame: pd.DataFrame) -> list[str]:
    out = []
    for col in frame.columns:
        for v in frame[col].tolist():
            if v is None or (isinstance(v, float) and pd.isna(v)):
                continue
            if isinstance(v, list | tuple) or hasattr(v, "tolist"):
                out.extend(str(x) for x in (v.tolist() if hasattr(v, "tolist") else v))
            else:
                out.append(str(v))
    return out


def _check_text(texts: list[str], raw: tuple[set[str], set[str], set[str]], where: str) -> None:
    tokens, dates, whole = raw
    for text in texts:
        if _HEX.match(text):
            continue
        assert text not in whole, f"{where}: a raw identifier value"
        found = {t.lower() for t in _TOKEN.findall(text)} & tokens
        assert not found, f"{where}: raw identifier tokens {sorted(found)[:3]}"
        assert not (set(_DATE.findall(text)) & dates), f"{where}: a raw birth date"


def test_state_database_holds_no_identifier(first_run, inputs) -> None:  # noqa: ANN001
    raw = _raw(inputs)
    state = read_state(first_run.database.parent)
    assert {"crosswalk", "child_keys", "history", "decisions", "review_queue", "quality", "runs", "meta", "pairs"} <= set(state)
    for name, frame in state.items():
        _check_text(_cells(frame), raw, f"state table {name}")
    # the encodings and Splink's working tables are not kept: only the state schema exists
    con = duckdb.connect(":memory:")
    attach = "attach " + "'" + str(first_run.database).replace("'", "''") + "'" + " as s (read_only)"
    con.execute(attach)
    schemas = {r[0] for r in con.execute("select distinct schema_name from duckdb_tables() where database_name = 's'").fetchall()}
    con.close()
    assert schemas == {"c2c_linkage"}


def test_database_file_bytes_hold_no_identifier(first_run, inputs) -> None:  # noqa: ANN001
    _, dates, whole = _raw(inputs)
    blob = b"".join(p.read_bytes() for p in Path(first_run.database.parent).glob(f"{LinkageArea.STATE_DB}*"))
    found_dates = {m.decode() for m in re.findall(rb"\d{4}-\d{2}-\d{2}", blob)} & dates
    assert not found_dates
    long_values = sorted((v for v in whole if len(v) >= 8 and not v.isdigit()), key=len, reverse=True)[:400]
    for v in long_values:
        assert v.encode("utf-8") not in blob


def test_outputs_and_model_hold_no_identifier(first_run, model, inputs) -> None:  # noqa: ANN001
    raw = _raw(inputs)
    for name in ("crosswalk", "history", "review_queue"):
        _check_text(_cells(getattr(first_run, name)), raw, name)
    _check_text([json.dumps(first_run.quality.to_dict())], raw, "quality")
    _check_text([Path(model.path).read_text(encoding="utf-8")], raw, "model artefact")
    assert not list(Path(model.path).parent.parent.glob("*.duckdb"))  # training keeps no database
