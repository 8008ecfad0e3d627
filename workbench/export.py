"""Exports of a case for people and tools outside workbench.

- ``csv``: one row per page for a spreadsheet (UTF-8 with BOM so Excel shows Persian;
  values that look like formulas are neutralised, since the text comes from hostile leaks).
- ``jsonl``: the whole review log, one event per line, that re-verifies on its own
  (:func:`verify_jsonl`) without the case database.
- ``report``: one self-contained HTML page (no scripts, no external resources) for an
  editor: progress, documents, disputed pages, reviewers and the chain head hash.
- ``manifest``: an OPT-like load file (page id, file, page number, document breaks) for
  e-discovery tools.

Every export is written to a temporary file in the destination folder and moved into
place with ``os.replace``, so a crash never leaves a half-written export behind.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import html
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from workbench import review
from workbench.errors import UsageError
from workbench.store import Case, utc_now

FORMATS = ("csv", "jsonl", "report", "manifest")

CSV_COLUMNS = (
    "page_id",
    "source_path",
    "source_sha256",
    "page_number",
    "status",
    "reviewer",
    "reviewed_at",
    "notes",
    "document_id",
    "dates",
    "dates_original",
    "text_source",
    "ocr_confidence",
    "ocr_lang",
    "page_sha256",
    "marker",
    "findings",
)
MANIFEST_COLUMNS = ("page_id", "file_path", "page_number", "document_break", "page_count")
JSONL_KEYS = (*review.EVENT_FIELDS, "prev_hash", "hash")
# Lines after the events in a jsonl export: the checks' findings, outside the chain.
FINDING_RECORD = ("record", "finding")
# What a "page" record after the events gives: enough to match the page by content.
PAGE_RECORD_KEYS = ("page_id", "page_sha256", "fingerprint_version", "source_sha256", "page_number")

# A spreadsheet runs a cell starting with these as a formula (=HYPERLINK(...) exfiltration).
# Tab and CR are included too, as OWASP advises: some spreadsheets strip them first.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ----- writing safely -----------------------------------------------------------------


@contextlib.contextmanager
def _atomic_text(out_path: str | os.PathLike[str], encoding: str) -> Iterator[IO[str]]:
    """A text file that appears at ``out_path`` only once it is complete."""
    target = Path(out_path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{target}: the folder {folder} does not exist; create it first")
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def _cell(value: Any) -> str:
    """A CSV cell: '' for None, and a leading ' on anything a spreadsheet would evaluate."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


# ----- csv ----------------------------------------------------------------------------


def _dates_by_page(db: sqlite3.Connection) -> dict[int, tuple[list[str], list[str]]]:
    """page row -> (distinct iso dates, original spellings), in text order."""
    found: dict[int, tuple[list[str], list[str]]] = {}
    for row in db.execute(
        "SELECT page_row, original, iso FROM page_dates ORDER BY page_row, start"
    ):
        isos, originals = found.setdefault(row["page_row"], ([], []))
        if row["iso"] not in isos:
            isos.append(row["iso"])
        # one line per cell: a date split over two lines of the page is shown on one
        originals.append(" ".join(row["original"].split()))
    return found


def export_csv(case: Case, out_path: str | os.PathLike[str]) -> int:
    """One row per page, in page-id order; returns the number of rows written."""
    from workbench import findings

    dates = _dates_by_page(case.db)
    open_findings = findings.by_page(
        case, [r for r in findings.finding_records(case) if not r["dismissed"]]
    )
    count = 0
    with _atomic_text(out_path, "utf-8-sig") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in case.page_rows():
            isos, originals = dates.get(row["id"], ([], []))
            marker = (
                ""
                if row["marker_number"] is None
                else f"{row['marker_number']}/{row['marker_total'] or '?'}"
            )
            values = {
                "page_id": row["page_id"],
                "source_path": row["source_path"],
                "source_sha256": row["source_sha256"],
                "page_number": row["page_number"],
                "status": row["status"],
                "reviewer": row["reviewer"],
                "reviewed_at": row["reviewed_at"],
                "notes": row["notes"],
                "document_id": row["document_id"],
                "dates": "; ".join(isos),
                "dates_original": "; ".join(originals),
                "text_source": row["text_source"],
                "ocr_confidence": row["ocr_confidence"],
                "ocr_lang": row["ocr_lang"],
                "page_sha256": row["page_sha256"],
                "marker": marker,
                "findings": "; ".join(
                    f"{r['severity']} {r['check']} {r['finding_id']}"
                    for r in open_findings.get(row["page_id"], ())
                ),
            }
            writer.writerow([_cell(values[name]) for name in CSV_COLUMNS])
            count += 1
    return count


# ----- jsonl --------------------------------------------------------------------------


def export_jsonl(case: Case, out_path: str | os.PathLike[str]) -> int:
    """The review log, one event per line in seq order, then records outside the chain,
    each marked with ``"record"``: a copy of each signed checkpoint (``checkpoint``: seq
    and hash, so a file cut short after one is caught), every page (``page``: id,
    fingerprint, file SHA-256 and page number, so a partner can match pages by content),
    then the checks' findings (``finding``); returns the number of events.

    Findings and pages are not part of the chain: they are evidence anyone can recompute
    from the files. A dismissal is an event, and carries the hash of the finding it
    dismissed.
    """
    from workbench import findings, signing

    count = 0
    with _atomic_text(out_path, "utf-8") as handle:

        def line(value: dict[str, Any]) -> None:
            handle.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")

        for event in review.iter_events(case):
            line({key: event.get(key) for key in JSONL_KEYS})
            count += 1
        for seq, digest in signing.recorded_checkpoints(case):
            line({"record": "checkpoint", "seq": seq, "hash": digest})
        for row in case.db.execute(
            "SELECT p.page_id, p.page_sha256, p.fingerprint_version, s.sha256 AS source_sha256,"
            " p.page_number FROM pages p JOIN sources s ON s.id = p.source_id ORDER BY p.id"
        ):
            line({"record": "page", **{key: row[key] for key in PAGE_RECORD_KEYS}})
        for finding in findings.finding_records(case):
            line({FINDING_RECORD[0]: FINDING_RECORD[1], **finding})
    return count


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"key {duplicated[0]!r} appears twice")
    return dict(pairs)


@dataclass
class JsonlLog:
    """An exported log as read: its events, the records after them, the first problem."""

    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_jsonl(path: str | os.PathLike[str]) -> JsonlLog:
    """Read an exported log; a problem names the line (never raises)."""
    log = JsonlLog()
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        log.problems.append(f"{path}: cannot be read ({error.strerror})")
        return log
    records_started = False
    for number, text in enumerate(raw.split(b"\n"), start=1):
        if not text.strip():
            continue
        problem = None
        try:
            event = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except UnicodeDecodeError:
            problem = "is not valid UTF-8"
        except ValueError as error:
            problem = f"is not valid JSON ({error})"
        else:
            if not isinstance(event, dict):
                problem = "is not a JSON object"
            elif "record" in event:
                records_started = True  # what follows the chain, not part of it
                problem = _take_record(log, event)
            elif records_started:
                problem = (
                    "is a review event after the records that follow the log (lines were moved)"
                )
            elif set(event) != set(JSONL_KEYS):
                odd = sorted(set(event) ^ set(JSONL_KEYS))
                problem = f"does not have the fields of a review event ({', '.join(odd)})"
            elif not isinstance(event["payload"], dict):
                problem = "has a payload that is not a JSON object"
            else:
                log.events.append(event)
        if problem:
            log.problems.append(f"{path}: line {number} {problem}")
            return log
    return log


def _take_record(log: JsonlLog, record: dict[str, Any]) -> str | None:
    kind = record.get("record")
    if kind == "checkpoint":
        if not isinstance(record.get("seq"), int) or not isinstance(record.get("hash"), str):
            return "is a checkpoint record without seq and hash"
        log.checkpoints.append((record["seq"], record["hash"]))
    elif kind == "page":
        if not isinstance(record.get("page_id"), str):
            return "is a page record without page_id"
        log.pages.append({key: record.get(key) for key in PAGE_RECORD_KEYS})
    elif kind != FINDING_RECORD[1]:
        return f"is a record of an unknown kind {kind!r}"
    return None


def verify_jsonl(
    path: str | os.PathLike[str],
    expect_head: str | None = None,
    allowed_signers: str | os.PathLike[str] | None = None,
) -> review.ChainReport:
    """Re-verify an exported log without the case; problems name the line, never raise.

    A chain proves nothing was changed, removed or reordered *inside* it; dropping events
    from the end still leaves a valid, shorter chain. Pass the head hash published
    elsewhere (the HTML report shows it) as ``expect_head`` to catch that too. Signed
    checkpoints are checked (against ``allowed_signers`` when given), and each checkpoint
    record after the events must name a checkpoint the chain has.
    """
    return verify_log(read_jsonl(path), path, expect_head, allowed_signers)


def verify_log(
    log: JsonlLog,
    path: str | os.PathLike[str],
    expect_head: str | None = None,
    allowed_signers: str | os.PathLike[str] | None = None,
) -> review.ChainReport:
    """:func:`verify_jsonl` on a log already read."""
    from workbench import signing

    if log.problems:
        return review.ChainReport(problems=list(log.problems))
    report = review.verify_chain(log.events)
    if not report.ok:
        return report
    checked = signing.verify_checkpoints(log.events, allowed_signers, log.checkpoints)
    report.signed = checked.signed
    report.unsigned_tail = checked.unsigned_tail
    report.problems += [f"{path}: {problem}" for problem in checked.problems]
    if report.ok and expect_head and report.head != expect_head.strip().lower():
        report.problems.append(
            f"{path}: the chain ends at {report.head} after {report.events} events, not at "
            f"the expected head {expect_head.strip()} (events were removed from the end, "
            "or this is a different log)"
        )
    return report


# ----- manifest -----------------------------------------------------------------------


def export_manifest(case: Case, out_path: str | os.PathLike[str]) -> int:
    """OPT-like page list with document breaks; returns the number of rows.

    A unit is a document (pages sharing page_review.document_id) or, for pages in no
    document, a run of consecutive pages of one file. A unit starts on its first page.
    """
    doc_sizes = dict(
        case.db.execute(
            "SELECT document_id, count(*) FROM page_review WHERE document_id IS NOT NULL"
            " GROUP BY document_id"
        ).fetchall()
    )
    rows = [
        (r["page_id"], r["source_id"], r["source_path"], r["page_number"], r["document_id"])
        for r in case.page_rows()
    ]
    # Sizes of the runs of ungrouped pages of one file, keyed by the run's first index.
    run_sizes: dict[int, int] = {}
    run_start = -1
    for index, (_, source_id, _, _, document_id) in enumerate(rows):
        if document_id is not None:
            run_start = -1
            continue
        if run_start < 0 or rows[index - 1][1] != source_id:
            run_start = index
        run_sizes[run_start] = run_sizes.get(run_start, 0) + 1
    seen_documents: set[str] = set()
    with _atomic_text(out_path, "utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(MANIFEST_COLUMNS)
        for index, (page_id, _, path, page_number, document_id) in enumerate(rows):
            count: int | None = None
            if document_id is not None:
                if document_id not in seen_documents:
                    seen_documents.add(document_id)
                    count = doc_sizes.get(document_id)
            elif index in run_sizes:
                count = run_sizes[index]
            writer.writerow(
                [
                    _cell(page_id),
                    _cell(path),
                    page_number,
                    "Y" if count is not None else "",
                    "" if count is None else count,
                ]
            )
    return len(rows)


# ----- report -------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Tahoma,"Noto Sans","Noto Sans Arabic",
 sans-serif;color:#1d2330;background:#fff;margin:0 auto;max-width:1080px;padding:24px 32px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;padding-bottom:4px;
 border-bottom:2px solid #e3e6ee}
.meta{color:#5a6275;margin:0 0 16px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #e3e6ee;vertical-align:top}
th{background:#f4f6fa;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:flex;height:20px;border-radius:4px;overflow:hidden;background:#eceff5;
 margin:8px 0 4px;border:1px solid #d5d9e3}
.bar span{display:block;height:100%}
.s-verified{background:#2e8b57}.s-disputed{background:#d9822b}.s-illegible{background:#8e5bbf}
.s-unreviewed{background:#eceff5}
.key{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;
 border:1px solid #c5cad6;vertical-align:-1px}
.big{font-size:20px;font-weight:600}
.mismatch td{background:#fdecea}.bad{color:#b3261e;font-weight:600}
h3{font-size:15px;margin:18px 0 6px}.sev-alert{color:#b3261e;font-weight:700}
.sev-warn{color:#8a5a00;font-weight:600}.sev-info{color:#555}
code,.hash{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:13px}
.hash{word-break:break-all;background:#f4f6fa;padding:6px 8px;border-radius:4px;display:block}
.muted{color:#5a6275}
td code,.nowrap{white-space:nowrap}
.notes{list-style:none;margin:0;padding:0}.notes li{margin:0 0 6px}.notes li .muted{font-size:13px}
.notes .text{white-space:pre-wrap;text-align:start}
"""


def _e(value: Any) -> str:
    """Escape for HTML; the text comes from hostile documents."""
    return html.escape("" if value is None else str(value), quote=True)


def _bdi(value: Any) -> str:
    """Inline text of unknown direction (Persian or English) isolated so it shows right."""
    return f"<bdi>{_e(value)}</bdi>" if value not in (None, "") else '<span class="muted">—</span>'


def _jalali(date_iso: str | None, stored: str | None) -> str | None:
    if stored:
        return stored
    if not date_iso:
        return None
    from workbench import textdates  # its date patterns take ~60 ms to compile at import

    try:
        y, m, d = textdates.gregorian_to_jalali(datetime.date.fromisoformat(date_iso[:10]))
    except ValueError:
        return None
    return f"{y:04d}-{m:02d}-{d:02d}"


def _notes_html(db: sqlite3.Connection, page_id: str, notes: str | None) -> str:
    """A page's notes, one per line, each isolated so Persian and English both read right.

    Taken from the review log (the record) rather than by parsing page_review.notes,
    whose "[at reviewer] text" lines cannot be split safely when a name contains "]".
    """
    rows = db.execute(
        "SELECT at, reviewer, note FROM review_events WHERE page_id = ? AND note IS NOT NULL"
        " AND note != '' ORDER BY seq",
        (page_id,),
    ).fetchall()
    if not rows:
        if not notes:
            return '<span class="muted">no note</span>'
        return f'<p class="notes text" dir="auto">{_e(notes)}</p>'
    items = "".join(
        f'<li><span class="muted"><span class="nowrap">{_e(r["at"])}</span> · '
        f'{_bdi(r["reviewer"])}</span><div class="text" dir="auto">{_e(r["note"])}</div></li>'
        for r in rows
    )
    return f'<ul class="notes">{items}</ul>'


def _report_html(case: Case, generated_at: str) -> str:
    db = case.db
    name = case.get_setting("name") or case.root.name
    statuses = dict(
        db.execute(
            "SELECT ifnull(r.status, 'unreviewed'), count(*) FROM pages p"
            " LEFT JOIN page_review r ON r.page_row = p.id GROUP BY 1"
        ).fetchall()
    )
    total = sum(statuses.values())
    known = [s for s in review.STATUSES if s != "unreviewed"]
    order = [*known, *sorted(set(statuses) - set(review.STATUSES)), "unreviewed"]
    reviewed = total - statuses.get("unreviewed", 0)
    percent = 100.0 * reviewed / total if total else 0.0

    out: list[str] = []
    w = out.append
    w('<!DOCTYPE html>\n<html lang="en" dir="ltr">\n<head>\n<meta charset="utf-8">\n')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
    # No scripts, no network: the page can be opened from a USB stick on an air-gapped box.
    w(
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'\">\n"
    )
    w(f"<title>Review report — {_e(name)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n")
    w(f"<h1>Review report: {_bdi(name)}</h1>\n")
    w(
        f'<p class="meta">Generated {_e(generated_at)} (UTC) by workbench from '
        f"<code>{_bdi(case.root)}</code></p>\n"
    )

    # Progress
    w("<h2>Progress</h2>\n")
    w(
        f'<p><span class="big">{percent:.1f}% reviewed</span> '
        f'<span class="muted">({reviewed} of {total} pages)</span></p>\n<div class="bar">'
    )
    for status in order:
        n = statuses.get(status, 0)
        if n and total and status != "unreviewed":
            w(
                f'<span class="s-{_e(status)}" style="width:{100.0 * n / total:.3f}%" '
                f'title="{_e(status)}: {n}"></span>'
            )
    w("</div>\n<table><tr><th>Status</th><th class=num>Pages</th><th class=num>Share</th></tr>\n")
    for status in order:
        n = statuses.get(status, 0)
        share = f"{100.0 * n / total:.1f}%" if total else "—"
        w(
            f'<tr><td><span class="key s-{_e(status)}"></span>{_e(status)}</td>'
            f'<td class="num">{n}</td><td class="num">{share}</td></tr>\n'
        )
    w(f'<tr><th>Total</th><th class="num">{total}</th><th></th></tr>\n</table>\n')

    # Documents
    documents = db.execute(
        "SELECT d.*, (SELECT count(*) FROM page_review r WHERE r.document_id = d.id) AS actual,"
        " (SELECT min(p.page_id) FROM page_review r JOIN pages p ON p.id = r.page_row"
        "  WHERE r.document_id = d.id) AS first_page,"
        " (SELECT max(p.page_id) FROM page_review r JOIN pages p ON p.id = r.page_row"
        "  WHERE r.document_id = d.id) AS last_page"
        " FROM documents d ORDER BY first_page IS NULL, first_page, d.id"
    ).fetchall()
    w(f"<h2>Documents ({len(documents)})</h2>\n")
    if documents:
        w(
            "<table><tr><th>Document</th><th>Title</th><th>Pages</th>"
            "<th class=num>Claimed</th><th class=num>Actual</th>"
            "<th>Date (Gregorian)</th><th>Date (Jalali)</th></tr>\n"
        )
        for d in documents:
            claimed, actual = d["claimed_pages"], d["actual"]
            mismatch = claimed is not None and claimed != actual
            span = (
                f"{_e(d['first_page'])} – {_e(d['last_page'])}"
                if d["first_page"] and d["first_page"] != d["last_page"]
                else _e(d["first_page"] or "—")
            )
            flag = ' <span class="bad nowrap">mismatch</span>' if mismatch else ""
            w(
                f"<tr{' class=mismatch' if mismatch else ''}><td><code>{_e(d['id'])}</code></td>"
                f"<td>{_bdi(d['title'])}</td><td><code>{span}</code></td>"
                f'<td class="num">{_e(claimed if claimed is not None else "—")}</td>'
                f'<td class="num">{actual}{flag}</td>'
                f"<td>{_bdi(d['date_iso'])}</td>"
                f"<td>{_bdi(_jalali(d['date_iso'], d['date_jalali']))}"
                + (
                    f'<br><span class="muted">as written: {_bdi(d["date_original"])}</span>'
                    if d["date_original"]
                    else ""
                )
                + "</td></tr>\n"
            )
        w("</table>\n")
    else:
        w('<p class="muted">No documents have been grouped yet.</p>\n')

    # Disputed and illegible pages
    flagged = db.execute(
        "SELECT p.page_id, p.page_number, s.path, r.status, r.reviewer, r.reviewed_at, r.notes"
        " FROM page_review r JOIN pages p ON p.id = r.page_row"
        " JOIN sources s ON s.id = p.source_id"
        " WHERE r.status IN ('disputed', 'illegible') ORDER BY p.id"
    ).fetchall()
    w(f"<h2>Disputed and illegible pages ({len(flagged)})</h2>\n")
    if flagged:
        w(
            "<table><tr><th>Page</th><th>Status</th><th>File, page</th><th>By</th>"
            "<th>Notes</th></tr>\n"
        )
        for f in flagged:
            w(
                f"<tr><td><code>{_e(f['page_id'])}</code></td>"
                f'<td class="nowrap"><span class="key s-{_e(f["status"])}"></span>'
                f"{_e(f['status'])}</td>"
                f"<td>{_bdi(os.path.basename(f['path']))}, p.&nbsp;{_e(f['page_number'])}</td>"
                f"<td>{_bdi(f['reviewer'])}<br>"
                f'<span class="muted nowrap">{_e(f["reviewed_at"])}</span></td>'
                f"<td>{_notes_html(db, f['page_id'], f['notes'])}</td></tr>\n"
            )
        w("</table>\n")
    else:
        w('<p class="muted">No page is marked disputed or illegible.</p>\n')

    _findings_html(case, w)
    _agreement_html(case, w)

    # Reviewers
    reviewers = db.execute(
        "SELECT reviewer, count(*) AS n, min(at) AS first, max(at) AS last"
        " FROM review_events GROUP BY reviewer ORDER BY n DESC, reviewer"
    ).fetchall()
    w(f"<h2>Reviewers ({len(reviewers)})</h2>\n")
    if reviewers:
        w("<table><tr><th>Reviewer</th><th class=num>Events</th><th>First</th><th>Last</th></tr>\n")
        for r in reviewers:
            w(
                f"<tr><td>{_bdi(r['reviewer'])}</td><td class=num>{r['n']}</td>"
                f"<td>{_e(r['first'])}</td><td>{_e(r['last'])}</td></tr>\n"
            )
        w("</table>\n")
    else:
        w('<p class="muted">Nobody has reviewed a page yet.</p>\n')

    # Chain head
    last = db.execute("SELECT seq, hash FROM review_events ORDER BY seq DESC LIMIT 1").fetchone()
    events, head = (last["seq"], last["hash"]) if last else (0, review.GENESIS_HASH)
    w("<h2>Review log</h2>\n")
    w(
        f"<p>{events} event{'s' if events != 1 else ''} in the hash-chained review log. "
        "Chain head:</p>\n"
        f'<code class="hash">{_e(head)}</code>\n'
        "<p>This hash pins the whole review history at the moment of this report: each "
        "event's hash covers the one before it, so changing, removing or reordering any "
        "earlier decision gives a different head — keep this report (or the hash) to prove "
        "later which decisions had been made by now (check with "
        "<code>workbench log verify</code>).</p>\n"
    )
    w("</body>\n</html>\n")
    return "".join(out)


def _findings_html(case: Case, w: Callable[[str], Any]) -> None:
    """The checks' findings, grouped by the document their first page belongs to."""
    from workbench import findings

    records = findings.finding_records(case)
    open_count = sum(not r["dismissed"] for r in records)
    w(f"<h2>Findings ({open_count} open, {len(records) - open_count} dismissed)</h2>\n")
    if not records:
        w(
            '<p class="muted">No findings: run <code>workbench check</code> to look for '
            "anomalies (page sequence, metadata, revisions, copies, odd pages).</p>\n"
        )
        return
    document_of = dict(
        case.db.execute(
            "SELECT p.page_id, r.document_id FROM page_review r JOIN pages p"
            " ON p.id = r.page_row WHERE r.document_id IS NOT NULL"
        ).fetchall()
    )
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        owner = next((document_of[p] for p in record["page_ids"] if p in document_of), "")
        groups.setdefault(owner, []).append(record)
    notes = findings.dismissals(case)
    titles = dict(case.db.execute("SELECT id, title FROM documents").fetchall())
    for owner in sorted(groups, key=lambda o: (o == "", o)):
        title = f"Document <code>{_e(owner)}</code>" if owner else "Pages in no document"
        if titles.get(owner):
            title += f" {_bdi(titles[owner])}"
        w(f"<h3>{title}</h3>\n<table><tr><th>Severity</th><th>Check</th><th>Pages</th>")
        w("<th>Finding</th></tr>\n")
        for record in groups[owner]:
            pages = ", ".join(record["page_ids"][:6]) + (
                " …" if len(record["page_ids"]) > 6 else ""
            )
            dismissed = ""
            if record["dismissed"]:
                by = notes.get(record["finding_id"], {})
                dismissed = (
                    f'<br><span class="muted">dismissed by {_bdi(by.get("reviewer"))} '
                    f"{_e(by.get('at'))}: {_bdi(by.get('note'))}</span>"
                )
            w(
                f"<tr{' class=muted' if record['dismissed'] else ''}>"
                f'<td class="nowrap sev-{_e(record["severity"])}">{_e(record["severity"])}</td>'
                f"<td class=nowrap>{_e(record['check'])}</td><td><code>{_e(pages)}</code></td>"
                f"<td>{_bdi(record['message'])}"
                f'<br><span class="muted"><code>{_e(record["finding_id"])}</code></span>'
                f"{dismissed}</td></tr>\n"
            )
        w("</table>\n")


def _agreement_html(case: Case, w: Callable[[str], Any]) -> None:
    """Partner newsrooms whose logs were imported: counts per partner, and the pages
    either side disputed or where the two disagree, with both verdicts. Nothing when no
    partner's log was imported."""
    from workbench import partners

    imported = case.db.execute(
        "SELECT name, head, events, signers, imported_at FROM partners ORDER BY id"
    ).fetchall()
    if not imported:
        return
    found = partners.agreement(case)
    w(f"<h2>Agreement with partner newsrooms ({len(imported)})</h2>\n")
    for partner in imported:
        name = partner["name"]
        signers = json.loads(partner["signers"] or "[]")
        w(
            f"<h3>{_bdi(name)}</h3>\n<p>Their log imported {_e(partner['imported_at'])}:"
            f" {partner['events']} events, head</p>\n"
            f'<code class="hash">{_e(partner["head"])}</code>\n'
            + (
                "<p>Signed by " + ", ".join(_bdi(s) for s in signers) + ".</p>\n"
                if signers
                else '<p class="muted">No signed checkpoint in their log.</p>\n'
            )
        )
        counts = found.summary[name]
        w("<table><tr><th>Pages</th><th class=num>Count</th></tr>\n")
        for key in partners.CATEGORIES:
            w(
                f"<tr><td>{_e(partners.CATEGORY_LABELS[key])}</td>"
                f'<td class="num">{counts[key]}</td></tr>\n'
            )
        w("</table>\n")
        disputed = [
            page
            for page in found.pages
            if name in page["theirs"]
            and page["ours"] is not None
            and (
                page["agreement"][name] == "disagree"
                or "disputed" in (page["ours"]["status"], page["theirs"][name]["status"])
            )
        ]
        w(f"<h3>{_bdi(name)}: disputed pages and disagreements ({len(disputed)})</h3>\n")
        if not disputed:
            w('<p class="muted">Neither side disputed a shared page, and no verdicts differ.</p>\n')
            continue
        w(f"<table><tr><th>Page</th><th>Ours</th><th>{_bdi(name)}</th><th></th></tr>\n")
        for page in disputed:
            ours, theirs = page["ours"], page["theirs"][name]
            label = page["agreement"][name]
            flag = (
                '<span class="bad nowrap">disagree</span>'
                if label == "disagree"
                else _e(partners.CATEGORY_LABELS[label])
            )
            w(
                f"<tr><td><code>{_e(page['page_id'])}</code><br>"
                f'<span class="muted">theirs <code>{_e(theirs["page_id"])}</code></span></td>'
                f"<td>{_verdict_html(ours)}</td><td>{_verdict_html(theirs)}</td>"
                f"<td>{flag}</td></tr>\n"
            )
        w("</table>\n")


def _verdict_html(verdict: dict[str, Any]) -> str:
    status = verdict["status"]
    text = f'<span class="key s-{_e(status)}"></span>{_e(status)}'
    if verdict.get("reviewer"):
        text += f" by {_bdi(verdict['reviewer'])}"
    if verdict.get("time"):
        text += f'<br><span class="muted nowrap">{_e(verdict["time"])}</span>'
    if verdict.get("note"):
        text += f"<br>{_bdi(verdict['note'])}"
    return text


def export_report(case: Case, out_path: str | os.PathLike[str]) -> None:
    """A self-contained HTML summary for editors (no scripts, no external resources)."""
    page = _report_html(case, utc_now())
    with _atomic_text(out_path, "utf-8") as handle:
        handle.write(page)


# ----- dispatch -----------------------------------------------------------------------


def export(case: Case, fmt: str, out_path: str | os.PathLike[str]) -> str:
    """Run one export by name; returns a one-line summary for the CLI."""
    writers: dict[str, Callable[[Case, Any], int | None]] = {
        "csv": export_csv,
        "jsonl": export_jsonl,
        "report": export_report,
        "manifest": export_manifest,
    }
    writer = writers.get((fmt or "").strip().lower())
    if writer is None:
        raise UsageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    count = writer(case, out_path)
    if fmt.strip().lower() == "jsonl":
        return f"wrote {count} review events to {out_path}"
    if count is None:
        return f"wrote the HTML report to {out_path}"
    return f"wrote {count} page rows to {out_path}"


__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "MANIFEST_COLUMNS",
    "export",
    "export_csv",
    "export_jsonl",
    "export_manifest",
    "export_report",
    "verify_jsonl",
]
