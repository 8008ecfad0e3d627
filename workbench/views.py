"""Read-only views of the case as plain dicts: what ``sources``, ``pages`` and ``show`` print.

The JSON keys here are an interface (scripts and newsroom tooling read them): add keys,
never rename or remove one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from workbench.errors import SourceError, WorkbenchError
from workbench.store import Case


def source_records(case: Case) -> list[dict[str, Any]]:
    sources = case.sources()
    paths = {s.id: s.path for s in sources}
    return [
        {
            "path": s.path,
            "sha256": s.sha256,
            "size": s.size,
            "kind": s.kind,
            "pages": s.page_count,
            "status": s.status,
            "error": s.error,
            "duplicate_of": paths.get(s.duplicate_of) if s.duplicate_of else None,
            "recorded_at": s.recorded_at,
        }
        for s in sources
    ]


def page_summary(row: sqlite3.Row) -> dict[str, Any]:
    """The keys of ``workbench pages --json`` for one page row."""
    return {
        "page_id": row["page_id"],
        "source_path": row["source_path"],
        "source_sha256": row["source_sha256"],
        "page_number": row["page_number"],
        "text_source": row["text_source"],
        "ocr_confidence": row["ocr_confidence"],
        "char_count": row["char_count"],
        "page_sha256": row["page_sha256"],
        "status": row["status"],
        "reviewer": row["reviewer"],
        "reviewed_at": row["reviewed_at"],
        "document_id": row["document_id"],
        "ocr_lang": row["ocr_lang"],
        "rotation_applied": row["ocr_rotation"],
        "marker": (
            None
            if row["marker_number"] is None
            else {"number": row["marker_number"], "total": row["marker_total"]}
        ),
        "error": row["error"],
    }


def page_records(case: Case) -> Iterator[dict[str, Any]]:
    for row in case.page_rows():
        yield page_summary(row)


def page_window(
    case: Case, offset: int, limit: int, status: str | None = None
) -> list[dict[str, Any]]:
    """One screenful of the page list (the app pages through 100,000 pages this way).

    Each record also has ``first_date``: the first date written on the page (ISO), if any.
    """
    rows = case.page_window(offset, limit, status)
    return _with_findings(case, [_list_record(case, row) for row in rows])


def page_list_records(case: Case, page_ids: list[str]) -> list[dict[str, Any]]:
    """The page-list records of the given pages, in the given order (a search's window)."""
    return _with_findings(case, [_list_record(case, case.page_row(p)) for p in page_ids])


def _with_findings(case: Case, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record's ``finding``: the highest severity of its open findings, or None."""
    from workbench import findings

    worst = findings.open_severity_by_page(case, [r["page_id"] for r in records])
    for record in records:
        record["finding"] = worst.get(record["page_id"])
    return records


def _list_record(case: Case, row: sqlite3.Row) -> dict[str, Any]:
    record = page_summary(row)
    record["first_date"] = first_date(case.page_dates(row["id"]))
    return record


def first_date(dates: list[dict[str, Any]]) -> str | None:
    """The ISO day of the first date written on a page (``page_dates`` order), if any."""
    return (dates[0].get("iso") or "")[:10] if dates else None


def page_image(case: Case, page_id: str, *, max_side: int = 1600):
    """The page image for viewing (PIL RGB); raises SourceError if it cannot be shown.

    Drawn only from the file that was ingested: a replaced file raises CustodyError
    instead of showing the new file's page (see ``checked_source``).
    """
    from workbench import readers

    row = case.page_row(page_id)
    kind = case.source_kind(row["source_id"]) or "image"
    checked_source(case, row)
    return readers.render_page_image(
        row["source_path"], kind, row["page_number"], max_side=max_side
    )


def checked_source(case: Case, row: sqlite3.Row) -> str:
    """The path of a page's file, after checking it is still the file ingested.

    Everything that reads a page's file after the ingest (re-OCR, the page image) comes
    through here. A file whose SHA-256 differs from its custody hash raises CustodyError
    (one line: the file, both hashes, what to do), and the finding is recorded on the
    source so its pages show as stale (``page_detail``'s ``stale``) until the original is
    back. A case on a read-only drive still refuses; it only cannot record.
    """
    from workbench import readers
    from workbench.errors import CustodyError

    path = row["source_path"]
    try:
        readers.check_custody(path, row["source_sha256"])
    except CustodyError as error:
        _record_change(case, row, error.current_sha256)
        raise
    _record_change(case, row, None)
    return path


def _record_change(case: Case, row: sqlite3.Row, current_sha256: str | None) -> None:
    from workbench.errors import CaseError

    if row["source_changed_sha256"] == current_sha256:
        return
    try:
        case.record_source_change(row["source_id"], current_sha256)
    except (sqlite3.Error, CaseError):  # a read-only case: the refusal still stands
        return


def status_counts(case: Case) -> dict[str, int]:
    return case.status_counts()


def page_detail(case: Case, page_id: str) -> dict[str, Any]:
    row = case.page_row(page_id)
    record = page_summary(row)
    record.update(
        {
            "fingerprint_version": row["fingerprint_version"],
            "stale": row["source_changed_sha256"] is not None,
            "stale_reason": _stale_reason(row),
            "text": row["text"],
            "notes": row["notes"],
            "width_pt": row["width_pt"],
            "height_pt": row["height_pt"],
            "ocr": {
                "engine": row["ocr_engine"],
                "lang": row["ocr_lang"],
                "confidence": row["ocr_confidence"],
                "rotation": row["ocr_rotation"],
                "skew": row["ocr_skew"],
                "orientation_method": row["orientation_method"],
            },
            "page_marker": (
                None
                if row["marker_number"] is None
                else {
                    "number": row["marker_number"],
                    "total": row["marker_total"],
                    "text": row["marker_text"],
                }
            ),
            "dates": case.page_dates(row["id"]),
            "metadata": json.loads(row["metadata"]),
            "source_metadata": json.loads(row["source_metadata"]),
            "findings": _page_findings(case, row["page_id"]),
            "partners": _partner_verdicts(case, row["id"]),
        }
    )
    return record


def _partner_verdicts(case: Case, page_row: int) -> dict[str, dict[str, Any]]:
    """Each imported partner's verdict on this page (matched by content), by name."""
    from workbench import partners

    return partners.partner_verdicts(case, [page_row]).get(page_row, {})


def open_severity(records: list[dict[str, Any]]) -> str | None:
    """The highest severity among findings that are not dismissed, or None."""
    for severity in ("alert", "warn", "info"):
        if any(r["severity"] == severity and not r["dismissed"] for r in records):
            return severity
    return None


def _page_findings(case: Case, page_id: str) -> list[dict[str, Any]]:
    from workbench import findings

    return findings.finding_records(case, page_id=page_id)


def _stale_reason(row: sqlite3.Row) -> str | None:
    """Why a page's decisions are stale: its file was found changed since the ingest."""
    if row["source_changed_sha256"] is None:
        return None
    return (
        f"{row['source_path']}: changed since it was ingested (sha256 {row['source_sha256']}"
        f" now {row['source_changed_sha256']}, seen {row['source_changed_seen_at']}): "
        "its pages' decisions are stale; restore the original file"
    )


WITHHELD = (
    "[page text withheld: it holds text hidden under redaction boxes, and {reason}, so the "
    "hidden characters cannot be masked; `workbench show PAGE --hidden` prints it all]"
)


def needs_redaction_look(case: Case, record: dict[str, Any]) -> bool:
    """Must ``show`` read the page's file to mask text under boxes? Only when the page has
    a ``bad-redaction`` finding or the check has never looked at its file: a page the
    check passed is shown without opening the file (or loading PyMuPDF)."""
    if record["text_source"] != "layer":
        return False
    if any(f["check"] == "bad-redaction" for f in record["findings"]):
        return True
    looked = case.db.execute(
        "SELECT 1 FROM check_units WHERE check_name = 'bad-redaction' AND unit = ?",
        (f"source:{record['source_sha256']}",),
    ).fetchone()
    return looked is None


def redaction_view(record: dict[str, Any], *, reveal: bool) -> None:
    """Mask text still under redaction boxes in a ``page_detail`` record; with ``reveal``,
    add it, labelled, as ``hidden_text`` (one entry per box, with its ``text``).

    Why here and not at ingest: the stored page text keeps every character (search and
    exports of the case need it), but a reviewer who shows a page must not see or copy
    what was meant to be blacked out without asking. The file is read again after the
    custody check; a page whose file cannot be read is shown as stored unless a
    ``bad-redaction`` finding says it hides text, in which case its text is withheld.
    """
    if record["text_source"] != "layer":
        if reveal:
            record["hidden_text"] = []
        return
    flagged = any(
        f["check"] == "bad-redaction" and f["severity"] == "alert" for f in record["findings"]
    )
    try:
        covers, masked = _covers_on_page(record)
    except WorkbenchError as error:
        if reveal:
            raise
        if flagged:
            record["text"] = WITHHELD.format(reason=f"its file cannot be read ({error})")
        return
    if covers:
        record["text"] = (
            masked
            if masked is not None
            else WITHHELD.format(reason="they could not be found in the text layer")
        )
    if reveal:
        record["hidden_text"] = [{**cover.evidence(), "text": cover.text} for cover in covers]


def _covers_on_page(record: dict[str, Any]) -> tuple[list[Any], str | None]:
    """The page's boxes with text under them, from its custody-checked file."""
    from workbench import readers, redaction, revisions

    path, sha256 = record["source_path"], record["source_sha256"]
    data = revisions.read_verified(path, sha256)  # read and hashed once
    if data is None:
        readers.check_custody(path, sha256)  # names a missing or changed file
        raise SourceError(path, "changed while it was being read; try again")
    try:
        return redaction.page_covers(data, record["page_number"])
    except redaction.MUPDF_ERRORS as error:
        raise SourceError(
            path,
            f"page {record['page_number']} cannot be drawn ({readers._mupdf_reason(error)})",
        ) from None
