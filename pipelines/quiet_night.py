"""A quiet night: when nothing the nightly result depends on has changed, the cross-agency stages are skipped.

The nightly result (crosswalk, partner-tier tables, release) is a function of its inputs: the current
snapshot (which accepted file holds each period, by manifest id and SHA-256), the key ids, the partnership
and settings (agreements, contracts, indicator definitions, linkage settings, c2c's own version), the
linkage model in use, reviewers' pending decisions and the warehouse it writes to. After every successful
nightly run :func:`record_inputs` writes a fingerprint of those inputs next to the linkage state; the next
run compares (:func:`nothing_changed`). Equal fingerprints and the same current release: the night runs only
the stages that do not depend on new data (current snapshots and their checks, raw-data retention, the data
quality scorecard); no linkage, no load, no release, no audit entry (retention records what it destroys).

The fingerprint holds ids, SHA-256s, key ids and content hashes only: no value, no key.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from assets import names
from pipelines.settings import Settings
from stages.hub import current_release_id
from stages.intake import ManifestStore

STATE_FILE = "nightly_inputs.json"
QUIET_ASSETS = (names.CURRENT_SNAPSHOTS, names.RAW_RETENTION, names.DATA_QUALITY_SCORECARD)
"""What a quiet night still runs: nothing here depends on new data or writes the warehouse tables."""
_PACKAGE_SETTINGS = Path(__file__).resolve().parents[1] / "schemas"


def _tree_digest(*roots: Path | None) -> str:
    """SHA-256 over every regular file under ``roots`` (relative path and content), in a fixed order."""
    h = hashlib.sha256()
    for root in roots:
        if root is None or not root.exists():
            continue
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            h.update(str(path.relative_to(root.parent if root.is_file() else root)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _version() -> str:
    try:
        return metadata.version("c2c")
    except metadata.PackageNotFoundError:
        return "unknown"


def nightly_inputs(settings: Settings, store: ManifestStore, key_labels: dict[str, str]) -> dict[str, Any]:
    """Everything the nightly result depends on, as ids and hashes (safe to keep next to the linkage state)."""
    snapshot = {
        f"{agency}/{extract}": sorted([str(period), int(e.id), str(e.sha256)] for period, e in owners.items())
        for (agency, extract), owners in sorted(store.current_snapshot().items())
    }
    env_dirs = [d for d in (settings.agreements_dir, settings.extracts_dir) if d is not None]
    linkage = settings.linkage_dir
    decisions = linkage / "review" / "decisions.csv"
    url = make_url(settings.warehouse_url).render_as_string(hide_password=True)
    return {
        "snapshot": snapshot,
        "keys": dict(sorted(key_labels.items())),
        "settings": _tree_digest(_PACKAGE_SETTINGS, settings.partnership, *env_dirs),
        "c2c_version": _version(),
        "models": sorted(p.name for p in (linkage / "models").glob("*.json")) if (linkage / "models").is_dir() else [],
        "pending_decisions": _tree_digest(decisions) if decisions.exists() else None,
        "warehouse": [url, settings.warehouse_schema or ""],
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _current_release(engine: Engine) -> int | None:
    return current_release_id(engine)


def nothing_changed(settings: Settings, store: ManifestStore, key_labels: dict[str, str], engine: Engine) -> int | None:
    """The current release id when nothing changed since the last successful nightly run; else None."""
    path = settings.linkage_dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint(nightly_inputs(settings, store, key_labels)):
        return None
    current = _current_release(engine)
    if current is None or current != state.get("release_id"):
        return None
    return current


def record_inputs(settings: Settings, store: ManifestStore, key_labels: dict[str, str], engine: Engine) -> None:
    """After a successful nightly run: the fingerprint of what it read and the release it left current."""
    state = {"fingerprint": fingerprint(nightly_inputs(settings, store, key_labels)), "release_id": _current_release(engine)}
    path = settings.linkage_dir / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def forget_inputs(settings: Settings) -> None:
    """The next night runs in full (a failed or partial nightly run leaves nothing to compare with)."""
    (settings.linkage_dir / STATE_FILE).unlink(missing_ok=True)


def run_nightly(nightly_job, instance, run_config: dict, settings: Settings, store: ManifestStore,  # type: ignore[no-untyped-def]
                key_labels: dict[str, str], engine: Engine, echo, tags: dict[str, str] | None = None) -> tuple[Any, int | None]:
    """Run the nightly job, or only :data:`QUIET_ASSETS` when nothing changed. Returns (result, quiet release id)."""
    from dagster import AssetKey

    quiet_release = nothing_changed(settings, store, key_labels, engine)
    if quiet_release is not None:
        echo(f"c2c: nothing new since release {quiet_release}: no linkage, no load, no new release")
        selection = [AssetKey(a) for a in QUIET_ASSETS]
        return nightly_job.execute_in_process(instance=instance, run_config=run_config, tags=tags, raise_on_error=False,
                                              asset_selection=selection), quiet_release
    forget_inputs(settings)
    result = nightly_job.execute_in_process(instance=instance, run_config=run_config, tags=tags, raise_on_error=False)
    if result.success:
        record_inputs(settings, store, key_labels, engine)
    return result, None
