"""Issue 20 finding 11 (linkage quality): published linkage counts respect the small-cell rule.

Before the fix, ``releases.linkage_quality`` (public tier) and the linkage asset's metadata in the
read-only UI showed link counts of one or two persons. Now every count between 1 and k-1 (k: the
MOUs' ``min_cell_size``; the strictest MOU's for the release) is published as ``"<k"`` and a link rate
resting on a small count is null with its reason. Zero is not small (SPEC). Hand-computed below.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from sqlalchemy import select, text

from data_sharing.publication import publishable_quality
from warehouse.db import make_engine, upgrade
from warehouse.models import Release

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "warehouse"))
from warehouse_city import load_city  # noqa: E402

T0 = dt.datetime(2026, 12, 7, 4, 0, tzinfo=dt.timezone.utc)
# A quality summary as the linkage asset writes it (records, persons, link rates), with small cells.
QUALITY = {
    "records": {"fps": {"rows": 480, "source_keys": 470, "variants": 2, "rows_without_source_key": 0}},
    "persons": {"total": 470, "by_agency_combination": {"fps": 300, "fps+fhd": 168, "fhd+dhs": 2}},
    "link_rates": {
        "fps->fhd": {"persons": 470, "linked": 168, "rate": 168 / 470},  # published as is
        "fps->dhs": {"persons": 470, "linked": 1, "rate": 1 / 470},  # one person: "<11", rate null
        "fhd->fps": {"persons": 170, "linked": 168, "rate": 168 / 170},  # 2 unlinked: linked withheld
        "dhs->fhd": {"persons": 2, "linked": 2, "rate": 1.0},  # two persons in all
        "dhs->fps": {"persons": 2, "linked": 0, "rate": 0.0},
    },
    "model": "m-20261207",
}


def _no_small_counts(value: object, k: int) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return value == 0 or value >= k
    if isinstance(value, dict):
        return all(_no_small_counts(v, k) for v in value.values())
    if isinstance(value, list):
        return all(_no_small_counts(v, k) for v in value)
    return True


def test_small_link_counts_are_published_as_below_k() -> None:
    out = publishable_quality(QUALITY, 11)
    assert out["records"]["fps"] == {"rows": 480, "source_keys": 470, "variants": "<11", "rows_without_source_key": 0}
    assert out["persons"]["by_agency_combination"] == {"fps": 300, "fps+fhd": 168, "fhd+dhs": "<11"}
    rates = out["link_rates"]
    assert rates["fps->fhd"] == QUALITY["link_rates"]["fps->fhd"]
    assert rates["fps->dhs"] == {"persons": 470, "linked": "<11", "rate": None, "suppressed": "small_count"}
    assert rates["fhd->fps"] == {"persons": 170, "linked": None, "rate": None, "suppressed": "small_count"}
    assert rates["dhs->fhd"] == {"persons": "<11", "linked": "<11", "rate": None, "suppressed": "small_denominator"}
    assert rates["dhs->fps"] == {"persons": "<11", "linked": 0, "rate": None, "suppressed": "small_denominator"}
    assert out["suppression"]["k"] == 11 and out["model"] == "m-20261207"
    assert _no_small_counts(out, 11) and not _no_small_counts(QUALITY, 11)
    assert publishable_quality({"a": {"persons": 40, "linked": 12, "rate": 0.3}}, 10) == {"a": {"persons": 40, "linked": 12, "rate": 0.3}}


def test_the_public_release_row_shows_no_count_below_k(tmp_path: Path, partnership) -> None:  # noqa: ANN001
    from warehouse.releases import current_release, publish_release

    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    upgrade(engine)
    load_city(engine)
    k = max(int(a.min_cell_size) for a in partnership.agreements.values())
    assert k == 11  # fhd's MOU is the strictest
    publish_release(engine, linkage_quality=QUALITY, run_id="run-1", partnership=partnership, now=T0)
    with engine.connect() as conn:  # what the public tier reads
        stored = json.loads(conn.execute(select(Release.linkage_quality)).scalar_one())
        events = [json.loads(d) for d in conn.execute(text("SELECT details FROM audit_log WHERE event_type = 'release'")).scalars()]
    assert stored["link_rates"]["fps->dhs"]["linked"] == "<11" and stored["persons"]["by_agency_combination"]["fhd+dhs"] == "<11"
    assert _no_small_counts(stored, k) and current_release(engine).linkage_quality == stored
    assert _no_small_counts(events[0]["linkage_quality"], k)
    engine.dispose()
