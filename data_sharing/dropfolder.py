"""The shared drop folder: what is in it, and which entries are complete enough to take.

A file is complete when a sibling ``<name>.done`` marker exists, or when its size and modification time
have not changed for the settle time (SPEC; ``Settings.drop_settle_s``, 60 s by default; the sensor also
asks for an unchanged second look). A marker with no data file beside it, and every other kind of entry
(folder, symlink, device), is handed on too, so that intake records it with a reason: nothing in the drop
folder goes unrecorded. Files are hashed from one descriptor opened without following links
(:mod:`data_sharing.dropsafe`); per agency folder and run at most ``DropLimits.max_files`` files and
``max_bytes`` bytes are handed on, the rest wait. The scan state is a small JSON-able dict (the sensor's cursor).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from data_sharing.dropsafe import DropLimits, UnsafeEntry, hash_entry, open_dir_chain
from data_sharing.intake import FEEDBACK_DIR, entry_fingerprint
from data_sharing.marker import MARKER_SUFFIX, Marker

_SAFE_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
STATE_VERSION = 1


@dataclass(frozen=True)
class DropEntry:
    """One entry under the drop folder (``rel_path`` uses '/' and may hold any bytes the OS allowed)."""

    rel_path: str
    path: Path
    kind: str  # file | marker | folder | symlink | special
    size: int
    mtime_ns: int

    @property
    def signature(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass(frozen=True)
class ReadyEntry:
    """An entry ready for intake, with the fingerprints its run key is made of."""

    entry: DropEntry
    fingerprint: str
    marker_sha256: str | None

    @property
    def run_key(self) -> str:
        key = f"{partition_key_for(self.entry.rel_path)}@{self.fingerprint}"
        return key + (f"+done:{self.marker_sha256[:16]}" if self.marker_sha256 else "")

    @property
    def partition_key(self) -> str:
        return partition_key_for(self.entry.rel_path)


@dataclass
class ScanResult:
    ready: list[ReadyEntry] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # rel paths still changing or not yet seen twice
    deferred: int = 0  # complete entries left for the next tick (time or count budget reached)
    over_limit: dict[str, int] = field(default_factory=dict)  # agency folder -> complete entries over its caps
    state: dict = field(default_factory=dict)


def partition_key_for(rel_path: str) -> str:
    """The dynamic partition key of a dropped file: its path when plain, else a digest of it."""
    parts = rel_path.split("/")
    if all(_SAFE_PART_RE.match(p) and ".." not in p for p in parts) and len(rel_path) <= 400:
        return rel_path
    return "_unsafe/" + hashlib.sha256(rel_path.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _kind(st: os.stat_result, name: str) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if not stat.S_ISREG(st.st_mode):
        return "special"
    return "marker" if name.endswith(MARKER_SUFFIX) else "file"


def list_drop_entries(drop_root: Path) -> list[DropEntry]:
    """Every entry at the top of the drop folder and inside each agency folder (``feedback/`` excepted).

    Agency folders are not followed when they are symlinks; sub-folders are reported, not entered.
    """
    drop_root = Path(drop_root)
    out: list[DropEntry] = []

    def add(path: Path, rel: str) -> str | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        kind = _kind(st, path.name)
        out.append(DropEntry(rel, path, kind, st.st_size if kind in ("file", "marker") else 0, st.st_mtime_ns))
        return kind

    try:
        top = sorted(os.scandir(drop_root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for item in top:
        path = Path(item.path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            try:  # listed through a descriptor opened without following a link swapped in since the lstat
                with open_dir_chain(drop_root, [item.name]) as folder_fd:
                    inner = sorted((e.name for e in os.scandir(folder_fd)), key=str)
            except (OSError, UnsafeEntry):
                continue
            for name in inner:
                if name == FEEDBACK_DIR:
                    continue
                add(path / name, f"{item.name}/{name}")
        else:
            add(path, item.name)
    return out


def _bucket(rel_path: str) -> str:
    """The agency folder an entry is in ('' for the top of the drop folder): caps apply per bucket."""
    return rel_path.split("/", 1)[0] if "/" in rel_path else ""


@dataclass
class _Caps:
    limits: DropLimits | None
    files: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)

    def admit(self, entry: DropEntry) -> bool:
        """Count ``entry`` against its agency's caps for this run; False when over them."""
        if self.limits is None:
            return True
        b = _bucket(entry.rel_path)
        files, size = self.files.get(b, 0), self.bytes.get(b, 0)
        if files >= self.limits.max_files or (files and size + entry.size > self.limits.max_bytes):
            return False
        self.files[b], self.bytes[b] = files + 1, size + entry.size
        return True


def _is_stable(
    entry: DropEntry, signature: list[int], prev_pending: dict, since_ns: int, now_ns: int,
    settle_s: float | None, two_looks: bool,
) -> bool:
    """Complete: size and modification time unchanged for the settle time (and, with ``two_looks``, also
    unchanged since the previous look). Folders, links and special entries are handed on at once."""
    if entry.kind in ("folder", "symlink", "special"):
        return True
    same_as_before = prev_pending.get(entry.rel_path) == signature
    if settle_s is None:
        return same_as_before
    settled = (now_ns - entry.mtime_ns) / 1e9 >= settle_s or (now_ns - since_ns) / 1e9 >= settle_s
    return settled and (same_as_before or not two_looks)


def scan_drop_folder(
    drop_root: Path,
    state: dict | None,
    *,
    time_budget_s: float = 40.0,
    max_ready: int = 200,
    settle_s: float | None = None,
    two_looks: bool | None = None,
    limits: DropLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock_ns: Callable[[], int] = time.time_ns,
) -> ScanResult:
    """Find the entries that are complete and not yet handed on.

    ``state`` is the previous result's state (None on the first look). Without ``settle_s`` a file is complete
    when unchanged since the previous look; with it, when its size and modification time have not changed
    for that long (by its mtime, or since first seen so), and with ``two_looks`` (the sensor) also unchanged
    since the previous look. A ``.done`` marker makes a file complete at once. ``limits`` caps what is handed
    on per agency folder (the rest: ``over_limit``). Hashing stops at the time or count budget; the rest
    waits for the next call (nothing is lost).
    """
    two_looks = settle_s is None if two_looks is None else two_looks
    prev = state if state and state.get("v") == STATE_VERSION else {}
    prev_pending: dict[str, list[int]] = prev.get("pending", {})
    prev_handed: dict[str, list] = prev.get("handed", {})
    prev_since: dict[str, int] = prev.get("since", {})
    entries = list_drop_entries(drop_root)
    by_rel = {e.rel_path: e for e in entries}
    result = ScanResult()
    pending: dict[str, list[int]] = {}
    handed: dict[str, list] = {}
    seen_at: dict[str, int] = {}
    caps = _Caps(limits)
    started = clock()
    now_ns = wall_clock_ns()
    for entry in entries:
        rel = entry.rel_path
        base = by_rel.get(rel[: -len(MARKER_SUFFIX)]) if rel.endswith(MARKER_SUFFIX) else None
        if base is not None and base.kind == "file":
            continue  # consumed with its data file (whatever kind of entry the marker is)
        marker_entry = by_rel.get(rel + MARKER_SUFFIX) if entry.kind == "file" else None
        signature = entry.signature + (marker_entry.signature if marker_entry else [])
        old = prev_handed.get(rel)
        if old is not None and old[0] == signature:
            handed[rel] = old  # unchanged since it was handed on
            continue
        first_seen = prev_since.get(rel, now_ns) if prev_pending.get(rel) == signature else now_ns
        stable = marker_entry is not None or _is_stable(
            entry, signature, prev_pending, first_seen, now_ns, settle_s, two_looks
        )
        if old is not None:
            handed[rel] = old  # remember what was handed on until this entry is handed again
        seen_at[rel] = first_seen
        if not stable:
            pending[rel] = signature
            result.waiting.append(rel)
            continue
        if len(result.ready) >= max_ready or clock() - started > time_budget_s or not caps.admit(entry):
            pending[rel] = signature  # still complete next time: it will be stable then
            if limits is not None and len(result.ready) < max_ready and clock() - started <= time_budget_s:
                b = _bucket(rel)
                result.over_limit[b] = result.over_limit.get(b, 0) + 1
            else:
                result.deferred += 1
            continue
        ready = _ready_entry(drop_root, entry, marker_entry)
        if ready is None:
            pending[rel] = signature  # vanished, swapped or unreadable mid-scan: look again next time
            result.waiting.append(rel)
            continue
        if old is not None and old[1] == ready.run_key:
            handed[rel] = [signature, old[1]]  # touched but identical: already handed on
            continue
        result.ready.append(ready)
        handed[rel] = [signature, ready.run_key]
    result.state = {"v": STATE_VERSION, "pending": pending, "handed": handed}
    if settle_s and pending:  # when each pending entry was first seen as it is now
        result.state["since"] = {rel: seen_at[rel] for rel in pending}
    return result


def _ready_entry(drop_root: Path, entry: DropEntry, marker_entry: DropEntry | None) -> ReadyEntry | None:
    """Fingerprint an entry: a file's SHA-256 read from one descriptor opened without following links."""
    try:
        if entry.kind in ("file", "marker"):
            try:
                fingerprint, size, mtime_ns = hash_entry(Path(drop_root), entry.rel_path)
            except UnsafeEntry as unsafe:
                if unsafe.kind != "hardlink":
                    raise
                fingerprint, size, mtime_ns = entry_fingerprint("hardlink", entry.rel_path), entry.size, entry.mtime_ns
            if [size, mtime_ns] != entry.signature:
                return None
        else:
            fingerprint = entry_fingerprint(entry.kind, entry.rel_path)
        marker_sha = Marker.read(marker_entry.path, drop_root=drop_root).sha256_of_marker if marker_entry else None
    except (OSError, UnsafeEntry):
        return None
    return ReadyEntry(entry, fingerprint, marker_sha)
