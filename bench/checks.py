"""The checks (findings) on the born-digital demo-size case and on the 100,000-page case.

Goals (issue #12): every check on the ~700-page case takes no longer than its ingest
(measured in the same run), and on 100,000 pages no more than 200x the 700-page time
(143x the pages: near-linear, so no all-pairs comparison anywhere). Each run starts from
a copy of the case's database with no findings, no check state and no page signatures,
so it measures a first, full check; the search index is not touched (the copy has none).

``python -m bench.checks CASE`` runs every check on a case and prints one JSON line
(per-check seconds, findings): the subprocess that ``measure`` times.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

from bench.common import run_measured

_CLEARED = ("findings", "finding_pages", "check_units", "page_signatures")


def _fresh_copy(case_dir: Path, target: Path) -> Path:
    """The case's database alone (no index), checkpointed, with no check state."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    source = sqlite3.connect(case_dir / "workbench.sqlite")
    copy = sqlite3.connect(target / "workbench.sqlite")
    with copy:
        source.backup(copy)
    source.close()
    tables = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    with copy:
        for table in _CLEARED:
            if table in tables:
                copy.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
    copy.close()
    return target


def measure(case_dir: Path, work: Path, label: str) -> dict[str, Any]:
    """Time every check on a fresh copy of the case, in a subprocess (wall, peak RSS)."""
    target = _fresh_copy(case_dir, work / f"checks-{label}")
    report = target / "report.json"
    ran = run_measured([sys.executable, "-m", "bench.checks", str(target), str(report)])
    details = json.loads(report.read_text(encoding="utf-8"))
    shutil.rmtree(target, ignore_errors=True)
    return {
        "seconds": round(ran.seconds, 2),
        "peak_rss_mb": round(ran.max_process_rss_mb, 1),
        **details,
    }


def _main(case_dir: str, out: str) -> int:
    from workbench import findings
    from workbench.store import Case

    with Case.open(case_dir) as case:
        pages = case.page_total()
        report = findings.run_checks(case)
    severities: dict[str, int] = {}
    for record in report.produced:
        severities[record["severity"]] = severities.get(record["severity"], 0) + 1
    Path(out).write_text(
        json.dumps(
            {
                "pages": pages,
                "findings": len(report.produced),
                "by_severity": severities,
                "check_seconds": {k: round(v, 2) for k, v in report.seconds.items()},
            }
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1], sys.argv[2]))
