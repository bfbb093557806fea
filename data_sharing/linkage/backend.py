"""The linkage backend: DuckDB (the default) or Apache Spark for Splink's parts of training and prediction.

One linkage, two engines for its heavy part. With ``spark``:

* the records table (the variants, :mod:`.records`) is built as for DuckDB and written as a parquet file
  in the linkage area (``spark/records-<tag>.parquet``); Spark reads it, turning each Bloom filter's
  bytes into an array of 32-bit words (:func:`bloom_words_sql`);
* Splink's ``SparkAPI`` does u, EM, the pair-type priors' scoring pass and the prediction, with the
  settings' SQL generated for Spark (``dice()`` / ``hamming()`` as ``bit_count`` over the words);
* the predictions come back as parquet (``spark/predictions-<tag>/``) into the run's DuckDB
  connection, where the c2c steps -- each pair of source keys' best variant pair, guards, clustering,
  child keys, review queue, quality, state -- run unchanged: one copy of that logic, the same crosswalk
  and state files whichever backend scored the pairs.

A model's Splink JSON is stored with DuckDB SQL (:func:`splink_for_dialect` regenerates its
comparisons for the backend that uses it from the model's settings, m, u and the prior kept), so a model
trained on either backend loads on the other.

The Spark session is made once per process (:func:`spark_session`): master ``local[*]`` unless
configured, Splink's similarity jar as ``spark.jars``, few shuffle partitions (the default 200 made
training 4.4x slower on 2 cores), checkpoints and spill files in the linkage area unless configured.
"""

from __future__ import annotations

import copy
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from data_sharing.linkage.area import LinkageArea
from data_sharing.linkage.dialects import DIALECTS
from data_sharing.linkage.settings import BLOOM_COLUMNS, LinkageSettings

BACKENDS = DIALECTS  # a backend speaks its own SQL dialect
DEFAULT_BACKEND = "duckdb"
SPARK_EXTRA = "pip install -e '.[spark]'"
#: Spark's shuffle partitions when not configured: a few per core of a small machine
DEFAULT_SHUFFLE_PARTITIONS = 8


class LinkageBackendError(ValueError):
    """The linkage backend asked for cannot be used here (unknown, or its software is missing)."""


@dataclass(frozen=True)
class SparkOptions:
    """Where and how Spark runs (``C2C_SPARK_*``, read by ``pipelines.settings``); None: the default."""

    master: str | None = None  # default local[*]
    executor_memory: str | None = None
    driver_memory: str | None = None
    checkpoint_dir: Path | None = None  # default <linkage area>/spark/checkpoints
    local_dir: Path | None = None  # default <linkage area>/spark/local
    shuffle_partitions: int | None = None  # default DEFAULT_SHUFFLE_PARTITIONS


_configured: dict[str, Any] = {"backend": DEFAULT_BACKEND, "spark": SparkOptions()}
_session: dict[str, Any] = {}


def check_backend(name: str | None) -> str:
    """``name`` lower-cased if it is a backend; None or empty: the default."""
    value = (name or "").strip().lower() or DEFAULT_BACKEND
    if value not in BACKENDS:
        raise LinkageBackendError(f"linkage backend {name!r} is not one of {', '.join(BACKENDS)}")
    return value


def configure_backend(backend: str | None, spark: SparkOptions | None = None) -> None:
    """This process's default backend and Spark options (``C2C_LINKAGE_BACKEND``, ``C2C_SPARK_*``)."""
    _configured["backend"] = check_backend(backend)
    _configured["spark"] = spark or SparkOptions()


def linkage_backend(backend: str | None = None) -> str:
    """``backend`` if given, else this process's configured default; Spark only with pyspark and Java."""
    value = check_backend(backend) if backend else str(_configured["backend"])
    if value == "spark":
        require_spark()
    return value


def require_spark() -> None:
    """A one-line error naming what to install when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise LinkageBackendError(f"the spark linkage backend needs pyspark: {SPARK_EXTRA}") from None
    if not shutil.which("java"):
        raise LinkageBackendError("the spark linkage backend needs Java 17 or later (java on PATH)")


def spark_session(area: LinkageArea, options: SparkOptions | None = None) -> Any:
    """This process's Spark session (made on first use), its checkpoint directory in ``area`` unless configured."""
    require_spark()
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    opts = options or _configured["spark"]
    spark = _session.get("spark")
    if spark is None or spark.sparkContext._jsc is None:
        local = opts.local_dir or area.spark_dir / "local"
        local.mkdir(parents=True, exist_ok=True)
        quiet = _quiet_log4j(area)
        builder = (SparkSession.builder.master(opts.master or "local[*]").appName("c2c-linkage")
                   .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={quiet}")
                   .config("spark.jars", similarity_jar_location())
                   .config("spark.pyspark.python", sys.executable)  # Python workers: this interpreter
                   .config("spark.sql.shuffle.partitions", str(opts.shuffle_partitions or DEFAULT_SHUFFLE_PARTITIONS))
                   .config("spark.default.parallelism", str(opts.shuffle_partitions or DEFAULT_SHUFFLE_PARTITIONS))
                   .config("spark.local.dir", str(local))
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.session.timeZone", "UTC"))
        for key, value in (("spark.driver.memory", opts.driver_memory), ("spark.executor.memory", opts.executor_memory)):
            if value:
                builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")  # Spark's own logs: warnings may quote rows
        _session["spark"] = spark
    checkpoint = opts.checkpoint_dir or area.spark_dir / "checkpoints"
    checkpoint.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(checkpoint))
    return spark


def _quiet_log4j(area: LinkageArea) -> Path:
    """A log4j2 configuration that keeps Spark's own log to errors (its warnings may quote rows)."""
    path = area.spark_dir / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
                    "appender.console.type = Console\nappender.console.name = console\n"
                    "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
                    "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n", encoding="utf-8")
    return path


def stop_spark() -> None:
    """Stop this process's Spark session (tests and benchmarks; a pipeline process keeps it)."""
    spark = _session.pop("spark", None)
    if spark is not None:
        spark.stop()


def bloom_words_sql(column: str) -> str:
    """Spark SQL turning a Bloom filter's bytes into an array of 32-bit words (as bigints); NULL stays NULL."""
    return (f"transform(sequence(0, cast(length({column}) / 4 as int) - 1), "
            f"bw_i -> cast(conv(hex(substring({column}, bw_i * 4 + 1, 4)), 16, 10) as bigint))")


def _parquet_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass
class SparkWork:
    """One linkage step's Spark side: the session, the records as a Spark frame, the files to remove."""

    spark: Any
    records: Any
    area: LinkageArea
    tag: str

    def query(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toPandas()

    def predictions_to_duckdb(self, con: Any, pred: Any, columns: list[str], table: str,
                              min_weight: float | None = None) -> str:
        """Write Splink's predictions (a SplinkDataFrame) as parquet in the area and load them into ``con``;
        with ``min_weight`` only those with ``match_weight >= min_weight`` (Splink's own threshold filter)."""
        out = self.area.spark_dir / f"predictions-{self.tag}"
        frame = pred.as_spark_dataframe()
        if min_weight is not None:
            frame = frame.where(_expr(f"match_weight >= {float(min_weight)!r}"))
        frame = frame.select(*columns)
        frame.write.mode("overwrite").parquet(str(out))
        con.execute("create or replace table " + table + " as select " + ", ".join(columns)
                    + " from read_parquet(" + _parquet_literal(out / "*.parquet") + ")")
        return table


@contextmanager
def spark_work(con: Any, area: LinkageArea, table: str = "records") -> Iterator[SparkWork]:
    """The DuckDB table ``table`` handed to Spark through a parquet file in ``area`` (removed after)."""
    spark = spark_session(area)
    tag = uuid.uuid4().hex[:12]
    area.spark_dir.mkdir(parents=True, exist_ok=True)
    path = area.spark_dir / f"records-{tag}.parquet"
    try:
        con.execute("copy " + table + " to " + _parquet_literal(path) + " (format parquet)")
        frame = spark.read.parquet(str(path))
        for col in BLOOM_COLUMNS:
            if col in frame.columns:
                frame = frame.withColumn(col, _expr(bloom_words_sql(col)))
        yield SparkWork(spark, frame.cache(), area, tag)
    finally:
        for leftover in (path, area.spark_dir / f"predictions-{tag}"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover.exists():
                leftover.unlink()
        for cached in list(spark.catalog.listTables()):
            if cached.isTemporary and cached.name.startswith("__splink__"):
                spark.catalog.dropTempView(cached.name)
        spark.catalog.clearCache()


def _expr(sql: str) -> Any:
    from pyspark.sql import functions

    return functions.expr(sql)


def spark_linker(work: SparkWork, settings: dict[str, Any]) -> Any:
    from splink import Linker
    from splink.backends.spark import SparkAPI

    db_api = SparkAPI(spark_session=work.spark, break_lineage_method="checkpoint",
                      num_partitions_on_repartition=int(work.spark.conf.get("spark.sql.shuffle.partitions") or DEFAULT_SHUFFLE_PARTITIONS))
    return Linker(db_api.register(work.records), settings, log_level=None)


def splink_for_dialect(splink: dict[str, Any], settings: LinkageSettings, dialect: str) -> dict[str, Any]:
    """A model's Splink JSON with its comparisons' SQL (and blocking rules) regenerated for ``dialect`` from
    ``settings``; every level's m, u and other trained values kept. The model stays one file whichever
    backend trained it or uses it."""
    out = copy.deepcopy(splink)
    fresh = settings.splink_comparisons(dialect)
    comps = out.get("comparisons", [])
    if len(comps) != len(fresh):
        raise LinkageBackendError("the model's comparisons do not match its settings; retrain the model")
    for comp, new in zip(comps, fresh, strict=True):
        levels, new_levels = comp.get("comparison_levels", []), new["comparison_levels"]
        if [lv.get("label_for_charts") for lv in levels] != [lv["label_for_charts"] for lv in new_levels]:
            raise LinkageBackendError(f"the model's levels of {comp.get('output_column_name')} do not match its settings; "
                                      "retrain the model")
        for lv, nl in zip(levels, new_levels, strict=True):
            lv["sql_condition"] = nl["sql_condition"]
    for rule in out.get("blocking_rules_to_generate_predictions", []) or []:
        if isinstance(rule, dict):
            rule["sql_dialect"] = dialect
    if "sql_dialect" in out:
        out["sql_dialect"] = dialect
    return out
