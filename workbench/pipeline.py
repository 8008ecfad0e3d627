"""Ingest orchestration: files -> pages -> text -> the case.

Why it is shaped this way:
- The main process (the coordinator) never parses an input file: it hashes it (pure
  Python) and sniffs its first bytes. Opening it (page count, password), reading its
  metadata and analysing each page are jobs for a pool of worker processes, so MuPDF or
  Pillow crashing or hanging on a hostile file costs that file only. When a worker dies,
  the jobs it may have been running are re-run one at a time to find the culprit; a job
  running past the time limit has its worker killed. The pool is then recreated and the
  batch goes on. (ProcessPoolExecutor has no per-job timeout: each job reports its start
  through a queue and the coordinator's wait loop watches the clock.)
- Pages are analysed in that pool (OCR is the slow part; each Tesseract runs
  single-threaded, so the pool, not OpenMP, fills the cores). With ``cluster`` the same
  jobs, carrying the file's bytes, go to a Dask cluster instead (workbench.cluster).
- Files are committed strictly in input order, each in one short transaction, so page
  ids follow input order and an interrupted run, run again, gives the same pages.
- Results wait in memory only for a bounded window of pages; the write lock is held
  only for the moment a finished file is written, never during OCR.
- A bad file is recorded as failed with its reason and the batch goes on.
- A page Tesseract fails on is kept without text and with its error: the run ends with
  exit status 3, and the next run of the same ingest reads exactly those pages again, in
  place (same page ids, nothing added twice). A missing Tesseract or language pack stops
  the run before it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import itertools
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from workbench import inputs, metadata
from workbench.errors import DiskFullError, SourceError, UsageError, WorkbenchError
from workbench.hashing import sha256_file
from workbench.inputs import PageJob, PageReadError
from workbench.reports import IngestObserver, IngestReport  # defined apart: see reports.py
from workbench.store import Case

# Pages committed but not yet indexed before the feeder thread indexes them (one Whoosh
# commit and one segment each time; merges keep the segment count down).
FEED_PAGES = 250

# The longest a worker may spend on one job (opening a file, reading its metadata, or a
# page before its OCR) before it is killed and the file fails; OCR has its own limit
# (inputs.OCR_TIMEOUT), added to this one once a page reaches OCR.
JOB_TIME_LIMIT = 120.0
TIME_LIMIT_ENV = "WORKBENCH_PAGE_TIMEOUT"
# Test hooks, read in the worker (documented in README.md, "Development"): a job on a file
# whose path contains the value crashes its worker with SIGSEGV / hangs forever. The
# value may end with "@open", "@meta" or "@N" (page N); alone it means "@open".
TEST_CRASH_ENV = "WORKBENCH_TEST_CRASH_ON"
TEST_HANG_ENV = "WORKBENCH_TEST_HANG_ON"

_ENGINE_BLAME = "the file may be hostile or damaged"


@dataclass
class _PreparedFile:
    path: str
    sha256: str | None
    size: int | None
    kind: str | None = None
    page_count: int = 0
    password: str | None = None
    stat_signature: tuple[int, int] | None = None  # (size, mtime_ns) when hashed
    failure: str | None = None
    duplicate_of_path: str | None = None  # same content earlier in this run
    # a file already in the case with pages whose OCR failed: page index -> page row
    retry_rows: dict[int, int] | None = None
    opened: bool = False
    todo: list[int | str] = field(default_factory=list)  # page indexes, then "meta"
    submitted: int = 0
    returned: int = 0
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    file_metadata: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # about the file as a whole

    @property
    def needs_pages(self) -> bool:
        return self.failure is None and self.duplicate_of_path is None

    @property
    def complete(self) -> bool:
        return not self.needs_pages or (self.opened and self.returned == len(self.todo))


def ingest(
    case: Case,
    paths: Iterable[str],
    *,
    lang: str | None = None,
    jobs: int | None = None,
    passwords: Iterable[str] = (),
    observer: IngestObserver | None = None,
    cluster: str | None = None,
) -> IngestReport:
    """Ingest files and folders into the case; see the module docstring for the guarantees.

    ``cluster``: the address of a Dask scheduler (tcp://HOST:8786) whose workers do the
    page work instead of local processes (workbench.cluster); all else is the same.
    """
    limit = job_time_limit()  # a bad WORKBENCH_PAGE_TIMEOUT is a usage error before any work
    languages = lang or case.languages
    remote: Any = None
    if cluster:
        from workbench import cluster as dask_cluster

        # reached, its workers' versions and language packs checked, before any work
        remote = dask_cluster.ClusterWorkers(cluster, limit, languages)
    try:
        return _ingest(case, paths, lang, languages, jobs, passwords, observer, limit, remote)
    finally:
        if remote is not None:
            remote.close(kill=True)


def _ingest(
    case: Case,
    paths: Iterable[str],
    lang: str | None,
    languages: str,
    jobs: int | None,
    passwords: Iterable[str],
    observer: IngestObserver | None,
    limit: float,
    remote: Any,
) -> IngestReport:
    observer = observer or IngestObserver()
    report = IngestReport()
    jobs = max(1, jobs or os.cpu_count() or 1)
    # The local workers start now: each spends about 0.3 s importing PyMuPDF, Pillow and
    # NumPy, which overlaps the language check and the hashing below instead of
    # following them. They touch no file before a job comes.
    local = _Workers(jobs, limit, prestart=True) if remote is None else None
    try:
        # Tesseract and every language pack the pages may need, before any work: a
        # missing engine is one clear line (exit 4), not a trove of pages without text.
        # (A cluster's workers were checked when it was reached; this machine needs no
        # Tesseract then.)
        if remote is None:
            from workbench import ocr

            ocr.check_languages(languages)
        return _ingest_checked(
            case, paths, lang, languages, jobs, passwords, observer, report, remote or local
        )
    except BaseException:
        if local is not None:
            local.close(kill=True)  # nothing if the ingest closed it already
        raise


def _ingest_checked(
    case: Case,
    paths: Iterable[str],
    lang: str | None,
    languages: str,
    jobs: int,
    passwords: Iterable[str],
    observer: IngestObserver,
    report: IngestReport,
    workers: Any,
) -> IngestReport:
    if lang:
        with case.transaction():
            case.set_setting("languages", lang)
    password_list = tuple(passwords)

    files, missing = inputs.expand_paths(list(paths))
    report.files_seen = len(files) + len(missing)
    for path, reason in missing:
        _fail(case, report, observer, path, None, None, reason, record=False)

    prepared = _prepare_all(case, files, report, observer)
    feeder: _IndexFeeder | None = None
    leaving: threading.Thread | None = None
    if not prepared:
        observer.started(0, 0)
        if isinstance(workers, _Workers):
            workers.close(kill=True)  # started for nothing: no file needs a worker
    else:
        finished = False
        try:
            _open_all(prepared, password_list, workers)
            total_pages = sum(
                sum(1 for step in f.todo if step != "meta") for f in prepared if f.needs_pages
            )
            observer.started(len(prepared), total_pages)
            feeder = _IndexFeeder(case)
            with _quick_thread_switches():
                _run(case, prepared, languages, workers, report, observer, total_pages, feeder)
            finished = True
        finally:
            if finished and isinstance(workers, _Workers):
                leaving = workers.close_meanwhile()
            else:
                workers.close(kill=not finished)
            if feeder is not None:
                report.pages_indexed += feeder.stop()
    try:
        _sync_index(case, report)
    finally:
        if leaving is not None:
            leaving.join()
    if feeder is not None and feeder.problem is not None:
        _report_feeder_problem(case, report, feeder.problem)
    observer.finished(report)
    return report


# How long a thread may hold the GIL while another waits for it, during the page loop
# (Python's default: 5 ms).
SWITCH_INTERVAL = 0.0005
_switch_lock = threading.Lock()
_switch_users = 0
_switch_before = 0.005


@contextlib.contextmanager
def _quick_thread_switches() -> Iterator[None]:
    """Shorten the GIL switch interval while the index feeder runs beside the page loop.

    Why: every SQLite call of the loop (five or six per page committed) releases the GIL
    and must then wait for the feeder, which indexes in pure Python, to hand it back:
    up to the whole switch interval each time. At the default 5 ms a call took about
    6.7 ms instead of 0.13 (measured: 300 inserts beside a busy thread, 2.0 s; at
    0.5 ms, 0.3-0.4 s), so while a batch was indexed the loop committed pages far
    slower than the workers read them, and they waited for new jobs.
    """
    global _switch_users, _switch_before
    with _switch_lock:  # ingests in several threads (the app): the last one out restores
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_before)


class _IndexFeeder:
    """Indexes committed pages in a thread while the workers read the next ones.

    Why: Whoosh indexing is pure Python and used to run after the pages (serially, with
    the workers idle). The thread has its own connection to the case and runs
    ``index.sync`` whenever FEED_PAGES pages wait, so the writer lock is held only for
    one such batch; whatever is left (or a busy index) is synced after the run, as before.
    """

    def __init__(self, case: Case) -> None:
        self.root = case.root
        self.indexed = 0
        self.problem: BaseException | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="index-feeder", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Pages were committed: look at the queue."""
        self._wake.set()

    def stop(self) -> int:
        """Finish the batch in hand and return the pages indexed."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        return self.indexed

    def _loop(self) -> None:
        from workbench import index

        try:
            with Case.open(self.root) as case:
                while not self._stopping:
                    self._wake.wait()
                    self._wake.clear()
                    if not self._stopping and index.pending(case) >= FEED_PAGES:
                        self.indexed += index.sync(case, timeout=0.5, batches=1)
        except Exception as error:  # noqa: BLE001 - kept for the report; the final sync
            self.problem = error  # (same queue, longer wait) retries what was left


def _sync_index(case: Case, report: IngestReport) -> None:
    """Feed committed pages to the search index; a busy index only delays that."""
    from workbench import index

    try:
        report.pages_indexed += index.sync(case)
    except DiskFullError:
        raise  # not a lagging index: the one disk-full line and exit status (7)
    except WorkbenchError as error:
        report.index_problem = (
            f"{error}; the pages are stored, run 'workbench index' to update the search index"
        )


def _report_feeder_problem(case: Case, report: IngestReport, problem: BaseException) -> None:
    """The feeder thread failed: say so, unless it was only a busy index the final sync
    got past (then nothing is missing) or the final sync already reported a problem."""
    from workbench import index

    if report.index_problem is not None or isinstance(problem, index.IndexBusyError):
        return
    detail = str(problem) if isinstance(problem, WorkbenchError) else _describe(problem)
    try:
        caught_up = index.pending(case) == 0
    except WorkbenchError:
        caught_up = False
    if caught_up:
        report.index_problem = (
            f"indexing during the ingest failed ({detail}); the index was brought up to "
            "date at the end, but check the disk and run 'workbench index' if searches miss pages"
        )
    else:
        report.index_problem = (
            f"indexing during the ingest failed ({detail}); the pages are stored, "
            "run 'workbench index' to update the search index"
        )


def _describe(error: BaseException) -> str:
    return inputs.printable(f"{type(error).__name__}: {error}")


def _prepare_all(
    case: Case,
    files: list[str],
    report: IngestReport,
    observer: IngestObserver,
) -> list[_PreparedFile]:
    """Hash, de-duplicate and sniff every file (no parsing here); return those needing work."""
    prepared: list[_PreparedFile] = []
    first_path_by_sha: dict[str, str] = {}
    for path in files:
        try:
            signature = _stat_signature(path)
            sha256, size = sha256_file(path)
        except OSError as error:
            _fail(case, report, observer, path, None, None, f"cannot be read ({error.strerror})")
            continue
        existing = case.ingested_source_by_sha(sha256)
        if existing is not None:
            if existing.path == path:
                report.files_already += 1
                retry = _pages_to_read_again(case, existing.id)
                if retry and existing.kind is not None:
                    prepared.append(
                        _PreparedFile(
                            path=path,
                            sha256=sha256,
                            size=size,
                            kind=existing.kind,
                            stat_signature=signature,
                            retry_rows=retry,
                        )
                    )
            else:
                _record_duplicate(case, report, path, sha256, size, existing.id, existing.path)
            continue
        item = _PreparedFile(path=path, sha256=sha256, size=size, stat_signature=signature)
        if sha256 in first_path_by_sha:
            item.duplicate_of_path = first_path_by_sha[sha256]
            prepared.append(item)
            continue
        first_path_by_sha[sha256] = path
        try:
            item.kind = inputs.identify(path)  # reads the first 2 KB: no parser involved
        except SourceError as error:
            item.failure = error.reason
        except OSError as error:
            item.failure = f"cannot be read ({error.strerror})"
        prepared.append(item)
    return prepared


def _pages_to_read_again(case: Case, source_id: int) -> dict[int, int]:
    """Pages of a file in the case whose OCR failed: page index -> page row."""
    rows = case.db.execute(
        "SELECT page_number, id FROM pages WHERE source_id = ? AND error LIKE ?"
        " ORDER BY page_number",
        (source_id, inputs.OCR_FAILED + "%"),
    ).fetchall()
    return {number - 1: row_id for number, row_id in rows}


def _open_all(files: list[_PreparedFile], passwords: tuple[str, ...], workers: _Workers) -> None:
    """Open every file in the workers: page count, the password that opens it."""
    pending = [number for number, item in enumerate(files) if item.needs_pages]
    position = 0
    limit = workers.jobs * workers.depth
    while position < len(pending) or not workers.idle():
        while workers.accepting() and position < len(pending) and workers.busy < limit:
            number = pending[position]
            position += 1
            item = files[number]
            workers.submit(
                _Task(
                    (number, "open"),
                    item.path,
                    "open",
                    "open_for_ingest",
                    (item.path, item.kind, passwords),
                    sha256=item.sha256,
                )
            )
        for task, result, error in workers.wait():
            item = files[task.key[0]]
            if error is not None:
                item.failure = _job_failure(error, "open")
                continue
            item.opened = True
            item.page_count = result["page_count"]
            item.password = result["password"]
            item.warnings.extend(result["warnings"])
            if item.retry_rows is None:
                item.todo = [*range(item.page_count), "meta"]
            else:
                item.retry_rows = {
                    i: row for i, row in item.retry_rows.items() if i < item.page_count
                }
                item.todo = sorted(item.retry_rows)


def _job_failure(error: BaseException, step: int | str) -> str:
    """One line saying why a job failed the file."""
    where = {"open": "while opening it", "meta": "while reading its metadata"}.get(
        str(step), f"on page {int(step) + 1}" if isinstance(step, int) else str(step)
    )
    if isinstance(error, _WorkerCrashed):
        return f"the PDF/image engine crashed {where}; {_ENGINE_BLAME}"
    if isinstance(error, _WorkerTimedOut):
        return (
            f"the PDF/image engine took longer than {error.limit:g} s {where} and was "
            f"stopped; {_ENGINE_BLAME}"
        )
    if isinstance(error, PageReadError):
        return inputs.printable(str(error))
    if isinstance(error, SourceError):
        return error.reason
    if step == "open":
        return f"cannot be opened ({_describe(error)})"
    if step == "meta":
        return f"its metadata cannot be read ({_describe(error)})"
    # a bug or a library surprise: this file only
    return f"page {int(step) + 1} could not be analysed ({_describe(error)})"


def _run(
    case: Case,
    files: list[_PreparedFile],
    lang: str,
    workers: _Workers,
    report: IngestReport,
    observer: IngestObserver,
    total_pages: int,
    feeder: _IndexFeeder,
) -> None:
    """Feed jobs to the pool in order, commit each file when all its jobs are back."""
    max_in_flight = workers.jobs * (workers.depth + 1)
    max_waiting = max(64, workers.jobs * 16)  # finished pages held for files not yet committable
    submit_file = 0
    commit_file = 0
    pages_done = 0
    while commit_file < len(files):
        # 1. commit every leading file that is complete
        while commit_file < len(files) and files[commit_file].complete:
            _commit(case, files[commit_file], report, observer)
            files[commit_file].results = {}
            files[commit_file].file_metadata = None
            commit_file += 1
            feeder.poke()
        if commit_file >= len(files):
            break
        # 2. top up the pool (not while the jobs lost in a crash are re-run one by one)
        waiting = sum(len(f.results) for f in files[commit_file + 1 : submit_file + 1])
        while workers.accepting() and workers.busy < max_in_flight and submit_file < len(files):
            item = files[submit_file]
            if not item.needs_pages or item.submitted >= len(item.todo):
                submit_file += 1
                continue
            if submit_file != commit_file and waiting + workers.busy >= max_waiting:
                break
            step = item.todo[item.submitted]
            item.submitted += 1
            workers.submit(_job_task(submit_file, item, step, lang))
        # 3. take what came back
        for task, result, error in workers.wait():
            file_index, step = task.key
            item = files[file_index]
            if not item.needs_pages:
                continue  # the file already failed
            item.returned += 1
            if error is not None:
                item.failure = _job_failure(error, step)
            elif step == "meta":
                item.file_metadata = result["metadata"]
                item.warnings.extend(result["warnings"])
            else:
                assert isinstance(step, int)
                item.results[step] = result
                pages_done += 1
                observer.page_done(pages_done, total_pages)


def _job_task(file_index: int, item: _PreparedFile, step: int | str, lang: str) -> _Task:
    assert item.kind is not None
    if step == "meta":
        return _Task(
            (file_index, step),
            item.path,
            "meta",
            "read_file_metadata",
            (item.path, item.kind, item.password),
            sha256=item.sha256,
        )
    assert isinstance(step, int)
    job = PageJob(
        path=item.path, kind=item.kind, page_index=step, password=item.password, lang=lang
    )
    return _Task(
        (file_index, step),
        item.path,
        str(step + 1),
        "analyse_page",
        (job,),
        sha256=item.sha256,
    )


def _stored_page(page: dict[str, Any]) -> dict[str, Any]:
    """The page as the case stores it: the OCR error first, then the warnings, in ``error``."""
    messages = [page.get("error"), *page.get("warnings", ())]
    return dict(page, error="; ".join(m for m in messages if m) or None)


def _commit(
    case: Case,
    item: _PreparedFile,
    report: IngestReport,
    observer: IngestObserver,
) -> None:
    """Write one finished file and all its pages in one transaction."""
    if item.duplicate_of_path is not None:
        original = case.ingested_source_by_sha(item.sha256 or "")
        if original is not None:
            _record_duplicate(
                case, report, item.path, item.sha256, item.size, original.id, original.path
            )
        else:
            _fail(
                case,
                report,
                observer,
                item.path,
                item.sha256,
                item.size,
                f"same content as {item.duplicate_of_path}, which could not be ingested",
            )
        return
    # a file already in the case keeps its record whatever happens to a retry
    record = item.retry_rows is None
    if item.failure is None and _stat_signature(item.path) != item.stat_signature:
        item.failure = "the file changed while it was being ingested; run the ingest again"
    if item.failure is not None:
        _fail(
            case,
            report,
            observer,
            item.path,
            item.sha256,
            item.size,
            item.failure,
            item.kind,
            record=record,
        )
        return
    for message in item.warnings:
        report.page_warnings.append((item.path, message))
        observer.page_warning(item.path, message)
    if item.retry_rows is not None:
        _commit_retry(case, item, report, observer)
        return
    pages = [item.results[i] for i in range(item.page_count)]
    file_metadata = dict(item.file_metadata or {})
    if item.kind == "pdf":
        file_metadata["fonts"] = metadata.fonts_of_file([p.get("metadata", {}) for p in pages])
    file_metadata["password_used"] = item.password is not None
    if item.warnings:
        file_metadata["warnings"] = item.warnings
    with case.transaction():
        source_id = case.record_source(
            path=item.path,
            sha256=item.sha256,
            size=item.size,
            kind=item.kind,
            status="ingested",
            page_count=item.page_count,
            metadata=file_metadata,
        )
        for page in pages:
            case.add_page(source_id, _stored_page(page))
    report.files_ingested += 1
    report.pages_added += len(pages)
    report.pages_ocr += sum(1 for page in pages if page["text_source"] == "ocr")
    _report_pages(item.path, pages, report, observer)
    observer.file_done(item.path, len(pages))


def _commit_retry(
    case: Case, item: _PreparedFile, report: IngestReport, observer: IngestObserver
) -> None:
    """Put the new readings of pages whose OCR failed before in place (same page ids)."""
    assert item.retry_rows is not None
    with case.transaction():
        for page_index, row_id in sorted(item.retry_rows.items()):
            case.replace_page_text(row_id, _stored_page(item.results[page_index]))
    pages = [item.results[page_index] for page_index in sorted(item.retry_rows)]
    report.pages_reread += sum(1 for page in pages if not page.get("error"))
    _report_pages(item.path, pages, report, observer)


def _report_pages(
    path: str, pages: list[dict[str, Any]], report: IngestReport, observer: IngestObserver
) -> None:
    """One error line per page OCR failed on; one warning line per distinct warning of
    the file, naming its pages (a broken font warns the same on every page)."""
    grouped: dict[str, list[int]] = {}
    for page in pages:
        number = page["page_number"]
        if page.get("error"):
            message = f"page {number}: {page['error']}"
            report.page_errors.append((path, message))
            observer.page_error(path, message)
        for warning in page.get("warnings", ()):
            report.page_warnings.append((path, f"page {number}: {warning}"))
            grouped.setdefault(warning, []).append(number)
    for warning, numbers in grouped.items():
        observer.page_warning(path, f"{_page_list(numbers)}: {warning}")


def _page_list(numbers: list[int]) -> str:
    """'page 3' or 'pages 1-4, 7'."""
    spans: list[list[int]] = []
    for number in sorted(set(numbers)):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return ("page " if len(numbers) == 1 else "pages ") + text


def _stat_signature(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _record_duplicate(
    case: Case,
    report: IngestReport,
    path: str,
    sha256: str | None,
    size: int | None,
    original_id: int,
    original_path: str,
) -> None:
    report.files_duplicate += 1
    if case.source_by_path_sha(path, sha256) is not None:
        return
    with case.transaction():
        case.record_source(
            path=path,
            sha256=sha256,
            size=size,
            kind=None,
            status="duplicate",
            duplicate_of=original_id,
            error=f"same content as {original_path}",
        )


def _fail(
    case: Case,
    report: IngestReport,
    observer: IngestObserver,
    path: str,
    sha256: str | None,
    size: int | None,
    reason: str,
    kind: str | None = None,
    *,
    record: bool = True,
) -> None:
    report.failures.append((path, reason))
    observer.file_failed(path, reason)
    if record:
        with case.transaction():
            case.record_source(
                path=path, sha256=sha256, size=size, kind=kind, status="failed", error=reason
            )


# ----- the worker pool: crash isolation and a time limit per job ----------------------


class _WorkerCrashed(Exception):
    """The worker process running the job died (MuPDF, Pillow or Tesseract crashed it)."""


class _WorkerTimedOut(Exception):
    """The job ran past the time limit; its worker was killed."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"over {limit:g} s")
        self.limit = limit


@dataclass
class _Task:
    key: tuple[int, int | str]  # (file index, page index | "open" | "meta")
    path: str
    step: str  # "open", "meta" or the page number: what the test hooks match
    # the job: a function, or the name of one in workbench.readers (see _worker_call)
    fn: Callable[..., dict[str, Any]] | str
    args: tuple[Any, ...]
    alone: bool = False  # re-run by itself after a crash: if it crashes, it is the culprit
    # the file's custody hash: a cluster sends the job the bytes with this hash
    sha256: str | None = None


def job_time_limit() -> float:
    """Seconds a worker may spend on one job (WORKBENCH_PAGE_TIMEOUT, else 120)."""
    raw = os.environ.get(TIME_LIMIT_ENV, "").strip()
    if not raw:
        return JOB_TIME_LIMIT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{TIME_LIMIT_ENV}={raw!r} is not a number of seconds above 0")
    return value


class _Workers:
    """The process pool, with what ProcessPoolExecutor lacks: crash isolation per job and
    a time limit per job.

    When a worker dies, every job in flight fails with BrokenProcessPool. The jobs that
    had started (each tells the coordinator so through a queue) are suspects and are
    re-run one at a time once nothing else runs; one that crashes alone is the culprit.
    The jobs that had not started are simply submitted again. A job running past its
    deadline has its worker (and the worker's Tesseract) killed with the whole pool, which
    is recreated; the other jobs in flight are submitted again.
    """

    # jobs in flight per worker while files are opened (one more while pages are read):
    # enough to keep each worker fed, few enough that a crash re-runs little
    depth = 2

    def __init__(self, jobs: int, limit: float | None = None, *, prestart: bool = False) -> None:
        self.jobs = jobs
        self.limit = job_time_limit() if limit is None else limit
        self._context = multiprocessing.get_context("spawn")
        self._ids = itertools.count()
        self._in_flight: dict[Future[dict[str, Any]], tuple[int, _Task]] = {}
        self._deadlines: dict[int, float] = {}  # job id -> deadline, once it has started
        # job id -> the page so far, once it is in OCR: Tesseract runs in the worker, so a
        # crash or hang there is the page's OCR failing (inputs.page_without_ocr)
        self._in_ocr: dict[int, dict[str, Any]] = {}
        self._suspects: list[tuple[int, _Task]] = []
        self._start_pool()
        if prestart:
            # the pool starts a process per job submitted while none is idle: one
            # empty job per worker starts them all now (they import as they start)
            for _ in range(jobs):
                self._pool.submit(_worker_ready)

    def _start_pool(self) -> None:
        # a new queue each time: a worker killed while writing to the old one may hold its lock
        self._news = self._context.SimpleQueue()
        self._pool = ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=self._context,
            initializer=_worker_init,
            initargs=(self._news,),
        )

    @property
    def busy(self) -> int:
        return len(self._in_flight)

    def accepting(self) -> bool:
        """False while the jobs lost in a crash are re-run one by one."""
        return not self._suspects

    def idle(self) -> bool:
        return not self._in_flight and not self._suspects

    def submit(self, task: _Task) -> None:
        task_id = next(self._ids)
        try:
            future = self._pool.submit(
                _worker_call, task_id, task.path, task.step, task.fn, task.args
            )
        except BrokenProcessPool as error:  # a worker died since the last wait(): the
            future = Future()  # job is lost with the others and handled there
            future.set_exception(error)
        self._in_flight[future] = (task_id, task)

    def wait(self) -> list[tuple[_Task, Any, BaseException | None]]:
        """Wait a little for jobs; return those that ended: (task, result, error)."""
        if self._suspects and not self._in_flight:
            _, task = self._suspects.pop(0)
            task.alone = True
            self.submit(task)
        if not self._in_flight:
            return []
        done, _ = wait(
            list(self._in_flight), timeout=self._until_next_check(), return_when=FIRST_COMPLETED
        )
        self._read_news()
        outcomes: list[tuple[_Task, Any, BaseException | None]] = []
        lost: list[tuple[int, _Task]] = []
        for future in done:
            task_id, task = self._in_flight.pop(future)
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                lost.append((task_id, task))
                continue
            self._deadlines.pop(task_id, None)
            self._in_ocr.pop(task_id, None)
            outcomes.append((task, None if error else future.result(), error))
        if lost:
            outcomes += self._after_crash(lost)
        else:
            outcomes += self._stop_overdue()
        return outcomes

    def close(self, *, kill: bool) -> None:
        if kill:
            _shutdown(self._pool)
        else:
            self._pool.shutdown(wait=True)

    def close_meanwhile(self) -> threading.Thread:
        """Let the idle workers exit while the caller goes on (the final index sync):
        their exit (interpreter and MuPDF teardown, about 0.2 s each) then overlaps it.
        Join the thread returned before returning from the ingest."""
        leaving = threading.Thread(
            target=self._pool.shutdown, kwargs={"wait": True}, name="workers-exit"
        )
        leaving.start()
        return leaving

    def _until_next_check(self) -> float:
        """Wake at the next deadline, and at least every second to read who started."""
        now = time.monotonic()
        ids = [task_id for task_id, _ in self._in_flight.values()]
        soonest = min((self._deadlines[i] for i in ids if i in self._deadlines), default=now + 1)
        return min(max(soonest - now, 0.01), 1.0)

    def _read_news(self) -> None:
        in_flight = {task_id for task_id, _ in self._in_flight.values()}
        while not self._news.empty():
            task_id, phase, at, pending = self._news.get()
            if task_id not in in_flight:
                continue
            if phase == "start":
                self._deadlines[task_id] = at + self.limit
            elif phase == "ocr":  # Tesseract has its own limit; MuPDF's part keeps this one
                self._deadlines[task_id] = at + inputs.OCR_TIMEOUT + self.limit
                if pending is not None:
                    self._in_ocr[task_id] = pending

    def _take_all_in_flight(
        self, outcomes: list[tuple[_Task, Any, BaseException | None]]
    ) -> list[tuple[int, _Task]]:
        """Empty the in-flight table: jobs that finished well go to ``outcomes``."""
        rest = []
        for future, (task_id, task) in self._in_flight.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                outcomes.append((task, future.result(), None))
            else:
                rest.append((task_id, task))
        self._in_flight.clear()
        return rest

    def _after_crash(
        self, lost: list[tuple[int, _Task]]
    ) -> list[tuple[_Task, Any, BaseException | None]]:
        outcomes: list[tuple[_Task, Any, BaseException | None]] = []
        lost = sorted(lost + self._take_all_in_flight(outcomes), key=lambda pair: pair[0])
        started = [(i, t) for i, t in lost if i in self._deadlines and not t.alone]
        not_started = [(i, t) for i, t in lost if i not in self._deadlines and not t.alone]
        if not started:  # no job said it had started: suspect them all
            started, not_started = not_started, []
        for task_id, task in lost:
            if task.alone and task_id in self._in_ocr:
                page = inputs.page_without_ocr(self._in_ocr[task_id], _OCR_CRASHED)
                outcomes.append((task, page, None))
            elif task.alone:
                outcomes.append((task, None, _WorkerCrashed()))
        self._suspects = sorted(self._suspects + started, key=lambda pair: pair[0])
        self._restart()
        for _, task in not_started:
            self.submit(task)
        return outcomes

    def _stop_overdue(self) -> list[tuple[_Task, Any, BaseException | None]]:
        now = time.monotonic()
        overdue = {
            task_id
            for future, (task_id, _) in self._in_flight.items()
            if self._deadlines.get(task_id, math.inf) < now and not future.done()
        }
        if not overdue:
            return []
        outcomes: list[tuple[_Task, Any, BaseException | None]] = []
        rest = self._take_all_in_flight(outcomes)
        for task_id, task in rest:
            if task_id in overdue and task_id in self._in_ocr:
                reason = _ocr_stopped(inputs.OCR_TIMEOUT + self.limit)
                outcomes.append(
                    (task, inputs.page_without_ocr(self._in_ocr[task_id], reason), None)
                )
            elif task_id in overdue:
                outcomes.append((task, None, _WorkerTimedOut(self.limit)))
        self._restart()
        for task_id, task in rest:
            if task_id not in overdue:
                self.submit(task)
        return outcomes

    def _restart(self) -> None:
        _shutdown(self._pool)
        self._deadlines.clear()
        self._in_ocr.clear()
        self._start_pool()


_OCR_CRASHED = "Tesseract crashed on this page (its worker process died); the page may be damaged"


def _ocr_stopped(seconds: float) -> str:
    return (
        f"Tesseract did not finish this page within {seconds:g} s and its worker was "
        "stopped; the page may be damaged or rendered too large"
    )


# ----- inside a worker process ---------------------------------------------------------

_news: Any = None  # the queue to the coordinator
_current_task = -1
_output_fd: int | None = None


def _worker_init(news: Any = None) -> None:
    """Workers leave Ctrl-C to the main process and die with it, even on kill -9; what
    libraries print in them is captured and returned with each job as warnings."""
    global _news
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass
    _news = news
    from workbench import readers  # the worker's imports: PyMuPDF, Pillow, NumPy

    readers.phase_hook = _tell_phase
    _capture_output()


def _worker_ready() -> None:
    """An empty job: it makes the pool start a worker (see ``_Workers(prestart=True)``)."""


def _tell_phase(phase: str, pending: dict[str, Any] | None = None) -> None:
    if _news is not None:
        _news.put((_current_task, phase, time.monotonic(), pending))


def _capture_output() -> None:
    """Point the worker's stdout and stderr (file descriptors 1 and 2, so C code too) at
    an anonymous file read back after each job: nothing a library prints reaches the
    terminal unformatted."""
    global _output_fd
    try:
        fd, name = tempfile.mkstemp(prefix="workbench-worker-output-")
        os.unlink(name)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    except OSError:
        return  # no temporary space: output is not captured, the job still runs
    _output_fd = fd


def _captured_output() -> list[str]:
    if _output_fd is None:
        return []
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    try:
        data = os.pread(_output_fd, 4096, 0)
        os.ftruncate(_output_fd, 0)
    except OSError:
        return []
    lines = [
        inputs.printable(line).strip() for line in data.decode("utf-8", "replace").splitlines()
    ]
    text = "; ".join(dict.fromkeys(line for line in lines if line))
    if not text:
        return []
    if len(text) > inputs.MAX_WARNING_CHARS:
        text = text[: inputs.MAX_WARNING_CHARS - 1] + "…"
    return [f"engine output: {text}"]


def _worker_call(
    task_id: int,
    path: str,
    step: str,
    fn: Callable[..., dict[str, Any]] | str,
    args: tuple[Any, ...],
    data: inputs.SourceBytes | None = None,
) -> dict[str, Any]:
    """Run one job in a worker (a local one, or a Dask worker: workbench.cluster): say it
    started, run it, add what was printed meanwhile. ``fn``: the function, or the name
    of one in workbench.readers (the coordinator names them: it never imports readers).
    ``data``: the file's bytes, sent with the job when the worker cannot read the
    coordinator's disk."""
    global _current_task
    _current_task = task_id
    _tell_phase("start")
    _test_hooks(path, step)
    if isinstance(fn, str):
        from workbench import readers

        fn = getattr(readers, fn)
    try:
        result = fn(*args) if data is None else fn(*args, data=data)
    finally:
        printed = _captured_output()
    if printed:
        result["warnings"] = [*result.get("warnings", ()), *printed]
    return result


def _test_hooks(path: str, step: str) -> None:
    """WORKBENCH_TEST_CRASH_ON / WORKBENCH_TEST_HANG_ON: a real crash or hang, for tests."""
    for variable in (TEST_CRASH_ENV, TEST_HANG_ENV):
        value = os.environ.get(variable)
        if not value:
            continue
        marker, _, where = value.partition("@")
        if marker and marker in path and (where or "open") == step:
            if variable == TEST_CRASH_ENV:
                os.kill(os.getpid(), signal.SIGSEGV)
            while True:
                time.sleep(3600)


def _children(pid: int) -> list[int]:
    """Processes a worker started (its Tesseract), from /proc; empty where unavailable."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(child) for child in handle.read().split()]
        except (OSError, ValueError):
            continue
    return found


def _shutdown(pool: ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            for child in _children(process.pid):
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)
            process.kill()
    for process in processes:
        process.join(timeout=5)


def reocr_page(
    case: Case,
    page_id: str,
    lang: str,
    *,
    reviewer: str,
    password: str | None = None,
) -> dict[str, Any]:
    """OCR one page again (e.g. in another language) and record that in the review log.

    The new reading replaces the page's text, dates and marker; the event keeps the
    SHA-256 of the text before and after, so the change of reading is on the record.
    The file is checked against its custody hash first (refused if it changed). The
    page's fingerprint is not recomputed: the page keeps the one (and the
    ``fingerprint_version``) it was ingested with. Returns the page as
    ``views.page_detail`` shows it.
    """
    import hashlib

    from workbench import ocr, readers, review, views

    ocr.check_languages(lang)
    row = case.page_row(page_id)
    kind = case.source_kind(row["source_id"]) or "image"
    # only the file that was ingested: a replaced file's text must never go in under
    # the old page's hash (CustodyError, and the page shows as stale)
    views.checked_source(case, row)
    job = PageJob(
        path=row["source_path"],
        kind=kind,
        page_index=row["page_number"] - 1,
        password=password,
        lang=lang,
        force_ocr=True,
    )
    try:
        result = readers.analyse_page(job)
    except PageReadError as error:
        raise SourceError(row["source_path"], str(error)) from None
    if result.get("error"):
        raise SourceError(row["source_path"], result["error"])
    views.checked_source(case, row)  # not replaced while it was being read

    def text_sha(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    with case.transaction() as db:
        state = case.review_state(row["page_id"])
        review.append_event(
            db,
            kind="reocr",
            page_id=row["page_id"],
            document_id=state["document_id"],
            reviewer=reviewer,
            page_sha256=row["page_sha256"],
            payload={
                "lang": result.get("ocr_lang"),
                "previous_text_source": row["text_source"],
                "previous_text_sha256": text_sha(row["text"]),
                "text_sha256": text_sha(result["text"]),
                "confidence": result.get("ocr_confidence"),
            },
        )
        case.replace_page_text(row["id"], result)
    return views.page_detail(case, row["page_id"])
