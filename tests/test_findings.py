"""Findings: the checks find every planted anomaly on the right pages, and nothing else.

The anomaly trove (fixtures/anomalies.py) plants one anomaly per file beside clean files;
its anomalies.json says where each one is. Born-digital only, so no OCR: fast.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import findings
from workbench.checks import metadata_mismatch, odd_page, page_sequence
from workbench.checks.page_sequence import Marked
from workbench.cli import main
from workbench.pipeline import ingest
from workbench.store import Case


@pytest.fixture(scope="module")
def anomaly_trove(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from fixtures.anomalies import generate_anomaly_trove

    out = tmp_path_factory.mktemp("anomalies")
    truth = json.loads(generate_anomaly_trove(out).read_text(encoding="utf-8"))
    return out, truth


@pytest.fixture(scope="module")
def checked_case(anomaly_trove, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The anomaly trove ingested and checked once (tests copy it before writing)."""
    out, _ = anomaly_trove
    case_dir = tmp_path_factory.mktemp("anomaly-case") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(out / "anomalies")], lang="eng", jobs=2)
        assert report.ok, report.failures
        findings.run_checks(case)
    return case_dir


def _copy(case_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(case_dir, target)
    return target


def _page_map(case: Case) -> dict[str, tuple[str, int]]:
    """page id -> (source path relative to the trove, page number)."""
    found = {}
    for row in case.page_rows():
        path = row["source_path"]
        found[row["page_id"]] = (path[path.index("anomalies/") :], row["page_number"])
    return found


def _where(anomaly: dict) -> list[tuple[str, int]]:
    """(file, page number) of each page a planted anomaly's finding must name, in order."""
    if "file_pages" in anomaly:
        return [(path, number) for path, number in anomaly["file_pages"]]
    return [(anomaly["file"], number) for number in anomaly["pages"]]


def test_the_two_changed_words_are_named(checked_case, anomaly_trove) -> None:
    _, truth = anomaly_trove
    planted = next(a for a in truth["anomalies"] if a["check"] == "copy-difference")
    with Case.open(checked_case) as case:
        (finding,) = findings.finding_records(case, check="copy-difference")
    assert finding["severity"] == "alert"
    said = [[d["first"], d["second"]] for d in finding["evidence"]["differences"]]
    assert said == [[old.lower(), new.lower()] for old, new in planted["swapped_words"]]


def _contains(evidence: object, expected: object) -> bool:
    """Every key of an expected object is in the evidence with a matching value; every
    item of an expected list matches some item of the evidence's list."""
    if isinstance(expected, dict):
        return isinstance(evidence, dict) and all(
            key in evidence and _contains(evidence[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list) and expected and isinstance(expected[0], dict):
        return isinstance(evidence, list) and all(
            any(_contains(item, wanted) for item in evidence) for wanted in expected
        )
    return evidence == expected


def _run(case_dir: Path, *args: str, input: str | None = None):
    env = {"WORKBENCH_CASE": str(case_dir), "WORKBENCH_REVIEWER": "Alice (Paper A)"}
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def test_every_planted_anomaly_is_found_on_its_pages(checked_case, anomaly_trove) -> None:
    _, truth = anomaly_trove
    with Case.open(checked_case) as case:
        pages = _page_map(case)
        records = findings.finding_records(case)
    for anomaly in truth["anomalies"]:
        hits = [
            r
            for r in records
            if r["check"] == anomaly["check"]
            and [pages[p] for p in r["page_ids"]] == _where(anomaly)
            and _contains(r["evidence"], anomaly["evidence"])
        ]
        assert hits, f"not found: {anomaly['what']} ({anomaly['check']})"
    # precision: every finding is about a planted anomaly's file
    planted_files = {f for a in truth["anomalies"] for f in a.get("files", [a.get("file")])}
    for record in records:
        assert {pages[p][0] for p in record["page_ids"]} <= planted_files, record["message"]


def test_clean_files_get_no_finding(checked_case, anomaly_trove) -> None:
    _, truth = anomaly_trove
    with Case.open(checked_case) as case:
        pages = _page_map(case)
        records = findings.finding_records(case)
    clean = set(truth["clean_files"])
    assert clean
    on_clean = [r for r in records if {pages[p][0] for p in r["page_ids"]} & clean]
    assert on_clean == []


def test_json_keys_are_exactly_the_interface(checked_case, tmp_path) -> None:
    result = _run(_copy(checked_case, tmp_path), "findings", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines
    for line in lines:
        assert tuple(line) == findings.FINDING_KEYS
        assert line["severity"] in ("info", "warn", "alert")
        assert line["finding_id"].startswith("F-")
        assert line["dismissed"] is False


def test_findings_filters(checked_case, tmp_path) -> None:
    case_dir = _copy(checked_case, tmp_path)
    seq = _run(case_dir, "findings", "--check", "page-sequence", "--json")
    checks = {json.loads(line)["check"] for line in seq.output.splitlines()}
    assert checks == {"page-sequence"}
    with Case.open(case_dir) as case:
        first = findings.finding_records(case)[0]
    by_page = _run(case_dir, "findings", "--page", first["page_ids"][0], "--json")
    assert first["finding_id"] in by_page.output
    # the only alerts: the anomalies planted as alerts
    alerts = _run(case_dir, "findings", "--severity", "alert", "--json")
    alerted = [json.loads(line) for line in alerts.output.splitlines()]
    assert {a["severity"] for a in alerted} == {"alert"}
    assert {a["check"] for a in alerted} == {
        "anachronism",
        "bad-redaction",
        "copy-difference",
        "active-content",
        "identifying-metadata",
        "tracking-dots",
    }
    unknown = CliRunner().invoke(
        main, ["findings", "--check", "nonsense"], env={"WORKBENCH_CASE": str(case_dir)}
    )
    assert unknown.exit_code == 2
    assert "no check called 'nonsense'" in unknown.output


def test_checks_are_incremental_and_ids_stable(checked_case, anomaly_trove, tmp_path) -> None:
    out, _ = anomaly_trove
    case_dir = _copy(checked_case, tmp_path)
    with Case.open(case_dir) as case:
        before = {r["finding_id"]: r for r in findings.finding_records(case)}
        again = findings.run_checks(case)
        assert again.units_checked == 0 and again.produced == []
        assert again.units_unchanged > 0
        # a new file: only its own unit is checked
        extra = tmp_path / "extra"
        extra.mkdir()
        shutil.copy(out / "anomalies" / "missing_page.pdf", extra / "copy.pdf")
        (extra / "copy.pdf").write_bytes((extra / "copy.pdf").read_bytes() + b"\n%extra\n")
        ingest(case, [str(extra)], lang="eng", jobs=1)
        third = findings.run_checks(case, ["page-sequence"])
        assert third.units_checked == 1
        new_pages = {
            row["page_id"] for row in case.page_rows() if row["source_path"].endswith("copy.pdf")
        }
        assert third.produced and all(set(r["page_ids"]) <= new_pages for r in third.produced)
        after = {r["finding_id"]: r for r in findings.finding_records(case)}
    assert set(before) < set(after)
    for fid, record in before.items():
        assert after[fid]["message"] == record["message"]


def test_documents_take_over_their_pages(checked_case, tmp_path) -> None:
    """Grouped pages are checked as a document: missing first/last pages and claimed counts."""
    case_dir = _copy(checked_case, tmp_path)
    assert _run(case_dir, "doc", "suggest", "--accept").exit_code == 0
    result = _run(case_dir, "check", "--only", "page-sequence", "--json")
    assert result.exit_code == 0
    with Case.open(case_dir) as case:
        records = findings.finding_records(case, check="page-sequence")
    messages = [r["message"] for r in records]
    # one per planted page-sequence anomaly, no source-level echo; and the rescanned copy
    # of a cable's page 1 alone, suggested as a document of its own, lacks its page 2
    assert len(records) == 4, messages
    assert all(m.startswith("Document DOC-") for m in messages)
    assert any("page 2 of 2 is missing (a marker read by OCR" in m for m in messages)
    assert any("page 3 of 5 is missing" in m for m in messages)


def test_dismissal_is_a_logged_event(checked_case, tmp_path) -> None:
    case_dir = _copy(checked_case, tmp_path)
    with Case.open(case_dir) as case:
        target = findings.finding_records(case, check="metadata-mismatch")[0]
    fid = target["finding_id"]
    no_note = CliRunner().invoke(
        main,
        ["finding", "dismiss", fid, "--note", "  "],
        env={"WORKBENCH_CASE": str(case_dir), "WORKBENCH_REVIEWER": "Alice"},
    )
    assert no_note.exit_code == 2
    done = _run(case_dir, "finding", "dismiss", fid, "--note", "the sender's clock was wrong")
    assert done.exit_code == 0, done.output
    listed = [
        json.loads(line) for line in _run(case_dir, "findings", "--json").output.split("\n") if line
    ]
    assert [r["dismissed"] for r in listed if r["finding_id"] == fid] == [True]
    assert all(not r["dismissed"] for r in listed if r["finding_id"] != fid)
    twice = CliRunner().invoke(
        main,
        ["finding", "dismiss", fid, "--note", "again"],
        env={"WORKBENCH_CASE": str(case_dir), "WORKBENCH_REVIEWER": "Alice"},
    )
    assert twice.exit_code == 2 and "already dismissed" in twice.output
    unknown = CliRunner().invoke(
        main,
        ["finding", "dismiss", "F-000000000000", "--note", "x"],
        env={"WORKBENCH_CASE": str(case_dir), "WORKBENCH_REVIEWER": "Alice"},
    )
    assert unknown.exit_code == 2 and "no finding" in unknown.output
    with Case.open(case_dir) as case:
        event = case.db.execute(
            "SELECT kind, reviewer, note, payload FROM review_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        # still dismissed after the checks run again with nothing changed
        findings.run_checks(case)
        assert findings.finding_record(case, fid)["dismissed"] is True
    assert event["kind"] == "dismiss" and event["reviewer"] == "Alice (Paper A)"
    assert json.loads(event["payload"])["finding_id"] == fid
    assert event["note"] == "the sender's clock was wrong"
    verify = _run(case_dir, "log", "verify")
    assert verify.exit_code == 0, verify.output


def test_a_dismissal_covers_only_what_was_dismissed(checked_case, tmp_path) -> None:
    """If the same finding later says something else, the old dismissal no longer holds."""
    case_dir = _copy(checked_case, tmp_path)
    with Case.open(case_dir) as case:
        target = findings.finding_records(case, check="metadata-mismatch")[0]
        findings.dismiss(case, target["finding_id"], note="fine", reviewer="Alice")
        with case.transaction() as db:  # the finding's content changes (a new check version)
            db.execute(
                "UPDATE findings SET content_sha256 = 'other' WHERE finding_id = ?",
                (target["finding_id"],),
            )
        assert findings.finding_record(case, target["finding_id"])["dismissed"] is False


def test_check_list_and_unknown_only(checked_case, tmp_path) -> None:
    case_dir = _copy(checked_case, tmp_path)
    listed = _run(case_dir, "check", "--list")
    assert "page-sequence" in listed.output and "metadata-mismatch" in listed.output
    bad = CliRunner().invoke(
        main, ["check", "--only", "page-sequence,bogus"], env={"WORKBENCH_CASE": str(case_dir)}
    )
    assert bad.exit_code == 2 and "bogus" in bad.output


# ----- page-sequence logic ---------------------------------------------------------------


def _marked(*pairs: tuple[int, int]) -> list[Marked]:
    return [Marked(f"WB-{i:06d}", n, t, "layer") for i, (n, t) in enumerate(pairs, start=1)]


def _kinds(run: list[Marked], whole: bool = False) -> list[str]:
    return sorted(
        d.discriminator.split(":")[0] for d in page_sequence.run_problems(run, whole_document=whole)
    )


@pytest.mark.parametrize(
    ("pairs", "kinds"),
    [
        (((1, 3), (2, 3), (3, 3)), []),
        (((1, 3), (3, 3)), ["missing"]),
        (((1, 3), (2, 3), (2, 3), (3, 3)), ["repeat"]),
        (((1, 4), (3, 4), (2, 4), (4, 4)), ["backwards"]),
        (((1, 5), (2, 5), (3, 6), (4, 5), (5, 5)), ["totals"]),
        (((2, 5), (3, 5)), []),  # a file holding the middle of a cable: nothing wrong inside
    ],
)
def test_run_problems(pairs, kinds) -> None:
    assert _kinds(_marked(*pairs)) == kinds


def test_whole_document_counts_missing_ends() -> None:
    drafts = page_sequence.run_problems(_marked((2, 4), (3, 4)), whole_document=True)
    assert [d.evidence["missing"] for d in drafts] == [[1, 4]]
    assert drafts[0].message == "Pages 1 and 4 of 4 are missing"


def test_segments_split_files_holding_several_cables() -> None:
    runs = page_sequence.segments(_marked((1, 2), (2, 2), (1, 3), (2, 3), (3, 3), (1, 2), (2, 2)))
    assert [len(r) for r in runs] == [2, 3, 2]
    # a second 1 before the run is complete is a repeat, not a new cable
    runs = page_sequence.segments(_marked((1, 3), (1, 3), (2, 3), (3, 3)))
    assert [len(r) for r in runs] == [4]


# ----- metadata-mismatch logic -----------------------------------------------------------


def test_moments_and_zone_slack() -> None:
    parse = metadata_mismatch.parse_moment
    zoned = parse("a", "2014-08-03T12:00:00+04:30")
    utc = parse("b", "2014-08-03T07:30:00Z")
    naive = parse("c", "2014:08:03 20:00:00")
    assert zoned is not None and utc is not None and naive is not None
    assert metadata_mismatch.apart(zoned, utc).total_seconds() == 0
    assert metadata_mismatch.apart(zoned, naive).total_seconds() == 0  # within any zone
    assert parse("d", "0000:00:00 00:00:00") is None
    assert parse("e", "not a date") is None


def test_scans_made_after_the_text_date_are_normal() -> None:
    moments = {
        "Info CreationDate": metadata_mismatch.parse_moment("Info CreationDate", "2019-05-01")
    }
    text = ["2014-03-01", "2014-03-05"]
    assert metadata_mismatch._far_from_text(moments, text, scanned=True) == []
    found = metadata_mismatch._far_from_text(moments, text, scanned=False)
    assert len(found) == 1 and "5 years after" in found[0].message
    early = {"Info CreationDate": metadata_mismatch.parse_moment("Info CreationDate", "2010-05-01")}
    assert "before" in metadata_mismatch._far_from_text(early, text, scanned=True)[0].message


def test_daylight_saving_is_not_another_zone() -> None:
    parse = metadata_mismatch.parse_moment
    winter_summer = {
        "Info CreationDate": parse("Info CreationDate", "2021-02-13T10:10:58-08:00"),
        "Info ModDate": parse("Info ModDate", "2021-08-08T16:49:35-07:00"),
    }
    assert metadata_mismatch._zones(winter_summer) == []
    moved = {
        "Info CreationDate": parse("Info CreationDate", "2014-02-13T10:10:58+03:30"),
        "Info ModDate": parse("Info ModDate", "2014-08-08T16:49:35-05:00"),
    }
    assert len(metadata_mismatch._zones(moved)) == 1


# ----- odd-page logic --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("ABCDEF+Calibri-Bold", "Calibri"),
        ("TimesNewRomanPS-BoldItalicMT", "TimesNewRoman"),
        ("VYHHYE+Nazli Regular", "Nazli"),
        ("ArialMT", "Arial"),
        ("CMR10", "CMR10"),
    ],
)
def test_font_family(name, family) -> None:
    assert odd_page.font_family(name) == family


def test_odd_one_needs_the_others_to_agree() -> None:
    same = odd_page._close
    assert odd_page._odd_ones([595, 595, 612, 595], lambda a, b: same(a, b, 0.02)) == [2]
    assert odd_page._odd_ones([595, 612, 842, 595], lambda a, b: same(a, b, 0.02)) == []
    assert odd_page._odd_ones([595, 596, 595], lambda a, b: same(a, b, 0.02)) == []


def test_symbol_faces_do_not_make_a_page_odd() -> None:
    pages = [
        {"page_id": f"WB-{i}", "fonts": fonts, "size": [595, 842], "scan": None}
        for i, fonts in enumerate(
            [["Nazli"], ["Nazli", "Noto Sans Math"], ["Nazli"], ["SymbolMT", "Nazli"]]
        )
    ]
    assert odd_page._fonts(pages, "its file") == []
    pages[2]["fonts"] = ["Noto Sans Arabic"]
    found = odd_page._fonts(pages, "its file")
    assert [d.page_ids for d in found] == [["WB-2"]]


# ----- exports ---------------------------------------------------------------------------


def test_exports_carry_findings_and_dismissals(checked_case, tmp_path) -> None:
    import csv

    from workbench import export

    case_dir = _copy(checked_case, tmp_path)
    with Case.open(case_dir) as case:
        records = findings.finding_records(case)
        alert = next(r for r in records if r["check"] == "copy-difference")
        dismissed = findings.dismiss(
            case, records[0]["finding_id"], note="seen: the sender's scanner", reviewer="Bob"
        )
        export.export(case, "csv", tmp_path / "pages.csv")
        export.export(case, "jsonl", tmp_path / "log.jsonl")
        export.export(case, "report", tmp_path / "report.html")
    with open(tmp_path / "pages.csv", encoding="utf-8-sig", newline="") as handle:
        rows = {row["page_id"]: row for row in csv.DictReader(handle)}
    for page in alert["page_ids"]:
        assert f"alert copy-difference {alert['finding_id']}" in rows[page]["findings"]
    assert dismissed["finding_id"] not in "".join(r["findings"] for r in rows.values())

    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    events = [line for line in lines if "record" not in line]
    listed = [line for line in lines if line.get("record") == "finding"]
    assert events[-1]["kind"] == "dismiss"
    assert events[-1]["payload"]["finding_id"] == dismissed["finding_id"]
    assert {line["finding_id"] for line in listed} == {r["finding_id"] for r in records}
    assert export.verify_jsonl(tmp_path / "log.jsonl").ok
    # findings are outside the chain, but an event may not hide among them
    moved = [*lines[1:], lines[0]]
    (tmp_path / "moved.jsonl").write_text("\n".join(json.dumps(x) for x in moved) + "\n")
    assert not export.verify_jsonl(tmp_path / "moved.jsonl").ok

    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"Findings ({len(records) - 1} open, 1 dismissed)" in report
    assert alert["finding_id"] in report
    assert "seen: the sender&#x27;s scanner" in report


def test_search_finds_pages_with_open_findings(checked_case, tmp_path) -> None:
    from workbench import index

    case_dir = _copy(checked_case, tmp_path)
    with Case.open(case_dir) as case:
        index.sync(case)
        (copies,) = findings.finding_records(case, check="copy-difference")
        found = index.matching_page_ids(case, "finding:copy-difference")
        assert found == copies["page_ids"]
        assert set(found) <= set(index.matching_page_ids(case, "finding:any"))
        assert set(index.matching_page_ids(case, "findings:near-duplicate")) >= set(found)
        findings.dismiss(case, copies["finding_id"], note="a known draft", reviewer="Alice")
        index.sync(case)
        assert index.matching_page_ids(case, "finding:copy-difference") == []


def test_ingest_runs_the_checks_only_when_pages_changed(anomaly_trove, tmp_path) -> None:
    out, _ = anomaly_trove
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("canary_a.pdf", "canary_b.pdf"):
        shutil.copy(out / "anomalies" / name, folder / name)
    first = _run(tmp_path / "case", "ingest", str(folder), "--lang", "eng")
    assert "checks: 2 new finding(s) (1 alert, 1 warn)" in first.stdout
    again = _run(tmp_path / "case", "ingest", str(folder), "--lang", "eng")
    assert "checks:" not in again.stdout
    skipped = _run(tmp_path / "other", "ingest", str(folder), "--lang", "eng", "--no-check")
    assert "checks:" not in skipped.stdout
    with Case.open(tmp_path / "other") as case:
        assert findings.finding_records(case) == []


def test_tracking_dots_on_the_dotted_pages_only(checked_case, anomaly_trove) -> None:
    """One finding per dotted page, with the grid's step; none on the harmless colour
    page (highlighter, stamp, logo, tinted paper) nor on any greyscale scan."""
    _, truth = anomaly_trove
    planted = [a for a in truth["anomalies"] if a["check"] == "tracking-dots"]
    assert planted
    with Case.open(checked_case) as case:
        pages = _page_map(case)
        records = findings.finding_records(case, check="tracking-dots")
    found = sorted(pages[p] for record in records for p in record["page_ids"])
    assert found == sorted((a["file"], n) for a in planted for n in a["pages"])
    for record in records:
        (pitch,) = {a["period_mm"] for a in planted}
        assert record["severity"] == "alert"
        assert record["evidence"]["grid"]["period_mm"] == pytest.approx([pitch, pitch], abs=0.02)
