"""The encrypted landing zone: AES-GCM at rest, tamper detection, retention with evidence."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from schemas.agreements import load_agreements
from data_sharing.errors import LandingError
from data_sharing.keys import KeySet
from data_sharing.landing import MAGIC, LandingZone, RetentionRule, destroy_expired, read_header, retention_rules
from privacy_support import FIXED_NOW, fixed_bytes

CSV = b"student_id,first_name\nS00001,Jos\xc3\xa9\nS00002,Zo\xc3\xab\n"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def zone(tmp_path: Path, keyset: KeySet) -> LandingZone:
    return LandingZone(tmp_path / "landing", keyset, clock=Clock(FIXED_NOW), randbytes=fixed_bytes(200))


def _rewrite_header(path: Path, change: dict) -> None:
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[4:8], "big")
    header = json.loads(raw[8 : 8 + hlen])
    header.update(change)
    new = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(MAGIC + len(new).to_bytes(4, "big") + new + raw[8 + hlen :])


def test_round_trip_and_what_is_on_disk(zone: LandingZone, keyset: KeySet) -> None:
    landed = zone.put("fps", "students_20260915.csv", CSV)
    assert landed.path.parent == zone.root / "fps"
    assert stat.S_IMODE(landed.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(landed.path.parent.stat().st_mode) == 0o700
    raw = landed.path.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"S00001" not in raw and "José".encode() not in raw
    assert landed.plaintext_sha256 == hashlib.sha256(CSV).hexdigest() and landed.size == len(CSV)
    assert landed.key_version == 1 and landed.key_id == keyset.purpose_key("landing").key_id
    assert landed.written_at == FIXED_NOW
    assert zone.read(landed) == CSV
    assert zone.read(landed.path, agency="fps", name="students_20260915.csv") == CSV
    header = read_header(landed.path)
    assert header == landed


def test_outputs_pin_with_injected_clock_and_randomness(tmp_path: Path, keyset: KeySet) -> None:
    a = LandingZone(tmp_path / "a", keyset, clock=Clock(FIXED_NOW), randbytes=fixed_bytes(9))
    b = LandingZone(tmp_path / "b", keyset, clock=Clock(FIXED_NOW), randbytes=fixed_bytes(9))
    assert a.put("fps", "x.csv", CSV).path.read_bytes() == b.put("fps", "x.csv", CSV).path.read_bytes()


def test_random_nonces_differ(tmp_path: Path, keyset: KeySet) -> None:
    a = LandingZone(tmp_path / "a", keyset).put("fps", "x.csv", CSV).path.read_bytes()
    b = LandingZone(tmp_path / "b", keyset).put("fps", "x.csv", CSV).path.read_bytes()
    assert a != b


def test_same_content_lands_once(zone: LandingZone) -> None:
    first = zone.put("fps", "students_20260915.csv", CSV)
    again = zone.put("fps", "students_20260915.csv", CSV)
    assert again == first and len(list(zone.files())) == 1
    other = zone.put("fps", "students_20260915.csv", CSV + b"S00003,Ana\n")  # a corrected re-send
    assert other.path != first.path and len(list(zone.files("fps"))) == 2


def test_flipping_a_ciphertext_bit_is_detected(zone: LandingZone) -> None:
    landed = zone.put("fps", "s.csv", CSV)
    raw = bytearray(landed.path.read_bytes())
    raw[-20] ^= 0x01
    landed.path.write_bytes(bytes(raw))
    with pytest.raises(LandingError) as err:
        zone.read(landed.path)
    assert err.value.reason == "tampered"


def test_flipping_a_tag_bit_is_detected(zone: LandingZone) -> None:
    landed = zone.put("fps", "s.csv", CSV)
    raw = bytearray(landed.path.read_bytes())
    raw[-1] ^= 0x80
    landed.path.write_bytes(bytes(raw))
    with pytest.raises(LandingError) as err:
        zone.read(landed.path)
    assert err.value.reason == "tampered"


@pytest.mark.parametrize(
    "change",
    [{"name": "students_20260916.csv"}, {"agency": "fhd"}, {"written_at": "2020-01-01T00:00:00+00:00"}, {"plaintext_size": 1}],
)
def test_changing_the_associated_data_is_detected(zone: LandingZone, change: dict) -> None:
    landed = zone.put("fps", "students_20260915.csv", CSV)
    _rewrite_header(landed.path, change)
    with pytest.raises(LandingError) as err:
        zone.read(landed.path)  # no expectations given: authentication alone catches it
    assert err.value.reason == "tampered"


def test_a_file_read_under_another_name_is_refused(zone: LandingZone) -> None:
    landed = zone.put("fps", "students_20260915.csv", CSV)
    with pytest.raises(LandingError) as err:
        zone.read(landed.path, agency="fps", name="students_20260916.csv")
    assert err.value.reason == "binding_mismatch"
    moved = landed.path.with_name("renamed.c2cland")
    os.rename(landed.path, moved)
    with pytest.raises(LandingError):
        zone.read(moved, agency="dhs")


def test_wrong_key_is_refused(zone: LandingZone, other_keyset: KeySet, tmp_path: Path) -> None:
    landed = zone.put("fps", "s.csv", CSV)
    stranger = LandingZone(zone.root, other_keyset)
    with pytest.raises(LandingError) as err:
        stranger.read(landed.path)
    assert err.value.reason == "key_mismatch"
    # Even with the key id forged to match, decryption fails.
    _rewrite_header(landed.path, {"key_id": other_keyset.purpose_key("landing").key_id})
    with pytest.raises(LandingError) as err:
        stranger.read(landed.path)
    assert err.value.reason == "tampered"


def test_files_stay_readable_after_landing_key_rotation(zone: LandingZone, keyset: KeySet) -> None:
    old = zone.put("fps", "a.csv", CSV)
    keyset.rotate(["landing"])
    new = zone.put("fps", "b.csv", CSV + b"x")
    assert (old.key_version, new.key_version) == (1, 2) and old.key_id != new.key_id
    assert zone.read(old) == CSV and zone.read(new) == CSV + b"x"


def test_not_a_landing_file(zone: LandingZone, tmp_path: Path) -> None:
    bogus = tmp_path / "plain.csv"
    bogus.write_bytes(CSV)
    with pytest.raises(LandingError) as err:
        zone.read(bogus)
    assert err.value.reason == "malformed"
    with pytest.raises(LandingError) as err:
        zone.read(tmp_path / "gone.c2cland")
    assert err.value.reason == "not_found"


def test_retention_destroys_old_files_with_evidence(tmp_path: Path, keyset: KeySet) -> None:
    clock = Clock(FIXED_NOW)
    zone = LandingZone(tmp_path / "landing", keyset, clock=clock)
    old_fps = zone.put("fps", "students_20260901.csv", CSV)
    old_fhd = zone.put("fhd", "patients_20260901.csv", CSV + b"1")
    clock.now = FIXED_NOW + dt.timedelta(days=5)
    recent = zone.put("fps", "students_20260920.csv", CSV + b"2")
    clock.now = FIXED_NOW + dt.timedelta(days=7)  # exactly 7 days after the first two
    rules = {"fps": RetentionRule(7, "MOU-FPS v2"), "fhd": RetentionRule(30, "MOU-FHD v1")}
    evidence = zone.destroy_expired(rules)
    assert [e.file for e in evidence] == [str(old_fps.path.relative_to(zone.root))]
    ev = evidence[0]
    assert ev.agency == "fps" and ev.name == "students_20260901.csv"
    assert ev.plaintext_sha256 == hashlib.sha256(CSV).hexdigest() and ev.size == len(CSV)
    assert ev.written_at == FIXED_NOW.isoformat() and ev.destroyed_at == clock.now.isoformat()
    assert ev.retention_days == 7 and ev.rule == "MOU-FPS v2: raw_retention_days=7"
    assert not old_fps.path.exists() and old_fhd.path.exists() and recent.path.exists()
    record = ev.as_record()
    assert json.loads(json.dumps(record)) == record  # goes to the audit log as is
    assert "S00001" not in json.dumps(record)
    # Running again destroys nothing more.
    assert zone.destroy_expired(rules) == []


def test_retention_from_the_real_mous_and_default_for_unknown_agencies(tmp_path: Path, keyset: KeySet) -> None:
    clock = Clock(FIXED_NOW)
    zone = LandingZone(tmp_path / "landing", keyset, clock=clock)
    zone.put("fps", "students_20260901.csv", CSV)
    zone.put("xyz", "legacy_20260901.csv", CSV)
    rules = retention_rules(load_agreements())
    assert rules["fps"].days == 7 and rules["fps"].source.startswith("MOU-FPS")
    clock.now = FIXED_NOW + dt.timedelta(days=6, hours=23)
    assert destroy_expired(zone.root, rules, now=clock) == []
    clock.now = FIXED_NOW + dt.timedelta(days=7)
    evidence = destroy_expired(zone.root, rules, now=clock)
    assert sorted(e.agency for e in evidence) == ["fps", "xyz"]
    assert next(e for e in evidence if e.agency == "xyz").rule.startswith("default")


def test_retention_destroys_a_damaged_file_by_its_age(tmp_path: Path, keyset: KeySet) -> None:
    zone = LandingZone(tmp_path / "landing", keyset, clock=Clock(FIXED_NOW))
    landed = zone.put("fps", "s.csv", CSV)
    landed.path.write_bytes(b"garbage")
    old = (FIXED_NOW - dt.timedelta(days=30)).timestamp()
    os.utime(landed.path, (old, old))
    evidence = destroy_expired(zone.root, {"fps": 7}, now=Clock(FIXED_NOW))
    assert len(evidence) == 1 and evidence[0].note and evidence[0].plaintext_sha256 is None
    assert not landed.path.exists()


def test_zero_day_retention_destroys_at_the_next_run(tmp_path: Path, keyset: KeySet) -> None:
    zone = LandingZone(tmp_path / "landing", keyset, clock=Clock(FIXED_NOW))
    zone.put("dhs", "clients_20260915.csv", CSV)
    assert len(zone.destroy_expired({"dhs": RetentionRule(0, "MOU-DHS v1")})) == 1
