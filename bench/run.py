"""Ingest benchmarks: pages/s of scanned and born-digital ingest, in one run.

Speeds drift on a shared machine, so figures that compare are taken in the same run
and reported as ratios. Writes bench/results/latest.json and prints a table.
Usage: python -m bench.run [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixtures.generate import generate_trove

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _ingest(trove: Path, case: Path, jobs: int, lang: str) -> float:
    inputs = [str(trove / d) for d in ("born_digital", "scans", "loose") if (trove / d).exists()]
    command = [sys.executable, "-m", "workbench", "--case", str(case), "ingest", *inputs,
               "--jobs", str(jobs), "--lang", lang, "--quiet"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - started


def _page_count(trove: Path) -> int:
    return json.loads((trove / "ground_truth.json").read_text(encoding="utf-8"))["total_pages"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    args = parser.parse_args()
    scanned_pages = 6 if args.quick else 40
    digital_pages = 60 if args.quick else 700
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },  # fmt: skip
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        work = Path(tmp)
        scanned = work / "scanned"
        generate_trove(scanned, pages=scanned_pages, scanned=scanned_pages, seed=7)
        n_scanned = _page_count(scanned)
        timings = {}
        for jobs in (1, 2):
            seconds = _ingest(scanned, work / f"case-scan-{jobs}", jobs, "fas+eng")
            timings[jobs] = seconds
            results[f"scanned_jobs{jobs}"] = {
                "pages": n_scanned,
                "seconds": round(seconds, 2),
                "pages_per_second": round(n_scanned / seconds, 3),
            }
        results["scanned_speedup_jobs2_vs_jobs1"] = round(timings[1] / timings[2], 2)

        digital = work / "digital"
        generate_trove(digital, pages=digital_pages, scanned=0, seed=7)
        n_digital = _page_count(digital)
        first = _ingest(digital, work / "case-digital", 2, "eng")
        again = _ingest(digital, work / "case-digital", 2, "eng")
        results["born_digital"] = {
            "pages": n_digital,
            "ingest_seconds": round(first, 2),
            "pages_per_second": round(n_digital / first, 1),
            "reingest_unchanged_seconds": round(again, 2),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"{'figure':<40} {'value':>12}")
    for key in ("scanned_jobs1", "scanned_jobs2"):
        entry = results[key]
        label = f"{key} ({entry['pages']} pages)"
        print(f"{label:<40} {entry['pages_per_second']:>8} p/s")
    speedup = results["scanned_speedup_jobs2_vs_jobs1"]
    print(f"{'scanned speed-up, jobs 2 / jobs 1':<40} {speedup:>10}x")
    bd = results["born_digital"]
    print(
        f"{'born-digital ingest (' + str(bd['pages']) + ' pages)':<40} {bd['ingest_seconds']:>10} s"
    )
    print(f"{'born-digital re-ingest unchanged':<40} {bd['reingest_unchanged_seconds']:>10} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
