"""Where c2c keeps its state, and how it is configured: one data directory, overridable piece by piece.

Everything defaults to a folder under ``C2C_HOME`` (default ``./c2c-data``): the drop folder, the
encrypted landing zone, the linkage area, the key file, Dagster's home and the SQLite warehouse.
The hub's own settings live in ``$C2C_HOME/c2c.yaml`` (written by ``c2c init``), read by every
command; each can be overridden by its environment variable (table in the README) and, in the CLI,
by its flag: flags > environment > c2c.yaml > defaults. This module is the one reader of both.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
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


# Settings of this process, not of the hub (not in c2c.yaml): the master key from a secret manager, a
# city's own MOU and contract folders, and two performance knobs. ``Settings.from_env(mapping)`` takes
# them from the mapping, else from this process's environment (the lower layers used to read them there
# at use; they now take them as parameters from these settings).
MASTER_KEY_ENV = "C2C_MASTER_KEY"
_PROCESS_ENV = ("C2C_MASTER_KEY", "C2C_AGREEMENTS_DIR", "C2C_EXTRACTS_DIR", "C2C_HASH_WORKERS", "C2C_LINKAGE_MEMORY_LIMIT")

CONFIG_FILE = "c2c.yaml"

# c2c.yaml key -> (environment variable, is a path). The environment wins over the file.
CONFIG_KEYS: dict[str, tuple[str, bool]] = {
    "drop": ("C2C_DROP_DIR", True),
    "warehouse": ("C2C_WAREHOUSE_URL", False),
    "schema": ("C2C_WAREHOUSE_SCHEMA", False),
    "partnership": ("C2C_PARTNERSHIP", True),
    "landing": ("C2C_LANDING_DIR", True),
    "linkage": ("C2C_LINKAGE_DIR", True),
    "key_file": ("C2C_KEY_FILE", True),
    "dagster_home": ("DAGSTER_HOME", True),
    "nightly_cron": ("C2C_NIGHTLY_CRON", False),
    "timezone": ("C2C_TIMEZONE", False),
    # the linkage backend (duckdb | spark) and where Spark runs (docs/scale.md)
    "linkage_backend": ("C2C_LINKAGE_BACKEND", False),
    "spark_master": ("C2C_SPARK_MASTER", False),
    "spark_executor_memory": ("C2C_SPARK_EXECUTOR_MEMORY", False),
    "spark_driver_memory": ("C2C_SPARK_DRIVER_MEMORY", False),
    "spark_shuffle_partitions": ("C2C_SPARK_SHUFFLE_PARTITIONS", False),
    "spark_checkpoint_dir": ("C2C_SPARK_CHECKPOINT_DIR", True),
    "spark_local_dir": ("C2C_SPARK_LOCAL_DIR", True),
}
LINKAGE_BACKENDS = ("duckdb", "spark")
SPARK_EXTRA = "pip install -e '.[spark]'"
WAREHOUSE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2")
PG_EXAMPLE = "postgresql+psycopg2://USER@HOST:5432/DATABASE"


class SettingsError(ValueError):
    """A setting (flag, environment variable or c2c.yaml entry) is wrong; the message says how to fix it."""


def read_config_file(home: Path) -> dict[str, str]:
    """The entries of ``home/c2c.yaml`` as strings (empty when there is no file); unknown keys are refused."""
    import yaml

    path = home / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path} cannot be read ({type(exc).__name__}); fix it or write it again with `c2c init`") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path} must be a mapping of settings (key: value); write it again with `c2c init`")
    unknown = sorted(str(k) for k in data if k not in CONFIG_KEYS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}")
    return {str(k): str(v) for k, v in data.items() if v is not None and str(v).strip()}


def write_config_file(home: Path, values: Mapping[str, str]) -> Path:
    """Write ``home/c2c.yaml`` (mode 0600) with ``values`` (keys of :data:`CONFIG_KEYS`), atomically."""
    import yaml

    unknown = [k for k in values if k not in CONFIG_KEYS]
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(unknown)}")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / CONFIG_FILE
    tmp = path.with_name(f".{CONFIG_FILE}.tmp")
    text = "# c2c hub settings (written by `c2c init`); environment variables and flags override them.\n"
    text += yaml.safe_dump({k: values[k] for k in CONFIG_KEYS if k in values}, sort_keys=False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def process_environment() -> dict[str, str]:
    """A copy of this process's environment (for a child process's ``env``, or ``Settings.from_env``)."""
    return dict(os.environ)


def process_env_agrees(var: str, value: str) -> bool:
    """This process's environment holds ``var`` with exactly ``value`` (a Dagster ``EnvVar`` resolves the same)."""
    return os.environ.get(var) == value


def point_dagster_at(dagster_home: Path) -> None:
    """Point this process's Dagster (``DagsterInstance.get()``, the UI and daemon it starts) at ``dagster_home``."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)


def debug_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``C2C_DEBUG`` set (and not 0): errors show their traceback, as with ``--debug``."""
    env = os.environ if env is None else env
    return (env.get("C2C_DEBUG") or "0").strip().lower() not in ("", "0", "false", "no", "off")


def check_warehouse_url(url: str) -> str:
    """Refuse a warehouse URL c2c cannot use, with the spelling that works; return it unchanged."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url.startswith("postgres://"):
        fixed = "postgresql+psycopg2://" + url[len("postgres://"):]
        try:
            fixed = make_url(fixed).render_as_string(hide_password=True)
        except ArgumentError:
            fixed = PG_EXAMPLE
        raise SettingsError(f"the warehouse URL must start with postgresql+psycopg2:// not postgres://: use {fixed}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(f"the warehouse URL is not a URL: use sqlite:///PATH or {PG_EXAMPLE}") from None
    if parsed.drivername not in WAREHOUSE_SCHEMES:
        raise SettingsError(f"unsupported warehouse URL scheme {parsed.drivername!r}: use sqlite:///PATH or {PG_EXAMPLE}")
    if parsed.drivername != "sqlite" and not parsed.database:
        raise SettingsError(f"the warehouse URL names no database: use {PG_EXAMPLE}")
    return url


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
    config_file: Path | None = None  # the c2c.yaml these settings were read from (None: there is none)
    agreements_dir: Path | None = None  # C2C_AGREEMENTS_DIR: a city's own MOUs (None: the shipped ones)
    extracts_dir: Path | None = None  # C2C_EXTRACTS_DIR: a city's own extract contracts (None: the shipped ones)
    hash_workers: int | None = None  # C2C_HASH_WORKERS: helper processes for batch HMAC (None: cores - 1, at most 7)
    linkage_memory_limit: str | None = None  # C2C_LINKAGE_MEMORY_LIMIT: DuckDB's memory limit in linkage
    linkage_backend: str = "duckdb"  # C2C_LINKAGE_BACKEND: duckdb or spark (Splink's engine in linkage)
    spark_master: str | None = None  # C2C_SPARK_MASTER (None: local[*])
    spark_executor_memory: str | None = None  # C2C_SPARK_EXECUTOR_MEMORY, e.g. 8g
    spark_driver_memory: str | None = None  # C2C_SPARK_DRIVER_MEMORY, e.g. 4g
    spark_shuffle_partitions: int | None = None  # C2C_SPARK_SHUFFLE_PARTITIONS (None: 8)
    spark_checkpoint_dir: Path | None = None  # C2C_SPARK_CHECKPOINT_DIR (None: <linkage>/spark/checkpoints)
    spark_local_dir: Path | None = None  # C2C_SPARK_LOCAL_DIR (None: <linkage>/spark/local)
    master_key: str | None = field(default=None, repr=False)  # C2C_MASTER_KEY (a secret: never shown)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, home: str | Path | None = None) -> Settings:
        if env is None:
            env = os.environ
        else:  # the secret and the process-level knobs come from this process unless the mapping names them
            env = {**{v: os.environ[v] for v in _PROCESS_ENV if os.environ.get(v)}, **env}
        root = Path(home or env.get("C2C_HOME") or DEFAULT_HOME).expanduser().absolute()
        config = read_config_file(root)
        # c2c.yaml first, the environment over it (relative paths in c2c.yaml are relative to the home)
        env = {**{CONFIG_KEYS[k][0]: str((root / Path(v).expanduser()) if CONFIG_KEYS[k][1] else v)
                  for k, v in config.items()},
               **{k: v for k, v in env.items() if v}}

        def path(var: str, default: Path) -> Path:
            value = env.get(var)
            return Path(value).expanduser().absolute() if value else default

        today = env.get("C2C_TODAY")
        tz = env.get("C2C_TIMEZONE") or DEFAULT_TIMEZONE
        try:
            ZoneInfo(tz)  # a wrong time zone is an error now, not at 02:00
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise SettingsError(f"unknown time zone {tz!r}: use an IANA name such as {DEFAULT_TIMEZONE}") from exc
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
            config_file=(root / CONFIG_FILE) if config else None,
            agreements_dir=path("C2C_AGREEMENTS_DIR", Path()) if env.get("C2C_AGREEMENTS_DIR") else None,
            extracts_dir=path("C2C_EXTRACTS_DIR", Path()) if env.get("C2C_EXTRACTS_DIR") else None,
            hash_workers=_hash_workers(env.get("C2C_HASH_WORKERS")),
            linkage_memory_limit=(env.get("C2C_LINKAGE_MEMORY_LIMIT") or "").strip() or None,
            **_linkage_backend_from(env, path),
            master_key=env.get(MASTER_KEY_ENV) or None,
        )

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def drop_limits(self):  # type: ignore[no-untyped-def]
        """The drop folder's settle time and caps, as ``data_sharing.dropsafe.DropLimits`` (through ``stages.intake``)."""
        from stages.intake import DropLimits

        return DropLimits(
            settle_s=self.drop_settle_s, max_files=self.drop_max_files, max_bytes=self.drop_max_bytes,
            max_file_bytes=self.drop_max_file_bytes, max_line_bytes=self.drop_max_line_bytes,
        )

    def key_env(self) -> dict[str, str]:
        """What ``data_sharing.keys.load_keyset`` takes besides the key file: the master key, when one is set."""
        return {MASTER_KEY_ENV: self.master_key} if self.master_key else {}

    def apply_process_defaults(self) -> None:
        """Hand this process's knobs to the layers below (helper processes for hashing, linkage memory)."""
        from stages.process import configure_process

        configure_process(hash_workers=self.hash_workers, linkage_memory_limit=self.linkage_memory_limit,
                          linkage_backend=self.linkage_backend, spark={
                              "master": self.spark_master, "executor_memory": self.spark_executor_memory,
                              "driver_memory": self.spark_driver_memory, "shuffle_partitions": self.spark_shuffle_partitions,
                              "checkpoint_dir": self.spark_checkpoint_dir, "local_dir": self.spark_local_dir})

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
        for var, value in (("C2C_AGREEMENTS_DIR", self.agreements_dir), ("C2C_EXTRACTS_DIR", self.extracts_dir),
                           ("C2C_HASH_WORKERS", self.hash_workers), ("C2C_LINKAGE_MEMORY_LIMIT", self.linkage_memory_limit)):
            if value is not None:
                out[var] = str(value)
        if self.linkage_backend != "duckdb":
            out["C2C_LINKAGE_BACKEND"] = self.linkage_backend
        for key in ("spark_master", "spark_executor_memory", "spark_driver_memory", "spark_shuffle_partitions",
                    "spark_checkpoint_dir", "spark_local_dir"):
            if getattr(self, key) is not None:
                out[CONFIG_KEYS[key][0]] = str(getattr(self, key))
        return out

    def subprocess_environment(self) -> dict[str, str]:
        """This process's environment with these settings over it (the master key passes through as it came)."""
        return {**os.environ, **self.environment()}


def _hash_workers(raw: str | None) -> int | None:
    """``C2C_HASH_WORKERS``: a whole number of helper processes (0: none); unset: the default; not a number: 0."""
    if raw is None or not raw.strip():
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


def _drop_limits_from(env: Mapping[str, str]) -> dict[str, Any]:
    """The drop folder's settle time and caps from the environment; a value that is not a positive
    number (zero allowed for the settle time) is an error now, not at 02:00."""
    out: dict[str, Any] = {}
    for attr, (var, kind) in _DROP_ENV.items():
        raw = (env.get(var) or "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{var} must be a {'number of seconds' if kind is float else 'whole number'}, not {raw!r}") from None
        if value < 0 or (value == 0 and attr != "drop_settle_s"):
            raise SettingsError(f"{var} must be {'zero or more' if attr == 'drop_settle_s' else 'more than zero'}")
        out[attr] = value
    return out


def _linkage_backend_from(env: Mapping[str, str], path: Any) -> dict[str, Any]:
    """The linkage backend and Spark's settings; an unknown backend, or spark without pyspark, is an error now."""
    backend = (env.get("C2C_LINKAGE_BACKEND") or "duckdb").strip().lower() or "duckdb"
    if backend not in LINKAGE_BACKENDS:
        raise SettingsError(f"C2C_LINKAGE_BACKEND must be one of {', '.join(LINKAGE_BACKENDS)}, not {backend!r}")
    if backend == "spark":
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise SettingsError(f"the spark linkage backend needs pyspark: {SPARK_EXTRA}") from None
    raw = (env.get("C2C_SPARK_SHUFFLE_PARTITIONS") or "").strip()
    try:
        partitions = int(raw) if raw else None
    except ValueError:
        partitions = 0
    if partitions is not None and partitions < 1:
        raise SettingsError(f"C2C_SPARK_SHUFFLE_PARTITIONS must be a whole number above zero, not {raw!r}")

    def text(var: str) -> str | None:
        return (env.get(var) or "").strip() or None

    return {
        "linkage_backend": backend, "spark_master": text("C2C_SPARK_MASTER"),
        "spark_executor_memory": text("C2C_SPARK_EXECUTOR_MEMORY"), "spark_driver_memory": text("C2C_SPARK_DRIVER_MEMORY"),
        "spark_shuffle_partitions": partitions,
        "spark_checkpoint_dir": path("C2C_SPARK_CHECKPOINT_DIR", Path()) if env.get("C2C_SPARK_CHECKPOINT_DIR") else None,
        "spark_local_dir": path("C2C_SPARK_LOCAL_DIR", Path()) if env.get("C2C_SPARK_LOCAL_DIR") else None,
    }
