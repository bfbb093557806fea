"""Helpers for the operations tests: a small synthetic city, its environment, and the Dagster webserver.

Test scaffolding only; nothing here is imported by the pipeline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TODAY = "2026-11-23"

# Four of the nine extracts: enough for a cross-agency indicator (chronic absence by DHS program), linkage
# between two agencies, and a pipeline run well under half a minute.
SMALL_CITY = ("fps/students", "fps/attendance", "dhs/clients", "dhs/program_enrollments")


def small_city(out: Path, children: int = 60, seed: int = 7, extracts: tuple[str, ...] = SMALL_CITY) -> Path:
    """A synthetic city's drop folder holding only ``extracts``; returns the drop folder."""
    from synthetic.city import generate_city

    generate_city(children, seed, out)
    drop = out / "drop"
    for path in sorted(drop.glob("*/*.csv")):
        agency, extract = path.parent.name, path.name.rsplit("_", 1)[0]
        if f"{agency}/{extract}" not in extracts:
            path.unlink()
    return drop


def sha256_by_drop_name(drop: Path) -> dict[str, str]:
    """drop name (``agency/file.csv``) -> SHA-256 of the file's bytes, computed here with hashlib."""
    return {
        p.relative_to(drop).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(drop.glob("*/*.csv"))
    }


def city_env(home: Path, drop: Path, **extra: str) -> dict[str, str]:
    """Settings for one isolated hub (the master key comes from the caller's environment)."""
    return {
        "C2C_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "C2C_TODAY": TODAY, "C2C_DATA_DOCS": "0",
        "C2C_DROP_DIR": str(drop), **extra,
    }


def subprocess_env(settings: dict[str, str]) -> dict[str, str]:
    """The caller's environment without any C2C_/DAGSTER_ setting but the master key, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "DAGSTER_")) or k == "C2C_MASTER_KEY"}
    env.update(settings)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def webserver(settings: dict[str, str], timeout_s: float = 90.0) -> Iterator[str]:
    """``dagster-webserver`` on a free local port over the hub's Dagster instance; yields its GraphQL URL."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=subprocess_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""
                    raise RuntimeError(f"dagster-webserver did not start: {err}") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        out = json.load(resp)
    assert not out.get("errors"), out["errors"]
    return out["data"]
