"""anachronism: which date a document claims, how far before a release counts, which pages
a font finding names, and that a new data file re-checks every file.

Small born-digital PDFs made here (no OCR), so the module runs in seconds. The planted
anomalies of the fixture trove are checked by tests/test_findings.py; here their severity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest

from workbench import documents, findings
from workbench.checks import anachronism
from workbench.pipeline import ingest
from workbench.store import Case

WORD_2016 = "Microsoft® Word 2016"
LIBERATION = Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def _pdf(
    path: Path,
    pages: list[str],
    *,
    producer: str = WORD_2016,
    created: str | None = None,
    font_on: tuple[int, ...] = (),
) -> None:
    """A PDF whose pages hold the given texts; pages in ``font_on`` (0-based) also carry a
    line in Liberation Sans. PyMuPDF writes PDF 1.7 (2006), so the dates here are 2006 on."""
    doc = pymupdf.open()
    for number, text in enumerate(pages):
        page = doc.new_page()
        page.insert_text((72, 72), text, fontname="helv")
        if number in font_on:
            page.insert_text((72, 120), "ministry", fontname="lib", fontfile=str(LIBERATION))
    doc.set_metadata(
        {
            "creator": producer,
            "producer": producer,
            "creationDate": created or "",
            "modDate": created or "",
        }
    )
    doc.save(path)


def _check(tmp_path: Path, files: dict[str, dict]) -> dict[str, list[dict]]:
    """Ingest the files, run the anachronism check; findings by file name."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, spec in files.items():
        _pdf(folder / name, **spec)
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(folder)], lang="eng", jobs=1)
        assert report.ok, report.failures
        findings.run_checks(case, only=["anachronism"])
        names = {row["page_id"]: Path(row["source_path"]).name for row in case.page_rows()}
        found: dict[str, list[dict]] = {name: [] for name in files}
        for record in findings.finding_records(case, check="anachronism"):
            found[names[record["page_ids"][0]]].append(record)
    return found


def test_the_claimed_date_comes_from_the_text_then_the_metadata(tmp_path: Path) -> None:
    found = _check(
        tmp_path,
        {
            "forged.pdf": {"pages": ["Memo of 12 May 2006"], "created": "D:20060512100000Z"},
            "copy.pdf": {"pages": ["Memo of 12 May 2006"], "created": "D:20160301100000Z"},
            "undated.pdf": {"pages": ["A memo"], "created": "D:20140301100000Z"},
            "near.pdf": {"pages": ["Memo of 15 September 2015"], "created": "D:20150915Z"},
            "fine.pdf": {"pages": ["Memo of 12 May 2006"], "producer": "Microsoft® Word 2003"},
        },
    )
    (forged,) = found["forged.pdf"]
    assert forged["severity"] == "alert"
    assert forged["message"] == (
        "Made with Microsoft® Word 2016 (Microsoft Office 2016), "
        "first released in 2015, but dated 12 May 2006 in its text and metadata"
    )
    evidence = forged["evidence"]
    assert evidence["claimed"] == {
        "date": "2006-05-12",
        "from": "text",
        "field": "page 1 text",
        "value": "12 May 2006",
    }
    assert evidence["item"]["first_release"] == "2015-09-22"
    assert evidence["item"]["source"].startswith("https://")
    assert {"field": "Info Producer", "value": WORD_2016} in evidence["found_in"]
    assert (
        evidence["data_file"]["sha256"]
        == anachronism.hashlib.sha256(anachronism.data_bytes()).hexdigest()
    )
    # dated 2004 in the text, but the file was made in 2016: a later copy, not a forgery
    (copy,) = found["copy.pdf"]
    assert copy["severity"] == "warn"
    assert "the file itself was created on 1 March 2016" in copy["message"]
    # no date in the text: the file's own creation date is the claim
    (undated,) = found["undated.pdf"]
    assert undated["severity"] == "alert"
    assert undated["evidence"]["claimed"]["from"] == "metadata"
    assert undated["evidence"]["claimed"]["field"] == "Info CreationDate"
    assert "dated 1 March 2014 in its metadata" in undated["message"]
    # a week before the release is within the margin; Word 2003 in 2006 is fine
    assert found["near.pdf"] == []
    assert found["fine.pdf"] == []


def test_a_grouped_documents_date_is_used_when_the_text_has_none(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _pdf(folder / "grouped.pdf", ["A memo", "continued"], created="D:20170101Z")
    with Case.open(tmp_path / "case", create=True) as case:
        assert ingest(case, [str(folder)], lang="eng", jobs=1).ok
        ids = [row["page_id"] for row in case.page_rows()]
        documents.add_document(case, ids, reviewer="Alice", date="2014-03-01")
        (record,) = findings.run_checks(case, only=["anachronism"]).produced
    assert record["evidence"]["claimed"]["from"] == "document"
    assert record["severity"] == "warn"  # the file itself says 2017, after Word 2016
    assert "dated 1 March 2014 as document" in record["message"]


@pytest.mark.skipif(not LIBERATION.exists(), reason="Liberation Sans is not installed")
def test_a_font_finding_names_the_pages_set_in_that_font(tmp_path: Path) -> None:
    found = _check(
        tmp_path,
        {
            "font.pdf": {
                "pages": ["Memo of 3 March 2006", "page two", "page three"],
                "producer": "Microsoft Word 2003",
                "created": "D:20060303Z",
                "font_on": (1,),
            }
        },
    )
    (record,) = found["font.pdf"]
    assert record["message"] == (
        "Set in Liberation Sans/Serif/Mono, a font first released in 2007, "
        "but dated 3 March 2006 in its text and metadata"
    )
    assert len(record["page_ids"]) == 1  # only the second page uses the font
    (where,) = record["evidence"]["found_in"]
    assert where["field"] == "font" and where["pages"] == [2]
    assert "+" not in anachronism.clean_name(where["value"])


def test_a_new_data_file_rechecks_every_file(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _pdf(folder / "a.pdf", ["Memo of 12 May 2014"], producer="Microsoft® Word 2010")
    with Case.open(tmp_path / "case", create=True) as case:
        assert ingest(case, [str(folder)], lang="eng", jobs=1).ok
        findings.run_checks(case, only=["anachronism"])
        again = findings.run_checks(case, only=["anachronism"])
        assert again.units_checked == 0
        original = anachronism.data_bytes()
        extra = (
            "software,Imaginary Writer 9,2020-01-01,\\bmicrosoft,Microsoft® Word 2010,"
            "https://example.org/imaginary,a row added by the test\n"
        )
        monkeypatch.setattr(anachronism, "data_bytes", lambda: original + extra.encode())
        changed = findings.run_checks(case, only=["anachronism"])
        assert changed.units_checked == 1
        (record,) = changed.produced
        assert record["evidence"]["item"]["name"] == "Imaginary Writer 9"


def test_planted_anachronisms_are_alerts(tmp_path: Path) -> None:
    from fixtures.anomalies import generate_anomaly_trove

    truth = json.loads(generate_anomaly_trove(tmp_path / "trove").read_text(encoding="utf-8"))
    planted = [a for a in truth["anomalies"] if a["check"] == "anachronism"]
    assert len(planted) >= 2
    with Case.open(tmp_path / "case", create=True) as case:
        files = sorted({a["file"] for a in planted} | set(truth["clean_files"]))
        paths = [str(tmp_path / "trove" / f) for f in files]
        assert ingest(case, paths, lang="eng", jobs=2).ok
        findings.run_checks(case, only=["anachronism"])
        by_file = {}
        for row in case.page_rows():
            by_file[row["page_id"]] = "anomalies/" + Path(row["source_path"]).name
        records = findings.finding_records(case, check="anachronism")
    for anomaly in planted:
        hits = [r for r in records if by_file[r["page_ids"][0]] == anomaly["file"]]
        assert [r["severity"] for r in hits] == [anomaly["severity"]], anomaly["what"]
    assert all(by_file[r["page_ids"][0]] not in truth["clean_files"] for r in records)


@pytest.mark.skipif(not (CORPUS / "born_digital").is_dir(), reason="../shared/corpus is absent")
def test_no_anachronism_in_the_real_born_digital_files(tmp_path: Path) -> None:
    """Word, LaTeX, LibreOffice, InDesign, Ghostscript files of 2015-2024, genuine: the
    check must stay quiet on them (what it found there is in the README)."""
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(CORPUS / "born_digital")], lang="eng", jobs=2)
        assert report.ok, report.failures
        findings.run_checks(case, only=["anachronism"])
        assert findings.finding_records(case, check="anachronism") == []


@pytest.mark.skipif(not (CORPUS / "safety").is_dir(), reason="../shared/corpus is absent")
def test_a_real_court_filing_reprocessed_years_later_is_a_warning(tmp_path: Path) -> None:
    """x-ray's test file: a 2010 court filing (its text's dates) run through pdftk-java
    3.0.9 (January 2020) in October 2021. A later copy, rightly not an alert."""
    with Case.open(tmp_path / "case", create=True) as case:
        path = CORPUS / "safety" / "xray-no_bad_redactions.2.1.pdf"
        assert ingest(case, [str(path)], lang="eng", jobs=1).ok
        findings.run_checks(case, only=["anachronism"])
        (record,) = findings.finding_records(case, check="anachronism")
    assert record["severity"] == "warn"
    assert record["evidence"]["item"]["name"] == "pdftk-java 3.0.9"
    assert record["evidence"]["claimed"]["date"] == "2010-03-01"
    assert "created on 28 October 2021" in record["message"]


def test_a_scan_is_judged_by_its_own_creation_date_only(tmp_path: Path) -> None:
    """A 2016 scan of a 2006 paper, made with 2016 software, is no anachronism: for pages
    read by OCR the text's dates describe the paper, not the file."""
    folder = tmp_path / "in"
    folder.mkdir()
    _pdf(folder / "scan.pdf", ["Memo of 12 May 2006"], created="D:20060512Z")
    with Case.open(tmp_path / "case", create=True) as case:
        assert ingest(case, [str(folder)], lang="eng", jobs=1).ok
        case.db.execute("UPDATE pages SET text_source = 'ocr'")  # as if its text were OCR'd
        (record,) = findings.run_checks(case, only=["anachronism"]).produced
    assert record["evidence"]["claimed"]["from"] == "metadata"
    assert record["severity"] == "alert"  # its own metadata still says 2006
