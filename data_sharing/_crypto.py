"""Low-level primitives of the privacy layer. Private: use the recipes in ``keys``, ``pseudonyms``,
``encodings`` and ``landing`` instead.

Everything here is a thin wrapper over ``cryptography`` (OpenSSL): HMAC-SHA256, HKDF-SHA256 and
AES-256-GCM. Nothing is implemented by hand; the batch HMAC only arranges many messages around one keyed
``hmac.HMAC`` instance (``.copy()`` per value, measured ~1.5M values/s per core) and, for large batches,
shares the work with helper processes.

Helper processes (``python -m data_sharing._crypto``) are started on first use for batches of at least
:data:`PARALLEL_MIN_VALUES` values and kept for the life of the process. They receive the key and the
packed messages over a pipe and answer with packed 32-byte digests: nothing is pickled, nothing is
logged, their stderr is discarded, and ``C2C_MASTER_KEY`` is removed from their environment. If a
helper cannot start or dies, the same computation runs in-process (a speed fallback, never a weaker
hash). :func:`configure_workers` sets how many (``C2C_HASH_WORKERS``, read by ``pipelines.settings``; 0 disables them).
"""

from __future__ import annotations

import atexit
import binascii
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DIGEST_SIZE = 32
KEY_ID_MESSAGE = b"c2c key id"
KEY_ID_HEX_CHARS = 12
GCM_NONCE_SIZE = 12
PARALLEL_MIN_VALUES = 50_000

# ----------------------------------------------------------------------------------------------
# Single-value primitives
# ----------------------------------------------------------------------------------------------


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) of one message."""
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(message)
    return h.finalize()


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) extract-and-expand."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def key_fingerprint(key: bytes) -> str:
    """A key's public id: the first 12 hex characters of HMAC(key, "c2c key id"). Reveals nothing of the key."""
    return hmac_sha256(key, KEY_ID_MESSAGE).hex()[:KEY_ID_HEX_CHARS]


def aesgcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-GCM encryption; returns ciphertext || 16-byte tag."""
    return AESGCM(key).encrypt(nonce, plaintext, associated_data)


def aesgcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
    """AES-GCM decryption; raises ``cryptography.exceptions.InvalidTag`` when anything was altered."""
    return AESGCM(key).decrypt(nonce, ciphertext, associated_data)


def aes256_prp(key: bytes, blocks: bytes, *, inverse: bool = False) -> bytes:
    """AES-256 applied to each 16-byte block on its own (a keyed pseudorandom permutation of 128-bit
    values; ``inverse`` undoes it). Deterministic by design: it re-keys tokens that are already
    pseudorandom and unique per value, so equal tokens must stay equal. Not for encrypting data."""
    if len(key) != 32 or len(blocks) % 16:
        raise ValueError("aes256_prp takes a 32-byte key and whole 16-byte blocks")
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # one block per value: a PRP, not a data cipher
    ctx = cipher.decryptor() if inverse else cipher.encryptor()
    return ctx.update(blocks) + ctx.finalize()


def keyed_permutation(key: bytes, label: bytes, size: int) -> np.ndarray:
    """A permutation of ``range(size)`` chosen by ``key``: positions sorted by HMAC(key, label | i)."""
    base = hmac.HMAC(key, hashes.SHA256())
    base.update(label)
    ranks = []
    for i in range(size):
        h = base.copy()
        h.update(i.to_bytes(4, "big"))
        ranks.append(h.finalize()[:8])
    order = sorted(range(size), key=ranks.__getitem__)
    return np.asarray(order, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Batch HMAC over packed messages
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    """``n`` messages as one byte string and ``n + 1`` int64 offsets (Arrow's binary layout)."""

    data: bytes
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_list(cls, messages: Sequence[bytes]) -> Packed:
        lengths = np.fromiter((len(m) for m in messages), dtype=np.int64, count=len(messages))
        offsets = np.zeros(len(messages) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(b"".join(messages), offsets)

    @classmethod
    def from_arrow(cls, arr: pa.Array) -> Packed:
        """Pack a string/binary Arrow array without nulls (zero-copy of the offsets where possible)."""
        if arr.null_count:
            raise ValueError("packed messages cannot hold nulls; filter them first")
        off_type: type[np.signedinteger[Any]]
        if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
            off_type = np.int64
        elif pa.types.is_string(arr.type) or pa.types.is_binary(arr.type):
            off_type = np.int32
        else:
            raise TypeError(f"cannot pack an Arrow array of type {arr.type}")
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], dtype=off_type)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)
        start, end = (int(offsets[0]), int(offsets[-1])) if len(offsets) else (0, 0)
        data = bufs[2].to_pybytes()[start:end] if bufs[2] is not None and end > start else b""
        return cls(data, offsets - start)

    def slice(self, start: int, stop: int) -> Packed:
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        return Packed(self.data[a:b], self.offsets[start : stop + 1] - a)

    def to_list(self) -> list[bytes]:
        n = len(self)
        arr = pa.Array.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(self.offsets.astype(np.int64)), pa.py_buffer(self.data)]
        )
        return arr.to_pylist()


def _hmac_serial(key: bytes, prefix: bytes, messages: list[bytes], chain_key: bytes | None) -> bytes:
    """HMAC(key, prefix || m) for every m; with ``chain_key`` also HMAC(chain_key, first digest).

    Returns the first-layer digests concatenated, followed (chained) by the second-layer digests.
    """
    base = hmac.HMAC(key, hashes.SHA256())
    if prefix:
        base.update(prefix)
    copy = base.copy
    out: list[bytes] = []
    app = out.append
    if chain_key is None:
        for m in messages:
            h = copy()
            h.update(m)
            app(h.finalize())
        return b"".join(out)
    base2 = hmac.HMAC(chain_key, hashes.SHA256())
    copy2 = base2.copy
    out2: list[bytes] = []
    app2 = out2.append
    for m in messages:
        h = copy()
        h.update(m)
        d = h.finalize()
        app(d)
        g = copy2()
        g.update(d)
        app2(g.finalize())
    return b"".join(out) + b"".join(out2)


# Wire format between parent and helper (all integers big-endian):
#   request  = b"C2CH" | key_len u32 | prefix_len u32 | chain_len u32 | n u64 | data_len u64
#              | key | prefix | chain_key | offsets (n+1) x int64 little-endian | data
#   response = b"OK" | payload_len u64 | payload        or   b"ER" | len u64 | reason (ascii, no data)
_REQ = struct.Struct(">4sIIIQQ")
_RESP = struct.Struct(">2sQ")


def _worker_main() -> None:  # pragma: no cover - runs in the helper process
    stdin = sys.stdin.buffer
    stdout = sys.stdout.buffer
    while True:
        head = stdin.read(_REQ.size)
        if len(head) < _REQ.size:
            return
        magic, klen, plen, clen, n, dlen = _REQ.unpack(head)
        try:
            if magic != b"C2CH":
                raise ValueError("bad request")
            key = stdin.read(klen)
            prefix = stdin.read(plen)
            chain = stdin.read(clen) if clen else None
            offsets = np.frombuffer(stdin.read(8 * (n + 1)), dtype="<i8")
            data = stdin.read(dlen)
            payload = _hmac_serial(key, prefix, Packed(data, offsets).to_list(), chain)
            stdout.write(_RESP.pack(b"OK", len(payload)))
            stdout.write(payload)
        except Exception as exc:  # the reason is a type name: never data
            msg = type(exc).__name__.encode("ascii")
            stdout.write(_RESP.pack(b"ER", len(msg)))
            stdout.write(msg)
        stdout.flush()


_configured_workers: int | None = None


def configure_workers(workers: int | None) -> None:
    """The number of helper processes batches use by default in this process (None: cores - 1, at most 7)."""
    global _configured_workers
    _configured_workers = None if workers is None else max(0, int(workers))


def _default_workers() -> int:
    if _configured_workers is not None:
        return _configured_workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(0, min(cores, 8) - 1)


class _Helpers:
    """A few long-lived helper processes speaking the wire format above."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pid = os.getpid()
        self.broken = False

    def _start(self, count: int) -> None:
        env = {k: v for k, v in os.environ.items() if k != "C2C_MASTER_KEY"}
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        while len(self.procs) < count:
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "data_sharing._crypto"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    close_fds=True,
                )
            )

    def close(self) -> None:
        for p in self.procs:
            try:
                if p.stdin:
                    p.stdin.close()
                p.wait(timeout=2)
            except Exception:  # pragma: no cover - best effort at exit
                p.kill()
        self.procs = []

    def run(self, key: bytes, prefix: bytes, packed: Packed, chain_key: bytes | None, workers: int) -> bytes:
        """Split the batch between this process and ``workers`` helpers; the result is in input order."""
        n = len(packed)
        shares = workers + 1
        bounds = [n * i // shares for i in range(shares + 1)]
        self._start(workers)
        procs = self.procs[:workers]
        for p, (a, b) in zip(procs, zip(bounds[1:-1], bounds[2:], strict=True), strict=True):
            part = packed.slice(a, b)
            assert p.stdin is not None
            p.stdin.write(_REQ.pack(b"C2CH", len(key), len(prefix), len(chain_key or b""), b - a, len(part.data)))
            p.stdin.write(key + prefix + (chain_key or b""))
            p.stdin.write(part.offsets.astype("<i8").tobytes())
            p.stdin.write(part.data)
            p.stdin.flush()
        mine = _hmac_serial(key, prefix, packed.slice(0, bounds[1]).to_list(), chain_key)
        parts = [mine]
        for p in procs:
            assert p.stdout is not None
            head = p.stdout.read(_RESP.size)
            if len(head) < _RESP.size:
                raise OSError("hash helper ended")
            status, size = _RESP.unpack(head)
            payload = p.stdout.read(size)
            if status != b"OK" or len(payload) != size:
                raise OSError("hash helper failed")
            parts.append(payload)
        if chain_key is None:
            return b"".join(parts)
        firsts, seconds = [], []
        for digests in parts:
            half = len(digests) // 2
            firsts.append(digests[:half])
            seconds.append(digests[half:])
        return b"".join(firsts) + b"".join(seconds)


_helpers = _Helpers()
atexit.register(_helpers.close)


def _reset_after_fork() -> None:  # pragma: no cover - exercised only under fork
    global _helpers
    _helpers = _Helpers()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def hmac_sha256_batch(
    key: bytes,
    messages: Packed | Sequence[bytes],
    *,
    prefix: bytes = b"",
    chain_key: bytes | None = None,
    workers: int | None = None,
) -> bytes:
    """HMAC-SHA256(key, prefix || m) for every message, as ``n * 32`` bytes in input order.

    With ``chain_key`` the result is ``2 * n * 32`` bytes: the first-layer digests, then
    HMAC-SHA256(chain_key, first-layer digest) for each (the id_token -> source_key layering).
    ``workers`` helper processes share large batches (default: cores - 1; 0 = in-process only).
    """
    n = len(messages)
    if workers is None:
        workers = _default_workers()
    if workers > 0 and n >= PARALLEL_MIN_VALUES and not _helpers.broken:
        packed = messages if isinstance(messages, Packed) else Packed.from_list(messages)
        if _helpers.lock.acquire(blocking=False):
            try:
                return _helpers.run(key, prefix, packed, chain_key, workers)
            except (OSError, ValueError):
                _helpers.broken = True
                _helpers.close()
            finally:
                _helpers.lock.release()
        messages = packed
    msgs = messages.to_list() if isinstance(messages, Packed) else list(messages)
    return _hmac_serial(key, prefix, msgs, chain_key)


# ----------------------------------------------------------------------------------------------
# Digests -> Arrow text columns
# ----------------------------------------------------------------------------------------------


def digests_to_hex_array(digests: bytes, valid: np.ndarray | None = None, *, nbytes: int = DIGEST_SIZE) -> pa.Array:
    """Lower-case hex text of each 32-byte digest (truncated to ``nbytes``), built zero-copy as Arrow.

    ``valid`` (bool, one per output row) places the digests, in order, at the True rows; False rows are
    null. Without it there is one output row per digest.
    """
    if not 1 <= nbytes <= DIGEST_SIZE:
        raise ValueError("nbytes must be between 1 and 32")
    count = len(digests) // DIGEST_SIZE
    if nbytes < DIGEST_SIZE and count:
        digests = np.frombuffer(digests, dtype=np.uint8).reshape(count, DIGEST_SIZE)[:, :nbytes].tobytes()
    text = binascii.hexlify(digests)
    width = 2 * nbytes
    n = count if valid is None else len(valid)
    large = len(text) >= 2**31 - 1
    off_dtype = np.int64 if large else np.int32
    typ = pa.large_string() if large else pa.string()
    if valid is None or bool(valid.all()):
        if valid is not None and int(valid.sum()) != count:
            raise ValueError("valid mask does not match the number of digests")
        offsets = np.arange(0, width * (n + 1), width, dtype=off_dtype)
        return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])
    valid = np.asarray(valid, dtype=bool)
    if int(valid.sum()) != count:
        raise ValueError("valid mask does not match the number of digests")
    offsets = np.zeros(n + 1, dtype=off_dtype)
    np.cumsum(np.where(valid, width, 0).astype(off_dtype), out=offsets[1:])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(text)], null_count=n - count)


if __name__ == "__main__":  # pragma: no cover - helper process entry point
    _worker_main()
