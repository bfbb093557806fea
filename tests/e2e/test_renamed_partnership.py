"""Issue 15 item 1: agency ids are free names. The reference partnership with every agency id renamed
(folders, files and the ids inside them: MOUs, contracts, linkage guards, the agency list) and the same
city dropped under the new names publishes the same release: the same indicator values in every cell.

Renamed ids keep the reference ids' sort order (dhs < fhd < fps -> county_hs < health_dept < schools), so
anything ordered by agency (linkage tie-breaks) is ordered alike and the two runs must agree exactly.
"""

from __future__ import annotations

import base64
import re
import secrets
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from e2e_support import isolate_env, settings_env

CHILDREN = 400
SEED = 20261207
RENAME = {"fps": "schools", "fhd": "health_dept", "dhs": "county_hs"}
_ID = re.compile(r"\b(" + "|".join(RENAME) + r")\b")


def rename_partnership(src: Path, dst: Path) -> None:
    """Copy a partnership directory renaming every agency id in folder names, file names and contents."""
    for path in sorted(src.rglob("*")):
        rel = Path(*(RENAME.get(part.removesuffix(".yaml"), part.removesuffix(".yaml")) + (".yaml" if part.endswith(".yaml") else "")
                     for part in path.relative_to(src).parts))
        target = dst / rel
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_ID.sub(lambda m: RENAME[m.group(1)], path.read_text(encoding="utf-8")), encoding="utf-8")


def run_city(tmp: Path, name: str, drop: Path, partnership: Path | None, key: str) -> tuple[pd.DataFrame, dict]:
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from warehouse.releases import current_indicator_values, current_release

    home = tmp / name
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, home)
        mp.setenv("C2C_MASTER_KEY", key)
        env = {**settings_env(home), "C2C_DROP_DIR": str(drop)}
        if partnership is not None:
            env["C2C_PARTNERSHIP"] = str(partnership)
        summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
        assert summary.ok and summary.counts == {"accepted": 9}, (summary.error, summary.counts)
        engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
        values = current_indicator_values(engine)
        release = current_release(engine)
        assert release is not None
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            agencies = {t: sorted(r[0] for r in conn.exec_driver_sql("SELECT DISTINCT agency FROM " + quote(t)))
                        for t in ("enrolments", "health_patients", "dhs_clients")}
        engine.dispose()
    return values, {"agencies": agencies, "sources": release.source_files}


def test_renamed_agencies_publish_the_same_release(tmp_path: Path) -> None:
    from schemas.partnership import export_reference
    from synthetic.city import generate_city

    key = base64.b64encode(secrets.token_bytes(32)).decode()
    generate_city(CHILDREN, SEED, tmp_path / "city")
    reference = tmp_path / "reference"
    export_reference(reference)
    renamed = tmp_path / "renamed"
    rename_partnership(reference, renamed)
    assert sorted(p.name for p in (renamed / "agreements").iterdir()) == ["county_hs.yaml", "health_dept.yaml", "schools.yaml"]
    assert "fps" not in (renamed / "linkage" / "settings.yaml").read_text()
    renamed_drop = tmp_path / "renamed_drop"
    for folder in (tmp_path / "city" / "drop").iterdir():
        shutil.copytree(folder, renamed_drop / RENAME[folder.name])

    ref_values, ref = run_city(tmp_path, "ref", tmp_path / "city" / "drop", None, key)
    new_values, new = run_city(tmp_path, "new", renamed_drop, renamed, key)

    # the warehouse keeps the sending agency on every row, under the partnership's own names
    assert ref["agencies"] == {"enrolments": ["fps"], "health_patients": ["fhd"], "dhs_clients": ["dhs"]}
    assert new["agencies"] == {"enrolments": ["schools"], "health_patients": ["health_dept"], "dhs_clients": ["county_hs"]}
    cols = ["indicator", "period", "school_id", "dimension", "group", "numerator", "denominator", "rate", "suppressed", "suppression_reason"]
    a = ref_values[cols].sort_values(cols[:5]).reset_index(drop=True)
    b = new_values[cols].sort_values(cols[:5]).reset_index(drop=True)
    assert len(a) > 1000 and a["indicator"].nunique() == 7 and (~a["suppressed"]).sum() > 100
    pd.testing.assert_frame_equal(a, b)
    print(f"renamed-partnership release equal: {len(a)} cells, {int((~a['suppressed']).sum())} published")
    # the release's sources are the renamed agencies' files, of every role the indicators read
    assert {f["agency"] for f in new["sources"]} == {"schools", "health_dept", "county_hs"}
    assert len(new["sources"]) == len(ref["sources"]) == 7  # every extract but the person extracts (no kind reads them)
