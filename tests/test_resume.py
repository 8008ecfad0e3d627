"""An ingest interrupted by Ctrl-C or kill -9, run again, ends exactly like an uninterrupted one."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import needs_tesseract, subprocess_env, trove_inputs
from workbench.store import DATABASE_NAME

pytestmark = [needs_tesseract, pytest.mark.slow]


def _page_set(case_dir: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{case_dir / DATABASE_NAME}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT p.page_id, s.path, p.page_number, p.page_sha256, p.text_source, p.text"
            " FROM pages p JOIN sources s ON s.id = p.source_id ORDER BY p.id"
        ).fetchall()
    finally:
        db.close()


def _committed_pages(case_dir: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{case_dir / DATABASE_NAME}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM pages").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _files_are_whole(case_dir: Path) -> None:
    db = sqlite3.connect(f"file:{case_dir / DATABASE_NAME}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT s.path, s.page_count, count(p.id) FROM sources s"
            " LEFT JOIN pages p ON p.source_id = s.id WHERE s.status = 'ingested'"
            " GROUP BY s.id"
        ).fetchall()
    finally:
        db.close()
    for path, expected, stored in rows:
        assert stored == expected, f"{path}: {stored} of {expected} pages stored"


def _start(case_dir: Path, trove: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest", *trove_inputs(trove),
        "--lang", "fas+eng", "--jobs", "1", "--quiet",
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _interrupt_after(process: subprocess.Popen, case_dir: Path, more_than: int, sig: int) -> int:
    """Send ``sig`` once more than ``more_than`` pages are committed; return that count."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the ingest finished before it could be interrupted")
        count = _committed_pages(case_dir)
        if count > more_than:
            process.send_signal(sig)
            process.wait(timeout=60)
            return count
        time.sleep(0.05)
    process.kill()
    pytest.fail("no progress within 300 s")


def test_resume_after_ctrl_c_and_kill_9(small_trove, ground_truth, ingested_small_trove, tmp_path):
    reference_case, _ = ingested_small_trove
    reference = _page_set(reference_case)
    total = ground_truth["total_pages"]
    assert len(reference) == total
    case_dir = tmp_path / "case"

    first = _start(case_dir, small_trove)
    _interrupt_after(first, case_dir, 0, signal.SIGINT)
    stderr = first.stderr.read()
    assert first.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    after_ctrl_c = _committed_pages(case_dir)
    assert 0 < after_ctrl_c < total
    _files_are_whole(case_dir)

    second = _start(case_dir, small_trove)
    _interrupt_after(second, case_dir, after_ctrl_c, signal.SIGKILL)
    assert second.returncode == -signal.SIGKILL
    after_kill = _committed_pages(case_dir)
    assert after_ctrl_c < after_kill < total, "the kill -9 did not land mid-run"
    _files_are_whole(case_dir)

    third = _start(case_dir, small_trove)
    _, stderr = third.communicate(timeout=600)
    assert third.returncode == 0, stderr
    assert _page_set(case_dir) == reference
