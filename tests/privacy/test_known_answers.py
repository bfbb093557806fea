"""Known-answer tests: HMAC-SHA256 (RFC 4231), HKDF-SHA256 (RFC 5869), AES-256-GCM (GCM spec).

The vectors are data files in ``tests/vectors/``; one test is generated per vector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from data_sharing import _crypto

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _cases(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))["cases"]


HMAC_CASES = _cases("rfc4231_hmac_sha256.json")
HKDF_CASES = _cases("rfc5869_hkdf_sha256.json")
GCM_CASES = _cases("gcm_aes256.json")


def _expected(case: dict[str, Any], digest: bytes) -> tuple[str, str]:
    bits = case.get("truncate_bits", 256)
    return digest[: bits // 8].hex(), case["hmac_sha256_hex"]


def test_vector_files_are_complete() -> None:
    assert [c["id"] for c in HMAC_CASES] == [f"rfc4231-tc{i}" for i in range(1, 8)]
    assert [c["id"] for c in HKDF_CASES] == ["rfc5869-a1", "rfc5869-a2", "rfc5869-a3"]


@pytest.mark.parametrize("case", HMAC_CASES, ids=lambda c: c["id"])
def test_hmac_sha256_rfc4231(case: dict[str, Any]) -> None:
    key, data = bytes.fromhex(case["key_hex"]), bytes.fromhex(case["data_hex"])
    got, want = _expected(case, _crypto.hmac_sha256(key, data))
    assert got == want


@pytest.mark.parametrize("case", HMAC_CASES, ids=lambda c: c["id"])
@pytest.mark.parametrize("split", [0, 1, 7])
def test_batch_hmac_rfc4231(case: dict[str, Any], split: int) -> None:
    """The batch path (keyed instance + prefix + copy per value) is the same HMAC, wherever the message is cut."""
    key, data = bytes.fromhex(case["key_hex"]), bytes.fromhex(case["data_hex"])
    split = min(split, len(data))
    out = _crypto.hmac_sha256_batch(key, [data[split:]] * 3, prefix=data[:split], workers=0)
    assert len(out) == 3 * 32
    for i in range(3):
        got, want = _expected(case, out[32 * i : 32 * (i + 1)])
        assert got == want


def test_batch_hmac_rfc4231_through_a_helper_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper-process path gives the RFC answers too (mixed batch, order kept)."""
    monkeypatch.setattr(_crypto, "PARALLEL_MIN_VALUES", 2)
    for case in HMAC_CASES:
        key, data = bytes.fromhex(case["key_hex"]), bytes.fromhex(case["data_hex"])
        messages = [data, b"other", data, data]
        out = _crypto.hmac_sha256_batch(key, _crypto.Packed.from_list(messages), workers=1)
        for i in (0, 2, 3):
            got, want = _expected(case, out[32 * i : 32 * (i + 1)])
            assert got == want
        assert out[32:64] == _crypto.hmac_sha256(key, b"other")
    assert not _crypto._helpers.broken


@pytest.mark.parametrize("case", HKDF_CASES, ids=lambda c: c["id"])
def test_hkdf_sha256_rfc5869(case: dict[str, Any]) -> None:
    salt = bytes.fromhex(case["salt_hex"]) or None
    okm = _crypto.hkdf_sha256(
        bytes.fromhex(case["ikm_hex"]), salt=salt, info=bytes.fromhex(case["info_hex"]), length=case["length"]
    )
    assert okm.hex() == case["okm_hex"]
    # The extract step alone is HMAC(salt, IKM): the published PRK.
    prk = _crypto.hmac_sha256(salt or bytes(32), bytes.fromhex(case["ikm_hex"]))
    assert prk.hex() == case["prk_hex"]


@pytest.mark.parametrize("case", GCM_CASES, ids=lambda c: c["id"])
def test_aes256_gcm_known_answer(case: dict[str, Any]) -> None:
    key, iv = bytes.fromhex(case["key_hex"]), bytes.fromhex(case["iv_hex"])
    pt, aad = bytes.fromhex(case["plaintext_hex"]), bytes.fromhex(case["aad_hex"])
    out = _crypto.aesgcm_encrypt(key, iv, pt, aad)
    assert out.hex() == case["ciphertext_hex"] + case["tag_hex"]
    assert _crypto.aesgcm_decrypt(key, iv, out, aad) == pt


def test_key_id_is_the_documented_fingerprint() -> None:
    key = bytes(range(32))
    assert _crypto.key_fingerprint(key) == _crypto.hmac_sha256(key, b"c2c key id").hex()[:12]
