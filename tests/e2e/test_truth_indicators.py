"""Indicator correctness end to end (issue 7 item 5): a synthetic city through the whole pipeline, against
the same indicators computed straight from its ground truth.

``synthetic.truth_indicators`` is an independent pandas implementation of the SPEC's indicators (no code,
SQL or definition file shared with ``warehouse.indicators``). It runs twice: with every record's **true
person** as the child (*truth*), and with the pipeline's own linkage (each record's ``child_key``) as the
child (*replay*). The pipeline's rows are ``compute_indicator_rows`` on the run's warehouse (what
``publish_release`` protects), compared before disclosure control, per indicator, period, school (or
``ALL``), dimension and group. Asserted:

* pipeline == replay in every cell of every indicator: given the same linkage, the warehouse computes
  exactly what the SPEC text says (this isolates the indicator SQL from the linkage);
* pipeline vs truth: a cell can only differ through students whose records the linkage got wrong (measured
  against the truth): school-only indicators are exact in every cell without a split or merged student,
  and every cell's |numerator| and |denominator| difference is at most ``bound`` = the number of such
  students in the cell (true side or pipeline side); cross-agency cells likewise with the students whose
  health / human-services links are wrong. Hence each city-wide rate is within 2 * bound / denominator;
* the linkage errors themselves are small (shares of students, measured): the tolerance is tied to them.

The whole pipeline runs once for the module (about a minute: 1,500 children, five school years).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from e2e_support import isolate_env, settings_env

CHILDREN = 1500
SEED = 20261123


@dataclass
class Measured:
    cells: pd.DataFrame
    summary: pd.DataFrame
    errors: dict
    truth: pd.DataFrame
    replay: pd.DataFrame
    pipeline: pd.DataFrame
    release: dict


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Measured]:
    from data_sharing.keys import load_keyset
    from data_sharing.pseudonyms import pseudonymize_ids
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from synthetic import truth_indicators as T
    from synthetic.city import generate_city

    tmp = tmp_path_factory.mktemp("truth")
    home = tmp / "home"
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, home)
        mp.setenv("C2C_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
        mp.setenv("C2C_DATA_DOCS", "0")
        mp.delenv("C2C_KEY_FILE", raising=False)
        generate_city(CHILDREN, SEED, tmp / "city")
        facts = T.load_city_facts(tmp / "city")  # before intake takes the files in
        env = {**settings_env(home), "C2C_DROP_DIR": str(tmp / "city" / "drop")}
        summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
        assert summary.ok and summary.counts == {"accepted": 9}, (summary.error, summary.counts)
        engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
        keyset = load_keyset(env=os.environ)
        agreement = T.measure(facts, engine, lambda ids, agency, id_type: pseudonymize_ids(
            ids, keyset, agency=agency, id_type=id_type)["source_key"])
        engine.dispose()
    yield Measured(agreement.cells, T.agreement_summary(agreement.cells), agreement.error_rates, agreement.truth,
                   agreement.replay, agreement.pipeline, summary.release or {})


def test_the_comparison_covers_every_indicator(measured: Measured) -> None:
    fams = set(measured.summary.indicator)
    assert fams == {
        "chronic_absence", "chronic_absence/program", "grade3_reading", "grade8_math", "hs_graduation_4yr",
        "kindergarten_mmr2", "kindergarten_readiness", "well_child_visit",
    }
    c = measured.cells
    assert len(c) > 3000 and set(c.period) == {2022, 2023, 2024, 2025, 2026}
    assert set(c.dimension) == {"all", "race_ethnicity", "sex", "english_learner", "disability", "econ_disadvantaged",
                                "homeless", "program"}
    # the release the run published is the protected form of these rows (one published row per cell)
    assert measured.release["rows"] == len(measured.pipeline)
    # per school and city-wide, with a real population behind them
    city = c[(c.school_id == "ALL") & (c.dimension == "all")]
    assert (city.groupby("family").den_t.sum() > 100).all()


def test_pipeline_equals_the_reference_given_its_own_linkage(measured: Measured) -> None:
    c = measured.cells
    bad = c[~c.replay_exact]
    assert bad.empty, f"the warehouse and the SPEC reference disagree on {len(bad)} cells:\n{bad.head(20).to_string()}"


def test_school_only_indicators_are_exact_but_for_split_or_merged_students(measured: Measured) -> None:
    c = measured.cells[measured.cells.kind == "school_only"]
    unflagged = c[c.bound == 0]
    assert unflagged.exact.all(), unflagged[~unflagged.exact].head(20).to_string()
    assert ((c.d_num.abs() <= c.bound) & (c.d_den.abs() <= c.bound)).all()
    # within-agency deduplication errors are rare: almost every school-only cell is exact
    assert c.exact.mean() >= 0.98 and measured.errors["fps"]["share"] <= 0.01


def test_cross_agency_indicators_within_the_linkage_error(measured: Measured) -> None:
    c = measured.cells[measured.cells.kind == "cross_agency"]
    unflagged = c[c.bound == 0]
    assert unflagged.exact.all(), unflagged[~unflagged.exact].head(20).to_string()
    over = c[(c.d_num.abs() > c.bound) | (c.d_den.abs() > c.bound)]
    assert over.empty, over.head(20).to_string()
    both = c[(c.den_p > 0) & (c.den_t > 0)]
    assert (both.d_rate.abs() <= 2 * both.bound / both.den_p + 1e-12).all()
    # the links the cross-agency numerators rest on are wrong for at most 2% of students
    assert measured.errors["fhd"]["share"] <= 0.02 and measured.errors["dhs"]["share"] <= 0.02
    for fam in ("kindergarten_mmr2", "well_child_visit", "chronic_absence/program"):
        city = c[(c.family == fam) & (c.school_id == "ALL")]
        bound = int(city.bound.sum())
        row = measured.summary.set_index("indicator").loc[fam]
        assert abs(row.city_rate_diff) <= 2 * bound / row.city_den_pipeline + 1e-12, (fam, row.to_dict(), bound)
        assert abs(row.city_rate_diff) <= 0.01, (fam, row.to_dict())


def test_the_comparison_catches_a_wrong_count(measured: Measured) -> None:
    """Negative control: one numerator off by one in a cell no linkage error touches is caught."""
    from synthetic.truth_indicators import KEY, compare_rows

    clean = measured.cells[(measured.cells.bound == 0) & measured.cells.exact & (measured.cells.num_p > 0)]
    target = clean.iloc[len(clean) // 2][KEY]
    wrong = measured.pipeline.copy()
    hit = (wrong[KEY] == target.to_numpy()).all(axis=1)
    assert hit.sum() == 1
    wrong.loc[hit, "numerator"] -= 1
    again = compare_rows(wrong, measured.truth, measured.replay)
    bad = again[~again.exact & (again.bound == 0)]
    assert len(bad) == 1 and (bad[KEY].to_numpy() == target.to_numpy()).all()
    assert (~again.replay_exact).sum() == 1


def test_linkage_errors_found_against_a_hand_made_crosswalk() -> None:
    """linkage_errors on a crosswalk written by hand: a split student, a merged pair, a missed and a false
    health link, a correct human-services link."""
    from synthetic.truth_indicators import linkage_errors

    ident = pd.DataFrame(
        [  # agency, source_id, person (the pipeline's child key), person_id (truth)
            ("fps", "S1", "k1", "p1"), ("fps", "S1b", "k9", "p1"),  # p1 split over k1 and k9
            ("fps", "S2", "k2", "p2"), ("fps", "S3", "k2", "p3"),  # p2 and p3 merged
            ("fps", "S4", "k4", "p4"), ("fhd", "H4", "sk:h4", "p4"),  # p4's health record not linked
            ("fps", "S5", "k5", "p5"), ("fhd", "H5", "k5", "p5"), ("fhd", "H6", "k5", "p6"),  # p6's record on p5
            ("fps", "S7", "k7", "p7"), ("fhd", "H7", "k7", "p7"), ("dhs", "D7", "k7", "p7"),  # all right
        ],
        columns=["agency", "source_id", "person", "person_id"],
    )
    assert linkage_errors(ident) == {"fps": {"p1", "p2", "p3"}, "fps_split": {"p1"}, "fps_merged": {"p2", "p3"},
                                     "fhd": {"p4", "p5"}, "dhs": set()}


def test_a_new_hub_without_data_runs_and_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first nightly run of a new hub (nothing dropped yet) succeeds, publishes no (empty) release and
    says why in a failed, warning-level check on indicator_release."""
    from dagster import AssetCheckSeverity, DagsterInstance

    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from warehouse.releases import current_release

    home = tmp_path / "home"
    isolate_env(monkeypatch, home)
    (tmp_path / "drop").mkdir()
    env = {**settings_env(home), "C2C_DROP_DIR": str(tmp_path / "drop")}
    summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
    assert summary.ok and summary.nightly_success and summary.release and summary.release["release_id"] is None
    engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
    assert current_release(engine) is None
    engine.dispose()
    instance = DagsterInstance.get()
    checks = [
        e.dagster_event.event_specific_data for e in instance.all_logs(summary.nightly_run_id)
        if e.dagster_event is not None and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    [published] = [c for c in checks if c.check_name == "release_published"]
    assert not published.passed and published.severity == AssetCheckSeverity.WARN
    assert "no extract of role school_enrolment has been loaded yet" in published.description and "no release yet" in published.description
