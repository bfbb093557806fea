"""Benchmark: the hub-only layer over linkage encodings (issue 20 item 9), on random tokens and filters.

    nice .venv/bin/python bench/bench_hub_layer.py [rows]

Prints the seconds `hub_encode` takes for ``rows`` encoding rows (25 hash columns, two 1024-bit Bloom
filters) and the floor it must stay under (30 s per 100,000 rows on the shared 2-core machine).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from data_sharing.encodings import hub_encode
from data_sharing.keys import PurposeKey

FLOOR_S_PER_100K = 30.0


def main(rows: int = 100_000) -> int:
    rng = np.random.default_rng(1)
    cols = {f"c{i}_hash": pd.Series([rng.bytes(16).hex() for _ in range(rows)], dtype=pd.ArrowDtype(pa.string())) for i in range(25)}
    for name in ("name_bloom", "address_bloom"):
        cols[name] = pd.Series([rng.bytes(128) for _ in range(rows)], dtype=pd.ArrowDtype(pa.binary()))
    hub = PurposeKey.derive(os.urandom(32), "linkage_hub", 1)
    start = time.perf_counter()
    hub_encode(pd.DataFrame(cols), hub)
    took = time.perf_counter() - start
    floor = FLOOR_S_PER_100K * rows / 100_000
    print(f"hub_encode: {rows:,} rows x (25 hashes + 2 Bloom filters) in {took:.2f} s (floor {floor:.0f} s)")
    return 0 if took <= floor else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
