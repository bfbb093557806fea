"""The shared drop folder: what is in it, and which entries are complete enough to take.

A file is complete when a sibling ``<name>.done`` marker exists, or when its size and modification time
are unchanged since the previous look (SPEC). A marker with no data file beside it, and every other kind
of entry (folder, symlink, device), is handed on too, so that intake records it with a reason: nothing
in the drop folder goes unrecorded. The scan state is a small JSON-able dict (the sensor's cursor).
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

from data_sharing.intake import FEEDBACK_DIR, MARKER_SUFFIX, Marker, entry_fingerprint, sha256_file

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
            try:
                inner = sorted(os.scandir(path), key=lambda e: e.name)
            except OSError:
                continue
            for sub in inner:
                if sub.name == FEEDBACK_DIR:
                    continue
                add(Path(sub.path), f"{item.name}/{sub.name}")
        else:
            add(path, item.name)
    return out


def scan_drop_folder(
    drop_root: Path,
    state: dict | None,
    *,
    time_budget_s: float = 40.0,
    max_ready: int = 200,
    settle_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock_ns: Callable[[], int] = time.time_ns,
) -> ScanResult:
    """Find the entries that are complete and not yet handed on.

    ``state`` is the previous result's state (or None on the first look). With ``settle_s`` set (one-shot
    runs such as ``c2c run``), a file whose modification time is older than that many seconds counts as
    stable without a second look. Hashing stops at the time or count budget; the rest waits for the next
    call, which finds them again (nothing is lost).
    """
    prev = state if state and state.get("v") == STATE_VERSION else {}
    prev_pending: dict[str, list[int]] = prev.get("pending", {})
    prev_handed: dict[str, list] = prev.get("handed", {})
    entries = list_drop_entries(drop_root)
    by_rel = {e.rel_path: e for e in entries}
    result = ScanResult()
    pending: dict[str, list[int]] = {}
    handed: dict[str, list] = {}
    started = clock()
    now_ns = wall_clock_ns()

    def markers_of(entry: DropEntry) -> DropEntry | None:
        return by_rel.get(entry.rel_path + MARKER_SUFFIX)

    for entry in entries:
        rel = entry.rel_path
        base = by_rel.get(rel[: -len(MARKER_SUFFIX)]) if entry.kind == "marker" else None
        if base is not None and base.kind == "file":
            continue  # consumed with its data file
        marker_entry = markers_of(entry) if entry.kind == "file" else None
        marker_sig = marker_entry.signature if marker_entry else None
        signature = entry.signature + (marker_sig or [])
        old = prev_handed.get(rel)
        if old is not None and old[0] == signature:
            handed[rel] = old  # unchanged since it was handed on
            continue
        stable = prev_pending.get(rel) == signature
        if settle_s is not None and (now_ns - entry.mtime_ns) / 1e9 >= settle_s:
            stable = True
        if entry.kind in ("folder", "symlink", "special"):
            stable = True
        if marker_entry is not None:
            stable = True
        if old is not None:
            handed[rel] = old  # remember what was handed on until this entry is handed again
        if not stable:
            pending[rel] = signature
            result.waiting.append(rel)
            continue
        if len(result.ready) >= max_ready or clock() - started > time_budget_s:
            pending[rel] = signature  # still complete next time: it will be stable then
            result.deferred += 1
            continue
        try:
            if entry.kind in ("file", "marker"):
                fingerprint = sha256_file(entry.path)
            else:
                fingerprint = entry_fingerprint(entry.kind, rel)
            marker_sha = Marker.read(marker_entry.path).sha256_of_marker if marker_entry else None
        except OSError:
            pending[rel] = signature  # vanished or unreadable mid-scan: look again next time
            result.waiting.append(rel)
            continue
        ready = ReadyEntry(entry, fingerprint, marker_sha)
        if old is not None and old[1] == ready.run_key:
            handed[rel] = [signature, old[1]]  # touched but identical: already handed on
            continue
        result.ready.append(ready)
        handed[rel] = [signature, ready.run_key]
    result.state = {"v": STATE_VERSION, "pending": pending, "handed": handed}
    return result
