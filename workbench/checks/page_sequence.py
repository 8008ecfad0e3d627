"""page-sequence: "page X of Y" markers that skip, repeat, run backwards or disagree on Y.

Why two kinds of unit: a source file may hold several cables, or only part of one (a
loose scan of page 2), so within a file only what is wrong *inside* a run of markers is
reported (a gap between 2 and 4, a number twice, a number going back, a different Y).
A grouped document is a reviewer's claim that these pages are one cable, so there a
missing first or last page counts too, and so does the claimed page count. A page in a
document is checked with its document, not with its file, so one gap is reported once.

Markers are the ones ingest found in the page text (English, Persian, Arabic forms); a
marker read by OCR may be misread, which the evidence says so the reviewer can look.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench import documents
from workbench.checks.base import Check, Draft, Unit
from workbench.store import Case

_FROM_MARKERS = "'page X of Y' markers found at ingest in the page text"


@dataclass(frozen=True)
class Marked:
    """One page with its marker (number and total may be None on unmarked pages)."""

    page_id: str
    number: int | None
    total: int | None
    text_source: str

    @property
    def label(self) -> str:
        return f"page {self.number} of {self.total}"

    def as_evidence(self) -> dict[str, Any]:
        return {
            "page_id": self.page_id,
            "marker": self.label,
            "read_by": "OCR" if self.text_source == "ocr" else "text layer",
        }


def _numbers(values: list[int]) -> str:
    """``3`` / ``3 and 5`` / ``3-6`` / ``2, 4 and 7``: how a journalist says page numbers."""
    values = sorted(values)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    text = [str(v) for v in values]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]


def _pages_word(values: list[int]) -> str:
    return "Page" if len(values) == 1 else "Pages"


def segments(marked: list[Marked]) -> list[list[Marked]]:
    """Split a file's marked pages into runs, each presumably one document.

    A new run starts at a page marked 1 when the run so far is complete or counts to
    another total. Otherwise a 1 is a repeat or a step back inside the same run, which
    is what the check reports.
    """
    runs: list[list[Marked]] = []
    current: list[Marked] = []
    for page in marked:
        if current and page.number == 1:
            totals = Counter(p.total for p in current).most_common(1)[0][0]
            complete = {p.number for p in current} >= set(range(1, (totals or 0) + 1))
            if complete or page.total != totals:
                runs.append(current)
                current = []
        current.append(page)
    if current:
        runs.append(current)
    return runs


def run_problems(run: list[Marked], *, whole_document: bool) -> list[Draft]:
    """Skips, repeats, steps back and disagreeing totals in one run of markers."""
    drafts: list[Draft] = []
    start = run[0].page_id
    total_counts = Counter(p.total for p in run)
    total = total_counts.most_common(1)[0][0]
    odd_totals = [p for p in run if p.total != total]
    if odd_totals:
        drafts.append(
            Draft(
                severity="warn",
                message=(
                    f"Pages of one run disagree on the page count: {total_counts[total]} say "
                    f"'of {total}', "
                    + ", ".join(f"{p.page_id} says 'of {p.total}'" for p in odd_totals)
                ),
                page_ids=[p.page_id for p in odd_totals],
                evidence={
                    "totals": {str(k): v for k, v in sorted(total_counts.items())},
                    "markers": [p.as_evidence() for p in run],
                    "from": _FROM_MARKERS,
                },
                discriminator=f"totals:{start}",
            )
        )
    by_number: dict[int, list[Marked]] = {}
    for page in run:
        if page.number is not None:
            by_number.setdefault(page.number, []).append(page)
    for number, pages in sorted(by_number.items()):
        if len(pages) > 1:
            drafts.append(
                Draft(
                    severity="warn",
                    message=(
                        f"Page {number} of {total} appears {len(pages)} times: "
                        + ", ".join(p.page_id for p in pages)
                    ),
                    page_ids=[p.page_id for p in pages],
                    evidence={
                        "repeated": number,
                        "markers": [p.as_evidence() for p in pages],
                        "from": _FROM_MARKERS,
                    },
                    discriminator=f"repeat:{start}:{number}",
                )
            )
    for before, after in zip(run, run[1:], strict=False):
        if (
            before.number is not None
            and after.number is not None
            and after.number < before.number
            and after.number not in {p.number for p in run[: run.index(before)]}
        ):
            drafts.append(
                Draft(
                    severity="warn",
                    message=(
                        f"Page markers run backwards: {before.page_id} says {before.label}, "
                        f"then {after.page_id} says {after.label}"
                    ),
                    page_ids=[before.page_id, after.page_id],
                    evidence={
                        "markers": [before.as_evidence(), after.as_evidence()],
                        "from": _FROM_MARKERS,
                    },
                    discriminator=f"backwards:{before.page_id}:{after.page_id}",
                )
            )
    seen = sorted(by_number)
    if seen:
        first = 1 if whole_document and total else seen[0]
        last = total if whole_document and total else seen[-1]
        missing = [n for n in range(first, last + 1) if n not in by_number]
        if missing:
            drafts.append(_missing_draft(run, missing, total, start, whole_document))
    read_by_ocr = {p.page_id for p in run if p.text_source == "ocr"}
    for draft in drafts:
        if read_by_ocr & set(draft.page_ids):
            draft.message += " (a marker read by OCR: compare with the page image)"
    return drafts


def _missing_draft(
    run: list[Marked], missing: list[int], total: int | None, start: str, whole: bool
) -> Draft:
    gaps: list[dict[str, Any]] = []
    page_ids: list[str] = []
    for number in missing:
        before = [p for p in run if p.number is not None and p.number < number]
        after = [p for p in run if p.number is not None and p.number > number]
        gap = {
            "missing": number,
            "after": max(before, key=lambda p: p.number or 0).page_id if before else None,
            "before": min(after, key=lambda p: p.number or 0).page_id if after else None,
        }
        gaps.append(gap)
        page_ids.extend(p for p in (gap["after"], gap["before"]) if p and p not in page_ids)
    word = _pages_word(missing)
    where = (
        ""
        if whole
        else (
            f" between {gaps[0]['after']} and {gaps[-1]['before']}"
            if len(missing) == 1 or gaps[0]["after"] != gaps[-1]["after"]
            else f" after {gaps[0]['after']}"
        )
    )
    return Draft(
        severity="warn",
        message=f"{word} {_numbers(missing)} of {total} {'is' if len(missing) == 1 else 'are'}"
        f" missing{where}",
        page_ids=page_ids,
        evidence={
            "missing": missing,
            "total": total,
            "gaps": gaps,
            "markers": [p.as_evidence() for p in run],
            "from": _FROM_MARKERS,
        },
        discriminator=f"missing:{start}",
    )


class PageSequence(Check):
    name = "page-sequence"
    version = 1
    summary = "page markers that skip, repeat, run backwards or disagree; claimed page counts"

    def units(self, case: Case) -> Iterator[Unit]:
        current_sha: str | None = None
        current: list[list[Any]] = []
        for row in case.db.execute(
            "SELECT s.sha256, p.page_id, p.marker_number, p.marker_total, p.text_source"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            " LEFT JOIN page_review r ON r.page_row = p.id"
            " WHERE p.marker_number IS NOT NULL AND r.document_id IS NULL"
            " ORDER BY s.id, p.page_number"
        ):
            if row[0] != current_sha:
                if len(current) > 1:
                    yield Unit(f"source:{current_sha}", {"sha256": current_sha, "pages": current})
                current_sha, current = row[0], []
            current.append([row[1], row[2], row[3], row[4]])
        if len(current) > 1:
            yield Unit(f"source:{current_sha}", {"sha256": current_sha, "pages": current})
        yield from self._document_units(case)

    def _document_units(self, case: Case) -> Iterator[Unit]:
        records = documents.document_records(case)
        wanted = [p for record in records for p in record["page_ids"]]
        rows = case.page_rows_by_id(wanted) if wanted else {}
        for record in records:
            pages = [
                [
                    page,
                    rows[page]["marker_number"],
                    rows[page]["marker_total"],
                    rows[page]["text_source"],
                ]
                for page in record["page_ids"]
                if page in rows
            ]
            yield Unit(
                f"document:{record['id']}",
                {
                    "id": record["id"],
                    "title": record["title"],
                    "claimed_pages": record["claimed_pages"],
                    "pages": pages,
                },
            )

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        inputs = unit.inputs
        pages = [Marked(p[0], p[1], p[2], p[3]) for p in inputs["pages"]]
        if unit.key.startswith("source:"):
            drafts = [d for run in segments(pages) for d in run_problems(run, whole_document=False)]
            for draft in drafts:
                draft.source_sha256 = inputs["sha256"]
            return drafts
        return self._document_problems(inputs, pages)

    def _document_problems(self, inputs: dict[str, Any], pages: list[Marked]) -> list[Draft]:
        doc = inputs["id"]
        name = f"Document {doc}" + (f" ({inputs['title']})" if inputs["title"] else "")
        drafts: list[Draft] = []
        marked = [p for p in pages if p.number is not None]
        total: int | None = None
        if marked:
            sequence = run_problems(marked, whole_document=True)
            for draft in sequence:
                draft.message = f"{name}: {draft.message[0].lower()}{draft.message[1:]}"
                draft.evidence["document_id"] = doc
            drafts.extend(sequence)
            total = Counter(p.total for p in marked).most_common(1)[0][0]
            repeats = sum(
                count - 1 for count in Counter(p.number for p in marked).values() if count > 1
            )
            if total is not None and len(pages) - repeats > total:
                drafts.append(
                    Draft(
                        severity="warn",
                        message=(
                            f"{name} groups {len(pages)} pages but its page markers say "
                            f"'of {total}'"
                        ),
                        page_ids=[p.page_id for p in pages if p.number is None]
                        or [pages[-1].page_id],
                        evidence={
                            "document_id": doc,
                            "actual_pages": len(pages),
                            "marker_total": total,
                            "markers": [p.as_evidence() for p in pages],
                            "from": _FROM_MARKERS,
                        },
                        discriminator="extra-pages",
                    )
                )
        claimed = inputs["claimed_pages"]
        # a claimed count equal to the markers' total says nothing the markers did not
        said_by_markers = claimed == total and bool(drafts)
        if claimed is not None and claimed != len(pages) and not said_by_markers:
            drafts.append(
                Draft(
                    severity="warn",
                    message=f"{name} is recorded as {claimed} pages but groups {len(pages)}",
                    page_ids=[p.page_id for p in pages],
                    evidence={
                        "document_id": doc,
                        "claimed_pages": claimed,
                        "actual_pages": len(pages),
                        "from": "the claimed page count a reviewer gave with 'doc add'",
                    },
                    discriminator="claimed",
                )
            )
        return drafts


CHECK = PageSequence()
