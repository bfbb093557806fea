"""Benchmark of the privacy layer (issue 4): keyed hashes per second end to end, and Bloom encodings.

    python bench/bench_privacy.py --rows 1000000 [--repeat 3] [--json out.json]

Every figure is printed next to the floors measured in the same run on the same machine:
``hashlib.sha256`` per value (an unkeyed hash, the cheapest per-value Python call), the bare keyed
HMAC loop on one core (no input or output handling), and OpenSSL's own HMAC-SHA256 speed on
32-byte inputs (``openssl speed -seconds 3 -bytes 32 -hmac sha256``; skipped when the CLI is absent).

"End to end" means from an extract column (Arrow-backed, as ``pyarrow.csv`` reads it, or
object-dtype, as plain ``pandas.read_csv`` does) to a stored column: an Arrow array of hex digests
ready to write. All data is synthetic (made-up names, dates and addresses).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_sharing import _crypto  # noqa: E402
from data_sharing.encodings import DEFAULT_BLOOMS, _bloom, encode_for_linkage  # noqa: E402
from data_sharing.keys import init_keyset  # noqa: E402
from data_sharing.landing import LandingZone  # noqa: E402
from data_sharing.normalize import address_core, compact_core, name_core, surname_core  # noqa: E402
from data_sharing.pseudonyms import pseudonymize, pseudonymize_ids, tokenize_ids  # noqa: E402
from schemas.contracts import load_extract_contracts  # noqa: E402

SYLLABLES = ["an", "be", "ca", "do", "el", "fi", "ga", "ho", "is", "ju", "ka", "lo", "ma", "ne", "or", "pa",
             "qui", "ra", "so", "ta", "u", "va", "wi", "xa", "ya", "zo", "ría", "lé", "ño", "ç", "ö", "ï"]  # fmt: skip
PARTICLES = ["de la ", "van der ", "O'", "Mc", "de ", ""]
STREETS = ["Street", "St.", "Avenue", "Ave", "Road", "Rd", "Lane", "Court", "Place", "Boulevard"]


def _pool(rng: np.random.Generator, size: int, parts: tuple[int, int]) -> pa.Array:
    """``size`` made-up words of ``parts`` syllables, capitalised."""
    k = rng.integers(parts[0], parts[1] + 1, size)
    words = ["".join(rng.choice(SYLLABLES, n)).capitalize() for n in k]
    return pa.array(words)


def synthetic_students(rows: int, seed: int = 4) -> pd.DataFrame:
    """An fps/students-shaped extract of made-up people, Arrow-backed strings (as pyarrow.csv reads)."""
    rng = np.random.default_rng(seed)
    firsts = _pool(rng, 3000, (2, 3))
    lasts = _pool(rng, 8000, (2, 4))
    streets = _pool(rng, 1500, (2, 3))
    take = lambda pool, n: pool.take(pa.array(rng.integers(0, len(pool), n)))  # noqa: E731
    last = take(lasts, rows)
    double = rng.random(rows) < 0.12  # compound surnames: "Garcia-Lopez" / "Garcia Lopez"
    second = take(lasts, rows)
    sep = pa.array(np.where(rng.random(rows) < 0.5, "-", " "))
    compound = pc.binary_join_element_wise(last, sep, second, "")
    last = pc.if_else(pa.array(double), compound, last)
    prefix = pa.array(rng.choice(PARTICLES, rows, p=[0.02, 0.01, 0.02, 0.02, 0.03, 0.90]))
    last = pc.binary_join_element_wise(prefix, last, "")
    births = np.datetime64("2005-09-01") + rng.integers(0, 18 * 365, rows).astype("timedelta64[D]")
    number = pa.array(rng.integers(1, 9999, rows).astype(str))
    street = pc.binary_join_element_wise(number, take(streets, rows), pa.array(rng.choice(STREETS, rows)), " ")
    middle = pc.if_else(pa.array(rng.random(rows) < 0.4), take(firsts, rows), pa.scalar(None, pa.string()))
    cols: dict[str, Any] = {
        "student_id": pa.array([f"S{i:09d}" for i in range(rows)]),
        "first_name": take(firsts, rows),
        "middle_name": middle,
        "last_name": last,
        "birth_date": pa.array(births.astype(str)),
        "sex": pa.array(rng.choice(["F", "M", "X"], rows, p=[0.49, 0.49, 0.02])),
        "race_ethnicity": pa.array(rng.choice(["HI", "AI", "AS", "BL", "PI", "WH", "MR"], rows)),
        "english_learner": pa.array(rng.choice(["Y", "N"], rows)),
        "disability": pa.array(rng.choice(["Y", "N"], rows)),
        "econ_disadvantaged": pa.array(rng.choice(["Y", "N"], rows)),
        "homeless": pa.array(rng.choice(["Y", "N"], rows)),
        "street_address": street,
        "zip": pa.array(rng.choice([f"021{i:02d}" for i in range(40)], rows)),
        "school_id": pa.array(rng.choice([f"SCH{i:02d}" for i in range(30)], rows)),
        "grade_level": pa.array(rng.choice(["KG"] + [f"{g:02d}" for g in range(1, 13)], rows)),
        "school_year": pa.array(np.full(rows, 2026)),
        "enroll_date": pa.array(np.full(rows, "2025-08-20")),
        "exit_date": pa.nulls(rows, pa.string()),
    }
    return pd.DataFrame({k: pd.Series(v, dtype=pd.ArrowDtype(v.type)) for k, v in cols.items()})


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def openssl_hmac_rate() -> tuple[float | None, str]:
    exe = shutil.which("openssl")
    if exe is None:
        return None, "openssl CLI not available: floor not measured"
    cmd = [exe, "speed", "-seconds", "3", "-bytes", "32", "-hmac", "sha256"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"openssl speed failed: {type(exc).__name__}"
    m = re.search(r"^hmac\(sha256\)\s+([0-9.]+)k", out, re.MULTILINE)
    if not m:
        return None, "openssl speed output not understood"
    version = subprocess.run([exe, "version"], capture_output=True, text=True).stdout.strip()
    return float(m.group(1)) * 1000 / 32, f"{' '.join(cmd[1:])} ({version}), one core"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the hash figures")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--no-openssl", action="store_true")
    args = parser.parse_args(argv)
    n = args.rows
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": n,
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}",
        "hash_workers": _crypto._default_workers(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    rows: list[tuple[str, str]] = []

    def report(label: str, value: str) -> None:
        rows.append((label, value))
        print(f"{label:<68} {value}", flush=True)

    t0 = time.perf_counter()
    frame = synthetic_students(n)
    print(f"synthetic extract: {n:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="c2c-bench-"))
    try:
        keyset = init_keyset(tmp / "keys" / "master.key")
        contract = load_extract_contracts()[("fps", "students")]
        ids_arrow = frame["student_id"]
        ids_object = pd.Series(ids_arrow.astype(object).tolist(), dtype=object)
        messages = [f"fps|student|{v}".encode() for v in ids_object]
        key = keyset.purpose_key("linkage").secret

        # Floors.
        t, _ = best_of(args.repeat, lambda: [hashlib.sha256(m).digest() for m in messages])
        results["floor_sha256_per_value"] = n / t
        report("floor: hashlib.sha256 per value (unkeyed, list in, list out)", f"{n / t / 1e6:.2f} M/s")
        t, _ = best_of(args.repeat, lambda: _crypto._hmac_serial(key, b"", messages, None))
        results["floor_hmac_loop_one_core"] = n / t
        report("floor: keyed HMAC-SHA256 loop, one core (.copy() per value, no I/O)", f"{n / t / 1e6:.2f} M/s")
        if not args.no_openssl:
            rate, how = openssl_hmac_rate()
            results["floor_openssl_hmac"] = rate
            results["floor_openssl_how"] = how
            report("floor: OpenSSL HMAC-SHA256, 32-byte inputs", f"{rate / 1e6:.2f} M/s" if rate else how)

        # End to end: column -> stored column (Arrow array of hex digests).
        t, tok = best_of(args.repeat, lambda: tokenize_ids(ids_arrow, keyset, agency="fps", id_type="student"))
        assert tok.notna().all() and tok.str.len().eq(64).all()
        results["e2e_id_token_arrow"] = n / t
        report("end to end: id_token, Arrow column -> hex column (1 HMAC/row)", f"{n / t / 1e6:.2f} M hashes/s  ({t:.2f} s)")
        t, _ = best_of(args.repeat, lambda: tokenize_ids(ids_object, keyset, agency="fps", id_type="student"))
        results["e2e_id_token_object"] = n / t
        report("end to end: id_token, object-dtype column -> hex column", f"{n / t / 1e6:.2f} M hashes/s  ({t:.2f} s)")
        t, both = best_of(args.repeat, lambda: pseudonymize_ids(ids_arrow, keyset, agency="fps", id_type="student"))
        results["e2e_id_token_and_source_key"] = 2 * n / t
        report("end to end: id_token + source_key (2 chained HMACs/row)", f"{2 * n / t / 1e6:.2f} M hashes/s  ({t:.2f} s)")
        _crypto.configure_workers(0)  # what C2C_HASH_WORKERS=0 sets through pipelines.settings
        try:
            t, _ = best_of(args.repeat, lambda: tokenize_ids(ids_arrow, keyset, agency="fps", id_type="student"))
        finally:
            _crypto.configure_workers(None)
        results["e2e_id_token_one_core"] = n / t
        report("end to end: id_token, one core only (C2C_HASH_WORKERS=0)", f"{n / t / 1e6:.2f} M hashes/s  ({t:.2f} s)")

        # Bloom filters alone (on normalised fields) and the whole encoding frame.
        first = compact_core(name_core(pa.array(frame["first_name"])))
        last = surname_core(pa.array(frame["last_name"]))["compact"].combine_chunks()
        address = address_core(pa.array(frame["street_address"]))
        fields = {"first_name": first, "last_name": last, "street_address": address}

        def blooms() -> None:
            for spec in DEFAULT_BLOOMS:
                _bloom([fields[f] for f in spec.fields], n, key, spec)

        t, _ = best_of(1, blooms)
        results["bloom_seconds"] = t
        report("Bloom filters: name (1024 bits) + address (1024 bits), normalised input", f"{t:.1f} s for {n:,} rows")
        t, enc = best_of(1, lambda: encode_for_linkage(frame, contract, keyset))
        results["encode_for_linkage_seconds"] = t
        results["encoding_columns"] = len(enc.columns)
        report(f"encode_for_linkage: all {len(enc.columns)} columns from the raw extract", f"{t:.1f} s for {n:,} rows")
        t, _ = best_of(1, lambda: pseudonymize(frame, contract, keyset))
        results["pseudonymize_seconds"] = t
        report("pseudonymize: whole extract under its contract", f"{t:.1f} s for {n:,} rows")

        # Landing zone: the extract as CSV bytes, encrypted at rest and read back.
        buf = io.BytesIO()
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buf)
        raw = buf.getvalue()
        zone = LandingZone(tmp / "landing", keyset)
        t, landed = best_of(1, lambda: zone.put("fps", "students_20260915.csv", raw))
        results["landing_put_mb_s"] = len(raw) / t / 1e6
        t2, back = best_of(1, lambda: zone.read(landed))
        assert back == raw
        results["landing_read_mb_s"] = len(raw) / t2 / 1e6
        report(
            f"landing zone: {len(raw) / 1e6:.0f} MB CSV, AES-256-GCM put / read (incl. SHA-256, fsync)",
            f"{len(raw) / t / 1e6:.0f} / {len(raw) / t2 / 1e6:.0f} MB/s",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_average_at_end"] = round(os.getloadavg()[0], 2)
    print(
        f"\n{results['date']}  {results['machine']}  helper processes: {results['hash_workers']}  "
        f"1-min load average: {results['load_average_at_start']} at start, {results['load_average_at_end']} at end"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
