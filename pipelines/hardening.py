"""Data at rest private to the hub's user: umask 077 at every entry point, and `c2c doctor`'s check.

Every file the hub writes is 0600 and every folder 0700 (warehouse SQLite, linkage area, landing zone,
keys, Dagster home, reports, alerts). The one exception is the drop folder: it is the agencies' door
(each agency reads its own ``feedback/`` reports there), so its modes are the partnership's set-up,
not the hub's, and the doctor leaves it out.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pipelines.settings import Settings

HUB_UMASK = 0o077


def apply_umask() -> int:
    """Make everything this process (and its children) creates private to its user; returns the old umask."""
    return os.umask(HUB_UMASK)


@dataclass(frozen=True)
class LoosePath:
    path: Path
    mode: int
    is_dir: bool

    def describe(self) -> str:
        want = "0700" if self.is_dir else "0600"
        kind = "folder" if self.is_dir else "file"
        return f"{self.mode:04o} {kind} {self.path} (should be {want}: run `chmod {want[1:]} {self.path}` or `c2c doctor --fix`)"


def hub_roots(settings: Settings) -> list[Path]:
    """The places the hub writes (the drop folder is the agencies' and is not one of them)."""
    roots = [settings.home, settings.landing_dir, settings.linkage_dir, settings.dagster_home, settings.key_file.parent]
    if settings.warehouse_url.startswith("sqlite:///"):
        roots.append(Path(settings.warehouse_url.removeprefix("sqlite:///")))
    if settings.alerts_file is not None:
        roots.append(settings.alerts_file)
    out: list[Path] = []
    for root in roots:
        if root not in out:
            out.append(root)
    return out


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def find_loose(settings: Settings) -> list[LoosePath]:
    """Every file or folder under the hub's places that group or others may read, write or enter
    (symbolic links are not followed; the drop folder is skipped)."""
    drop = settings.drop_dir.absolute()
    seen: set[Path] = set()
    loose: list[LoosePath] = []

    def check(path: Path) -> None:
        if path in seen or _inside(path, drop):
            return
        seen.add(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            return
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            loose.append(LoosePath(path, mode, stat.S_ISDIR(st.st_mode)))

    for root in hub_roots(settings):
        root = root.absolute()
        check(root)
        if not root.is_dir() or root.is_symlink() or _inside(root, drop):
            continue
        for folder, dirs, files in os.walk(root, followlinks=False):
            here = Path(folder)
            dirs[:] = [d for d in dirs if not _inside(here / d, drop)]
            for name in dirs + files:
                check(here / name)
    return sorted(loose, key=lambda p: str(p.path))


def tighten(loose: list[LoosePath]) -> None:
    """chmod each loose path to 0700 (folders) or 0600 (files), through a descriptor opened without
    following links (a path swapped for a link meanwhile is left alone)."""
    for item in loose:
        try:
            fd = os.open(item.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.fchmod(fd, 0o700 if stat.S_ISDIR(os.fstat(fd).st_mode) else 0o600)
        finally:
            os.close(fd)
