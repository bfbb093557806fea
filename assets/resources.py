"""Dagster resources: the only place assets get paths, the warehouse and the partnership from."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import PrivateAttr
from sqlalchemy import Engine

from data_sharing.keys import KeySet, load_keyset
from data_sharing.landing import LandingZone
from data_sharing.partnership import load_partnership
from schemas.partnership import Partnership
from stages.intake import DropSite
from warehouse.db import make_engine, upgrade
from warehouse.manifest import ManifestStore


class C2CPaths(ConfigurableResource):
    """The data directory and its parts (defaults: ``pipelines.settings.Settings``)."""

    home: str
    drop_dir: str
    landing_dir: str
    linkage_dir: str
    timezone: str = "America/New_York"
    today_override: str = ""
    data_docs: bool = True
    drop_settle_s: float = 60.0
    drop_max_files: int = 25
    drop_max_bytes: int = 4 << 30
    drop_max_file_bytes: int = 2 << 30
    drop_max_line_bytes: int = 1 << 20

    @property
    def drop(self) -> Path:
        return Path(self.drop_dir)

    def drop_limits(self):  # type: ignore[no-untyped-def]
        from data_sharing.dropsafe import DropLimits

        return DropLimits(
            settle_s=self.drop_settle_s, max_files=self.drop_max_files, max_bytes=self.drop_max_bytes,
            max_file_bytes=self.drop_max_file_bytes, max_line_bytes=self.drop_max_line_bytes,
        )

    def drop_site(self) -> DropSite:
        """The plain view the intake stage works with (today's date read now)."""
        return DropSite(Path(self.drop_dir), Path(self.landing_dir), self.today(), self.drop_limits(), self.drop_settle_s)

    def today(self) -> dt.date:
        if self.today_override:
            return dt.date.fromisoformat(self.today_override)
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo(self.timezone)).date()


class WarehouseResource(ConfigurableResource):
    """The warehouse database (SQLite by default, PostgreSQL in production). Migrated on first use."""

    url: str
    db_schema: str = ""
    _engine: Engine | None = PrivateAttr(default=None)

    def engine(self) -> Engine:
        if self._engine is None:
            engine = make_engine(self.url, self.db_schema or None)
            upgrade(engine)
            self._engine = engine
        return self._engine

    def manifest(self) -> ManifestStore:
        return ManifestStore(self.engine())


class PartnershipResource(ConfigurableResource):
    """The MOUs and extract contracts, loaded and cross-checked (a wrong file fails loudly)."""

    agreements_dir: str = ""
    extracts_dir: str = ""
    root: str = ""  # a partnership directory (C2C_PARTNERSHIP); wins over the two folders
    _partnership: Partnership | None = PrivateAttr(default=None)

    def load(self) -> Partnership:
        if self._partnership is None:
            self._partnership = load_partnership(self.agreements_dir or None, self.extracts_dir or None, root=self.root or None)
        return self._partnership


class AlertsResource(ConfigurableResource):
    """Where a failed run is reported (from the settings: ``C2C_ALERTS_FILE``, ``C2C_ALERT_WEBHOOK``)."""

    file: str = ""  # a JSON-lines file; empty: none
    webhook: str = ""  # a URL the alert is POSTed to; empty: none


class KeysResource(ConfigurableResource):
    """The hub's key set: a 0600 key file, or ``C2C_MASTER_KEY`` from a secret manager. Never logged."""

    key_file: str
    master_key: str = ""  # an EnvVar("C2C_MASTER_KEY") from the settings when the key comes from a secret manager

    def load(self) -> KeySet:
        return load_keyset(Path(self.key_file), env={"C2C_MASTER_KEY": self.master_key} if self.master_key else {})

    def landing_zone(self, root: str | Path) -> LandingZone:
        return LandingZone(Path(root), self.load())
