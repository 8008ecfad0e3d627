"""Full-text search: recall on the fixture trove, Persian/Arabic folding, dates, rebuild."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest

from tests.conftest import CORPUS, PAGE_KEYS, needs_corpus, subprocess_env, trove_inputs
from workbench import index, views
from workbench.errors import UsageError
from workbench.pipeline import ingest
from workbench.store import Case

ARABIC_FORMS = str.maketrans({"ی": "ي", "ک": "ك"})
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


@pytest.fixture(scope="module")
def searchable(ingested_small_trove, small_trove, ground_truth):
    case_dir, _ = ingested_small_trove
    case = Case.open(case_dir)
    by_key = {(r["source_path"], r["page_number"]): r["page_id"] for r in views.page_records(case)}
    yield case, by_key
    case.close()


def _born_digital_pages(ground_truth, small_trove):
    for f in ground_truth["files"]:
        if f["kind"] == "born_digital":
            for p in f["pages"]:
                yield str(small_trove / f["path"]), p


def _ids(case, query, limit=50):
    return [h.record["page_id"] for h in index.search(case, query, limit=limit).hits]


def test_every_distinctive_phrase_is_found_on_its_page(searchable, ground_truth, small_trove):
    case, by_key = searchable
    checked = 0
    for path, page in _born_digital_pages(ground_truth, small_trove):
        for phrase in page["distinctive_phrases"]:
            ids = _ids(case, f'"{phrase}"')
            assert by_key[(path, page["page_number"])] in ids, phrase
            checked += 1
    assert checked >= 30


def test_arabic_letter_forms_find_persian_text_and_back(searchable, ground_truth, small_trove):
    case, by_key = searchable
    checked = 0
    for path, page in _born_digital_pages(ground_truth, small_trove):
        if page["lang"] != "fas":
            continue
        for phrase in page["distinctive_phrases"]:
            arabic = phrase.translate(ARABIC_FORMS)
            if arabic == phrase:
                continue
            assert by_key[(path, page["page_number"])] in _ids(case, f'"{arabic}"'), arabic
            checked += 1
    assert checked >= 3


def test_digit_scripts_fold_both_ways(searchable, ground_truth, small_trove):
    case, by_key = searchable
    persian_years = latin_years = 0
    for path, page in _born_digital_pages(ground_truth, small_trove):
        target = by_key[(path, page["page_number"])]
        for found in page["dates"]:
            year = re.search(r"[0-9۰-۹]{4}", found["original"]).group()
            if year.isascii():
                assert target in _ids(case, year.translate(PERSIAN_DIGITS), limit=500)
                latin_years += 1
            else:
                ascii_year = year.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
                assert target in _ids(case, ascii_year, limit=500)
                persian_years += 1
    assert persian_years and latin_years


def test_jalali_and_hijri_dates_are_found_by_gregorian_ranges(
    searchable, ground_truth, small_trove
):
    case, by_key = searchable
    calendars = set()
    for path, page in _born_digital_pages(ground_truth, small_trove):
        for found in page["dates"]:
            if found["calendar"] == "gregorian":
                continue
            iso = found["iso"]
            ids = _ids(case, f"date:[{iso} TO {iso}]", limit=500)
            assert by_key[(path, page["page_number"])] in ids, found
            calendars.add(found["calendar"])
    assert calendars == {"jalali", "hijri"}


def test_field_filters(searchable):
    case, _ = searchable
    fas = index.search(case, "lang:fas", limit=500)
    eng = index.search(case, "lang:eng", limit=500)
    assert fas.total and eng.total
    assert all(h.record["status"] == "unreviewed" for h in fas.hits)
    assert index.search(case, "status:verified").total == 0
    assert index.search(case, "status:unreviewed", limit=1).total == fas.total + eng.total
    page3 = index.search(case, "page:3", limit=500)
    assert page3.total and all(h.record["page_number"] == 3 for h in page3.hits)
    ocr = index.search(case, "from:ocr", limit=500)
    assert ocr.total and all(h.record["text_source"] == "ocr" for h in ocr.hits)
    counts = index.count_by_status(case, "lang:fas")
    assert counts == {"unreviewed": fas.total}


def test_hits_carry_page_keys_score_snippet_and_spans(searchable, ground_truth, small_trove):
    case, _ = searchable
    path, page = next(_born_digital_pages(ground_truth, small_trove))
    phrase = page["distinctive_phrases"][0]
    [hit, *_] = index.search(case, f'"{phrase}"').hits
    record = hit.as_json()
    assert PAGE_KEYS | {"status", "score", "snippet", "matches"} <= set(record)
    text = views.page_detail(case, record["page_id"])["text"]
    for match in record["matches"]:
        assert text[match["start"] : match["end"]] == match["text"]
    for start, end in hit.snippet_matches:
        assert hit.snippet[start:end].strip()


@pytest.mark.parametrize("bad", ["date:[banana TO 2014-01-01]", "", "   "])
def test_a_bad_query_is_a_clean_error(searchable, bad):
    case, _ = searchable
    with pytest.raises(UsageError):
        index.search(case, bad)


def test_rebuild_gives_the_same_results(small_trove, tmp_path):
    queries = ['"Page 1 of"', "lang:fas", "date:[2014-01-01 TO 2014-12-31]", "SECRET", "سری"]
    with Case.open(tmp_path / "case", create=True) as case:
        ingest(case, [str(small_trove / "born_digital")], jobs=2)
        assert index.pending(case) == 0
        before = {q: sorted(_ids(case, q, limit=1000)) for q in queries}
        assert index.rebuild(case) == case.counts()["pages"]
        after = {q: sorted(_ids(case, q, limit=1000)) for q in queries}
    assert before == after
    assert all(before.values())


def test_search_cli_json_and_bad_query(cli, small_trove):
    assert cli("ingest", str(small_trove / "born_digital"), "--quiet").exit_code == 0
    result = cli("search", "SECRET", "--json", "--limit", "3")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3 and set(lines[0]) >= PAGE_KEYS
    human = cli("search", "SECRET", "--limit", "2")
    assert "page(s) match" in human.stdout and "[" in human.stdout
    bad = cli("search", "date:[banana TO 2014-01-01]")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: cannot understand the query")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert cli("index", "--rebuild").exit_code == 0


def test_searching_while_an_ingest_writes(small_trove, tmp_path):
    """Readers are never blocked and never see a half-written index."""
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(small_trove / "born_digital")], jobs=1)
    command = [
        sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest",
        *trove_inputs(small_trove), "--lang", "fas+eng", "--jobs", "1", "--quiet",
    ]  # fmt: skip
    writer = subprocess.Popen(command, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    errors: list[BaseException] = []
    totals: list[int] = []

    def read_until_done() -> None:
        with Case.open(case_dir) as reader:
            while writer.poll() is None:
                try:
                    totals.append(index.search(reader, "lang:fas OR lang:eng", limit=1).total)
                except BaseException as error:  # noqa: BLE001 - collected for the assert
                    errors.append(error)

    thread = threading.Thread(target=read_until_done)
    thread.start()
    _, stderr = writer.communicate(timeout=600)
    thread.join()
    assert writer.returncode == 0, stderr
    assert errors == []
    assert len(totals) > 5 and totals == sorted(totals)
    with Case.open(case_dir) as case:
        assert index.search(case, "lang:fas OR lang:eng", limit=1).total == case.counts()["pages"]


@needs_corpus
def test_phrases_from_real_pdfs_are_found_on_their_page(tmp_path):
    """Phrases a new user would copy from real PDFs' text layers find the right page."""
    import pymupdf

    folder = CORPUS / "born_digital"
    with Case.open(tmp_path / "case", create=True) as case:
        ingest(case, [str(folder)], jobs=2)
        pages = {
            (r["source_path"], r["page_number"]): r["page_id"] for r in views.page_records(case)
        }
        tried = found = 0
        for pdf in sorted(folder.glob("*.pdf")):
            with pymupdf.open(pdf) as doc:
                for number, page in enumerate(doc, start=1):
                    words = [w[4] for w in page.get_text("words")]
                    plain = [bool(re.fullmatch(r"[^\W_]{3,}", w)) for w in words]
                    starts = [i for i in range(len(words) - 2) if all(plain[i : i + 3])]
                    if len(words) < 12 or not starts:
                        continue
                    start = starts[len(starts) // 2]
                    phrase = " ".join(words[start : start + 3])
                    tried += 1
                    ids = _ids(case, f'"{phrase}"', limit=100)
                    if pages[(str(pdf), number)] in ids:
                        found += 1
                    else:
                        print("not found:", pdf.name, number, phrase)
    assert tried >= 30
    assert found == tried


def test_words_and_date_ranges_together_on_thousands_of_pages(tmp_path):
    """Regression: Whoosh's multi-valued DATETIME field crashed `oil AND date:2014` (an
    assertion in its intersection matcher) once a case had a few thousand pages."""
    import random

    rng = random.Random(5)
    words = ["oil", "minister", "exchange", "house", "tehran", "source", "meeting", "border"]
    expected_oil_2014 = 0
    with Case.open(tmp_path / "case", create=True) as case:
        with case.transaction():
            for number in range(5000):
                source = case.record_source(
                    path=f"/synthetic/{number}.pdf", sha256=f"{number:064x}", size=1,
                    kind="pdf", status="ingested", page_count=1,
                )  # fmt: skip
                text = " ".join(rng.choice(words) for _ in range(30))
                years = [rng.choice([2014, 2015]) for _ in range(3)]
                dates = [
                    {"start": 0, "end": 1, "original": "x", "calendar": "gregorian",
                     "iso": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
                    for year in years
                ]  # fmt: skip
                if "oil" in text.split() and 2014 in years:
                    expected_oil_2014 += 1
                case.add_page(
                    source, {"page_number": 1, "text": text, "text_source": "layer", "dates": dates}
                )
        index.sync(case)
        assert index.search(case, "oil AND date:2014", limit=1).total == expected_oil_2014
        ranged = index.search(case, "oil date:[2014-01-01 TO 2014-12-31]", limit=1).total
        assert ranged == expected_oil_2014
        assert index.search(case, "date:[2014 TO 2015]", limit=1).total == 5000


DATE_QUERIES = [
    "date:2014",
    "date:2015-02",
    "date:2014-08-03",
    "date:[2014-01-01 TO 2014-06-30]",
    "date:[2013-11-15 TO 2015-02-10]",
    "date:[2014 TO 2015]",
    "date:[2014-03 TO 2014-03]",
    "date:{2014-01-01 TO 2014-06-30]",
    "oil AND date:[2014-02-10 TO 2014-09-30]",
    '"exchange house" AND date:2014',
]


@pytest.fixture(scope="module")
def dated_case(tmp_path_factory):
    """400 pages with random dates around 2014 (some pages without any)."""
    import random

    rng = random.Random(11)
    words = ["oil", "minister", "exchange", "house", "tehran", "source"]
    pages: dict[str, set[str]] = {}
    with Case.open(tmp_path_factory.mktemp("dated") / "case", create=True) as case:
        with case.transaction():
            for number in range(400):
                source = case.record_source(
                    path=f"/synthetic/{number}.pdf", sha256=f"{number:064x}", size=1,
                    kind="pdf", status="ingested", page_count=1,
                )  # fmt: skip
                isos = [
                    f"{rng.choice([2013, 2014, 2015])}-{rng.randint(1, 12):02d}-"
                    f"{rng.choice([1, 3, 10, 15, 28, 30, 31]):02d}"
                    for _ in range(rng.randint(0, 5))
                ]
                dates = [
                    {"start": 0, "end": 1, "original": "x", "calendar": "gregorian", "iso": iso}
                    for iso in isos
                ]
                text = " ".join(rng.choice(words) for _ in range(20))
                page_id = case.add_page(
                    source, {"page_number": 1, "text": text, "text_source": "layer", "dates": dates}
                )
                pages[page_id] = set(isos)
        index.sync(case)
        yield case, pages


@pytest.mark.parametrize("query", DATE_QUERIES)
def test_year_and_month_terms_give_the_same_hits_scores_and_order(dated_case, query, monkeypatch):
    """Date ranges are rewritten to year/month terms: same pages, scores and order as the
    day-by-day range (each page scores the number of its dates in the range)."""
    case, _ = dated_case
    rewritten = index.search(case, query, limit=500)
    monkeypatch.setattr(index, "_rewrite_dates", lambda query: query)
    plain = index.search(case, query, limit=500)
    assert rewritten.total == plain.total
    assert [(h.record["page_id"], h.score) for h in rewritten.hits] == [
        (h.record["page_id"], h.score) for h in plain.hits
    ]


def test_date_range_hits_and_scores_count_the_dates_in_range(dated_case):
    case, pages = dated_case
    low, high = "2013-11-15", "2015-02-10"
    found = index.search(case, f"date:[{low} TO {high}]", limit=500)
    expected = {pid: sum(low <= iso <= high for iso in isos) for pid, isos in pages.items()}
    expected = {pid: n for pid, n in expected.items() if n}
    assert found.total == len(expected)
    assert {h.record["page_id"]: round(h.score) for h in found.hits} == expected


def test_highlighted_words_leave_out_negated_terms(dated_case):
    case, _ = dated_case
    [hit, *_] = index.search(case, "oil NOT minister").hits
    assert {m["text"] for m in hit.matches} == {"oil"}
    [hit, *_] = index.search(case, "(tehr* OR source) ANDNOT house").hits
    assert {m["text"] for m in hit.matches} <= {"tehran", "source"}
    assert hit.matches


def test_a_cached_searcher_sees_new_commits(dated_case, tmp_path):
    case, _ = dated_case
    before = index.search(case, "oil", limit=1).total
    with case.transaction():
        source = case.record_source(
            path="/synthetic/new.pdf", sha256="f" * 64, size=1,
            kind="pdf", status="ingested", page_count=1,
        )  # fmt: skip
        case.add_page(source, {"page_number": 1, "text": "oil oil", "text_source": "layer"})
    index.sync(case)
    assert index.search(case, "oil", limit=1).total == before + 1
    index.rebuild(case)
    assert index.search(case, "oil", limit=1).total == before + 1
