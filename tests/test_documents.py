"""Documents: grouping pages into cables, recorded in the review log; boundary suggestions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import trove_inputs

from workbench import documents, metadata, review
from workbench.errors import DateParseError, UsageError
from workbench.store import Case

REVIEWER = "Nasrin"


# ----- helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def born_digital_master(small_trove: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small trove's born-digital folder ingested once; tests copy it before writing."""
    from workbench.pipeline import ingest

    case_dir = tmp_path_factory.mktemp("docs") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(small_trove / "born_digital")], jobs=2)
    assert report.ok
    return case_dir


@pytest.fixture
def case(born_digital_master: Path, tmp_path: Path):
    copy = tmp_path / "case"
    shutil.copytree(born_digital_master, copy)
    with Case.open(copy) as opened:
        yield opened


def locations(case: Case, trove: Path) -> dict[str, tuple[str, int]]:
    """page id -> (path relative to the trove, page number): the ground truth's page key."""
    return {
        r["page_id"]: (Path(r["source_path"]).relative_to(trove).as_posix(), r["page_number"])
        for r in case.page_rows()
    }


def exact_matches(suggestions: list[dict], truth: list[dict], where: dict) -> int:
    wanted = {frozenset(tuple(p) for p in d["pages"]) for d in truth}
    return sum(frozenset(where[p] for p in s["page_ids"]) in wanted for s in suggestions)


def truth_for(ground_truth: dict, prefix: str) -> list[dict]:
    return [d for d in ground_truth["documents"] if d["pages"][0][0].startswith(prefix)]


# ----- add_document --------------------------------------------------------------------


def test_add_document_with_range_and_gregorian_date(case: Case) -> None:
    pages = review.expand_page_ids(case, ["WB-1..4"])
    doc = documents.add_document(
        case,
        pages,
        reviewer=REVIEWER,
        title="IRGC-QF/93/0077",
        date="2014-08-03",
        claimed_pages=4,
    )
    assert doc["id"] == "DOC-0001"
    assert doc["page_ids"] == ["WB-000001", "WB-000002", "WB-000003", "WB-000004"]
    assert (doc["first_page"], doc["last_page"]) == ("WB-000001", "WB-000004")
    assert doc["date_iso"] == "2014-08-03"
    assert doc["date_jalali"] == "1393/05/12"
    assert doc["date_original"] == "2014-08-03"
    assert (doc["claimed_pages"], doc["actual_pages"], doc["mismatch"]) == (4, 4, False)
    assert doc["created_by"] == REVIEWER and doc["created_at"].endswith("Z")
    second = documents.add_document(case, ["WB-000005"], reviewer=REVIEWER)
    assert second["id"] == "DOC-0002"
    assert second["date_iso"] is None and second["claimed_pages"] is None
    assert [d["id"] for d in documents.document_records(case)] == ["DOC-0001", "DOC-0002"]


@pytest.mark.parametrize(
    ("typed", "iso", "jalali"),
    [
        ("1393/05/12", "2014-08-03", "1393/05/12"),
        ("۱۳۹۳/۰۵/۱۲", "2014-08-03", "1393/05/12"),
        ("۱۳۹۴/۰۱/۰۱", "2015-03-21", "1394/01/01"),
        ("1393/12/29", "2015-03-20", "1393/12/29"),
        ("2015-03-21", "2015-03-21", "1394/01/01"),
    ],
)
def test_dates_in_both_calendars(case: Case, typed: str, iso: str, jalali: str) -> None:
    doc = documents.add_document(case, ["WB-000013"], reviewer=REVIEWER, date=typed)
    assert (doc["date_iso"], doc["date_jalali"], doc["date_original"]) == (iso, jalali, typed)
    row = case.db.execute("SELECT * FROM documents WHERE id = ?", (doc["id"],)).fetchone()
    assert (row["date_iso"], row["date_jalali"], row["date_original"]) == (iso, jalali, typed)


def test_bad_date_is_refused_and_nothing_written(case: Case) -> None:
    with pytest.raises(DateParseError):
        documents.add_document(case, ["WB-000013"], reviewer=REVIEWER, date="1393/13/40")
    assert documents.document_records(case) == []
    assert list(review.iter_events(case)) == []


def test_pages_keep_the_order_given(case: Case) -> None:
    """A cable scanned out of order keeps its document order (from the logged event)."""
    doc = documents.add_document(case, ["WB-000003", "WB-000002"], reviewer=REVIEWER)
    assert doc["page_ids"] == ["WB-000003", "WB-000002"]
    assert (doc["first_page"], doc["last_page"]) == ("WB-000003", "WB-000002")


def test_claimed_vs_actual_mismatch_flagged(case: Case) -> None:
    doc = documents.add_document(
        case, review.expand_page_ids(case, ["WB-5..8"]), reviewer=REVIEWER, claimed_pages=5
    )
    assert (doc["claimed_pages"], doc["actual_pages"], doc["mismatch"]) == (5, 4, True)
    [listed] = documents.document_records(case)
    assert listed["mismatch"] is True


@pytest.mark.parametrize(
    ("pages", "kwargs", "message"),
    [
        ([], {}, "at least one page"),
        (["WB-000001"], {"claimed_pages": 0}, "claimed pages"),
        (["WB-000001", "WB-000001"], {}, "twice"),
        (["WB-999999"], {}, "no page"),
        (["WB-000001"], {"reviewer": "  "}, "reviewer"),
    ],
)
def test_bad_requests_refused(case: Case, pages: list, kwargs: dict, message: str) -> None:
    kwargs = {"reviewer": REVIEWER, **kwargs}
    with pytest.raises(UsageError, match=message):
        documents.add_document(case, pages, **kwargs)
    assert documents.document_records(case) == []


def test_page_already_in_a_document_refused(case: Case) -> None:
    documents.add_document(case, review.expand_page_ids(case, ["WB-1..4"]), reviewer=REVIEWER)
    with pytest.raises(UsageError, match=r"WB-000004 \(in DOC-0001\)"):
        documents.add_document(case, review.expand_page_ids(case, ["WB-4..6"]), reviewer=REVIEWER)
    # the refused request left no trace: no document, no event, pages 5-6 still free
    assert [d["id"] for d in documents.document_records(case)] == ["DOC-0001"]
    assert len(list(review.iter_events(case))) == 1
    assert case.review_state("WB-000005")["document_id"] is None


def test_event_in_chain_and_page_review_set(case: Case) -> None:
    review.mark(case, ["WB-000010"], "verified", REVIEWER)
    doc = documents.add_document(
        case,
        review.expand_page_ids(case, ["WB-10..12"]),
        reviewer=REVIEWER,
        title="IRGC-QF/92/0091",
        date="۱۳۹۲/۱۰/۲۷",
        claimed_pages=3,
    )
    events = list(review.iter_events(case))
    assert review.verify_chain(events).ok
    [event] = [e for e in events if e["kind"] == "document"]
    assert event["document_id"] == doc["id"] and event["reviewer"] == REVIEWER
    assert event["payload"] == {
        "title": "IRGC-QF/92/0091",
        "date_iso": "2014-01-17",
        "date_jalali": "1392/10/27",
        "date_original": "۱۳۹۲/۱۰/۲۷",
        "claimed_pages": 3,
        "pages": ["WB-000010", "WB-000011", "WB-000012"],
    }
    for page_id in doc["page_ids"]:
        assert case.review_state(page_id)["document_id"] == doc["id"]
    assert case.review_state("WB-000013")["document_id"] is None
    assert case.review_state("WB-000010")["status"] == "verified"  # status untouched
    queued = set(case.index_queue_batch(1000))
    assert {case.review_state(p)["page_row"] for p in doc["page_ids"]} <= queued


# ----- suggestions ---------------------------------------------------------------------


def test_read_header_finds_serials_and_continuations() -> None:
    assert documents.read_header("SECRET\nREF: IRGC-QF/93/0042\nDATE: 3 August 2014") == (
        "IRGC-QF/93/0042",
        False,
        None,
    )
    assert documents.read_header("SECRET\nTEHRAN 0042/2014\nSUBJECT: Oil exports") == (
        "TEHRAN 0042/2014",
        False,
        "Oil exports",
    )
    assert documents.read_header("سری\nشماره: ۹۳/۴۲۱۷\nموضوع: گزارش")[0] == "۹۳/۴۲۱۷"
    assert documents.read_header("سری\n٩۳/۲۳۶۱ شماره:\u200e")[0] == "٩۳/۲۳۶۱"  # OCR, bidi
    assert documents.read_header("SECRET\nTEHRAN 0042/2014 (continued)\nText")[:2] == (None, True)
    assert documents.read_header("سری\nادامه شماره: ۹۳/۴۲۱۷\nمتن")[:2] == (None, True)
    body = "SECRET\n" + "Some body text.\n" * 6 + "REF: IRGC-QF/93/0042"
    assert documents.read_header(body)[0] is None  # only the top of a page is a header


def test_suggest_born_digital_exact(case: Case, small_trove: Path, ground_truth: dict) -> None:
    suggestions = documents.suggest_documents(case)
    truth = truth_for(ground_truth, "born_digital/")
    where = locations(case, small_trove)
    assert exact_matches(suggestions, truth, where) == len(truth) == len(suggestions)
    covered = [p for s in suggestions for p in s["page_ids"]]
    assert covered == sorted(where)  # every page once, in page order
    first = suggestions[0]
    assert first["claimed_pages"] == len(first["page_ids"])
    by_serial = {d["serial"]: d for d in truth}
    for s in suggestions:
        assert s["date"] == by_serial[s["title"]]["date_iso"]


def test_suggest_small_trove_with_scans(ingested_small_trove, small_trove, ground_truth) -> None:
    """Read-only on the shared case: OCR'd markers and scrambled loose files included."""
    case_dir, _ = ingested_small_trove
    with Case.open(case_dir) as shared:
        suggestions = documents.suggest_documents(shared)
        where = locations(shared, small_trove)
    truth = ground_truth["documents"]
    # measured 10/10; allow one OCR miss so a Tesseract update does not fail the build
    assert exact_matches(suggestions, truth, where) >= len(truth) - 1
    assert sorted(p for s in suggestions for p in s["page_ids"]) == sorted(where)


def test_suggest_200_page_trove(tmp_path: Path) -> None:
    import json

    from fixtures.generate import generate_trove
    from workbench.pipeline import ingest

    trove = tmp_path / "trove"
    truth = json.loads(generate_trove(trove, pages=200, scanned=0).read_text(encoding="utf-8"))
    (trove / "scans").mkdir(exist_ok=True)
    (trove / "loose").mkdir(exist_ok=True)
    with Case.open(tmp_path / "case", create=True) as big:
        ingest(big, trove_inputs(trove), jobs=2)
        suggestions = documents.suggest_documents(big)
        where = locations(big, trove)
    assert exact_matches(suggestions, truth["documents"], where) == len(truth["documents"])
    assert len(suggestions) == len(truth["documents"])


def test_suggest_without_markers_uses_headers_and_files(tmp_path: Path) -> None:
    """Pages whose footers were not found: serial headers and file changes decide."""
    texts = {
        "a.pdf": [
            "SECRET\nTEHRAN 0042/2014\nDATE: 3 August 2014\nSUBJECT: One",
            "SECRET\nTEHRAN 0042/2014 (continued)\nBody",
            "SECRET\nREF: IRGC-QF/93/0077\nDATE: 2014-08-05\nSUBJECT: Two",
            "SECRET\nMore body without any header",
        ],
        "b.pdf": ["Body of a page in another file", "Another page"],
        "c.pdf": [
            "سری\nشماره: ۹۳/۴۲۱۷\nتاریخ: ۱۳۹۳/۰۵/۱۲\nموضوع: گزارش",
            "سری\nادامه شماره: ۹۳/۴۲۱۷",
        ],
    }
    with Case.open(tmp_path / "case", create=True) as fresh:
        with fresh.transaction():
            for path, pages in texts.items():
                source = fresh.record_source(
                    path=str(tmp_path / path),
                    sha256=path,
                    size=1,
                    kind="born_digital",
                    status="ingested",
                    page_count=len(pages),
                )
                for n, text in enumerate(pages, start=1):
                    page = {"page_number": n, "text": text, "text_source": "layer"}
                    fresh.add_page(source, page | metadata.text_facts(text))
        got = documents.suggest_documents(fresh)
    assert [s["page_ids"] for s in got] == [
        ["WB-000001", "WB-000002"],
        ["WB-000003", "WB-000004"],
        ["WB-000005", "WB-000006"],
        ["WB-000007", "WB-000008"],
    ]
    assert [s["title"] for s in got] == ["TEHRAN 0042/2014", "IRGC-QF/93/0077", None, "۹۳/۴۲۱۷"]
    assert [s["date"] for s in got] == ["2014-08-03", "2014-08-05", None, "2014-08-03"]
    assert all(s["claimed_pages"] is None and s["reason"] for s in got)


def test_accept_suggestions_then_nothing_left(case: Case) -> None:
    documents.add_document(case, ["WB-000013"], reviewer=REVIEWER)  # grouped by hand first
    suggestions = documents.suggest_documents(case)
    assert all("WB-000013" not in s["page_ids"] for s in suggestions)
    created = documents.accept_suggestions(case, suggestions, reviewer=REVIEWER)
    assert [d["page_ids"] for d in created] == [s["page_ids"] for s in suggestions]
    assert [d["id"] for d in created] == [f"DOC-{n:04d}" for n in range(2, len(created) + 2)]
    assert not any(d["mismatch"] for d in created)
    assert all(d["title"] and d["date_iso"] for d in created)
    assert documents.suggest_documents(case) == []
    events = list(review.iter_events(case))
    assert review.verify_chain(events).ok
    assert sum(e["kind"] == "document" for e in events) == len(created) + 1
    grouped = {p for d in documents.document_records(case) for p in d["page_ids"]}
    assert grouped == set(locations_ids(case))


def locations_ids(case: Case) -> list[str]:
    return [r["page_id"] for r in case.page_rows()]


def test_doc_commands_through_the_cli(small_trove, tmp_path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    runner = CliRunner()
    env = {"WORKBENCH_CASE": str(tmp_path / "case"), "WORKBENCH_REVIEWER": "alice"}
    assert (
        runner.invoke(
            main, ["ingest", str(small_trove / "born_digital"), "--quiet"], env=env
        ).exit_code
        == 0
    )
    added = runner.invoke(
        main,
        ["doc", "add", "--pages", "WB-000001..WB-000003", "--date", "۱۳۹۳/۰۵/۱۲",
         "--claimed-pages", "4", "--title", "test cable"],
        env=env,
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert "DOC-0001" in added.stdout and "MISMATCH" in added.stdout
    suggested = runner.invoke(main, ["doc", "suggest", "--json"], env=env)
    assert suggested.exit_code == 0, suggested.stderr
    proposals = [json.loads(line) for line in suggested.stdout.splitlines()]
    assert proposals and all("WB-000001" not in p["page_ids"] for p in proposals)
    accepted = runner.invoke(main, ["doc", "suggest", "--accept"], env=env)
    assert accepted.exit_code == 0 and f"{len(proposals)} document(s) recorded" in accepted.stdout
    listed = [
        json.loads(line)
        for line in runner.invoke(main, ["docs", "--json"], env=env).stdout.splitlines()
    ]
    assert listed[0]["date_iso"] == "2014-08-03" and listed[0]["date_jalali"] == "1393/05/12"
    assert listed[0]["mismatch"] is True and len(listed) == 1 + len(proposals)
    assert runner.invoke(main, ["log", "verify"], env=env).exit_code == 0
    shown = json.loads(runner.invoke(main, ["show", "WB-000002", "--json"], env=env).stdout)
    assert shown["document_id"] == "DOC-0001"
