"""Keys of the privacy layer: one master secret per version, purpose keys derived with HKDF-SHA256.

Where the master secret comes from (:func:`load_keyset`), exactly one of:

1. a **key file** (created by :func:`init_keyset` with mode 0600, written atomically; a file that group
   or others may read, write or execute is refused, checked on the open descriptor)::

       {"format": "c2c-keyset", "format_version": 1, "warning": "SECRET: ...",
        "masters": {"1": {"created_at": "2026-09-15T06:30:00+00:00", "secret_b64": "<32 bytes>"},
                    "2": {...}},
        "purposes": {"landing":   {"current": 2, "versions": [1, 2]},
                     "linkage":   {"current": 1, "versions": [1]},
                     "pseudonym": {"current": 2, "versions": [1, 2]}}}

2. the ``C2C_MASTER_KEY`` environment variable, filled by a secret manager: the base64 of 32 random
   bytes (version 1), or several versions ``"1:<base64>,2:<base64>"`` (the highest is current), with
   optional pins ``"...,linkage=1"`` keeping one purpose on an older version.

Both present at once is refused as ambiguous; neither is a :class:`KeyMaterialError`, never a
fallback to an unkeyed hash.

Purpose keys are derived, never stored: ``HKDF-SHA256(master_v, salt="c2c/keyset/v1",
info="c2c/purpose/<purpose>")``. Each has a ``version`` (the master version it comes from) and a
``key_id`` (first 12 hex of HMAC(purpose key, "c2c key id")): metadata, audit records and file headers
carry ``purpose/v<version>/<key_id>``, never the key.

========== ================================================================== ====================
purpose    used for                                                           leaves the hub?
========== ================================================================== ====================
linkage    ``id_token`` and every linkage encoding (keyed hashes, Bloom       yes: exported to
           filters): must be the same at every agency that tokenizes at       agencies that
           source                                                             tokenize at source
pseudonym  ``source_key = HMAC(pseudonym, id_token)``, the warehouse keys     never
landing    AES-256-GCM encryption of raw files in the landing zone            never
linkage_hub the hub-only layer over every linkage encoding in the linkage      never
           area (:func:`data_sharing.encodings.hub_encode`): the exported
           linkage key alone reverses nothing stored there
audit      HMAC key of the audit log's chain (``warehouse.audit``)            never
========== ================================================================== ====================

A key file written before ``linkage_hub`` and ``audit`` existed loads with both on its oldest master
version (they are derived, so nothing needs writing); the next rotation records them.

Rotation (:meth:`KeySet.rotate`) adds a master version and makes it current for the purposes named
(default: all). Rotating ``linkage_hub`` re-encodes the linkage area on the next run (the hub layer is
invertible by the hub, so nothing from the agencies is needed). Purposes rotate **independently**: the usual rotation is
``rotate({"pseudonym", "landing"})``, which needs nothing from the agencies -- the next run re-keys
the warehouse through :func:`data_sharing.pseudonyms.rekey_crosswalk` (old ``source_key`` -> new
``source_key``, computed from the stored ``id_token``, which do not change). Rotating ``linkage``
changes every ``id_token`` and encoding: export the new key to the agencies that tokenize at source,
and re-encode; the crosswalk then needs the old and new ``id_token`` of each record
(``rekey_crosswalk(..., new_id_tokens=...)``), i.e. raw ids still in the landing zone, or agencies
sending both tokens for one delivery. Older versions stay loadable
for exactly that.

Keys are not picklable (so they can never be written to Dagster's storage by accident) and their
``repr`` shows the key id only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from data_sharing import _crypto
from data_sharing._files import write_private_file
from data_sharing.errors import KeyMaterialError

Purpose = Literal["linkage", "pseudonym", "landing", "linkage_hub", "audit"]
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
_LATER_PURPOSES: tuple[Purpose, ...] = ("linkage_hub", "audit")  # added after format_version 1 files existed

MASTER_KEY_BYTES = 32
ENV_VAR = "C2C_MASTER_KEY"
KEY_FILE_ENV_VAR = "C2C_KEY_FILE"
KEYSET_FORMAT = "c2c-keyset"
LINKAGE_KEY_FORMAT = "c2c-linkage-key"
FORMAT_VERSION = 1
HKDF_SALT = b"c2c/keyset/v1"

RandBytes = Callable[[int], bytes]
Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _hkdf_info(purpose: str) -> bytes:
    return b"c2c/purpose/" + purpose.encode("ascii")


@dataclass(frozen=True)
class PurposeKey:
    """A derived key for one purpose and version. ``secret`` never appears in ``repr``, logs or pickles."""

    purpose: Purpose
    version: int
    key_id: str
    secret: bytes = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise KeyMaterialError("wrong_purpose", f"unknown key purpose {self.purpose!r}; one of {', '.join(PURPOSES)}")
        if len(self.secret) != MASTER_KEY_BYTES:
            raise KeyMaterialError("malformed", f"a {self.purpose} key must be {MASTER_KEY_BYTES} bytes")
        if _crypto.key_fingerprint(self.secret) != self.key_id:
            raise KeyMaterialError("malformed", f"the {self.purpose} key v{self.version} does not match its key id")

    @classmethod
    def derive(cls, master: bytes, purpose: Purpose, version: int) -> PurposeKey:
        secret = _crypto.hkdf_sha256(master, salt=HKDF_SALT, info=_hkdf_info(purpose), length=MASTER_KEY_BYTES)
        return cls(purpose, version, _crypto.key_fingerprint(secret), secret)

    @property
    def label(self) -> str:
        """``linkage/v2/3fa9c01b77d2``: how a key is named in metadata and audit records."""
        return f"{self.purpose}/v{self.version}/{self.key_id}"

    def __reduce__(self) -> Any:
        raise TypeError("keys cannot be pickled: pass the key set or key file path instead")


@dataclass(frozen=True)
class _PurposeState:
    current: int
    versions: tuple[int, ...]


class KeySet:
    """All master versions, and for each purpose its current version and the versions it has used.

    Build one with :func:`init_keyset` or :func:`load_keyset`. ``source`` says where it came from
    (a file path or ``env:C2C_MASTER_KEY``) and never holds a secret.
    """

    def __init__(
        self,
        masters: Mapping[int, bytes],
        purposes: Mapping[Purpose, _PurposeState] | Mapping[str, _PurposeState],
        *,
        path: Path | None = None,
        created_at: Mapping[int, str] | None = None,
        source: str = "memory",
    ) -> None:
        if not masters:
            raise KeyMaterialError("missing", "the key set holds no master key")
        for version, secret in masters.items():
            if not isinstance(version, int) or version < 1:
                raise KeyMaterialError("malformed", "master key versions are positive integers")
            if len(secret) != MASTER_KEY_BYTES:
                raise KeyMaterialError("malformed", f"master key v{version} is not {MASTER_KEY_BYTES} bytes")
        purposes = dict(purposes)
        for purpose in _LATER_PURPOSES:  # key files older than these purposes: derive them from the oldest master
            purposes.setdefault(purpose, _PurposeState(min(masters), (min(masters),)))
        for purpose in PURPOSES:
            state = purposes.get(purpose)
            if state is None:
                raise KeyMaterialError("malformed", f"the key set does not say which version the {purpose} key uses")
            for v in (state.current, *state.versions):
                if v not in masters:
                    raise KeyMaterialError("unknown_version", f"the {purpose} key names master v{v}, which is not in the key set")
            if state.current not in state.versions:
                raise KeyMaterialError("malformed", f"the {purpose} key's current version is not among its versions")
        self._masters = dict(masters)
        self._purposes: dict[str, _PurposeState] = {p: purposes[p] for p in PURPOSES}
        self._created_at = dict(created_at or {})
        self.path = path
        self.source = source

    # -- derivation ----------------------------------------------------------------------------------

    @property
    def versions(self) -> tuple[int, ...]:
        """Master versions held, oldest first."""
        return tuple(sorted(self._masters))

    def current_version(self, purpose: Purpose) -> int:
        return self._state(purpose).current

    def purpose_versions(self, purpose: Purpose) -> tuple[int, ...]:
        """Versions this purpose has used (current last); older ones stay derivable for re-keying."""
        return self._state(purpose).versions

    def purpose_key(self, purpose: Purpose, version: int | None = None) -> PurposeKey:
        """The ``purpose`` key of ``version`` (default: current). Unknown purpose or version: KeyMaterialError."""
        state = self._state(purpose)
        v = state.current if version is None else version
        if v not in state.versions:
            raise KeyMaterialError(
                "unknown_version",
                f"the {purpose} key has no version {v} in {self.source} (versions: {', '.join(map(str, state.versions))})",
            )
        return PurposeKey.derive(self._masters[v], purpose, v)

    def key_labels(self) -> dict[str, str]:
        """Current key of every purpose as ``purpose/v<version>/<key_id>``: safe for metadata."""
        return {p: self.purpose_key(p).label for p in PURPOSES}

    def describe(self) -> dict[str, Any]:
        """Everything about the key set except secrets (for ``c2c keys show`` and audit records)."""
        return {
            "source": self.source,
            "master_versions": list(self.versions),
            "purposes": {
                p: {
                    "current": self._purposes[p].current,
                    "versions": {str(v): self.purpose_key(p, v).key_id for v in self._purposes[p].versions},
                }
                for p in PURPOSES
            },
        }

    def _state(self, purpose: str) -> _PurposeState:
        if purpose not in self._purposes:
            raise KeyMaterialError("wrong_purpose", f"unknown key purpose {purpose!r}; one of {', '.join(PURPOSES)}")
        return self._purposes[purpose]

    # -- rotation ------------------------------------------------------------------------------------

    def rotate(
        self,
        purposes: Iterable[Purpose] = PURPOSES,
        *,
        randbytes: RandBytes = os.urandom,
        now: Clock = _utcnow,
    ) -> int:
        """Add a new master version, make it current for ``purposes``, save the key file; return the version.

        Only a file-backed key set can rotate (a secret manager rotates ``C2C_MASTER_KEY`` itself: append
        ``",<n>:<base64>"`` from :func:`generate_master_key_b64`). Older versions stay in the file.
        """
        chosen = [purposes] if isinstance(purposes, str) else list(dict.fromkeys(purposes))
        if not chosen:
            raise KeyMaterialError("wrong_purpose", "name at least one purpose to rotate")
        for p in chosen:
            self._state(p)
        if self.path is None:
            raise KeyMaterialError(
                "read_only",
                f"keys from {self.source} cannot be rotated here; add a version to the secret instead "
                f"(\"<old>,2:<new base64>\", see generate_master_key_b64)",
            )
        on_disk = _read_keyset_file(self.path)
        if on_disk.versions != self.versions:
            raise KeyMaterialError("malformed", f"{self.path} changed since it was loaded; load it again and retry")
        secret = randbytes(MASTER_KEY_BYTES)
        if len(secret) != MASTER_KEY_BYTES:
            raise KeyMaterialError("malformed", "the random source returned too few bytes")
        new = max(self._masters) + 1
        self._masters[new] = secret
        self._created_at[new] = now().astimezone(dt.UTC).isoformat()
        for p in chosen:
            old = self._purposes[p]
            self._purposes[p] = _PurposeState(new, (*old.versions, new))
        _write_secret_file(self.path, self._to_json(), overwrite=True)
        return new

    # -- persistence ---------------------------------------------------------------------------------

    def _to_json(self) -> bytes:
        doc = {
            "format": KEYSET_FORMAT,
            "format_version": FORMAT_VERSION,
            "warning": "SECRET: master keys of the c2c privacy layer; keep mode 0600, never commit or copy",
            "masters": {
                str(v): {
                    "created_at": self._created_at.get(v),
                    "secret_b64": base64.b64encode(self._masters[v]).decode("ascii"),
                }
                for v in sorted(self._masters)
            },
            "purposes": {p: {"current": s.current, "versions": list(s.versions)} for p, s in self._purposes.items()},
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def __repr__(self) -> str:
        labels = ", ".join(f"{p}=v{s.current}" for p, s in self._purposes.items())
        return f"KeySet(source={self.source!r}, versions={list(self.versions)}, {labels})"

    def __reduce__(self) -> Any:
        raise TypeError("key sets cannot be pickled: pass the key file path instead")


# ----------------------------------------------------------------------------------------------
# Creating and loading
# ----------------------------------------------------------------------------------------------


def generate_master_key_b64(randbytes: RandBytes = os.urandom) -> str:
    """A new random master secret, base64, for a secret manager's ``C2C_MASTER_KEY``."""
    return base64.b64encode(randbytes(MASTER_KEY_BYTES)).decode("ascii")


def init_keyset(path: Path | str, *, randbytes: RandBytes = os.urandom, now: Clock = _utcnow) -> KeySet:
    """Create a key file at ``path`` (mode 0600, refusing to overwrite) with master version 1."""
    path = Path(path)
    secret = randbytes(MASTER_KEY_BYTES)
    if len(secret) != MASTER_KEY_BYTES:
        raise KeyMaterialError("malformed", "the random source returned too few bytes")
    ks = KeySet(
        {1: secret},
        {p: _PurposeState(1, (1,)) for p in PURPOSES},
        path=path,
        created_at={1: now().astimezone(dt.UTC).isoformat()},
        source=str(path),
    )
    _write_secret_file(path, ks._to_json(), overwrite=False)
    return ks


def load_keyset(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> KeySet:
    """Load the key set from ``C2C_MASTER_KEY`` or from a key file (``path``, else ``C2C_KEY_FILE``), both
    looked up in ``env`` (the caller's settings: ``pipelines.settings.Settings.key_env``; None: neither).

    A secret manager sets ``C2C_MASTER_KEY`` and there is no key file; a self-hosted hub has a key file
    and no variable. Both at once (the variable set *and* the file existing) is refused as ambiguous
    rather than guessed. No key anywhere is a :class:`KeyMaterialError` (``reason='missing'``): c2c
    never falls back to an unkeyed hash.
    """
    env = {} if env is None else env
    file = Path(path) if path is not None else (Path(env[KEY_FILE_ENV_VAR]) if env.get(KEY_FILE_ENV_VAR) else None)
    value = env.get(ENV_VAR)
    if value is not None and value.strip():
        if file is not None and file.exists():
            raise KeyMaterialError(
                "ambiguous",
                f"both {ENV_VAR} and the key file {file} are present; keep one (unset {ENV_VAR} or move the file)",
            )
        return _parse_env_value(value)
    if file is not None:
        return _read_keyset_file(file)
    raise KeyMaterialError(
        "missing",
        f"no master key: set {ENV_VAR} (base64 of 32 random bytes, from your secret manager), set "
        f"{KEY_FILE_ENV_VAR} to a key file, or create one with data_sharing.keys.init_keyset(path)",
    )


_ENV_ITEM_VERSION = re.compile(r"^\s*([0-9]+)\s*:\s*(\S+)\s*$")
_ENV_ITEM_PIN = re.compile(r"^\s*([a-z]+)\s*=\s*([0-9]+)\s*$")


def _parse_env_value(value: str) -> KeySet:
    masters: dict[int, bytes] = {}
    pins: dict[str, int] = {}
    items = [i for i in value.split(",") if i.strip()]
    for pos, item in enumerate(items, start=1):
        m = _ENV_ITEM_VERSION.match(item)
        pin = _ENV_ITEM_PIN.match(item)
        if pin:
            if pin.group(1) not in PURPOSES:
                raise KeyMaterialError("wrong_purpose", f"{ENV_VAR} item {pos} pins an unknown purpose")
            pins[pin.group(1)] = int(pin.group(2))
            continue
        if m:
            version, b64 = int(m.group(1)), m.group(2)
        elif len(items) == 1:
            version, b64 = 1, item.strip()
        else:
            raise KeyMaterialError("malformed", f"{ENV_VAR} item {pos} is not <version>:<base64> or <purpose>=<version>")
        if version in masters or version < 1:
            raise KeyMaterialError("malformed", f"{ENV_VAR} item {pos} repeats or misnumbers a version")
        masters[version] = _decode_secret(b64, f"{ENV_VAR} item {pos}")
    if not masters:
        raise KeyMaterialError("malformed", f"{ENV_VAR} holds no key")
    top = max(masters)
    purposes = {}
    for p in PURPOSES:
        cur = pins.get(p, top)
        if cur not in masters:
            raise KeyMaterialError("unknown_version", f"{ENV_VAR} pins {p} to v{cur}, which it does not hold")
        purposes[p] = _PurposeState(cur, tuple(v for v in sorted(masters) if v <= cur))
    return KeySet(masters, purposes, path=None, source=f"env:{ENV_VAR}")


def _decode_secret(b64: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError("malformed", f"{where} is not valid base64") from None
    if len(raw) != MASTER_KEY_BYTES:
        raise KeyMaterialError("malformed", f"{where} must decode to {MASTER_KEY_BYTES} bytes (it decodes to {len(raw)})")
    return raw


def _read_protected(path: Path, what: str) -> bytes:
    """Read a secret file after checking, on the open descriptor, that only its owner can access it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise KeyMaterialError("missing", f"{what} {path} does not exist") from None
    except PermissionError:
        raise KeyMaterialError("missing", f"{what} {path} cannot be read by this user") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyMaterialError("malformed", f"{what} {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise KeyMaterialError(
                "insecure_permissions",
                f"refusing {what} {path}: its mode {mode:04o} lets group or others access it; "
                f"only its owner may (run: chmod 600 {path})",
            )
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _load_json(raw: bytes, path: Path, what: str, expected_format: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyMaterialError("malformed", f"{what} {path} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != expected_format:
        raise KeyMaterialError("malformed", f"{path} is not a {expected_format} file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise KeyMaterialError("malformed", f"{path} has format_version {doc.get('format_version')!r}; expected {FORMAT_VERSION}")
    return doc


def _read_keyset_file(path: Path) -> KeySet:
    doc = _load_json(_read_protected(path, "key file"), path, "key file", KEYSET_FORMAT)
    try:
        masters = {}
        created = {}
        for v, entry in doc["masters"].items():
            version = int(v)
            masters[version] = _decode_secret(entry["secret_b64"], f"{path}: masters.{v}")
            created[version] = entry.get("created_at")
        purposes = {
            p: _PurposeState(int(doc["purposes"][p]["current"]), tuple(int(x) for x in doc["purposes"][p]["versions"]))
            for p in PURPOSES
            if p in doc["purposes"] or p not in _LATER_PURPOSES
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        raise KeyMaterialError("malformed", f"key file {path} lacks masters/purposes entries of the documented shape") from None
    return KeySet(masters, purposes, path=path, created_at=created, source=str(path))


def _write_secret_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600 (folder created 0700 if missing)."""
    path = Path(path)
    if not overwrite and path.exists():
        raise KeyMaterialError("exists", f"{path} already exists; refusing to overwrite a key file")
    try:
        write_private_file(path, data, overwrite=overwrite)
    except FileExistsError:
        raise KeyMaterialError("exists", f"{path} already exists; refusing to overwrite a key file") from None


def hub_holds_data(*folders: Path | str) -> bool:
    """Whether any of the hub's data folders (landing zone, linkage area) holds a file: a hub with data
    must not get a new key set (it could no longer read or re-key what it holds)."""
    for folder in folders:
        root = Path(folder)
        if root.is_dir() and any(p.is_file() for p in root.rglob("*")):
            return True
    return False


def init_hub_keyset(key_file: Path | str, *data_folders: Path | str, force: bool = False) -> KeySet:
    """``c2c keys init``: a new key set, refused over an existing key file, and refused while the hub's
    data folders (landing zone, linkage area) hold data a new key set could not read, unless ``force``."""
    if Path(key_file).exists():
        raise KeyMaterialError("exists", f"{key_file} already exists; use `c2c keys rotate` for a new version")
    if hub_holds_data(*data_folders) and not force:
        raise KeyMaterialError(
            "exists",
            f"refusing: this hub already holds data ({', '.join(map(str, data_folders))}) that a new key set could "
            "not read; restore the key file from its backup, or pass --force-new-hub to start a new hub anyway",
        )
    return init_keyset(key_file)


def key_error_hint(*folders: Path | str) -> str:
    """What to do about a key error, for people: ``c2c keys init`` only where no data exists yet."""
    if hub_holds_data(*folders):
        return ("this hub already holds data: restore its key file from the backup (or set C2C_MASTER_KEY from "
                "the secret manager); a new key set could not read it")
    return "a new hub starts with `c2c keys init`"


# ----------------------------------------------------------------------------------------------
# The linkage key, shared with agencies that tokenize at source
# ----------------------------------------------------------------------------------------------


def export_linkage_key(
    keyset: KeySet,
    path: Path | str,
    *,
    version: int | None = None,
    overwrite: bool = False,
    now: Clock = _utcnow,
) -> PurposeKey:
    """Write the linkage key (only it: never the master or another purpose) to ``path``, mode 0600.

    The file is for an agency that tokenizes at source; send it over a channel agreed in the MOU and
    record its :attr:`PurposeKey.label` in the audit log.
    """
    key = keyset.purpose_key("linkage", version)
    doc = {
        "format": LINKAGE_KEY_FORMAT,
        "format_version": FORMAT_VERSION,
        "warning": "SECRET: c2c linkage key; keep mode 0600, never commit or copy",
        "purpose": key.purpose,
        "version": key.version,
        "key_id": key.key_id,
        "exported_at": now().astimezone(dt.UTC).isoformat(),
        "secret_b64": base64.b64encode(key.secret).decode("ascii"),
    }
    _write_secret_file(Path(path), (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8"), overwrite=overwrite)
    return key


def load_linkage_key(path: Path | str) -> PurposeKey:
    """Load a linkage key file written by :func:`export_linkage_key` (mode checked, key id verified)."""
    path = Path(path)
    doc = _load_json(_read_protected(path, "linkage key file"), path, "linkage key file", LINKAGE_KEY_FORMAT)
    if doc.get("purpose") != "linkage":
        raise KeyMaterialError("wrong_purpose", f"{path} does not hold a linkage key")
    try:
        version = int(doc["version"])
        key_id = str(doc["key_id"])
        secret = _decode_secret(str(doc["secret_b64"]), f"{path}: secret_b64")
    except (KeyError, TypeError, ValueError):
        raise KeyMaterialError("malformed", f"linkage key file {path} lacks version/key_id/secret_b64") from None
    if _crypto.key_fingerprint(secret) != key_id:
        raise KeyMaterialError("malformed", f"{path}: the secret does not match key_id {key_id} (altered or mistyped)")
    return PurposeKey("linkage", version, key_id, secret)


def resolve_key(keys: KeySet | PurposeKey, purpose: Purpose, version: int | None = None) -> PurposeKey:
    """The ``purpose`` key from a key set, or check that a lone purpose key is of that purpose."""
    if isinstance(keys, KeySet):
        return keys.purpose_key(purpose, version)
    if isinstance(keys, PurposeKey):
        if keys.purpose != purpose:
            raise KeyMaterialError("wrong_purpose", f"a {keys.purpose} key was given where the {purpose} key is needed")
        if version is not None and keys.version != version:
            raise KeyMaterialError("unknown_version", f"the {purpose} key given is v{keys.version}, not v{version}")
        return keys
    raise KeyMaterialError("missing", f"no {purpose} key given (expected a KeySet or a PurposeKey)")
