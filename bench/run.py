"""Benchmarks of workbench, in one run: scanned ingest vs its limit and vs OCRmyPDF,
line images (CER per script vs plain Tesseract), born-digital ingest, search latency,
the start-up of each everyday command (bench/startup.py),
ingest memory, and the app.

Speeds drift on a shared machine, so every figure compared against a goal is either a
ratio of two things measured in this run or a time measured in this run. Writes
bench/results/latest.json (--quick: quick.json) and prints a table. Generated data
(fixture troves, copies, the large synthetic search case) is cached in ~/.cache/workbench-bench/ (or
$WORKBENCH_BENCH_CACHE), keyed by a version string and a hash of fixtures/*.py.

Usage: python -m bench.run [--quick] [--only search]   (--quick: small sizes, a CI smoke
test; no speed goal is judged. --only search: the born-digital case, search at both sizes
and SQLite FTS5 beside it, nothing else; written to bench/results/only-search.json)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import app, checks, digital, fts5, lines, safe_export, scanned, search, startup
from bench.common import CORES, RESULTS, cache_root, fixtures_key


@dataclass(frozen=True)
class Sizes:
    scanned_pages: int
    digital_pages: int
    search_pages: int
    memory_small: int
    memory_large: int
    lines_per_script: int
    startup_rounds: int
    safe_ocr_pages: int
    safe_plain_pages: int


FULL = Sizes(40, 700, 100_000, 1_000, 10_000, 40, startup.ROUNDS, 24, 100)
QUICK = Sizes(6, 60, 5_000, 300, 1_000, 2, startup.QUICK_ROUNDS, 2, 6)
FLAT_GROWTH = 1.25  # peak RSS large/small at or under this counts as flat (linear: ~10x)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        tesseract = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
        tesseract_version = (tesseract.stdout or tesseract.stderr).splitlines()[0]
    except (OSError, IndexError):
        tesseract_version = "unknown"
    return {
        "cpus": CORES,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tesseract": tesseract_version,
        "ocrmypdf": scanned.ocrmypdf_version(),
    }


def _timed(sections: dict[str, float], name: str, func, *args):
    started = time.perf_counter()
    try:
        return func(*args)
    finally:
        sections[name] = round(time.perf_counter() - started, 1)


ONLY = ("search",)  # --only: groups of sections that can run alone


def measure(sizes: Sizes, work: Path, only: str | None = None) -> dict[str, Any]:
    sections: dict[str, float] = {}
    results: dict[str, Any] = {"sections_seconds": sections}
    if only is None:
        results["scanned"] = _timed(sections, "scanned", scanned.run, work, sizes.scanned_pages)
        results["lines"] = _timed(sections, "lines", lines.run, work, sizes.lines_per_script)
    born = _timed(sections, "born_digital", digital.speed, work, sizes.digital_pages)
    results["born_digital"] = born
    small_case = Path(born.pop("case_dir"))
    results["search_small"] = {
        "pages": born["pages"],
        **_timed(sections, "search_small", search.latency, small_case),
    }
    if only is None:
        results["startup"] = {
            "pages": born["pages"],
            **_timed(sections, "startup", startup.measure, small_case, work, sizes.startup_rounds),
        }
    folder, info = _timed(sections, "search_large_build", search.large_case, sizes.search_pages)
    results["search_large"] = {
        "pages": sizes.search_pages,
        "build": info,
        **_timed(sections, "search_large", search.latency, folder),
    }
    # SQLite FTS5 on the same texts and queries, right after Whoosh (issue #15)
    results["fts5_small"] = _timed(
        sections, "fts5_small", fts5.run, small_case, work, results["search_small"]
    )
    results["fts5_large"] = _timed(
        sections, "fts5_large", fts5.run, folder, work, results["search_large"]
    )
    if only is not None:
        return results
    results["checks"] = {
        "ingest_seconds": born["ingest_seconds"],
        "small": _timed(sections, "checks_small", checks.measure, small_case, work, "small"),
        "large": _timed(sections, "checks_large", checks.measure, folder, work, "large"),
    }
    results["safe_export"] = _timed(
        sections, "safe_export", safe_export.run, small_case, work,
        sizes.safe_ocr_pages, sizes.safe_plain_pages,
    )  # fmt: skip
    results["memory"] = _timed(
        sections, "memory", digital.memory, work, sizes.memory_small, sizes.memory_large
    )
    results["app"] = {"pages": sizes.search_pages, **_timed(sections, "app", app.run, folder, work)}
    return results


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, goal, passed) for the table; passed None when there is no goal."""
    if "scanned" not in results:  # --only search
        return search_rows(results)
    out: list[tuple[str, str, str, bool | None]] = []
    s = results["scanned"]
    n, c = s["pages"], s["jobs"]
    out.append((f"scanned ingest, {n} pages, --jobs {c}", f"{s['ingest_seconds']} s", "", None))
    out.append((f"  limit: sum of 1-thread Tesseract / {c}", f"{s['limit_seconds']} s", "", None))
    ratio = s["ratio_ingest_vs_limit"]
    out.append(("  ratio ingest / limit", f"{ratio}", "<= 1.10", ratio <= 1.10))
    if "ratio_cpu_ingest_vs_limit" in s:
        cpu = f"{s['ingest_cpu_seconds']} / {s['limit_cpu_seconds_sum']} s"
        out.append(("  CPU: ingest / limit's Tesseract runs", cpu, "", None))
        out.append(("  CPU ratio (less disturbed by load)", f"{s['ratio_cpu_ingest_vs_limit']}", "",
                    None))  # fmt: skip
    if "ocrmypdf_seconds" in s:
        out.append((f"  ocrmypdf -j {c}, same pages", f"{s['ocrmypdf_seconds']} s", "", None))
        ratio = s["ratio_workbench_vs_ocrmypdf"]
        out.append(("  ratio workbench / ocrmypdf", f"{ratio}", "<= 0.65", ratio <= 0.65))
        for lang in sorted(s["workbench_cer"]):
            value = f"{s['workbench_cer'][lang]:.3f} / {s['ocrmypdf_cer'].get(lang, 0):.3f}"
            out.append((f"  CER {lang}: workbench / ocrmypdf", value, "", None))
    else:
        out.append(("  ocrmypdf", s["ocrmypdf"], "<= 0.65", False))
    k = s.get("cluster", {})
    if "skipped" in k:
        out.append(("  Dask cluster path", k["skipped"], "", None))
    elif k:
        label = f"  --cluster, local scheduler, {k['workers']} x 1 thread"
        out.append((label, f"{k['cluster_seconds']} s", "", None))
        before, after = k["local_seconds_before"], k["local_seconds_after"]
        out.append(("  local pool, runs before / after it", f"{before} / {after} s", "", None))
        ratio = k["ratio_cluster_vs_local"]
        out.append(("  ratio cluster / local pool", f"{ratio}", "<= 1.10", ratio <= 1.10))
        cpu = f"{k['cluster_cpu_seconds']} / {k['local_cpu_seconds']} s"
        out.append(("  CPU: cluster (all processes) / local", cpu, "", None))
        out.append(("  CPU ratio (less disturbed by load)", f"{k['ratio_cpu_cluster_vs_local']}",
                    "", None))  # fmt: skip
        out.append(("  cluster case == local case", str(k["same_case"]), "True", k["same_case"]))
    out.extend(lines.rows(results["lines"]))
    b = results["born_digital"]
    seconds = b["ingest_seconds"]
    out.append((f"born-digital ingest+index, {b['pages']} pages", f"{seconds} s", "<= 3 s",
                seconds <= 3))  # fmt: skip
    f = b["floor"]
    out.append(("  PyMuPDF get_text + Whoosh indexing, 1 process",
                f"{f['extract_seconds']} + {f['index_seconds']} s", "", None))  # fmt: skip
    ratio = b["ratio_ingest_vs_floor"]
    out.append(("  ratio ingest / those two steps", f"{ratio}", "<= 1.3", ratio <= 1.3))
    cpu = f"{b['ingest_cpu_seconds']} / {f['floor_cpu_seconds']} s"
    out.append(("  CPU: ingest (all processes) / the two steps", cpu, "", None))
    out.append(("  CPU ratio (less disturbed by load)", f"{b['ratio_cpu_ingest_vs_floor']}", "",
                None))  # fmt: skip
    again = b["reingest_unchanged_seconds"]
    out.append(("  re-ingest unchanged", f"{again} s", "<= 1 s", again <= 1))
    out.extend(startup.rows(results["startup"]))
    out.extend(search_rows(results))
    k = results["checks"]
    small, large = k["small"], k["large"]
    out.append((f"checks, {small['pages']:,} pages (all, first run)", f"{small['seconds']} s", "",
                None))  # fmt: skip
    ratio = round(small["seconds"] / k["ingest_seconds"], 2)
    out.append(("  ratio checks / born-digital ingest", f"{ratio}", "<= 1.0", ratio <= 1.0))
    out.append((f"checks, {large['pages']:,} pages", f"{large['seconds']} s", "", None))
    ratio = round(large["seconds"] / small["seconds"], 1)
    out.append((f"  ratio {large['pages']:,} / {small['pages']:,} pages", f"{ratio}x", "<= 200x",
                ratio <= 200))  # fmt: skip
    out.append(("  checks peak RSS, large", f"{large['peak_rss_mb']} MB", "", None))
    safety = [name for name in small["check_seconds"] if name in safe_export.SAFETY_CHECKS]
    seconds = round(sum(small["check_seconds"][name] for name in safety), 2)
    ratio = round(seconds / k["ingest_seconds"], 2)
    out.append((f"source-safety checks, {small['pages']:,} pages", f"{seconds} s", "", None))
    out.append(("  ratio source-safety checks / ingest", f"{ratio}", "<= 1.0", ratio <= 1.0))
    out.extend(safe_export.rows(results["safe_export"]))
    m = results["memory"]
    for label in ("small", "large"):
        e = m[label]
        goal, passed = (
            ("<= 400 MB", e["peak_tree_rss_mb"] <= 400) if label == "large" else ("", None)
        )
        label = f"ingest peak RSS (tree), {e['pages']:,} pages"
        out.append((label, f"{e['peak_tree_rss_mb']} MB", goal, passed))
    out.append((f"  growth ({m['pages_ratio']}x pages)", f"{m['growth_ratio']}x",
                f"<= {FLAT_GROWTH} (flat)", m["growth_ratio"] <= FLAT_GROWTH))  # fmt: skip
    a = results["app"]
    if "skipped" in a:
        out.append(("app", a["skipped"], "", None))
    else:
        pages = f"{a['pages']:,}"
        out.append((f"app: start to first idle paint, {pages} pages",
                    f"{a['first_idle_paint_seconds']} s", "", None))  # fmt: skip
        if "status_key_median_ms" in a:
            out.append(("app: 'v' shown in page list, median",
                        f"{a['status_key_median_ms']} ms", "", None))  # fmt: skip
        else:
            out.append(("app: status key", a["status_key"], "", None))
    return out


def search_rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """Search at both sizes, the ratios issue #15 sets as goals, and FTS5 beside it."""
    out: list[tuple[str, str, str, bool | None]] = []
    build = results["search_large"]["build"]
    pages = f"{results['search_large']['pages']:,}"
    if not build["cached"]:
        seconds = build["rows_seconds"] + build["index_seconds"]
        out.append((f"build {pages}-page search case (once)", f"{seconds:.0f} s", "", None))
    elif "reindex_seconds" in build:
        out.append((f"  Whoosh index of the {pages} pages (new layout)",
                    f"{build['reindex_seconds']} s", "", None))  # fmt: skip
    for key, goal in (("search_small", 10.0), ("search_large", 100.0)):
        r = results[key]
        label = f"search, {r['pages']:,} pages"
        out.append((f"{label}: p50", f"{r['p50_ms']} ms", "", None))
        out.append((f"{label}: p95", f"{r['p95_ms']} ms", f"<= {goal:g} ms", r["p95_ms"] <= goal))
        if r["failed_queries"]:
            failed = len(r["failed_queries"])
            out.append((f"{label}: queries that fail", f"{failed}", "0", False))
    small, large = results["search_small"], results["search_large"]
    for stat, goal in (("p95", 8.0), ("p50", 4.0)):
        ratio = round(large[f"{stat}_ms"] / small[f"{stat}_ms"], 1)
        out.append((f"  ratio {stat} {large['pages']:,} / {small['pages']:,} pages",
                    f"{ratio}x", f"<= {goal:g}x", ratio <= goal))  # fmt: skip
    for key in ("fts5_small", "fts5_large"):
        f = results.get(key)
        if not f:
            continue
        size = (small if key == "fts5_small" else large)["pages"]
        label = f"FTS5, {size:,} pages ({f['queries']} queries)"
        out.append((f"{label}: p50 / p95", f"{f['p50_ms']} / {f['p95_ms']} ms", "", None))
        b = f["build"]
        built = f"{b['fts5_build_seconds']} (+{b['normalize_seconds']}) s"
        out.append(("  FTS5 build (+ normalising the texts)", built, "", None))
        out.append(("  workbench p95 / FTS5 p95", f"{f['ratio_workbench_p95_vs_fts5']}x", "",
                    None))  # fmt: skip
        if f["totals_differ"]:
            out.append(("  totals differing from workbench", str(len(f["totals_differ"])), "0",
                        False))  # fmt: skip
    return out


def table(results: dict[str, Any], quick: bool) -> str:
    lines = [f"{'figure':<46} {'value':>16}  {'goal':<16} result", "-" * 90]
    for figure, value, goal, passed in rows(results):
        if passed is None:
            verdict = ""
        elif quick:
            verdict = "(quick: not judged)"
        else:
            verdict = "pass" if passed else "FAIL"
        if len(value) > 16:  # a sentence, not a number
            lines.append(f"{figure:<46} {value}")
        else:
            lines.append(f"{figure:<46} {value:>16}  {goal:<16} {verdict}".rstrip())
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    parser.add_argument("--only", choices=ONLY, help="run only these sections")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "cache": str(cache_root() / fixtures_key()),
    }
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        results.update(measure(sizes, Path(tmp), args.only))
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["table"] = [
        {"figure": f.strip(), "value": v, "goal": g, "passed": p} for f, v, g, p in rows(results)
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    # --quick must not overwrite the figures of the last full run.
    name = "quick" if args.quick else "latest"
    if args.only:
        name = f"{'quick-' if args.quick else ''}only-{args.only}"
    written = RESULTS / f"{name}.json"
    written.write_text(text, encoding="utf-8")
    info = results["machine"]
    print(f"workbench bench ({'quick' if args.quick else 'full'}): {info['cpus']} cores, "
          f"{info['cpu_model']}, Python {info['python']}, {info['tesseract']}")  # fmt: skip
    print(table(results, args.quick))
    print(f"total {results['total_seconds']} s; sections: {results['sections_seconds']}")
    print(f"written: {written.relative_to(RESULTS.parent.parent)}")
    broken = smoke_failures(results)
    for problem in broken:
        print(f"error: {problem}")
    return 1 if broken else 0


def smoke_failures(results: dict[str, Any]) -> list[str]:
    """What makes a run fail whatever the speeds: a query that errors, an app that fails.

    CI runs ``--quick`` for these: no speed is judged there, but a broken part is."""
    problems = []
    for section in ("search_small", "search_large"):
        for query, error in (results.get(section, {}).get("failed_queries") or {}).items():
            problems.append(f"{section}: query {query!r} failed: {error}")
    app_result = results.get("app", {})
    if "not measured: the app failed" in str(app_result.get("skipped", "")):
        problems.append(str(app_result["skipped"]))
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
