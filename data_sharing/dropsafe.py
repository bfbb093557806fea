"""Reading the drop folder as hostile ground: no link followed, no blocking on special files, bounded reads.

Every entry under the drop folder is opened by walking from the drop folder itself, one component at a
time, with ``O_NOFOLLOW`` (and ``O_NONBLOCK``, so a FIFO or device never blocks), then checked with
``fstat`` on the open descriptor: a regular file within a size bound. Content is read from that one
descriptor; nothing is re-opened by name. Linux (POSIX ``dir_fd``) only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | _CLOEXEC
CHUNK = 1 << 20


class UnsafeEntry(Exception):
    """An entry that is not a regular file, or cannot be opened safely. ``kind`` says what it is."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind  # symlink | hardlink | folder | special | gone | too_large | changed | outside


@dataclass(frozen=True)
class Snapshot:
    """What one descriptor held: its bytes, and the identity and signature of the file read."""

    data: bytes
    dev: int
    ino: int
    size: int
    mtime_ns: int


def _kind_of_errno(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return "symlink"  # O_NOFOLLOW on a link
    if exc.errno == errno.ENOENT:
        return "gone"
    if exc.errno == errno.ENOTDIR:
        return "symlink_or_file"
    return "special"  # ENXIO (a socket), EACCES, ...


def kind_of_stat(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "special"


@contextlib.contextmanager
def open_dir_chain(root: Path, parts: Sequence[str]) -> Iterator[int]:
    """A descriptor of ``root/parts...`` (a folder), reached without following any link below ``root``."""
    fds: list[int] = []
    try:
        fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC))
        for part in parts:
            try:
                fds.append(os.open(part, DIR_FLAGS, dir_fd=fds[-1]))
            except OSError as exc:
                kind = _kind_of_errno(exc)
                if kind == "symlink_or_file":
                    st = os.lstat(part, dir_fd=fds[-1])
                    kind = "symlink" if stat.S_ISLNK(st.st_mode) else kind_of_stat(st)
                raise UnsafeEntry(kind) from None
        yield fds[-1]
    finally:
        for fd in reversed(fds):
            os.close(fd)


def open_entry(dir_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open ``name`` in the folder ``dir_fd`` without following a link or blocking; (fd, fstat) of a regular file.

    Raises :class:`UnsafeEntry` for anything else (the descriptor is closed), and for a file with other
    names (a hard link: its content may belong to anyone on the server).
    """
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        kind = _kind_of_errno(exc)
        if kind == "symlink_or_file":
            kind = "special"
        raise UnsafeEntry(kind) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        raise UnsafeEntry(kind_of_stat(st) if not stat.S_ISREG(st.st_mode) else "hardlink")
    return fd, st


def read_fd(fd: int, limit: int) -> bytes:
    """Read a descriptor from its start to its end, at most ``limit`` bytes (more raises ``too_large``)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    total = 0
    while True:
        block = os.read(fd, min(CHUNK, limit + 1 - total))
        if not block:
            break
        chunks.append(block)
        total += len(block)
        if total > limit:
            raise UnsafeEntry("too_large")
    return b"".join(chunks)


def hash_fd(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    h = hashlib.sha256()
    while block := os.read(fd, CHUNK):
        h.update(block)
    return h.hexdigest()


def split_rel(rel_path: str) -> tuple[list[str], str]:
    """``agency/students.csv`` -> (["agency"], "students.csv"); refuses '..', '.' and empty components."""
    parts = rel_path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafeEntry("outside")
    return parts[:-1], parts[-1]


def read_entry(root: Path, rel_path: str, limit: int, *, after_read=None) -> Snapshot:  # type: ignore[no-untyped-def]
    """Read one entry under the drop folder from one descriptor, and check it did not change meanwhile.

    Raises :class:`UnsafeEntry` (``changed`` when size, modification time or the file behind the name
    moved during the read). ``after_read`` is a test hook called between the read and the re-check.
    """
    folders, name = split_rel(rel_path)
    with open_dir_chain(root, folders) as dir_fd:
        fd, before = open_entry(dir_fd, name)
        try:
            if before.st_size > limit:
                raise UnsafeEntry("too_large")
            data = read_fd(fd, limit)
            if after_read is not None:
                after_read()
            after = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            named = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise UnsafeEntry("changed") from None
    same = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) == (len(data), named.st_mtime_ns)
    if not same or (named.st_dev, named.st_ino, named.st_size) != (after.st_dev, after.st_ino, after.st_size):
        raise UnsafeEntry("changed")
    return Snapshot(data, after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns)


def hash_entry(root: Path, rel_path: str) -> tuple[str, int, int]:
    """(SHA-256, size, mtime_ns) of a regular file under the drop folder, read from one descriptor."""
    folders, name = split_rel(rel_path)
    with open_dir_chain(root, folders) as dir_fd:
        fd, st = open_entry(dir_fd, name)
        try:
            digest = hash_fd(fd)
            after = os.fstat(fd)
        finally:
            os.close(fd)
    if (st.st_size, st.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise UnsafeEntry("changed")
    return digest, after.st_size, after.st_mtime_ns


def unlink_if_same(root: Path, rel_path: str, snapshot: Snapshot) -> bool:
    """Remove the entry only if the name still holds the very file that was read, unchanged."""
    folders, name = split_rel(rel_path)
    try:
        with open_dir_chain(root, folders) as dir_fd:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (
                snapshot.dev, snapshot.ino, snapshot.size, snapshot.mtime_ns
            ):
                return False
            os.unlink(name, dir_fd=dir_fd)
            return True
    except (UnsafeEntry, FileNotFoundError):
        return False


GIB = 1 << 30


@dataclass(frozen=True)
class DropLimits:
    """Bounds on what one run takes from the drop folder (``Settings`` holds the configured values).

    ``settle_s``: a file without a ``.done`` marker is complete only when its size and modification time
    have not changed for this long. Per agency folder and run: at most ``max_files`` files and
    ``max_bytes`` bytes are taken (the rest wait for the next run); one file may hold at most
    ``max_file_bytes`` bytes and one line at most ``max_line_bytes``.
    """

    settle_s: float = 60.0
    max_files: int = 25
    max_bytes: int = 4 * GIB
    max_file_bytes: int = 2 * GIB
    max_line_bytes: int = 1 << 20
