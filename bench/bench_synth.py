"""Benchmark the synthetic city generator (issue 3): wall time, rows per extract and peak memory.

Run:  python bench/bench_synth.py --children 150000 --seed 1 [--keep DIR]

Generates into a temporary folder (removed afterwards unless ``--keep``), then prints the wall time
against the floor (120 s for 150,000 children on the 2-core reference machine), the rows written per
extract and the peak resident set size of the process (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic.city import generate_city  # noqa: E402

FLOOR_SECONDS = 120.0
FLOOR_CHILDREN = 150_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=FLOOR_CHILDREN)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="write here and keep the files")
    args = parser.parse_args(argv)

    out = args.keep or Path(tempfile.mkdtemp(prefix="c2c_synth_"))
    try:
        t0 = time.perf_counter()
        summary = generate_city(args.children, args.seed, out)
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    floor = FLOOR_SECONDS * args.children / FLOOR_CHILDREN
    print(f"synthetic city: {args.children:,} children, seed {args.seed}")
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    for (agency, extract), n in summary.rows.items():
        print(f"  {agency}/{extract:<22} {n:>12,} rows")
    print(f"  {'total':<26} {sum(summary.rows.values()):>12,} rows, {size / 2**20:,.0f} MiB on disk (with truth/)")
    print(f"wall time   {wall:8.1f} s   (floor {floor:.0f} s: {'OK' if wall <= floor else 'TOO SLOW'})")
    print(f"peak RSS    {peak_kib / 2**20:8.2f} GiB")
    return 0 if wall <= floor else 1


if __name__ == "__main__":
    raise SystemExit(main())
