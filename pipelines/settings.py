"""Where c2c keeps its state, and how it is configured: one data directory, overridable piece by piece.

Everything defaults to a folder under ``C2C_HOME`` (default ``./c2c-data``): the drop folder, the
encrypted landing zone, the linkage area, the key file, Dagster's home and the SQLite warehouse. Each
can be moved with its own environment variable (table in the README).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

DEFAULT_HOME = "./c2c-data"
DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "America/New_York"
# The drop folder (SPEC "How extracts arrive"): a file without a .done marker is complete when its size and
# modification time have not changed for the settle time (long enough for a paused writer); per agency
# folder and run at most so many files and bytes are taken (the rest wait for the next run).
DEFAULT_SETTLE_S = 60.0
DEFAULT_MAX_FILES = 25
DEFAULT_MAX_BYTES = 4 << 30
DEFAULT_MAX_FILE_BYTES = 2 << 30
DEFAULT_MAX_LINE_BYTES = 1 << 20
_DROP_ENV = {
    "drop_settle_s": ("C2C_DROP_SETTLE_S", float),
    "drop_max_files": ("C2C_DROP_MAX_FILES", int),
    "drop_max_bytes": ("C2C_DROP_MAX_BYTES", int),
    "drop_max_file_bytes": ("C2C_DROP_MAX_FILE_BYTES", int),
    "drop_max_line_bytes": ("C2C_DROP_MAX_LINE_BYTES", int),
}


@dataclass(frozen=True)
class Settings:
    home: Path
    drop_dir: Path
    landing_dir: Path
    linkage_dir: Path
    key_file: Path
    dagster_home: Path
    warehouse_url: str
    warehouse_schema: str | None
    nightly_cron: str
    timezone: str
    today_override: dt.date | None = None
    data_docs: bool = True
    drop_settle_s: float = DEFAULT_SETTLE_S
    drop_max_files: int = DEFAULT_MAX_FILES
    drop_max_bytes: int = DEFAULT_MAX_BYTES
    drop_max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    drop_max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    partnership: Path | None = None  # a partnership directory (C2C_PARTNERSHIP); None: the packaged reference
    alerts_file: Path | None = None
    alert_webhook: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, home: str | Path | None = None) -> Settings:
        env = os.environ if env is None else env
        root = Path(home or env.get("C2C_HOME") or DEFAULT_HOME).expanduser().absolute()

        def path(var: str, default: Path) -> Path:
            value = env.get(var)
            return Path(value).expanduser().absolute() if value else default

        today = env.get("C2C_TODAY")
        tz = env.get("C2C_TIMEZONE") or DEFAULT_TIMEZONE
        ZoneInfo(tz)  # a wrong time zone is an error now, not at 02:00
        return cls(
            home=root,
            drop_dir=path("C2C_DROP_DIR", root / "drop"),
            landing_dir=path("C2C_LANDING_DIR", root / "landing"),
            linkage_dir=path("C2C_LINKAGE_DIR", root / "linkage"),
            key_file=path("C2C_KEY_FILE", root / "keys" / "master.key"),
            dagster_home=path("DAGSTER_HOME", root / "dagster"),
            warehouse_url=env.get("C2C_WAREHOUSE_URL") or f"sqlite:///{root / 'warehouse.db'}",
            warehouse_schema=env.get("C2C_WAREHOUSE_SCHEMA") or None,
            nightly_cron=env.get("C2C_NIGHTLY_CRON") or DEFAULT_CRON,
            timezone=tz,
            today_override=dt.date.fromisoformat(today) if today else None,
            data_docs=(env.get("C2C_DATA_DOCS") or "1").strip().lower() not in ("0", "false", "no", "off"),
            **_drop_limits_from(env),
            partnership=path("C2C_PARTNERSHIP", Path()) if env.get("C2C_PARTNERSHIP") else None,
            alerts_file=path("C2C_ALERTS_FILE", root / "alerts.jsonl"),
            alert_webhook=env.get("C2C_ALERT_WEBHOOK") or None,
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def drop_limits(self):  # type: ignore[no-untyped-def]
        """The drop folder's settle time and caps, as ``data_sharing.dropsafe.DropLimits``."""
        from data_sharing.dropsafe import DropLimits

        return DropLimits(
            settle_s=self.drop_settle_s, max_files=self.drop_max_files, max_bytes=self.drop_max_bytes,
            max_file_bytes=self.drop_max_file_bytes, max_line_bytes=self.drop_max_line_bytes,
        )

    def today(self) -> dt.date:
        """The local date in the partnership's time zone (used for 'future date' and MOU windows)."""
        if self.today_override is not None:
            return self.today_override
        return dt.datetime.now(ZoneInfo(self.timezone)).date()

    def environment(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in another process (UI, daemon)."""
        out = {
            "C2C_HOME": str(self.home),
            "C2C_DROP_DIR": str(self.drop_dir),
            "C2C_LANDING_DIR": str(self.landing_dir),
            "C2C_LINKAGE_DIR": str(self.linkage_dir),
            "C2C_KEY_FILE": str(self.key_file),
            "DAGSTER_HOME": str(self.dagster_home),
            "C2C_WAREHOUSE_URL": self.warehouse_url,
            "C2C_NIGHTLY_CRON": self.nightly_cron,
            "C2C_TIMEZONE": self.timezone,
        }
        if self.warehouse_schema:
            out["C2C_WAREHOUSE_SCHEMA"] = self.warehouse_schema
        if self.today_override:
            out["C2C_TODAY"] = self.today_override.isoformat()
        if not self.data_docs:
            out["C2C_DATA_DOCS"] = "0"
        for attr, (var, _) in _DROP_ENV.items():
            out[var] = repr(getattr(self, attr)) if attr == "drop_settle_s" else str(getattr(self, attr))
        if self.partnership is not None:
            out["C2C_PARTNERSHIP"] = str(self.partnership)
        if self.alerts_file:
            out["C2C_ALERTS_FILE"] = str(self.alerts_file)
        if self.alert_webhook:
            out["C2C_ALERT_WEBHOOK"] = self.alert_webhook
        return out


def _drop_limits_from(env: Mapping[str, str]) -> dict[str, float | int]:
    """The drop folder's settle time and caps from the environment; a value that is not a positive
    number (zero allowed for the settle time) is an error now, not at 02:00."""
    out: dict[str, float | int] = {}
    for attr, (var, kind) in _DROP_ENV.items():
        raw = (env.get(var) or "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"{var} must be a {'number of seconds' if kind is float else 'whole number'}, not {raw!r}") from None
        if value < 0 or (value == 0 and attr != "drop_settle_s"):
            raise ValueError(f"{var} must be {'zero or more' if attr == 'drop_settle_s' else 'more than zero'}")
        out[attr] = value
    return out
