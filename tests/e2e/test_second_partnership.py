"""Issue 15 item 2: the second reference partnership (Lakeshore County) end to end, with no code change.

The partnership is copied to a temporary directory; ``generate_partnership_city`` writes its synthetic
city (two districts whose pupils move between them, Lakeshore's extract and column names and codes,
dental screenings); the whole pipeline runs with ``C2C_PARTNERSHIP`` pointing at the copy, through the
published release. The indicators are checked against the synthetic truth: ``synthetic.truth_indicators``
computes them from the same people and facts (``<city>/reference``), knowing nothing of Lakeshore.

Asserted, city-wide, every period, dimension ``all`` (rows before disclosure control): every SPEC
indicator is within the linkage tolerance of the truth (denominators within 3%, rates within 0.02; a pupil
who changed district is one child only if linkage joins the districts' records), and dental_screening
(Lakeshore's own indicator, from an extract Fairhaven does not have) counts every K-5 pupil once.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from e2e_support import REPO, isolate_env, settings_env

CHILDREN = 1500  # every child counts since issue 17 (older school-age siblings too): about the 1,200 aged 0-18 of before
SEED = 20261207


def test_lakeshore_runs_end_to_end_against_the_truth(tmp_path: Path) -> None:
    from data_sharing.partnership import load_partnership_dir
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from schemas.indicators import load_indicator_definitions
    from schemas.roles import ROLES
    from synthetic import truth_indicators as T
    from synthetic.partnership_city import generate_partnership_city
    from warehouse.indicators import compute_indicator_rows
    from warehouse.releases import current_release

    partnership = tmp_path / "lakeshore"
    shutil.copytree(REPO / "schemas" / "partnerships" / "lakeshore", partnership)
    rows = generate_partnership_city(load_partnership_dir(partnership), CHILDREN, SEED, tmp_path / "city")
    assert len(rows) == 14 and min(rows.values()) > 0
    facts = T.load_city_facts(tmp_path / "city" / "reference")
    truth = T.truth_indicator_rows(facts)
    movers = facts["students"].assign(d=facts["students"].school_id.rank(method="dense").astype(int) % 2)
    assert (movers.groupby("person").d.nunique() > 1).sum() > 20  # pupils with records in both districts

    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, home)
        mp.setenv("C2C_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
        env = {**settings_env(home), "C2C_DROP_DIR": str(tmp_path / "city" / "drop"), "C2C_PARTNERSHIP": str(partnership)}
        summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
        assert summary.ok and summary.counts == {"accepted": 14}, (summary.error, summary.counts)
        engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
        release = current_release(engine)
        assert release is not None and release.rows > 1000
        assert {f["agency"] for f in release.source_files} == {"north_usd", "south_usd", "lc_health", "family_services"}
        defs = load_indicator_definitions(partnership / "indicators")
        with engine.begin() as conn:
            got = compute_indicator_rows(conn, defs, dict.fromkeys(ROLES, 1))
        engine.dispose()

    city = ["indicator", "period"]
    p = got[(got.school_id == "ALL") & (got.dimension == "all")].set_index(city)[["numerator", "denominator"]]
    t = truth[(truth.school_id == "ALL") & (truth.dimension == "all")].set_index(city)[["numerator", "denominator"]]
    both = p.join(t, lsuffix="_p", rsuffix="_t", how="inner")
    assert set(both.index.get_level_values(0)) == set(t.index.get_level_values(0))  # every SPEC indicator
    rate_p, rate_t = both.numerator_p / both.denominator_p, both.numerator_t / both.denominator_t
    den_gap = (both.denominator_p - both.denominator_t).abs() / both.denominator_t
    report = both.assign(rate_p=rate_p, rate_t=rate_t, den_gap=den_gap)
    print(f"lakeshore vs truth: {len(both)} city cells, max |rate diff| {(rate_p - rate_t).abs().max():.4f}, "
          f"max denominator gap {den_gap.max():.4f}")
    assert (den_gap <= 0.03).all(), report[den_gap > 0.03].to_string()
    assert ((rate_p - rate_t).abs() <= 0.02).all(), report[(rate_p - rate_t).abs() > 0.02].to_string()

    # dental_screening: every K-5 pupil once (the truth's student-years), some of them screened
    sy = T.student_years(facts["students"])
    k5 = sy[sy.grade_level.isin(["KG", "01", "02", "03", "04", "05"])].groupby("period").size()
    dental = p.loc["dental_screening"]
    gap = (dental.denominator - k5.reindex(dental.index)).abs() / k5.reindex(dental.index)
    assert (gap <= 0.03).all() and (dental.numerator > 0).all(), pd.concat([dental, k5.rename("k5")], axis=1)
