"""Benchmark the cabinet's report (issue 18): build the static site of a 150,000-child city's release.

Run:  nice python bench/bench_report.py [--schools 90] [--periods 5] [--per-school 150] [--repeat 3]
      [--url sqlite:///... | postgresql+psycopg2://127.0.0.1:5432/test]

A release's size is its cells, not its children: the report reads only the published rows. So the
script does not synthesise and run a whole city (hours on a shared 2-core machine); it makes the release
a 150,000-child city publishes directly from counts (``tests/reports/report_support.py``): every
indicator of ``schemas/indicators``, five school years, 90 schools (the 150k city of
``bench/bench_indicators.py`` has 90 schools and published 31,642 rows), every dimension and group, with
consistent sums, protected by the real disclosure control (``protect_rows``) and written as the current
release. Then it times :func:`build_cabinet_report` (reading the release through SQLAlchemy, every chart
rendered by vl-convert, every page written): the first call in the process (cold: vl-convert's engine
starts and the chart templates are built) and the best of ``--repeat`` warm calls, wall-clock and CPU.
Target: < 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "reports"))

from report_support import K, default_definitions, publish_rows, synthetic_rows  # noqa: E402
from warehouse.db import make_engine, upgrade  # noqa: E402
from warehouse.reports.cabinet import build_cabinet_report  # noqa: E402

TARGET_S = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=90)
    ap.add_argument("--periods", type=int, default=5)
    ap.add_argument("--per-school", type=int, default=150,
                    help="students in a school's grade cohort, on average (150k children / 18 ages / 54 elementary schools)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", help="warehouse URL (default: a SQLite file in a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="c2c-bench-report-") as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'warehouse.db'}"
        engine = make_engine(url, f"bench_report_{os.getpid()}" if url.startswith("postgresql") else None)
        upgrade(engine)
        defs = default_definitions()
        t = time.perf_counter()
        rows = synthetic_rows(defs, schools=args.schools, periods=list(range(2027 - args.periods, 2027)), per_school=args.per_school)
        publish_rows(engine, rows, defs)
        setup = time.perf_counter() - t
        from warehouse.releases import current_release

        info = current_release(engine)
        assert info is not None
        print(f"release: {info.rows:,} published cells ({info.suppressed_rows:,} suppressed), {args.schools} schools, "
              f"{args.periods} periods, {len(defs)} definitions; made and protected in {setup:.1f} s (set-up, not timed)")
        runs = []
        for i in range(1 + args.repeat):
            w, c = time.perf_counter(), time.process_time()
            result = build_cabinet_report(engine, Path(tmp) / "reports", min_cell_sizes=K)
            runs.append((time.perf_counter() - w, time.process_time() - c))
            label = "cold (first in process)" if i == 0 else f"warm {i}"
            print(f"  {label}: {runs[-1][0]:.2f} s wall, {runs[-1][1]:.2f} s CPU "
                  f"({len(result.pages)} pages, {result.charts} charts)")
        size = sum(p.stat().st_size for p in result.directory.iterdir())
        cold, best = runs[0], min(runs[1:] or runs)
        load = os.getloadavg()
        print(f"report of {info.rows:,} cells: cold {cold[0]:.2f} s (CPU {cold[1]:.2f} s), best warm {best[0]:.2f} s "
              f"(CPU {best[1]:.2f} s); {size / 1e6:.1f} MB on disk; target < {TARGET_S:.0f} s: "
              f"{'met' if cold[0] < TARGET_S else 'NOT met'}")
        print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
