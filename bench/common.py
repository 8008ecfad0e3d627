"""Shared helpers: fixture cache, running `workbench ingest` as a subprocess, timing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Bump when the shape of cached benchmark data changes; the fixture sources are hashed in too.
CACHE_VERSION = "1"
CORES = os.cpu_count() or 1


def cache_root() -> Path:
    """Benchmark data kept between runs, outside the repository."""
    base = os.environ.get("WORKBENCH_BENCH_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "workbench-bench"


def fixtures_key() -> str:
    """Version string of the generated data: CACHE_VERSION plus the fixture sources."""
    digest = hashlib.sha256(CACHE_VERSION.encode())
    for path in sorted((ROOT / "fixtures").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return f"v{CACHE_VERSION}-{digest.hexdigest()[:12]}"


def cached_trove(name: str, *, pages: int, scanned: int, seed: int) -> Path:
    """A fixture trove generated once and kept in the cache (the generator is deterministic)."""
    from fixtures.generate import generate_trove

    folder = cache_root() / fixtures_key() / f"{name}-p{pages}-s{scanned}-seed{seed}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate_trove(folder, pages=pages, scanned=scanned, seed=seed)
        done.write_text("ok\n")
    return folder


def trove_inputs(trove: Path) -> list[str]:
    return [str(trove / d) for d in ("born_digital", "scans", "loose") if (trove / d).exists()]


def ground_truth(trove: Path) -> dict:
    return json.loads((trove / "ground_truth.json").read_text(encoding="utf-8"))


@dataclass
class RunResult:
    seconds: float
    max_process_rss_mb: float  # largest single process of the tree (its VmHWM)
    peak_tree_rss_mb: float  # largest sum of VmRSS over the process tree, sampled


def _status_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB; (0, 0) once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def _tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def run_measured(command: list[str], *, env: dict[str, str] | None = None) -> RunResult:
    """Run a command; wall time, peak RSS of its largest process and of its whole tree.

    Memory comes from /proc sampled every 50 ms, not from getrusage: on Linux a child's
    ru_maxrss starts from the high-water mark of the parent it was forked from (the
    benchmark process), which hides the child's own figure.
    """
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=full_env)
    tree_peak = 0
    hwm: dict[int, int] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal tree_peak
        while not stop.is_set():
            total = 0
            for pid in _tree(process.pid):
                rss, high = _status_kb(pid)
                total += rss
                hwm[pid] = max(hwm.get(pid, 0), high)
            tree_peak = max(tree_peak, total)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returncode = process.wait()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, command)
    return RunResult(seconds, max(hwm.values(), default=0) / 1024, tree_peak / 1024)


def ingest(case: Path, inputs: list[str], *, jobs: int, lang: str) -> RunResult:
    # the checks that follow an ingest are measured on their own (bench/checks.py)
    command = [sys.executable, "-m", "workbench", "--case", str(case), "ingest", *inputs,
               "--jobs", str(jobs), "--lang", lang, "--quiet", "--no-check"]  # fmt: skip
    return run_measured(command)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)
