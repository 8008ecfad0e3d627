"""Start-up of the everyday commands: whole process, against a bare Python, in one run.

Why: a journalist scripting ``workbench mark`` over hundreds of pages waits for the
process start every time, so what counts is the whole ``python -m workbench ...`` run
on a small case, not an import figure. Each round runs a bare ``python -c pass`` and
every command once, interleaved (load on a shared machine then hits all of them alike);
the medians and each command's median minus the bare one are reported, for the wall
time (what the goals are about) and for the CPU time (user + system, which other work
on the machine disturbs less). The case is a copy, since ``mark`` changes it (it
alternates two statuses so every run writes a review event and an index commit).

Usage on its own: ``python -m bench.startup CASE_DIR [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, median

# Goals of issue #15: milliseconds over a bare python (None: reported only).
GOALS_MS: dict[str, float | None] = {
    "--help": 150,
    "status": 200,
    "show": 200,
    "mark": 150,
    "search": 250,
    "findings": None,
    "export": None,
}
ROUNDS = 11
QUICK_ROUNDS = 3


def _commands(case: Path, out: Path, page_id: str) -> dict[str, list[list[str]]]:
    """Each command's argument lists; several when successive runs must differ."""
    base = [sys.executable, "-m", "workbench", "--case", str(case)]
    mark = base + ["mark", page_id, "--reviewer", "bench", "--status"]
    return {
        "--help": [[sys.executable, "-m", "workbench", "--help"]],
        "status": [base + ["status"]],
        "show": [base + ["show", page_id]],
        "mark": [mark + ["verified"], mark + ["unreviewed"]],
        "search": [base + ["search", "oil"]],
        "findings": [base + ["findings"]],
        "export": [base + ["export", "--format", "csv", "-o", str(out)]],
    }


def _once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _check_for_bad_redactions(case_dir: Path) -> None:
    """As `workbench ingest` leaves a case: the bench's was ingested with --no-check, and
    `show` reads a page's file (PyMuPDF) when the bad-redaction check never looked at it."""
    from workbench import findings
    from workbench.store import Case

    with Case.open(case_dir) as case:
        findings.run_checks(case, ["bad-redaction"])


def measure(case_dir: Path, work: Path, rounds: int = ROUNDS) -> dict[str, Any]:
    """Median wall and CPU time of each command and of a bare python over ``rounds``."""
    case = work / "case-startup"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(case_dir, case)
    _check_for_bad_redactions(case)
    out = work / "startup-export.csv"
    # Python's bytecode cache as an installed workbench has it: with
    # PYTHONDONTWRITEBYTECODE set (as on the project's build machines) every run would
    # compile workbench's own modules again. The cache goes to the work folder.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("WORKBENCH_DEBUG", None)
    page_id = _first_page(case, env)
    commands = _commands(case, out, page_id)
    bare = [sys.executable, "-c", "pass"]
    for argv in [bare] + [variants[0] for variants in commands.values()]:
        _once(argv, env)  # fill the page cache and the bytecode cache
    wall: dict[str, list[float]] = {name: [] for name in ["bare", *commands]}
    cpu: dict[str, list[float]] = {name: [] for name in ["bare", *commands]}
    for round_number in range(rounds):
        runs = [("bare", bare)]
        runs += [(name, argvs[round_number % len(argvs)]) for name, argvs in commands.items()]
        for name, argv in runs:
            seconds, cpu_seconds = _once(argv, env)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    shutil.rmtree(case, ignore_errors=True)
    bare_ms = median(wall["bare"]) * 1000
    bare_cpu_ms = median(cpu["bare"]) * 1000
    return {
        "rounds": rounds,
        "page_id": page_id,
        "bare_python_ms": round(bare_ms, 1),
        "bare_python_cpu_ms": round(bare_cpu_ms, 1),
        "commands": {
            name: {
                "median_ms": round(median(wall[name]) * 1000, 1),
                "over_bare_ms": round(median(wall[name]) * 1000 - bare_ms, 1),
                "goal_over_bare_ms": GOALS_MS[name],
                "cpu_median_ms": round(median(cpu[name]) * 1000, 1),
                "cpu_over_bare_ms": round(median(cpu[name]) * 1000 - bare_cpu_ms, 1),
            }
            for name in commands
        },
    }


def _first_page(case: Path, env: dict[str, str]) -> str:
    listed = subprocess.run(
        [sys.executable, "-m", "workbench", "--case", str(case), "pages", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(listed.stdout.splitlines()[0])["page_id"]


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, goal, passed) lines for bench/run.py's table."""
    bare = f"{result['bare_python_ms']:.0f} / {result['bare_python_cpu_ms']:.0f} ms"
    out: list[tuple[str, str, str, bool | None]] = [
        (f"start-up, median of {result['rounds']}: bare python wall / CPU", bare, "", None)
    ]
    for name, entry in result["commands"].items():
        goal = entry["goal_over_bare_ms"]
        value = f"{entry['median_ms']:.0f} (+{entry['over_bare_ms']:.0f}) ms"
        label = f"  workbench {name}: wall (over bare)"
        if goal is None:
            out.append((label, value, "", None))
        else:
            out.append((label, value, f"+<= {goal:g} ms", entry["over_bare_ms"] <= goal))
        cpu = f"{entry['cpu_median_ms']:.0f} (+{entry['cpu_over_bare_ms']:.0f}) ms"
        out.append(("    CPU (over bare)", cpu, "", None))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", type=Path, help="a small case folder (copied, not changed)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-startup-") as tmp:
        result = measure(args.case, Path(tmp), args.rounds)
    print(json.dumps(result, indent=2))
    for figure, value, goal, passed in rows(result):
        verdict = "" if passed is None else ("pass" if passed else "FAIL")
        print(f"{figure:<46} {value:>18}  {goal:<14} {verdict}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
