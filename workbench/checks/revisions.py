"""revisions: a PDF edited by incremental updates after it was first saved.

The file's bytes are read again (after checking them against the custody hash), each
earlier revision is opened as its own PDF and compared with the next: which pages'
text changed (the words removed and added), pages added or removed, metadata changed.
Text changes are a ``warn``; updates that touch only metadata, or nothing a reader
sees (annotations, form fields, a signature), are ``info``.
"""

from __future__ import annotations

from typing import Any

from workbench import revisions as pdf_revisions
from workbench.checks.base import Draft, Unit
from workbench.checks.file_check import FileCheck
from workbench.store import Case

_FROM = "earlier versions of the file kept inside it (incremental updates), opened and compared"


class Revisions(FileCheck):
    name = "revisions"
    version = 1
    summary = "PDFs edited by incremental updates: what each earlier version said"

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        data, pages = self.source_bytes(case, unit)
        if data is None or data.count(b"%%EOF") < 2:
            return []
        revisions = pdf_revisions.analyse(data)
        if len(revisions) < 2:
            return []
        return [_draft(pages, revisions)]


def _draft(pages: dict[int, str], revisions: list[pdf_revisions.Revision]) -> Draft:
    changed = sorted(
        {c.page_number for r in revisions for c in r.text_changes}
        | {n for r in revisions for n in r.pages_added}
    )
    text_changed = any(r.text_changes or r.pages_added or r.pages_removed for r in revisions)
    page_ids = ([pages[n] for n in changed if n in pages] or [pages[min(pages)]]) if pages else []
    updates = len(revisions) - 1
    evidence: dict[str, Any] = {
        "revisions": [r.as_json() for r in revisions],
        "from": _FROM,
    }
    return Draft(
        severity="warn" if text_changed else "info",
        message=(
            f"Edited after it was first saved: {updates} incremental update"
            f"{'s' if updates > 1 else ''} ({pdf_revisions.describe(revisions)}); "
            "'workbench revisions' shows and extracts each version"
        ),
        page_ids=page_ids,
        evidence=evidence,
        discriminator="revisions",
    )


CHECK = Revisions()
