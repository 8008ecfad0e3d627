"""What the checks that read each file again share: one unit per ingested file (of the
kinds a check names), its bytes after the custody check, a PDF's structure via pikepdf.

Why a base class: revisions, hidden-content, active-content and identifying-metadata look
at the file itself (not only at what ingest stored), so each must refuse a file that
changed since ingest and re-check a file that comes back; that is decided here once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from workbench import revisions as pdf_revisions
from workbench.checks.base import Check, Unit, source_pages
from workbench.store import Case


class FileCheck(Check):
    """A check whose units are the case's ingested files (``KINDS``), read again."""

    KINDS: ClassVar[tuple[str, ...]] = ("pdf",)

    def units(self, case: Case) -> Iterator[Unit]:
        """Each file's hash, path, and size and time on disk (so a file that comes back,
        or is replaced, is checked again)."""
        marks = ",".join("?" * len(self.KINDS))
        for row in case.db.execute(
            "SELECT sha256, path, kind FROM sources WHERE status = 'ingested'"
            f" AND kind IN ({marks}) ORDER BY id",
            self.KINDS,
        ):
            try:
                stat = os.stat(row["path"])
                present: list[int] | None = [stat.st_size, stat.st_mtime_ns]
            except OSError:
                present = None
            inputs = {"sha256": row["sha256"], "path": row["path"], "file": present}
            if len(self.KINDS) > 1:
                inputs["kind"] = row["kind"]
            yield Unit(f"source:{row['sha256']}", inputs)

    @staticmethod
    def source_bytes(case: Case, unit: Unit) -> tuple[bytes | None, dict[int, str]]:
        """The file's bytes when they match the custody hash (else None), and its page
        ids by page number."""
        inputs = unit.inputs
        pages = source_pages(case, inputs["sha256"])
        if inputs["file"] is None:
            return None, pages
        return pdf_revisions.read_verified(inputs["path"], inputs["sha256"]), pages

    @staticmethod
    def structure(data: bytes, read: Callable[[Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """What ``read`` finds in the file's structure; nothing when qpdf cannot open it
        (encrypted with a password the case does not keep, or beyond repair)."""
        from workbench import pdfsafety

        try:
            with pdfsafety.open_pdf(data) as pdf:
                return read(pdf)
        except pdfsafety.UNREADABLE:
            return []
