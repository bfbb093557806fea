"""This process's knobs for the layers below, handed down by the doors from their ``Settings``.

The helper processes batch hashing uses (``C2C_HASH_WORKERS``) and DuckDB's memory limit in linkage
(``C2C_LINKAGE_MEMORY_LIMIT``): read once by ``pipelines.settings``, never by the layers that use them.
"""

from __future__ import annotations


def configure_process(*, hash_workers: int | None, linkage_memory_limit: str | None) -> None:
    """Set this process's defaults (None: the layer's own default)."""
    from data_sharing import _crypto
    from data_sharing.linkage import model

    _crypto.configure_workers(hash_workers)
    model.configure_memory_limit(linkage_memory_limit)
