"""The encrypted landing zone: raw files at rest under AES-256-GCM, read back only into memory.

Layout: ``<root>/<agency>/<name>.<first 16 hex of the plaintext SHA-256>.c2cland`` (folders 0700,
files 0600). A file is::

    b"C2CL" | header length (uint32, big-endian) | header (UTF-8 JSON, sorted keys) | ciphertext || tag

The header is not secret but is authenticated: the *whole prefix* (magic, length and header) is the
AES-GCM associated data, so changing the agency, name, key version or anything else in it makes
decryption fail. It holds ``format`` (1), ``cipher``, ``agency``, ``name`` (the file's logical name,
e.g. ``students_20260915.csv``), ``key_purpose`` (``landing``), ``key_version``, ``key_id``,
``nonce`` (96 random bits, hex), ``written_at`` (UTC), ``plaintext_sha256`` and ``plaintext_size``.
Retention reads headers only, so it runs without the key.

Nothing here ever writes plaintext to disk: :meth:`LandingZone.read` returns bytes in memory.
Destruction unlinks the file; the real guarantee for copies the file system may keep (journals,
snapshots, SSD remapping) is that they are ciphertext, and a landing key rotation plus removal of the
old master version from the key file crypto-shreds everything written under it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from data_sharing import _crypto
from data_sharing._files import fsync_dir, write_private_file
from data_sharing.errors import KeyMaterialError, LandingError
from data_sharing.keys import KeySet, PurposeKey, resolve_key

MAGIC = b"C2CL"
FORMAT_VERSION = 1
SUFFIX = ".c2cland"
DEFAULT_RETENTION_DAYS = 7
_LEN = struct.Struct(">I")
_MAX_HEADER = 64 * 1024
_AGENCY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

Clock = Callable[[], dt.datetime]
RandBytes = Callable[[int], bytes]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LandedFile:
    """What the landing zone knows about one file, from its authenticated header (no content)."""

    path: Path
    agency: str
    name: str
    plaintext_sha256: str
    size: int
    written_at: dt.datetime
    key_version: int
    key_id: str

    @property
    def key_label(self) -> str:
        return f"landing/v{self.key_version}/{self.key_id}"


@dataclass(frozen=True)
class RetentionRule:
    """How many days raw files of one agency may stay, and which document says so."""

    days: int
    source: str

    @property
    def label(self) -> str:
        return f"{self.source}: raw_retention_days={self.days}"


@dataclass(frozen=True)
class DestructionEvidence:
    """One destroyed landing file, for the audit log (no content, no identifier)."""

    file: str
    agency: str
    name: str | None
    plaintext_sha256: str | None
    size: int | None
    written_at: str | None
    destroyed_at: str
    retention_days: int
    rule: str
    note: str | None = None

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def retention_rules(agreements: Mapping[str, Any]) -> dict[str, RetentionRule]:
    """Retention rules from MOUs (``schemas.agreements.Agreement``: ``raw_retention_days``, ``label``)."""
    return {
        agency: RetentionRule(int(a.raw_retention_days), f"{a.label}") for agency, a in agreements.items()
    }


def _check_names(agency: str, name: str) -> None:
    if not isinstance(agency, str) or not _AGENCY_RE.match(agency):
        raise LandingError("bad_name", "agency must be a lower-case name like 'fps'")
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise LandingError(
            "bad_name", "a landing file name must be a plain file name (letters, digits, '.', '_', '-'; no folders)"
        )


def _parse(raw: bytes, path: Path) -> tuple[dict[str, Any], bytes, bytes]:
    """Split a landing file into (header, associated data, ciphertext); malformed -> LandingError."""
    if len(raw) < len(MAGIC) + _LEN.size or raw[: len(MAGIC)] != MAGIC:
        raise LandingError("malformed", f"{path} is not a c2c landing file")
    (hlen,) = _LEN.unpack_from(raw, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if hlen > _MAX_HEADER or start + hlen > len(raw):
        raise LandingError("malformed", f"{path} has a damaged header")
    aad = raw[: start + hlen]
    try:
        header = json.loads(raw[start : start + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LandingError("malformed", f"{path} has a damaged header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise LandingError("malformed", f"{path} has an unknown landing format")
    return header, aad, raw[start + hlen :]


def _landed(path: Path, header: Mapping[str, Any]) -> LandedFile:
    try:
        return LandedFile(
            path=path,
            agency=str(header["agency"]),
            name=str(header["name"]),
            plaintext_sha256=str(header["plaintext_sha256"]),
            size=int(header["plaintext_size"]),
            written_at=dt.datetime.fromisoformat(str(header["written_at"])),
            key_version=int(header["key_version"]),
            key_id=str(header["key_id"]),
        )
    except (KeyError, TypeError, ValueError):
        raise LandingError("malformed", f"{path} has an incomplete header") from None


def read_header(path: Path | str) -> LandedFile:
    """The authenticated-at-read header of a landing file (not verified here: no key is used)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(len(MAGIC) + _LEN.size + _MAX_HEADER)
    header, _, _ = _parse(head, path)
    return _landed(path, header)


class LandingZone:
    """Raw files encrypted at rest. ``keys`` is the key set (or the landing key alone, for tests).

    ``clock`` and ``randbytes`` are injectable so that headers and nonces pin in tests.
    """

    def __init__(
        self,
        root: Path | str,
        keys: KeySet | PurposeKey,
        *,
        clock: Clock = _utcnow,
        randbytes: RandBytes = os.urandom,
    ) -> None:
        self.root = Path(root)
        self._keys = keys
        resolve_key(keys, "landing")  # wrong purpose or no key: fail now, not at the first file
        self._clock = clock
        self._randbytes = randbytes

    def _key(self, version: int | None) -> PurposeKey:
        return resolve_key(self._keys, "landing", version)

    def path_for(self, agency: str, name: str, sha256_hex: str) -> Path:
        _check_names(agency, name)
        return self.root / agency / f"{name}.{sha256_hex[:16]}{SUFFIX}"

    def put(self, agency: str, name: str, data: bytes) -> LandedFile:
        """Encrypt ``data`` into the zone under the current landing key; the same content twice lands once."""
        _check_names(agency, name)
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(agency, name, digest)
        if path.exists():
            existing = read_header(path)
            if existing.plaintext_sha256 == digest and existing.agency == agency and existing.name == name:
                return existing
            raise LandingError("exists", f"{path} exists with other content")
        key = self._key(None)
        nonce = self._randbytes(_crypto.GCM_NONCE_SIZE)
        if len(nonce) != _crypto.GCM_NONCE_SIZE:
            raise LandingError("malformed", "the random source returned a short nonce")
        written_at = self._clock().astimezone(dt.UTC)
        header = {
            "format": FORMAT_VERSION,
            "cipher": "AES-256-GCM",
            "agency": agency,
            "name": name,
            "key_purpose": "landing",
            "key_version": key.version,
            "key_id": key.key_id,
            "nonce": nonce.hex(),
            "written_at": written_at.isoformat(),
            "plaintext_sha256": digest,
            "plaintext_size": len(data),
        }
        hbytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
        aad = MAGIC + _LEN.pack(len(hbytes)) + hbytes
        blob = aad + _crypto.aesgcm_encrypt(key.secret, nonce, data, aad)
        write_private_file(path, blob, overwrite=True)
        return _landed(path, header)

    def read(self, file: LandedFile | Path | str, *, agency: str | None = None, name: str | None = None) -> bytes:
        """Decrypt a landing file into memory, checking it is the agency/name expected (if given).

        Raises :class:`LandingError`: ``tampered`` (ciphertext, tag or header altered), ``key_mismatch``
        (written under a key this key set does not hold), ``binding_mismatch``, ``malformed``, ``not_found``.
        """
        if isinstance(file, LandedFile):
            path = file.path
            agency = agency or file.agency
            name = name or file.name
        else:
            path = Path(file)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise LandingError("not_found", f"{path} is not in the landing zone (destroyed by retention?)") from None
        header, aad, ciphertext = _parse(raw, path)
        landed = _landed(path, header)
        if (agency is not None and landed.agency != agency) or (name is not None and landed.name != name):
            raise LandingError("binding_mismatch", f"{path} does not hold the agency/name asked for")
        if header.get("key_purpose") != "landing":
            raise LandingError("malformed", f"{path} was not written with a landing key")
        try:
            key = self._key(landed.key_version)
        except KeyMaterialError:
            raise LandingError(
                "key_mismatch", f"{path} was written with {landed.key_label}, which this key set does not hold"
            ) from None
        if key.key_id != landed.key_id:
            raise LandingError(
                "key_mismatch", f"{path} was written with {landed.key_label}; this key set has {key.label} (another key set)"
            )
        try:
            nonce = bytes.fromhex(str(header["nonce"]))
            plaintext = _crypto.aesgcm_decrypt(key.secret, nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise LandingError("tampered", f"{path} failed authentication: it was altered or damaged") from None
        if hashlib.sha256(plaintext).hexdigest() != landed.plaintext_sha256 or len(plaintext) != landed.size:
            raise LandingError("tampered", f"{path} does not match its recorded checksum")
        return plaintext

    def files(self, agency: str | None = None) -> Iterator[LandedFile]:
        """Headers of the landing files (of one agency, or all), in path order; unreadable ones skipped."""
        for path in _landing_paths(self.root, agency):
            try:
                yield read_header(path)
            except (LandingError, OSError):
                continue

    def destroy_expired(
        self, rules: Mapping[str, RetentionRule | int], *, default: RetentionRule | None = None
    ) -> list[DestructionEvidence]:
        """:func:`destroy_expired` on this zone with its clock."""
        return destroy_expired(self.root, rules, now=self._clock, default=default)


def _landing_paths(root: Path, agency: str | None) -> list[Path]:
    if not root.is_dir():
        return []
    folders = [root / agency] if agency else sorted(p for p in root.iterdir() if p.is_dir())
    out: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            out.extend(sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIX)))
    return out


def destroy_expired(
    root: Path | str,
    rules: Mapping[str, RetentionRule | int],
    *,
    now: Clock = _utcnow,
    default: RetentionRule | None = None,
) -> list[DestructionEvidence]:
    """Destroy landing files kept for their agency's retention days or longer; return the evidence.

    A file written at ``t`` under a rule of ``N`` days is destroyed once ``now >= t + N days``
    (``N = 0``: at the next run). Agencies without a rule use ``default`` (7 days, the MOU default),
    so files of an agency whose MOU is gone are not kept forever. The age comes from the
    authenticated header; a file whose header cannot be read is aged by its modification time and
    destroyed with a note. Needs no key.
    """
    root = Path(root)
    fallback = default or RetentionRule(DEFAULT_RETENTION_DAYS, "default (no MOU for this agency)")
    current = now().astimezone(dt.UTC)
    evidence: list[DestructionEvidence] = []
    for path in _landing_paths(root, None):
        agency = path.parent.name
        rule = rules.get(agency, fallback)
        if isinstance(rule, int):
            rule = RetentionRule(rule, "retention setting")
        note = None
        try:
            info: LandedFile | None = read_header(path)
            assert info is not None
            written_at = info.written_at.astimezone(dt.UTC)
        except (LandingError, OSError):
            info = None
            try:
                written_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            except FileNotFoundError:
                continue
            note = "header unreadable: aged by modification time"
        if current < written_at + dt.timedelta(days=rule.days):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        fsync_dir(path.parent)
        evidence.append(
            DestructionEvidence(
                file=str(path.relative_to(root)),
                agency=agency,
                name=info.name if info else None,
                plaintext_sha256=info.plaintext_sha256 if info else None,
                size=info.size if info else None,
                written_at=written_at.isoformat(),
                destroyed_at=current.isoformat(),
                retention_days=rule.days,
                rule=rule.label,
                note=note,
            )
        )
    return evidence


