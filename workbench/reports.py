"""What an ingest run reports, and the callbacks a face implements to follow it.

Why a module of its own: the CLI subclasses :class:`IngestObserver` when it is imported,
and every command imports the CLI; :mod:`workbench.pipeline` imports the readers (PyMuPDF,
Pillow) and the index (Whoosh), which only ``ingest`` needs. Both names are still
importable from :mod:`workbench.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    pages_reread: int = 0  # pages whose failed OCR this run retried successfully
    failures: list[tuple[str, str]] = field(default_factory=list)
    # pages kept without text because OCR failed on them (retried by the next run)
    page_errors: list[tuple[str, str]] = field(default_factory=list)
    # damaged data, repairs and other library warnings, per page (or per file)
    page_warnings: list[tuple[str, str]] = field(default_factory=list)
    index_problem: str | None = None  # the search index could not be updated (pages are safe)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.page_errors


class IngestObserver:
    """Callbacks the faces (CLI, app) implement to show progress; all optional."""

    def started(self, total_files: int, total_pages: int) -> None: ...

    def page_done(self, pages_done: int, total_pages: int) -> None: ...

    def file_failed(self, path: str, reason: str) -> None: ...

    def file_done(self, path: str, pages: int) -> None: ...

    def page_error(self, path: str, message: str) -> None: ...

    def page_warning(self, path: str, message: str) -> None: ...

    def finished(self, report: IngestReport) -> None: ...
