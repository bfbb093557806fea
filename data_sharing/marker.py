"""The ``<name>.done`` completion marker next to a data file: empty, or JSON control totals.

A marker is read like every entry of the drop folder (:mod:`data_sharing.dropsafe`): opened without
following a link and without blocking, checked to be a regular file with ``fstat``, and read with a
size cap. A marker that is a link, a FIFO, a device, a folder or too large is never read: it is recorded
with a problem, and nothing of what it points at is echoed anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_sharing.dropsafe import UnsafeEntry, open_dir_chain, open_entry, read_fd, split_rel

MARKER_SUFFIX = ".done"
MARKER_MAX_BYTES = 4096  # a marker holds at most a few numbers and a SHA-256
_SHAPE = 'JSON like {"rows": 1234, "sha256": "..."}'
_NOT_READ = {
    "symlink": "the .done marker is a symbolic link; links are never followed. Put a real (empty or JSON) file there",
    "hardlink": "the .done marker is a hard link (it has other names on the server); links are never read",
    "folder": "the .done marker is a folder; it must be an empty file or a small JSON file",
    "special": "the .done marker is not a regular file (a pipe, socket or device); it was not read",
    "too_large": f"the .done marker is larger than {MARKER_MAX_BYTES:,} bytes; it must be empty or a small JSON file",
}


@dataclass(frozen=True)
class Marker:
    """The ``<name>.done`` marker next to a data file: empty, or JSON control totals."""

    present: bool
    sha256_of_marker: str | None = None
    rows: int | None = None
    sha256: str | None = None
    confirm_row_drop: bool = False
    problem: str | None = None
    identity: tuple[int, int, int, int] | None = None  # (dev, ino, size, mtime_ns) of the file read

    @classmethod
    def absent(cls) -> Marker:
        return cls(present=False)

    @classmethod
    def read(cls, path: Path, *, drop_root: Path | None = None) -> Marker:
        """Read a marker. With ``drop_root``, every folder from there down is entered without following links;
        without it, only the marker itself is opened with ``O_NOFOLLOW``."""
        path = Path(path)
        if drop_root is not None:
            rel = os.path.relpath(path, drop_root).replace(os.sep, "/")
            root = Path(drop_root)
        else:
            rel, root = path.name, path.parent
        try:
            folders, name = split_rel(rel)
            with open_dir_chain(root, folders) as dir_fd:
                fd, st = open_entry(dir_fd, name)
                try:
                    raw = read_fd(fd, MARKER_MAX_BYTES)
                finally:
                    os.close(fd)
        except UnsafeEntry as unsafe:
            if unsafe.kind == "gone":
                return cls.absent()
            kind = unsafe.kind if unsafe.kind in _NOT_READ else "special"
            digest = hashlib.sha256(f"marker-{kind}".encode()).hexdigest()
            return cls(present=True, sha256_of_marker=digest, problem=_NOT_READ[kind])
        except FileNotFoundError:
            return cls.absent()
        except OSError:
            return cls(present=True, problem="the .done marker cannot be read")
        return cls.parse(raw, identity=(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))

    @classmethod
    def parse(cls, raw: bytes, *, identity: tuple[int, int, int, int] | None = None) -> Marker:
        """A marker's bytes. A marker that is not empty and not the expected JSON records a problem
        (which names no value and no key from the marker)."""
        digest = hashlib.sha256(raw).hexdigest()
        base: dict[str, Any] = {"present": True, "sha256_of_marker": digest, "identity": identity}
        if not raw.strip():
            return cls(**base)
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return cls(**base, problem=f"the .done marker is neither empty nor {_SHAPE}")
        if not isinstance(data, dict):
            return cls(**base, problem=f"the .done marker must be a JSON object like {_SHAPE[5:]}")
        unknown = set(data) - {"rows", "sha256", "confirm_row_drop"}
        rows, sha, confirm = data.get("rows"), data.get("sha256"), data.get("confirm_row_drop", False)
        problem = None
        if unknown:
            problem = (f"the .done marker has {len(unknown)} unknown key(s) (not shown); "
                       "allowed: rows, sha256, confirm_row_drop")
        elif rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            problem = 'in the .done marker, "rows" must be a whole number of data rows (header excluded)'
        elif sha is not None and (not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
            problem = 'in the .done marker, "sha256" must be the 64 hexadecimal characters of the file\'s SHA-256'
        elif not isinstance(confirm, bool):
            problem = 'in the .done marker, "confirm_row_drop" must be true or false'
        if problem:
            return cls(**base, problem=problem)
        return cls(**base, rows=rows, sha256=sha.lower() if isinstance(sha, str) else None, confirm_row_drop=bool(confirm))
