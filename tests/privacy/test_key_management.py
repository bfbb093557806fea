"""Key sets: creation, loading from a file or C2C_MASTER_KEY, purpose keys, rotation, the linkage key export."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest

from data_sharing import _crypto
from data_sharing.errors import KeyMaterialError
from data_sharing.keys import (
    ENV_VAR,
    HKDF_SALT,
    PURPOSES,
    KeySet,
    export_linkage_key,
    generate_master_key_b64,
    init_keyset,
    load_keyset,
    load_linkage_key,
)

from privacy_support import fixed_bytes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_an_owner_only_file_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    ks = init_keyset(path, randbytes=fixed_bytes(7))
    assert _mode(path) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "c2c-keyset" and doc["format_version"] == 1
    assert set(doc["masters"]) == {"1"} and base64.b64decode(doc["masters"]["1"]["secret_b64"]) == fixed_bytes(7)(32)
    assert doc["purposes"]["linkage"] == {"current": 1, "versions": [1]}
    again = load_keyset(path, env={})
    for p in PURPOSES:
        assert again.purpose_key(p) == ks.purpose_key(p)
        assert again.purpose_key(p).secret == ks.purpose_key(p).secret


def test_purpose_keys_are_hkdf_of_the_master_and_distinct(keyset: KeySet) -> None:
    master = fixed_bytes(1)(32)
    secrets = set()
    for p in PURPOSES:
        key = keyset.purpose_key(p)
        assert key.version == 1
        assert key.secret == _crypto.hkdf_sha256(master, salt=HKDF_SALT, info=b"c2c/purpose/" + p.encode(), length=32)
        assert key.key_id == hmac.new(key.secret, b"c2c key id", hashlib.sha256).hexdigest()[:12]
        assert key.label == f"{p}/v1/{key.key_id}"
        secrets.add(key.secret)
    assert len(secrets) == len(PURPOSES) == 5 and master not in secrets


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    init_keyset(path)
    before = path.read_bytes()
    with pytest.raises(KeyMaterialError) as err:
        init_keyset(path)
    assert err.value.reason == "exists"
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660, 0o700 | 0o004])
def test_a_key_file_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    init_keyset(path)
    os.chmod(path, mode)
    with pytest.raises(KeyMaterialError) as err:
        load_keyset(path, env={})
    assert err.value.reason == "insecure_permissions"
    assert "chmod 600" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    init_keyset(path)
    os.chmod(path, mode)
    assert load_keyset(path, env={}).versions == (1,)


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError) as err:
        load_keyset(None, env={})
    assert err.value.reason == "missing"
    assert ENV_VAR in str(err.value) and "init_keyset" in str(err.value)
    with pytest.raises(KeyMaterialError) as err:
        load_keyset(tmp_path / "nope.key", env={})
    assert err.value.reason == "missing"


def test_master_key_from_the_environment() -> None:
    secret = bytes(range(100, 132))
    ks = load_keyset(None, env={ENV_VAR: base64.b64encode(secret).decode()})
    assert ks.versions == (1,) and ks.path is None and ks.source == f"env:{ENV_VAR}"
    assert ks.purpose_key("pseudonym").secret == _crypto.hkdf_sha256(
        secret, salt=HKDF_SALT, info=b"c2c/purpose/pseudonym", length=32
    )
    assert "b64" not in repr(ks) and base64.b64encode(secret).decode() not in repr(ks)


def test_environment_key_equals_the_same_secret_in_a_file(tmp_path: Path) -> None:
    file_ks = init_keyset(tmp_path / "k", randbytes=fixed_bytes(3))
    env_ks = load_keyset(None, env={ENV_VAR: base64.b64encode(fixed_bytes(3)(32)).decode()})
    assert env_ks.key_labels() == file_ks.key_labels()


def test_environment_with_versions_and_a_pin() -> None:
    v1, v2 = base64.b64encode(bytes(32)).decode(), base64.b64encode(bytes([9]) * 32).decode()
    ks = load_keyset(None, env={ENV_VAR: f"1:{v1}, 2:{v2}, linkage=1"})
    assert ks.current_version("linkage") == 1 and ks.current_version("pseudonym") == 2
    assert ks.purpose_versions("pseudonym") == (1, 2)
    assert ks.purpose_key("pseudonym", 1).key_id != ks.purpose_key("pseudonym", 2).key_id


def test_key_file_named_by_environment(tmp_path: Path) -> None:
    path = tmp_path / "m.key"
    ks = init_keyset(path)
    assert load_keyset(None, env={"C2C_KEY_FILE": str(path)}).key_labels() == ks.key_labels()


def test_variable_and_existing_file_together_are_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "m.key"
    init_keyset(path)
    env = {ENV_VAR: generate_master_key_b64(), "C2C_KEY_FILE": str(path)}
    with pytest.raises(KeyMaterialError) as err:
        load_keyset(None, env=env)
    assert err.value.reason == "ambiguous"
    # The settings always name a key file; when it does not exist, the variable is used.
    env["C2C_KEY_FILE"] = str(tmp_path / "absent.key")
    assert load_keyset(None, env=env).source == f"env:{ENV_VAR}"


def test_rotation_keeps_old_versions_and_changes_key_ids(keyset: KeySet) -> None:
    before = {p: keyset.purpose_key(p) for p in PURPOSES}
    new = keyset.rotate(randbytes=fixed_bytes(50))
    assert new == 2 and keyset.versions == (1, 2)
    assert _mode(keyset.path) == 0o600  # type: ignore[arg-type]
    reloaded = load_keyset(keyset.path, env={})
    for p in PURPOSES:
        assert reloaded.current_version(p) == 2
        assert reloaded.purpose_key(p, 1) == before[p]  # old versions still derivable
        assert reloaded.purpose_key(p).key_id != before[p].key_id


def test_pseudonym_rotation_leaves_the_linkage_key_alone(keyset: KeySet) -> None:
    linkage_before = keyset.purpose_key("linkage")
    keyset.rotate({"pseudonym", "landing"})  # type: ignore[arg-type]
    reloaded = load_keyset(keyset.path, env={})
    assert reloaded.purpose_key("linkage") == linkage_before
    assert reloaded.purpose_versions("linkage") == (1,)
    assert reloaded.current_version("pseudonym") == 2
    with pytest.raises(KeyMaterialError) as err:
        reloaded.purpose_key("linkage", 2)  # never issued
    assert err.value.reason == "unknown_version"
    # Rotating linkage later takes the next master version.
    assert reloaded.rotate(["linkage"]) == 3
    assert load_keyset(keyset.path, env={}).purpose_versions("linkage") == (1, 3)


def test_rotation_refuses_a_stale_view(keyset: KeySet) -> None:
    stale = load_keyset(keyset.path, env={})
    keyset.rotate()
    with pytest.raises(KeyMaterialError):
        stale.rotate()


def test_environment_keys_cannot_rotate_here() -> None:
    ks = load_keyset(None, env={ENV_VAR: generate_master_key_b64()})
    with pytest.raises(KeyMaterialError) as err:
        ks.rotate()
    assert err.value.reason == "read_only"


def test_linkage_key_export_and_load(keyset: KeySet, tmp_path: Path) -> None:
    out = tmp_path / "agency" / "fps-linkage.key"
    exported = export_linkage_key(keyset, out)
    assert _mode(out) == 0o600
    doc = json.loads(out.read_text())
    assert doc["purpose"] == "linkage" and doc["key_id"] == exported.key_id
    # Only the linkage key leaves: neither the master nor another purpose key is in the file.
    text = out.read_text()
    for secret in [fixed_bytes(1)(32), keyset.purpose_key("pseudonym").secret, keyset.purpose_key("landing").secret]:
        assert base64.b64encode(secret).decode() not in text
    loaded = load_linkage_key(out)
    assert loaded == keyset.purpose_key("linkage") and loaded.secret == keyset.purpose_key("linkage").secret
    with pytest.raises(KeyMaterialError):
        export_linkage_key(keyset, out)  # no silent overwrite
    os.chmod(out, 0o644)
    with pytest.raises(KeyMaterialError) as err:
        load_linkage_key(out)
    assert err.value.reason == "insecure_permissions"


def test_an_altered_linkage_key_file_is_refused(keyset: KeySet, tmp_path: Path) -> None:
    out = tmp_path / "l.key"
    export_linkage_key(keyset, out)
    doc = json.loads(out.read_text())
    doc["secret_b64"] = base64.b64encode(bytes(32)).decode()
    out.write_text(json.dumps(doc))
    os.chmod(out, 0o600)
    with pytest.raises(KeyMaterialError) as err:
        load_linkage_key(out)
    assert err.value.reason == "malformed"


def test_describe_and_repr_hold_no_secret(keyset: KeySet) -> None:
    text = repr(keyset) + json.dumps(keyset.describe()) + repr(keyset.purpose_key("landing"))
    for p in PURPOSES:
        key = keyset.purpose_key(p)
        assert key.secret.hex() not in text and base64.b64encode(key.secret).decode() not in text
        assert key.key_id in text
    assert base64.b64encode(fixed_bytes(1)(32)).decode() not in text
