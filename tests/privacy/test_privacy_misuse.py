"""Misuse: wrong keys, missing keys, leaky errors, unsafe files and names. Nothing here may pass silently."""

from __future__ import annotations

import base64
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_sharing import _crypto
from data_sharing.encodings import dice_sql, encode_for_linkage
from data_sharing.errors import IdentifierDataError, KeyMaterialError, LandingError, PrivacyError
from data_sharing.keys import ENV_VAR, KeySet, PurposeKey, init_keyset, load_keyset, load_linkage_key, resolve_key
from data_sharing.landing import LandingZone
from data_sharing.pseudonyms import pseudonymize, pseudonymize_ids, source_keys_from_tokens, tokenize_ids

SECRET_LOOKING_ID = "ZQ-7731-SECRETID"


def test_a_landing_key_cannot_tokenize(keyset: KeySet) -> None:
    with pytest.raises(KeyMaterialError) as err:
        tokenize_ids(["S1"], keyset.purpose_key("landing"), agency="fps", id_type="student")
    assert err.value.reason == "wrong_purpose"


def test_a_pseudonym_key_cannot_encode_for_linkage(students, contracts, keyset: KeySet) -> None:  # noqa: ANN001
    with pytest.raises(KeyMaterialError) as err:
        encode_for_linkage(students, contracts[("fps", "students")], keyset.purpose_key("pseudonym"))
    assert err.value.reason == "wrong_purpose"


def test_a_linkage_key_cannot_make_source_keys_or_open_the_landing_zone(keyset: KeySet, tmp_path: Path) -> None:
    link = keyset.purpose_key("linkage")
    with pytest.raises(KeyMaterialError):
        source_keys_from_tokens(["0" * 64], link)
    with pytest.raises(KeyMaterialError):
        LandingZone(tmp_path, link)


@pytest.mark.parametrize("keys", [None, b"raw bytes", "a string"])
def test_no_key_is_an_error_never_an_unkeyed_hash(keys: object) -> None:
    with pytest.raises(KeyMaterialError) as err:
        tokenize_ids(["S1"], keys, agency="fps", id_type="student")  # type: ignore[arg-type]
    assert err.value.reason == "missing"


def test_unknown_purpose_and_version(keyset: KeySet) -> None:
    with pytest.raises(KeyMaterialError) as err:
        keyset.purpose_key("encryption")  # type: ignore[arg-type]
    assert err.value.reason == "wrong_purpose"
    with pytest.raises(KeyMaterialError) as err:
        keyset.purpose_key("linkage", 9)
    assert err.value.reason == "unknown_version"
    with pytest.raises(KeyMaterialError):
        resolve_key(keyset.purpose_key("linkage"), "linkage", version=2)


def test_keys_cannot_be_pickled(keyset: KeySet) -> None:
    """So they can never end up in Dagster's IO manager storage or a run log."""
    with pytest.raises(TypeError):
        pickle.dumps(keyset)
    with pytest.raises(TypeError):
        pickle.dumps(keyset.purpose_key("pseudonym"))


def test_a_forged_purpose_key_is_refused() -> None:
    with pytest.raises(KeyMaterialError):
        PurposeKey("linkage", 1, "000000000000", bytes(32))
    with pytest.raises(KeyMaterialError):
        PurposeKey("linkage", 1, _crypto.key_fingerprint(bytes(16)), bytes(16))


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        base64.b64encode(b"too short").decode(),
        "1:" + base64.b64encode(bytes(32)).decode() + ",1:" + base64.b64encode(bytes(32)).decode(),
        "1:" + base64.b64encode(bytes(32)).decode() + ",oops",
        "1:" + base64.b64encode(bytes(32)).decode() + ",signing=1",
        "1:" + base64.b64encode(bytes(32)).decode() + ",linkage=4",
    ],
)
def test_malformed_environment_key_errors_do_not_echo_it(value: str) -> None:
    with pytest.raises(KeyMaterialError) as err:
        load_keyset(None, env={ENV_VAR: value})
    for part in value.replace(",", ":").split(":"):
        if len(part) > 8:
            assert part not in str(err.value)


def test_damaged_key_files(tmp_path: Path) -> None:
    path = tmp_path / "k"
    init_keyset(path)
    for content in [b"{not json", b'{"format": "something-else"}', b'{"format": "c2c-keyset", "format_version": 1}']:
        path.write_bytes(content)
        os.chmod(path, 0o600)
        with pytest.raises(KeyMaterialError) as err:
            load_keyset(path, env={})
        assert err.value.reason == "malformed"
    with pytest.raises(KeyMaterialError):
        load_keyset(tmp_path, env={})  # a folder is not a key file


def test_a_symlink_to_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "real.key"
    init_keyset(target)
    os.chmod(target, 0o644)
    link = tmp_path / "link.key"
    link.symlink_to(target)
    with pytest.raises(KeyMaterialError) as err:
        load_keyset(link, env={})
    assert err.value.reason == "insecure_permissions"


def test_a_keyset_file_is_not_a_linkage_key_file(keyset: KeySet) -> None:
    with pytest.raises(KeyMaterialError):
        load_linkage_key(keyset.path)  # type: ignore[arg-type]


def test_unknown_columns_are_refused_by_name_only(students: pd.DataFrame, contracts, keyset: KeySet) -> None:  # noqa: ANN001
    frame = students.assign(mother_maiden_name=SECRET_LOOKING_ID)
    with pytest.raises(IdentifierDataError) as err:
        pseudonymize(frame, contracts[("fps", "students")], keyset)
    assert err.value.reason == "unknown_column"
    assert "mother_maiden_name" in str(err.value) and SECRET_LOOKING_ID not in str(err.value)


def test_missing_id_column_is_refused(students: pd.DataFrame, contracts, keyset: KeySet) -> None:  # noqa: ANN001
    with pytest.raises(IdentifierDataError) as err:
        pseudonymize(students.drop(columns=["student_id"]), contracts[("fps", "students")], keyset)
    assert err.value.reason == "missing_column"
    with pytest.raises(IdentifierDataError):
        encode_for_linkage(students.drop(columns=["student_id"]), contracts[("fps", "students")], keyset)


def test_bad_tokens_are_reported_by_row_position_only(keyset: KeySet) -> None:
    tokens = ["a" * 64, SECRET_LOOKING_ID, None, "b" * 64, SECRET_LOOKING_ID + "2"]
    with pytest.raises(IdentifierDataError) as err:
        source_keys_from_tokens(tokens, keyset)
    msg = str(err.value)
    assert "1, 4" in msg and SECRET_LOOKING_ID not in msg


def test_mixed_type_columns_name_the_column_not_the_values(keyset: KeySet) -> None:
    values = pd.Series([SECRET_LOOKING_ID, 3.5, b"bytes"], dtype=object)
    with pytest.raises(IdentifierDataError) as err:
        tokenize_ids(values, keyset, agency="fps", id_type="student", column="student_id")
    assert "student_id" in str(err.value) and SECRET_LOOKING_ID not in str(err.value)


@pytest.mark.parametrize(("agency", "id_type"), [("fps|x", "student"), ("FPS", "student"), ("fps", "student|id"), ("", "x")])
def test_agency_and_id_type_cannot_forge_the_message_layout(keyset: KeySet, agency: str, id_type: str) -> None:
    with pytest.raises(IdentifierDataError):
        tokenize_ids(["S1"], keyset, agency=agency, id_type=id_type)


@pytest.mark.parametrize(
    ("agency", "name"),
    [("fps", "../../etc/passwd"), ("fps", "a/b.csv"), ("../fps", "a.csv"), ("fps", ".hidden"), ("fps", ""), ("FPS", "a.csv")],
)
def test_landing_names_cannot_escape_the_zone(keyset: KeySet, tmp_path: Path, agency: str, name: str) -> None:
    root = tmp_path / "landing"
    with pytest.raises(LandingError) as err:
        LandingZone(root, keyset).put(agency, name, b"x")
    assert err.value.reason == "bad_name"
    assert not root.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


def test_dice_sql_takes_column_references_only() -> None:
    assert "l.name_bloom" in dice_sql("l.name_bloom", "r.name_bloom")
    for bad in ["l.name_bloom); DROP TABLE x; --", "'abc'", "a.b.c", "1"]:
        with pytest.raises(ValueError):
            dice_sql(bad, "r.name_bloom")


def test_every_privacy_error_has_a_reason() -> None:
    for cls in (KeyMaterialError, IdentifierDataError, LandingError):
        assert issubclass(cls, PrivacyError)
        assert cls("x", "message").reason == "x"


def test_helper_processes_do_not_inherit_the_master_key(keyset: KeySet, monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc")
    _crypto._helpers.close()
    monkeypatch.setenv(ENV_VAR, base64.b64encode(bytes(32)).decode())
    monkeypatch.setattr(_crypto, "PARALLEL_MIN_VALUES", 2)
    out = pseudonymize_ids(pd.Series(["S1", "S2", "S3"]), keyset, agency="fps", id_type="student")
    assert out["id_token"].notna().all()
    assert _crypto._helpers.procs, "the helper path was not taken"
    for proc in _crypto._helpers.procs:
        env = Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert ENV_VAR.encode() + b"=" not in env
    _crypto._helpers.close()


def test_data_sharing_privacy_modules_do_not_import_dagster() -> None:
    code = (
        "import sys\n"
        "import data_sharing.keys, data_sharing.normalize, data_sharing.pseudonyms, data_sharing.encodings, "
        "data_sharing.landing, data_sharing.errors, data_sharing._crypto\n"
        "bad = sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.') or m.startswith('dagster_'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_dead_helper_falls_back_to_the_same_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper that dies gives the in-process computation of the same HMAC, never a weaker one."""
    monkeypatch.setattr(_crypto, "PARALLEL_MIN_VALUES", 2)
    key = bytes(range(32))
    msgs = [f"m{i}".encode() for i in range(10)]
    want = _crypto.hmac_sha256_batch(key, msgs, workers=0)
    _crypto._helpers.close()
    _crypto._helpers._start(1)
    _crypto._helpers.procs[0].kill()
    _crypto._helpers.procs[0].wait()
    try:
        assert _crypto.hmac_sha256_batch(key, msgs, workers=1) == want
        assert _crypto._helpers.broken
    finally:
        _crypto._helpers.broken = False
        _crypto._helpers.close()
