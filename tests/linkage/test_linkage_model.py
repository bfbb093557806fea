"""The trained model is a versioned artefact; runs refuse inputs and settings that do not fit it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.linkage.conftest import NOW  # type: ignore[import-not-found]
from data_sharing.keys import init_keyset
from data_sharing.linkage import LinkageInputError, LinkageModelError, link, load_model, load_settings, train_model
from data_sharing.linkage.truth import protect_frames


def test_the_artefact_records_parameters_keys_and_settings(model, keyset) -> None:  # noqa: ANN001
    data = json.loads(Path(model.path).read_text(encoding="utf-8"))
    assert data["format"] == "c2c-linkage-model" and data["model_id"] == model.model_id
    assert Path(model.path).name == f"{model.model_id}.json"
    assert data["linkage_key_id"] == keyset.purpose_key("linkage").key_id
    settings = load_settings()
    assert data["settings_label"] == settings.label
    for comp in settings.comparisons:
        levels = data["parameters"][comp.name]
        assert set(levels) == {lv.name for lv in comp.levels if not lv.null}
        for p in levels.values():
            assert 0 < p["u"] < 1  # u by random sampling
    assert [s["rule"] for s in data["training"]["em_sessions"]] == [r.name for r in settings.training.em_blocking_rules]
    priors = data["training"]["pair_type_priors"]["by_pair_type"]
    # an agency gives a child one id: two ids of one agency are much less likely one child than two agencies' records
    assert priors["fps|fps"]["weight_shift"] < 0 < priors["fhd|fps"]["weight_shift"]
    # a level never observed (e.g. fuzzy names among a small city's matches) gets a conservative value
    for comp in data["splink"]["comparisons"]:
        for lv in comp["comparison_levels"]:
            if not lv.get("is_null_level"):
                assert 0 < lv["m_probability"] <= 1 and 0 < lv["u_probability"] <= 1
    assert {k.rsplit(".", 1)[0] for k in data["training"]["filled_defaults"]} == {
        k.rsplit(".", 1)[0] for k in data["training"]["untrained_levels"]}


def test_load_model_round_trip_and_errors(model, tmp_path: Path) -> None:  # noqa: ANN001
    again = load_model(model.path)
    assert again.model_id == model.model_id and again.splink == model.splink and again.settings == model.settings
    with pytest.raises(LinkageModelError, match="never overwritten"):
        again.save(model.path)
    with pytest.raises(LinkageModelError, match="no such linkage model"):
        load_model(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(LinkageModelError, match="not a readable linkage model"):
        load_model(bad)
    bad.write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    with pytest.raises(LinkageModelError, match="not a c2c-linkage-model file"):
        load_model(bad)
    data = json.loads(Path(model.path).read_text(encoding="utf-8"))
    data["splink"]["comparisons"][0]["comparison_levels"][1]["m_probability"] = 7
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LinkageModelError, match="is not a probability"):
        load_model(bad)


def test_runs_refuse_what_does_not_fit(model, inputs, tmp_path: Path) -> None:  # noqa: ANN001
    settings = load_settings()
    other = settings.model_copy(update={"comparisons": settings.comparisons[:-1]})
    with pytest.raises(LinkageModelError, match="retrain"):
        link(inputs.encodings, model, workdir=tmp_path / "a", run_id="x", settings=other, now=NOW)
    missing = dict(inputs.encodings)
    missing["dhs"] = missing["dhs"].drop(columns=["name_bloom"])
    with pytest.raises(LinkageInputError, match="dhs: the encodings lack column"):
        link(missing, model, workdir=tmp_path / "b", run_id="x", now=NOW)
    # encodings made with another linkage key cannot be compared with the rest
    foreign_keys = init_keyset(tmp_path / "other.key")
    enc, _ = protect_frames({"dhs": inputs.raw["dhs"]}, foreign_keys)
    mixed = {**inputs.encodings, "dhs": enc["dhs"]}
    with pytest.raises(LinkageInputError, match="different linkage keys"):
        link(mixed, model, workdir=tmp_path / "c", run_id="x", now=NOW)
    with pytest.raises(LinkageInputError, match="too few records"):
        train_model({"fps": inputs.encodings["fps"].head(10)}, workdir=tmp_path / "d")


def test_settings_may_change_thresholds_without_retraining(model, inputs, tmp_path: Path) -> None:  # noqa: ANN001
    s = load_settings()
    strict = s.model_copy(update={"thresholds": s.thresholds.model_copy(
        update={"upper": 0.9999, "lower": 0.5, "upper_within_agency": 0.9999})})
    r = link(inputs.encodings, model, workdir=tmp_path, run_id="strict", settings=strict, now=NOW)
    assert r.quality.scores["thresholds"] == {"lower": 0.5, "upper": 0.9999, "upper_within_agency": 0.9999}
    assert r.quality.settings == strict.label != model.settings.label


def _groups(crosswalk) -> set[frozenset[str]]:  # noqa: ANN001
    return {frozenset(g) for _, g in crosswalk.groupby("child_key").source_key}


def test_parquet_files_and_arrow_tables_link_as_frames_do(model, inputs, first_run, tmp_path: Path) -> None:  # noqa: ANN001
    """A state-sized input is handed over as parquet files (read by DuckDB, never held in Python):
    the same persons, scores and counts as from DataFrames."""
    import pyarrow as pa

    files = {}
    for agency, frame in inputs.encodings.items():
        half = len(frame) // 2  # one agency's current files: two parts
        paths = [tmp_path / f"{agency}-{i}.parquet" for i in range(2)]
        frame.iloc[:half].to_parquet(paths[0])
        frame.iloc[half:].to_parquet(paths[1])
        files[agency] = paths
    files["dhs"] = [str(files["dhs"][0]), pa.Table.from_pandas(inputs.encodings["dhs"].iloc[len(inputs.encodings["dhs"]) // 2:])]
    r = link(files, model, workdir=tmp_path / "p", run_id="night-1", attributes=inputs.attributes, now=NOW)
    assert _groups(r.crosswalk) == _groups(first_run.crosswalk)
    assert r.counts == first_run.counts
    assert len(r.review_queue) == len(first_run.review_queue)


def test_parquet_inputs_are_checked_like_frames(model, inputs, tmp_path: Path) -> None:  # noqa: ANN001
    enc = inputs.encodings
    nobloom = tmp_path / "nobloom.parquet"
    enc["dhs"].drop(columns=["name_bloom"]).to_parquet(nobloom)
    with pytest.raises(LinkageInputError, match="dhs: the encodings lack column\\(s\\) name_bloom"):
        link({**enc, "dhs": nobloom}, model, workdir=tmp_path / "a", run_id="x", now=NOW)
    texty = tmp_path / "texty.parquet"
    enc["dhs"].assign(name_bloom=enc["dhs"].name_bloom.map(lambda b: None if b is None else bytes(b).hex())).to_parquet(texty)
    with pytest.raises(LinkageInputError, match="dhs: column name_bloom must hold binary Bloom filters, not VARCHAR"):
        link({**enc, "dhs": texty}, model, workdir=tmp_path / "b", run_id="x", now=NOW)
    with pytest.raises(LinkageInputError, match=r"dhs: an encodings file does not exist \(gone.parquet\)"):
        link({**enc, "dhs": tmp_path / "gone.parquet"}, model, workdir=tmp_path / "c", run_id="x", now=NOW)
    # the same source keys under two agencies: two persons' ids colliding
    clash = tmp_path / "clash.parquet"
    enc["fps"].head(50).to_parquet(clash)
    with pytest.raises(LinkageInputError, match="appear under two agencies"):
        link({**enc, "dhs": [enc["dhs"], clash]}, model, workdir=tmp_path / "d", run_id="x", now=NOW)


def test_two_ids_of_one_agency_link_only_above_their_own_threshold(model, inputs, first_run, tmp_path: Path) -> None:  # noqa: ANN001
    from data_sharing.linkage import read_state

    def within_linked(workdir: Path):  # noqa: ANN202
        p = read_state(workdir)["pairs"]
        return p[(p.agency_l == p.agency_r) & (p.outcome == "same_person")]

    s = load_settings()
    assert s.thresholds.within_agency_upper > s.thresholds.upper  # the shipped settings: stricter inside an agency
    shipped = within_linked(first_run.database.parent)
    assert len(shipped) and (shipped.match_probability >= s.thresholds.within_agency_upper).all()
    cut = float(shipped.match_probability.quantile(0.5))
    strict = s.model_copy(update={"thresholds": s.thresholds.model_copy(update={"upper_within_agency": cut})})
    r = link(inputs.encodings, model, workdir=tmp_path, run_id="strict", attributes=inputs.attributes, settings=strict, now=NOW)
    linked = within_linked(tmp_path)
    assert (linked.match_probability >= cut).all()
    assert 0 < len(linked) < len(shipped)
    # pairs of two agencies still link at the shared upper threshold
    assert r.quality.scores["thresholds"]["upper"] == s.thresholds.upper


def test_predict_in_chunks_scores_the_same_pairs(model, inputs, first_run, tmp_path: Path) -> None:  # noqa: ANN001
    """A state's records are scored in n x n chunks (PREDICT_CHUNK_RECORDS per side): the same pairs,
    weights and persons as in one pass."""
    from data_sharing.linkage import read_state

    n = sum(first_run.counts["variants"].values())
    r = link(inputs.encodings, model, workdir=tmp_path, run_id="night-1", attributes=inputs.attributes, now=NOW,
             predict_chunk_records=n // 3 + 1)
    assert r.counts["predict_chunks"] == 3 and first_run.counts["predict_chunks"] == 1
    assert _groups(r.crosswalk) == _groups(first_run.crosswalk)
    assert r.counts["record_comparisons"] == first_run.counts["record_comparisons"]
    cols = ["source_key_l", "source_key_r", "match_weight"]
    a = read_state(tmp_path)["pairs"][cols].sort_values(cols[:2]).reset_index(drop=True)
    b = read_state(first_run.database.parent)["pairs"][cols].sort_values(cols[:2]).reset_index(drop=True)
    assert a[cols[:2]].equals(b[cols[:2]])
    assert (a.match_weight - b.match_weight).abs().max() < 1e-9


def test_an_m_that_em_drove_towards_zero_is_floored() -> None:
    # issue 14: EM on a city whose records never show a level (a wrong birth month) gave m = 3e-11, a
    # weight of -25 bits; floored at UNTRAINED_M it weighs as a level never met. Other levels are kept.
    from data_sharing.linkage.model import UNTRAINED_M, _floor_m

    splink = {"comparisons": [{"output_column_name": "birth_date", "comparison_levels": [
        {"label_for_charts": "missing", "is_null_level": True},
        {"label_for_charts": "exact", "m_probability": 0.97, "u_probability": 0.0002},
        {"label_for_charts": "year_day", "m_probability": 3e-11, "u_probability": 0.0009},
        {"label_for_charts": "else", "m_probability": 0.03, "u_probability": 0.99}]}]}
    assert _floor_m(splink) == {"birth_date.year_day": 3e-11}
    levels = splink["comparisons"][0]["comparison_levels"]
    assert [lv.get("m_probability") for lv in levels] == [None, 0.97, UNTRAINED_M, 0.03]


def test_encodings_older_than_v3_still_link(model, inputs, first_run, tmp_path: Path) -> None:  # noqa: ANN001
    # issue 14: files encoded before v3 lack the middle-name-as-first and surname-as-first hashes; their
    # records link, never meeting the two levels that read them (the small city has no swapped names
    # and no middle name used as first: the same persons as with the v3 columns)
    from data_sharing.linkage import read_state

    v3 = ["middle_name_as_first_hash", "last_name_as_first_hash"]
    older = {a: e.drop(columns=v3) for a, e in inputs.encodings.items()}
    result = link(older, model, workdir=tmp_path, run_id="older", attributes=inputs.attributes, now=NOW)
    name = load_settings().comparison("name")
    gammas = set(read_state(tmp_path)["pairs"].gamma_name.astype(int))
    assert not gammas & {name.gamma("swapped"), name.gamma("middle_as_first")}

    def persons(crosswalk):  # noqa: ANN001, ANN202
        return {frozenset(g) for g in crosswalk.groupby("child_key").source_key.agg(list)}

    assert persons(result.crosswalk) == persons(first_run.crosswalk)
