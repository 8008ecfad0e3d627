"""Logical documents: a cable that spans several pages (and sometimes several files).

Why it is shaped this way:
- A document is a reviewer's decision, so creating one is a review event: one event of kind
  ``document`` in the hash-chained log (with the page list, in document order, in its
  payload), the ``documents`` row, and ``page_review.document_id`` for every page, all in
  one transaction. A page belongs to at most one document; asking otherwise is refused.
- Dates may be typed Gregorian (``2014-08-03``) or Jalali (``1393/05/12``, Persian digits
  too); both calendars and the text as typed are stored, because a verifier compares the
  cable's own calendar with the Western press date.
- :func:`suggest_documents` only proposes; nothing is grouped until someone accepts. It
  reads what ingest stored: "page X of Y" markers, the source file of each page, and a
  serial header at the top of a page (``REF: IRGC-QF/93/0042``, ``TEHRAN 0042/2014``,
  ``شماره: ۹۳/۴۲۱۷``; ``(continued)`` / ``ادامه`` lines are continuations, not starts).
  A new document starts at a page whose marker is 1, after a page whose marker said it was
  the last, at a page with a fresh serial header, and at a change of source file unless the
  markers carry on ("2 of 5" then "3 of 5"). Loose one-page image files are named by the
  scanner, not by the cable, so their path order can scramble a cable's pages; incomplete
  pieces from one folder whose markers fit together ("2 of 2" and "1 of 2") are joined and
  put in marker order.

Measured exact-boundary accuracy (suggested page set == ground-truth page set) on the
fixture troves (fixtures.generate, seed 1): small trove (30 pages, 8 of them scanned and
OCR'd, one OCR'd marker wrong, one cable in two scrambled loose images; 10 documents)
10/10 = 100%; its born-digital part 6/6; 200-page born-digital trove 61/61 = 100%.
tests/test_documents.py asserts 100% for born-digital and at most one miss with OCR.

Limits: a cable whose OCR'd marker is wrong *and* whose first page has no readable serial
can be merged into its neighbour; a document whose pages are split across two files with
no markers is split in two; serial formats other than the three above are not recognised
as starts (markers and file boundaries still are).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from workbench import review, textdates
from workbench.errors import UsageError
from workbench.store import Case

DOC_PREFIX = "DOC-"
DOC_DIGITS = 4
HEADER_LINES = 5  # a serial counts as a header only within the first lines of a page

_BIDI = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI_DROP = str.maketrans(dict.fromkeys(map(ord, _BIDI), " "))
# Serial numbers as cable headers write them (digits folded to ASCII first).
_SERIAL_PATTERNS = (
    # REF: IRGC-QF/93/0042, Ref. MOIS/1393/77
    re.compile(r"^\s*(?:REF|Ref|REFERENCE|Reference)\s*[:.#]?\s*(?P<s>[A-Z][A-Z0-9-]*(?:/\w+)+)"),
    # TEHRAN 0042/2014, KABUL 0165/2015 (station, number/year)
    re.compile(r"^\s*(?P<s>[A-Z][A-Z]{2,}(?:[ -][A-Z]{2,})*\s+\d{2,6}/\d{2,4})\b"),
    # شماره: ۹۳/۴۲۱۷ (and OCR's bidi-reversed "۹۳/۴۲۱۷ شماره:")
    re.compile(r"شماره\s*[:：.]?\s*(?P<s>\d{1,4}\s*/\s*\d{1,6}(?:\s*/\s*\d{1,6})?)"),
    re.compile(r"(?P<s>\d{1,4}\s*/\s*\d{1,6}(?:\s*/\s*\d{1,6})?)\s*[:：]?\s*شماره"),
)
_CONTINUED = re.compile(r"\(?\bcont(?:inued|'d|d)?\b\)?|ادامه|\(ادامه\)", re.IGNORECASE)
_SUBJECT = re.compile(r"^\s*(?:SUBJECT|Subject|SUBJ|موضوع)\s*[:：]\s*(?P<s>\S.*?)\s*$")


# ----- creating and listing ------------------------------------------------------------


def add_document(
    case: Case,
    page_ids: list[str],
    *,
    reviewer: str,
    title: str | None = None,
    date: str | None = None,
    claimed_pages: int | None = None,
) -> dict[str, Any]:
    """Group pages (in the order given) into a new document, recorded in the review log."""
    if not page_ids:
        raise UsageError("a document needs at least one page: give page ids or a range")
    if not reviewer or not reviewer.strip():
        raise UsageError("who is grouping these pages? give a reviewer name")
    reviewer = reviewer.strip()
    ids = [p.strip().upper() for p in page_ids]
    repeated = sorted({p for p in ids if ids.count(p) > 1})
    if repeated:
        raise UsageError(f"page(s) listed twice: {', '.join(repeated)}")
    if claimed_pages is not None and (isinstance(claimed_pages, bool) or claimed_pages < 1):
        raise UsageError(
            f"claimed pages must be 1 or more (the Y of 'page X of Y'), not {claimed_pages!r}"
        )
    date_iso = date_jalali = date_original = None
    if date is not None and date.strip():
        parsed, date_jalali = textdates.parse_user_date(date)
        date_iso, date_original = parsed.isoformat(), date.strip()
    title = title.strip() if title and title.strip() else None

    with case.transaction() as db:
        states = [case.review_state(p) for p in ids]  # raises UsageError for unknown ids
        taken = [
            (p, s["document_id"]) for p, s in zip(ids, states, strict=True) if s["document_id"]
        ]
        if taken:
            shown = ", ".join(f"{p} (in {d})" for p, d in taken[:5])
            more = " ..." if len(taken) > 5 else ""
            raise UsageError(
                f"page(s) already belong to a document: {shown}{more}; "
                "a page can be in one document only"
            )
        doc_id = _next_document_id(db)
        payload = {
            "title": title,
            "date_iso": date_iso,
            "date_jalali": date_jalali,
            "date_original": date_original,
            "claimed_pages": claimed_pages,
            "pages": ids,
        }
        event = review.append_event(
            db, kind="document", document_id=doc_id, reviewer=reviewer, payload=payload
        )
        db.execute(
            "INSERT INTO documents(id, title, date_iso, date_jalali, date_original,"
            " claimed_pages, created_by, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (
                doc_id,
                title,
                date_iso,
                date_jalali,
                date_original,
                claimed_pages,
                reviewer,
                event["at"],
            ),
        )
        for state in states:
            case.apply_review(
                state["page_row"],
                {
                    "kind": "document",
                    "document_id": doc_id,
                    "at": event["at"],
                    "reviewer": reviewer,
                },
            )
    return document_record(case, doc_id)


def _next_document_id(db: sqlite3.Connection) -> str:
    numbers = [
        int(r[0][len(DOC_PREFIX) :])
        for r in db.execute("SELECT id FROM documents WHERE id LIKE 'DOC-%'")
        if r[0][len(DOC_PREFIX) :].isdigit()
    ]
    return f"{DOC_PREFIX}{max(numbers, default=0) + 1:0{DOC_DIGITS}d}"


def document_records(case: Case) -> list[dict[str, Any]]:
    """Every document with its pages, for ``workbench docs --json`` (keys are an interface)."""
    return _records(case, None)


def document_record(case: Case, doc_id: str) -> dict[str, Any]:
    found = _records(case, doc_id.strip().upper())
    if not found:
        raise UsageError(f"no document {doc_id!r} in this case (ids look like DOC-0001)")
    return found[0]


def _records(case: Case, only: str | None) -> list[dict[str, Any]]:
    where, args = ("WHERE id = ?", (only,)) if only else ("", ())
    docs = case.db.execute(f"SELECT * FROM documents {where} ORDER BY id", args).fetchall()
    # Page order is the order the event recorded (a cable's pages may sit in scrambled
    # files); pages the event does not list fall back to case order.
    order: dict[str, list[str]] = {}
    for row in case.db.execute(
        f"SELECT document_id, payload FROM review_events WHERE kind = 'document'"
        f"{' AND document_id = ?' if only else ''} ORDER BY seq",
        args,
    ):
        order[row[0]] = list(json.loads(row[1] or "{}").get("pages") or [])
    members: dict[str, list[str]] = {}
    for row in case.db.execute(
        "SELECT r.document_id, p.page_id FROM page_review r JOIN pages p ON p.id = r.page_row"
        f" WHERE r.document_id IS NOT NULL{' AND r.document_id = ?' if only else ''}"
        " ORDER BY p.id",
        args,
    ):
        members.setdefault(row[0], []).append(row[1])
    records = []
    for doc in docs:
        pages = members.get(doc["id"], [])
        rank = {p: i for i, p in enumerate(order.get(doc["id"], []))}
        pages = sorted(pages, key=lambda p: rank.get(p, len(rank)))
        claimed = doc["claimed_pages"]
        records.append(
            {
                "id": doc["id"],
                "title": doc["title"],
                "date_iso": doc["date_iso"],
                "date_jalali": doc["date_jalali"],
                "date_original": doc["date_original"],
                "claimed_pages": claimed,
                "actual_pages": len(pages),
                "page_ids": pages,
                "first_page": pages[0] if pages else None,
                "last_page": pages[-1] if pages else None,
                "mismatch": claimed is not None and claimed != len(pages),
                "created_by": doc["created_by"],
                "created_at": doc["created_at"],
            }
        )
    return records


# ----- suggesting ----------------------------------------------------------------------


@dataclass
class _Page:
    row: int
    page_id: str
    source_id: int
    folder: str
    number: int | None  # marker X
    total: int | None  # marker Y
    serial: str | None  # a fresh serial header at the top of the page
    continued: bool  # a "(continued)" / "ادامه" header at the top
    subject: str | None


@dataclass
class _Group:
    pages: list[_Page] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def markers(self) -> list[int] | None:
        """Marker numbers when every page has one with the same total, else None."""
        totals = {p.total for p in self.pages}
        if len(totals) != 1 or None in totals or any(p.number is None for p in self.pages):
            return None
        return [p.number for p in self.pages]  # type: ignore[misc]

    @property
    def total(self) -> int | None:
        return self.pages[0].total


def read_header(text: str) -> tuple[str | None, bool, str | None]:
    """(fresh serial, is a continuation page, subject) from the first lines of a page."""
    original = text.translate(_BIDI_DROP)
    folded = textdates.to_ascii_digits(original)  # same length, so spans map back
    serial = subject = None
    continued = False
    offset = 0
    lines_seen = 0
    for line in folded.split("\n"):
        start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        lines_seen += 1
        if lines_seen > HEADER_LINES:
            break
        for pattern in _SERIAL_PATTERNS:
            match = pattern.search(line)
            if match:
                if _CONTINUED.search(line):
                    continued = True
                elif serial is None:
                    s, e = match.span("s")
                    serial = " ".join(original[start + s : start + e].split())
                break
        subject_match = _SUBJECT.match(original[start : offset - 1])
        if subject_match and subject is None:
            subject = subject_match["s"]
    return serial, continued, subject


def _pages(case: Case) -> Iterable[tuple[_Page | None, sqlite3.Row]]:
    for row in case.page_rows():
        if row["document_id"]:
            yield None, row  # already grouped: a wall between suggestions
            continue
        serial, continued, subject = read_header(row["text"] or "")
        yield (
            _Page(
                row=row["id"],
                page_id=row["page_id"],
                source_id=row["source_id"],
                folder=str(PurePath(row["source_path"]).parent),
                number=row["marker_number"],
                total=row["marker_total"],
                serial=serial,
                continued=continued,
                subject=subject,
            ),
            row,
        )


def _start_reason(prev: _Page | None, page: _Page) -> str | None:
    """Why ``page`` starts a new document after ``prev`` (None: it continues)."""
    if prev is None:
        return "first ungrouped page"
    if page.number == 1:
        return f"marker 'page 1 of {page.total}'"
    if prev.number is not None and prev.number == prev.total:
        return f"previous page's marker said it was the last ({prev.number} of {prev.total})"
    if page.serial and not page.continued:
        return f"serial header {page.serial} at the top of the page"
    follows = (
        page.number is not None
        and prev.number is not None
        and page.number == prev.number + 1
        and page.total == prev.total
    )
    if page.source_id != prev.source_id and not follows:
        return "new source file"
    return None


def _segment(case: Case) -> list[_Group]:
    groups: list[_Group] = []
    prev: _Page | None = None
    for page, _row in _pages(case):
        if page is None:
            prev = None
            continue
        reason = _start_reason(prev, page)
        if reason:
            groups.append(_Group([page], [reason]))
        else:
            groups[-1].pages.append(page)
        prev = page
    return _join_scrambled(groups)


def _join_scrambled(groups: list[_Group]) -> list[_Group]:
    """Join incomplete pieces from one folder whose markers together make 1..Y.

    Scanners name one-page files by counter (``IMG_0002``, ``page_001.png``), so path
    order can put page 2 of a cable before its page 1, or between other cables' pages.
    """
    incomplete = [
        i
        for i, g in enumerate(groups)
        if (m := g.markers()) is not None and sorted(m) != list(range(1, (g.total or 0) + 1))
    ]
    used: set[int] = set()
    joined: dict[int, _Group] = {}
    for i in incomplete:
        if i in used:
            continue
        first = groups[i]
        folders = {p.folder for p in first.pages}
        have = set(first.markers() or [])
        members = [i]
        for j in incomplete:
            if j == i or j in used or groups[j].total != first.total:
                continue
            other = groups[j]
            numbers = set(other.markers() or [])
            if {p.folder for p in other.pages} != folders or numbers & have:
                continue
            members.append(j)
            have |= numbers
            if have == set(range(1, (first.total or 0) + 1)):
                break
        if len(members) > 1 and have == set(range(1, (first.total or 0) + 1)):
            pages = sorted((p for k in members for p in groups[k].pages), key=lambda p: p.number)
            used.update(members)
            joined[min(members)] = _Group(
                pages, [f"pieces from one folder whose markers fit together (of {first.total})"]
            )
    result = []
    for i, g in enumerate(groups):
        if i in joined:
            result.append(joined[i])
        elif i not in used:
            result.append(g)
    return result


def suggest_documents(case: Case) -> list[dict[str, Any]]:
    """Proposed documents for the pages not yet in one, in page order; nothing is written."""
    suggestions = []
    for group in _segment(case):
        first = group.pages[0]
        dates = case.page_dates(first.row)
        serial = next((p.serial for p in group.pages if p.serial), None)
        totals = [p.total for p in group.pages if p.total is not None]
        suggestions.append(
            {
                "page_ids": [p.page_id for p in group.pages],
                "reason": "; ".join(group.reasons),
                "claimed_pages": max(set(totals), key=totals.count) if totals else None,
                "date": dates[0]["iso"] if dates else None,
                "title": serial or first.subject,
            }
        )
    return suggestions


def accept_suggestions(
    case: Case, suggestions: Iterable[dict[str, Any]], *, reviewer: str
) -> list[dict[str, Any]]:
    """Create one document per suggestion (each in its own transaction and event)."""
    return [
        add_document(
            case,
            list(s["page_ids"]),
            reviewer=reviewer,
            title=s.get("title"),
            date=s.get("date"),
            claimed_pages=s.get("claimed_pages"),
        )
        for s in suggestions
    ]
