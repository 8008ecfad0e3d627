"""Untrusted bytes are parsed only in worker processes: a crash or a hang there fails one file.

The crashes and hangs are real: the test hooks WORKBENCH_TEST_CRASH_ON / WORKBENCH_TEST_HANG_ON
(read in the worker, see pipeline.py) make the worker kill itself with SIGSEGV or sleep forever
on a file whose path contains the given text, at the step named after '@'.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest

from tests.conftest import subprocess_env
from workbench.store import DATABASE_NAME, Case

ENGINE_CRASHED = "the file may be hostile or damaged"


def make_pdf(path: Path, pages: int, word: str) -> Path:
    """A small born-digital PDF: each page says which file and page it is."""
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 50), f"{word} page {number} of {pages}", fontsize=12)
    doc.save(path)
    doc.close()
    return path


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    make_pdf(folder / "a.pdf", 2, "alpha")
    make_pdf(folder / "b-bad.pdf", 3, "bravo")
    make_pdf(folder / "c.pdf", 2, "charlie")
    make_pdf(folder / "d.pdf", 1, "delta")
    return folder


def run_ingest(case_dir: Path, *paths: Path, env: dict[str, str], jobs: int = 2):
    command = [
        sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest",
        *map(str, paths), "--lang", "eng", "--jobs", str(jobs), "--quiet",
    ]  # fmt: skip
    full_env = subprocess_env()
    full_env.update(env)
    return subprocess.run(
        command, env=full_env, capture_output=True, text=True, timeout=300, check=False
    )


def stored(case_dir: Path) -> tuple[dict[str, tuple[str, str | None]], list[tuple[str, str, int]]]:
    db = sqlite3.connect(f"file:{case_dir / DATABASE_NAME}?mode=ro", uri=True)
    try:
        sources = {
            Path(path).name: (status, error)
            for path, status, error in db.execute("SELECT path, status, error FROM sources")
        }
        pages = [
            (page_id, Path(path).name, number)
            for page_id, path, number in db.execute(
                "SELECT p.page_id, s.path, p.page_number FROM pages p"
                " JOIN sources s ON s.id = p.source_id ORDER BY p.id"
            )
        ]
    finally:
        db.close()
    return sources, pages


def assert_only_the_bad_file_failed(case_dir: Path, folder: Path, result, reason: str) -> None:
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {folder / 'b-bad.pdf'}: {reason}"], lines
    sources, pages = stored(case_dir)
    assert sources["b-bad.pdf"] == ("failed", reason)
    assert {name: status for name, (status, _) in sources.items()} == {
        "a.pdf": "ingested",
        "b-bad.pdf": "failed",
        "c.pdf": "ingested",
        "d.pdf": "ingested",
    }
    # every other file whole, in input order, with gapless page ids
    assert [(name, number) for _, name, number in pages] == [
        ("a.pdf", 1), ("a.pdf", 2), ("c.pdf", 1), ("c.pdf", 2), ("d.pdf", 1),
    ]  # fmt: skip
    assert [page_id for page_id, _, _ in pages] == [f"WB-{n:06d}" for n in range(1, 6)]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("", f"the PDF/image engine crashed while opening it; {ENGINE_CRASHED}"),
        ("@2", f"the PDF/image engine crashed on page 2; {ENGINE_CRASHED}"),
        ("@meta", f"the PDF/image engine crashed while reading its metadata; {ENGINE_CRASHED}"),
    ],
)
def test_a_worker_that_crashes_fails_only_its_file(tmp_path, batch, where, reason):
    case_dir = tmp_path / "case"
    result = run_ingest(case_dir, batch, env={"WORKBENCH_TEST_CRASH_ON": "b-bad" + where})
    assert_only_the_bad_file_failed(case_dir, batch, result, reason)
    # the same command again retries the failed file (the hook still crashes it)
    again = run_ingest(case_dir, batch, env={"WORKBENCH_TEST_CRASH_ON": "b-bad" + where})
    assert_only_the_bad_file_failed(case_dir, batch, again, reason)


@pytest.mark.parametrize(
    ("where", "step"),
    [("", "while opening it"), ("@1", "on page 1")],
)
def test_a_hung_worker_is_stopped_and_fails_only_its_file(tmp_path, batch, where, step):
    case_dir = tmp_path / "case"
    env = {"WORKBENCH_TEST_HANG_ON": "b-bad" + where, "WORKBENCH_PAGE_TIMEOUT": "4"}
    result = run_ingest(case_dir, batch, env=env)
    reason = f"the PDF/image engine took longer than 4 s {step} and was stopped; {ENGINE_CRASHED}"
    assert_only_the_bad_file_failed(case_dir, batch, result, reason)


def test_the_main_process_never_parses_a_document(tmp_path, batch, monkeypatch):
    """Opening, page counting and metadata run in workers: the coordinator only hashes
    and sniffs. Here MuPDF and Pillow refuse to open anything in this (the main) process;
    the spawned workers are unaffected."""
    from PIL import Image

    def refuse(*args, **kwargs):
        raise AssertionError("the main process opened an untrusted file")

    monkeypatch.setattr(pymupdf, "open", refuse)
    monkeypatch.setattr(pymupdf, "Document", refuse)
    monkeypatch.setattr(Image, "open", refuse)
    from workbench.pipeline import ingest

    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(batch)], lang="eng", jobs=2)
        assert report.failures == []
        assert report.files_ingested == 4 and report.pages_added == 8
        [meta] = [s.metadata for s in case.sources() if s.path.endswith("c.pdf")]
    assert meta["page_count"] == 2 and meta["format"] == "pdf"


def test_a_file_error_raised_in_a_worker_reaches_the_main_process():
    """SourceError crosses the process boundary (it used to fail to unpickle, which
    breaks the whole pool)."""
    import pickle

    from workbench.errors import SourceError

    error = pickle.loads(pickle.dumps(SourceError("/x.pdf", "encrypted")))
    assert (error.path, error.reason, str(error)) == ("/x.pdf", "encrypted", "/x.pdf: encrypted")


def test_a_job_submitted_after_a_crash_is_not_lost(tmp_path, monkeypatch):
    """A worker can die between two looks at the pool: the next submit finds the pool
    broken. That job is re-run, not lost, and the ingest does not stop there."""
    import time

    from workbench import pipeline, readers

    bad = make_pdf(tmp_path / "b-bad.pdf", 1, "bravo")
    good = make_pdf(tmp_path / "a.pdf", 1, "alpha")
    monkeypatch.setenv("WORKBENCH_TEST_CRASH_ON", "b-bad")
    workers = pipeline._Workers(1)
    try:
        args = (str(bad), "pdf", ())
        workers.submit(pipeline._Task((0, "open"), str(bad), "open", readers.open_for_ingest, args))
        for _ in range(600):  # the crash breaks the pool (no wait() has looked yet)
            if workers._pool._broken:
                break
            time.sleep(0.05)
        assert workers._pool._broken
        args = (str(good), "pdf", ())
        workers.submit(
            pipeline._Task((1, "open"), str(good), "open", readers.open_for_ingest, args)
        )
        outcomes = {}
        for _ in range(600):
            for task, result, error in workers.wait():
                outcomes[task.key[0]] = (result, error)
            if workers.idle():
                break
    finally:
        workers.close(kill=True)
    assert isinstance(outcomes[0][1], pipeline._WorkerCrashed)
    assert outcomes[1] == ({"page_count": 1, "password": None, "warnings": []}, None)


def test_a_warning_repeated_on_many_pages_is_one_line_naming_them():
    from workbench.pipeline import IngestObserver, IngestReport, _report_pages

    lines = []

    class Lines(IngestObserver):
        def page_warning(self, path: str, message: str) -> None:
            lines.append(message)

    font = "MuPDF: broken font"
    pages = [
        {"page_number": n, "warnings": [font] if n != 5 else ["MuPDF: other"]}
        for n in (1, 2, 3, 4, 5, 7)
    ]
    report = IngestReport()
    _report_pages("/x.pdf", pages, report, Lines())
    assert lines == [f"pages 1-4, 7: {font}", "page 5: MuPDF: other"]
    assert len(report.page_warnings) == 6  # the case and the summary count every page


def test_a_worker_reads_born_digital_pages_without_loading_the_index_or_scipy(tmp_path):
    """Each worker process starts by importing what its jobs need: PyMuPDF, Pillow,
    NumPy, the date patterns. Whoosh (the coordinator indexes), SciPy and imagehash (the
    perceptual hash is computed with NumPy; SciPy only for a rare tie) cost about 0.3 s
    in every worker of every ingest and must not be loaded by a page job."""
    from workbench import pipeline, readers

    pdf = make_pdf(tmp_path / "a.pdf", 2, "alpha")
    job = readers.PageJob(path=str(pdf), kind="pdf", page_index=1, password=None, lang="eng")
    workers = pipeline._Workers(1)
    results: dict[object, object] = {}
    try:
        # the worker's modules after its jobs, read by a job of its own (``eval`` pickles
        # by name and runs in the worker)
        for key, fn, args in (
            ("open", readers.open_for_ingest, (str(pdf), "pdf", ())),
            (1, readers.analyse_page, (job,)),
            ("meta", readers.read_file_metadata, (str(pdf), "pdf", None)),
            ("modules", eval, ("sorted(__import__('sys').modules)",)),
        ):
            workers.submit(pipeline._Task((0, key), str(pdf), str(key), fn, args))
            for _ in range(1200):
                for task, result, error in workers.wait():
                    assert error is None, error
                    results[task.key[1]] = result
                if workers.idle():
                    break
    finally:
        workers.close(kill=True)
    assert "alpha page 2 of 2" in results[1]["text"]  # type: ignore[index]
    assert len(results[1]["metadata"]["image_hash"]) == 64  # type: ignore[index]
    loaded = {name.split(".")[0] for name in results["modules"]}  # type: ignore[union-attr]
    assert {"pymupdf", "PIL", "numpy"} <= loaded
    assert not loaded & {"whoosh", "scipy", "imagehash", "textual", "datasketch"}
