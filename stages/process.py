"""This process's knobs for the layers below, handed down by the doors from their ``Settings``.

The helper processes batch hashing uses (``C2C_HASH_WORKERS``) and DuckDB's memory limit in linkage
(``C2C_LINKAGE_MEMORY_LIMIT``), the linkage backend and Spark's settings (``C2C_LINKAGE_BACKEND``, ``C2C_SPARK_*``): read once by ``pipelines.settings``, never by the layers that use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def configure_process(*, hash_workers: int | None, linkage_memory_limit: str | None, linkage_backend: str | None = None,
                      spark: Mapping[str, Any] | None = None) -> None:
    """Set this process's defaults (None: the layer's own default)."""
    from data_sharing import _crypto
    from data_sharing.linkage import backend, model

    _crypto.configure_workers(hash_workers)
    model.configure_memory_limit(linkage_memory_limit)
    backend.configure_backend(linkage_backend, backend.SparkOptions(**dict(spark or {})))
