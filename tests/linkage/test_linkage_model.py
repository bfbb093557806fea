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
    strict = s.model_copy(update={"thresholds": s.thresholds.model_copy(update={"upper": 0.9999, "lower": 0.5})})
    r = link(inputs.encodings, model, workdir=tmp_path, run_id="strict", settings=strict, now=NOW)
    assert r.quality.scores["thresholds"] == {"lower": 0.5, "upper": 0.9999}
    assert r.quality.settings == strict.label != model.settings.label
