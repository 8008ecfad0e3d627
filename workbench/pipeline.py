"""Ingest orchestration: files -> pages -> text -> the case.

Why it is shaped this way:
- Pages are analysed in a pool of worker processes (OCR is the slow part; each
  Tesseract runs single-threaded, so the pool, not OpenMP, fills the cores).
- Files are committed strictly in input order, each in one short transaction, so page
  ids follow input order and an interrupted run, run again, gives the same pages.
- Results wait in memory only for a bounded window of pages; the write lock is held
  only for the moment a finished file is written, never during OCR.
- A bad file is recorded as failed with its reason and the batch goes on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from workbench import index, metadata, readers
from workbench.errors import DiskFullError, SourceError, WorkbenchError
from workbench.readers import PageJob, PageReadError
from workbench.store import Case

# Pages committed but not yet indexed before the feeder thread indexes them (one Whoosh
# commit and one segment each time; merges keep the segment count down).
FEED_PAGES = 250


@dataclass
class IngestReport:
    """What one ingest run did, for the CLI summary and for tests."""

    files_seen: int = 0
    files_ingested: int = 0
    files_already: int = 0
    files_duplicate: int = 0
    pages_added: int = 0
    pages_ocr: int = 0
    pages_indexed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[tuple[str, str]] = field(default_factory=list)
    index_problem: str | None = None  # the search index could not be updated (pages are safe)

    @property
    def ok(self) -> bool:
        return not self.failures


class IngestObserver:
    """Callbacks the faces (CLI, app) implement to show progress; all optional."""

    def started(self, total_files: int, total_pages: int) -> None: ...

    def page_done(self, pages_done: int, total_pages: int) -> None: ...

    def file_failed(self, path: str, reason: str) -> None: ...

    def file_done(self, path: str, pages: int) -> None: ...

    def page_warning(self, path: str, message: str) -> None: ...

    def finished(self, report: IngestReport) -> None: ...


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
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    submitted: int = 0

    @property
    def needs_pages(self) -> bool:
        return self.failure is None and self.duplicate_of_path is None

    @property
    def complete(self) -> bool:
        return not self.needs_pages or len(self.results) == self.page_count


def ingest(
    case: Case,
    paths: Iterable[str],
    *,
    lang: str | None = None,
    jobs: int | None = None,
    passwords: Iterable[str] = (),
    observer: IngestObserver | None = None,
) -> IngestReport:
    """Ingest files and folders into the case; see the module docstring for the guarantees."""
    observer = observer or IngestObserver()
    report = IngestReport()
    languages = lang or case.languages
    if lang:
        from workbench import ocr

        ocr.check_languages(lang)
        with case.transaction():
            case.set_setting("languages", lang)
    jobs = max(1, jobs or os.cpu_count() or 1)
    password_list = tuple(passwords)

    files, missing = readers.expand_paths(list(paths))
    report.files_seen = len(files) + len(missing)
    for path, reason in missing:
        _fail(case, report, observer, path, None, None, reason, record=False)

    prepared = _prepare_all(case, files, password_list, report, observer)
    total_pages = sum(f.page_count for f in prepared if f.needs_pages)
    observer.started(len(prepared), total_pages)
    if prepared:
        feeder = _IndexFeeder(case)
        try:
            _run(case, prepared, languages, jobs, report, observer, total_pages, feeder)
        finally:
            report.pages_indexed += feeder.stop()
    _sync_index(case, report)
    observer.finished(report)
    return report


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
        try:
            with Case.open(self.root) as case:
                while not self._stopping:
                    self._wake.wait()
                    self._wake.clear()
                    if not self._stopping and index.pending(case) >= FEED_PAGES:
                        self.indexed += index.sync(case, timeout=0.5, batches=1)
        except Exception as error:  # noqa: BLE001 - e.g. a busy index: the final sync
            self.problem = error  # (same queue, longer wait) retries and reports it


def _sync_index(case: Case, report: IngestReport) -> None:
    """Feed committed pages to the search index; a busy index only delays that."""
    try:
        report.pages_indexed += index.sync(case)
    except DiskFullError:
        raise  # not a lagging index: the one disk-full line and exit status (7)
    except WorkbenchError as error:
        report.index_problem = (
            f"{error}; the pages are stored, run 'workbench index' to update the search index"
        )


def _prepare_all(
    case: Case,
    files: list[str],
    passwords: tuple[str, ...],
    report: IngestReport,
    observer: IngestObserver,
) -> list[_PreparedFile]:
    """Hash, de-duplicate and open every file (cheap); return those that need work."""
    prepared: list[_PreparedFile] = []
    first_path_by_sha: dict[str, str] = {}
    for path in files:
        try:
            signature = _stat_signature(path)
            sha256, size = readers.sha256_file(path)
        except OSError as error:
            _fail(case, report, observer, path, None, None, f"cannot be read ({error.strerror})")
            continue
        existing = case.ingested_source_by_sha(sha256)
        if existing is not None:
            if existing.path == path:
                report.files_already += 1
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
            _open_for_ingest(item, passwords)
        except SourceError as error:
            item.failure = error.reason
        prepared.append(item)
    return prepared


def _open_for_ingest(item: _PreparedFile, passwords: tuple[str, ...]) -> None:
    """Identify, open and count pages; the metadata is read only at commit time, so a
    trove of many files holds nothing large in memory while its pages are analysed."""
    item.kind = readers.identify(item.path)
    if item.kind == "pdf":
        doc, item.password = readers.open_pdf(item.path, passwords)
        item.page_count = doc.page_count
        doc.close()
    else:
        with readers.open_image(item.path) as image:
            item.page_count = getattr(image, "n_frames", 1)


def _file_metadata(item: _PreparedFile, pages: list[dict[str, Any]]) -> dict[str, Any]:
    if item.kind == "pdf":
        passwords = (item.password,) if item.password is not None else ()
        doc, _ = readers.open_pdf(item.path, passwords)
        try:
            found = metadata.pdf_file_metadata(doc)
        finally:
            doc.close()
        found["fonts"] = metadata.fonts_of_file([p.get("metadata", {}) for p in pages])
    else:
        with readers.open_image(item.path) as image:
            found = metadata.image_file_metadata(image)
    found["password_used"] = item.password is not None
    return found


def _run(
    case: Case,
    files: list[_PreparedFile],
    lang: str,
    jobs: int,
    report: IngestReport,
    observer: IngestObserver,
    total_pages: int,
    feeder: _IndexFeeder,
) -> None:
    """Feed pages to the pool in order, commit each file when all its pages are back."""
    max_in_flight = jobs * 3
    max_waiting = max(64, jobs * 16)  # finished pages held for files not yet committable
    in_flight: dict[Future[dict[str, Any]], tuple[int, int]] = {}
    retrying: set[tuple[int, int]] = set()  # suspects being re-run alone
    suspects: list[tuple[int, int]] = []  # jobs in flight when a worker crashed
    submit_file = 0
    commit_file = 0
    pages_done = 0
    pool = _new_pool(jobs)
    finished = False
    try:
        while commit_file < len(files):
            # 1. commit every leading file that is complete
            while commit_file < len(files) and files[commit_file].complete:
                _commit(case, files[commit_file], files, report, observer)
                files[commit_file].results = {}
                commit_file += 1
                feeder.poke()
            if commit_file >= len(files):
                break
            # 2. after a worker crash, re-run the suspect jobs one at a time to find the culprit
            if suspects and not in_flight:
                file_index, page_index = suspects.pop(0)
                item = files[file_index]
                if item.needs_pages:
                    future = pool.submit(readers.analyse_page, _job(item, page_index, lang))
                    in_flight[future] = (file_index, page_index)
                    retrying.add((file_index, page_index))
            # 3. top up the pool
            waiting = sum(len(f.results) for f in files[commit_file + 1 : submit_file + 1])
            while not suspects and len(in_flight) < max_in_flight and submit_file < len(files):
                item = files[submit_file]
                if not item.needs_pages or item.submitted >= item.page_count:
                    submit_file += 1
                    continue
                if submit_file != commit_file and waiting + len(in_flight) >= max_waiting:
                    break
                future = pool.submit(readers.analyse_page, _job(item, item.submitted, lang))
                in_flight[future] = (submit_file, item.submitted)
                item.submitted += 1
            if not in_flight:
                continue
            # 4. wait for results
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                file_index, page_index = in_flight.pop(future)
                item = files[file_index]
                if future.exception() is None or not isinstance(
                    future.exception(), BrokenProcessPool
                ):
                    retrying.discard((file_index, page_index))
                try:
                    result = future.result()
                except BrokenProcessPool:
                    if (file_index, page_index) in retrying:
                        item.failure = (
                            f"the PDF/image engine crashed on page {page_index + 1}; "
                            "the file may be hostile or damaged"
                        )
                    else:
                        suspects.append((file_index, page_index))
                    broken = True
                    continue
                except PageReadError as error:
                    item.failure = str(error)
                    continue
                except SourceError as error:
                    item.failure = error.reason
                    continue
                except Exception as error:  # a bug or a library surprise: this file only
                    item.failure = (
                        f"page {page_index + 1} could not be analysed "
                        f"({type(error).__name__}: {error})"
                    )
                    continue
                if not item.needs_pages:
                    continue
                item.results[page_index] = result
                pages_done += 1
                observer.page_done(pages_done, total_pages)
            if broken:
                for future, position in in_flight.items():
                    future.cancel()
                    suspects.append(position)
                in_flight.clear()
                suspects.sort()
                _shutdown(pool)
                pool = _new_pool(jobs)
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:
            _shutdown(pool)


def _job(item: _PreparedFile, page_index: int, lang: str) -> PageJob:
    assert item.kind is not None
    return PageJob(
        path=item.path, kind=item.kind, page_index=page_index, password=item.password, lang=lang
    )


def _commit(
    case: Case,
    item: _PreparedFile,
    files: list[_PreparedFile],
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
    if item.failure is not None:
        _fail(case, report, observer, item.path, item.sha256, item.size, item.failure, item.kind)
        return
    pages = [item.results[i] for i in range(item.page_count)]
    try:
        if _stat_signature(item.path) != item.stat_signature:
            raise SourceError(
                item.path, "the file changed while it was being ingested; run the ingest again"
            )
        file_metadata = _file_metadata(item, pages)
    except SourceError as error:  # the file changed or vanished since it was opened
        _fail(case, report, observer, item.path, item.sha256, item.size, error.reason, item.kind)
        return
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
            case.add_page(source_id, page)
    report.files_ingested += 1
    report.pages_added += len(pages)
    for page in pages:
        if page["text_source"] == "ocr":
            report.pages_ocr += 1
        if page.get("error"):
            message = f"page {page['page_number']}: {page['error']}"
            report.page_errors.append((item.path, message))
            observer.page_warning(item.path, message)
    observer.file_done(item.path, len(pages))


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


def _worker_init() -> None:
    """Workers leave Ctrl-C to the main process and die with it, even on kill -9."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass


def _new_pool(jobs: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init)


def _shutdown(pool: ProcessPoolExecutor) -> None:
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
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

    from workbench import ocr, review, views

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
