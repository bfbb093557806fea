"""The audit chain's key for this process: the hub's ``audit`` purpose key (issue 20 item 11).

``warehouse.audit`` never loads keys itself (it does not import the key layer); the doors register where
the key comes from, per warehouse (``stages.hub.register_audit_key``): the CLI for its settings,
``build_definitions`` for runs.
Nothing here imports Dagster, so the CLI can call it on every command.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TypeVar


class _HasKeyFile(Protocol):
    @property
    def key_file(self) -> Path: ...
    @property
    def warehouse_url(self) -> str: ...
    @property
    def warehouse_schema(self) -> str | None: ...

    def key_env(self) -> dict[str, str]: ...


S = TypeVar("S", bound=_HasKeyFile)


def use_hub_audit_key(key_file: str | Path, warehouse_url: str, warehouse_schema: str | None = None,
                      key_env: Mapping[str, str] | None = None) -> None:
    """Key the audit chain of the hub's warehouse with the hub's ``audit`` key (loaded on each append, so
    a rotation takes effect at once; no key available means unkeyed, which a keyed log refuses).
    ``key_env``: the master key from the settings (``Settings.key_env()``), if there is one."""
    from stages.hub import register_audit_key

    register_audit_key(key_file, warehouse_url, warehouse_schema, key_env)


def keyed_audit(settings: S) -> S:
    """Register the hub's audit key for ``settings`` and hand the settings back."""
    use_hub_audit_key(settings.key_file, settings.warehouse_url, settings.warehouse_schema, settings.key_env())
    return settings
