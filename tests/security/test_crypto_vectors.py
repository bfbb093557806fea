"""Known answers for the hub-only layer and the audit key (issue 20 items 9 and 11), as data files in
``tests/vectors/``: AES-256 single blocks from FIPS 197 / SP 800-38A, and c2c's own derivations, each
recomputed here with the standard library's HMAC where it can be (HKDF, the permutation's ranks)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from data_sharing import _crypto
from data_sharing.encodings import hub_encode
from data_sharing.keys import HKDF_SALT, PurposeKey

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
AES = json.loads((VECTORS / "aes256_block.json").read_text())["cases"]
HUB = json.loads((VECTORS / "c2c_hub_layer.json").read_text())


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:  # RFC 5869 by hand, one block
    prk = hmac.new(salt or b"\x00" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


@pytest.mark.parametrize("case", AES, ids=[c["id"] for c in AES])
def test_aes256_blocks(case: dict) -> None:
    key, plain, cipher = (bytes.fromhex(case[f]) for f in ("key_hex", "plaintext_hex", "ciphertext_hex"))
    assert _crypto.aes256_prp(key, plain) == cipher
    assert _crypto.aes256_prp(key, cipher, inverse=True) == plain


@pytest.mark.parametrize("purpose", ["linkage_hub", "audit"])
def test_purpose_keys(purpose: str) -> None:
    master = bytes.fromhex(HUB["master_hex"])
    expected = bytes.fromhex(HUB[purpose]["key_hex"])
    assert _hkdf(master, HKDF_SALT, b"c2c/purpose/" + purpose.encode()) == expected
    key = PurposeKey.derive(master, purpose, 1)  # type: ignore[arg-type]
    assert key.secret == expected and key.key_id == HUB[purpose]["key_id"]


def test_hub_tokens_and_bloom_permutation() -> None:
    hub = PurposeKey.derive(bytes.fromhex(HUB["master_hex"]), "linkage_hub", 1)
    token_key = bytes.fromhex(HUB["token_key_hex"])
    assert _hkdf(hub.secret, b"", b"c2c/hub/tokens/v1") == token_key
    frame = pd.DataFrame({"x_hash": pd.Series([t["linkage_hex"] for t in HUB["tokens"]], dtype=pd.ArrowDtype(pa.string()))})
    assert hub_encode(frame, hub).x_hash.tolist() == [t["hub_hex"] for t in HUB["tokens"]]
    b = HUB["bloom"]
    label = f"c2c/hub/bloom/v1/{b['filter']}/{b['bits']}".encode()
    ranks = [hmac.new(hub.secret, label + i.to_bytes(4, "big"), hashlib.sha256).digest()[:8] for i in range(b["bits"])]
    by_hand = sorted(range(b["bits"]), key=ranks.__getitem__)
    perm = _crypto.keyed_permutation(hub.secret, label, b["bits"]).tolist()
    assert perm == by_hand and perm[:8] == b["first_positions"] and sorted(perm) == list(range(b["bits"]))
    # bit p of a filter moves to perm[p]: a filter with only bit 0 set has only bit perm[0] set after
    one = bytes([0x80]) + bytes(b["bits"] // 8 - 1)
    moved = hub_encode(pd.DataFrame({b["filter"]: pd.Series([one], dtype=pd.ArrowDtype(pa.binary()))}), hub)[b["filter"]][0]
    assert int.from_bytes(moved, "big") == 1 << (b["bits"] - 1 - perm[0])
