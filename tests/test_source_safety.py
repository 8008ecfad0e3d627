"""Source safety on real files: active content and hidden content found where they are,
and nothing reported on the harmless files (../shared/corpus/, skipped without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CORPUS, needs_corpus
from workbench import findings
from workbench.pipeline import ingest
from workbench.store import Case

pytestmark = needs_corpus

FILES = [
    "safety/samplefiles-002-trivial-libre-office-writer.pdf",  # OpenAction: a jump only
    "safety/samplefiles-with-attachment.pdf",
    "safety/xray-no_bad_redactions.2.1.pdf",
    "safety/xray-rectangles_yes_2.pdf",
    "malformed/pypdf-issue-297.pdf",  # JavaScript on open
]


@pytest.fixture(scope="module")
def safety_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    case_dir = tmp_path_factory.mktemp("safety") / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(CORPUS / name) for name in FILES], lang="eng", jobs=1)
        findings.run_checks(case, ["active-content", "hidden-content"])
        by_file: dict[str, list[dict]] = {name: [] for name in FILES}
        paths = {s.sha256: Path(s.path).relative_to(CORPUS).as_posix() for s in case.sources()}
        for record in findings.finding_records(case):
            by_file[paths[record["source_sha256"]]].append(record)
    return by_file


def test_javascript_on_open_is_an_alert(safety_case) -> None:
    (found,) = safety_case["malformed/pypdf-issue-297.pdf"]
    assert found["check"] == "active-content" and found["severity"] == "alert"
    (action,) = found["evidence"]["actions"]
    assert action["action"] == "JavaScript" and action["where"] == "/OpenAction"
    assert "app.alert" in action["script"]


def test_a_harmless_open_action_is_not_reported(safety_case) -> None:
    assert safety_case["safety/samplefiles-002-trivial-libre-office-writer.pdf"] == []


def test_the_attachment_is_named(safety_case) -> None:
    (found,) = safety_case["safety/samplefiles-with-attachment.pdf"]
    assert found["check"] == "hidden-content"
    assert [i["name"] for i in found["evidence"]["items"]] == ["image.png"]


def test_a_comment_names_its_author(safety_case) -> None:
    (found,) = safety_case["safety/xray-rectangles_yes_2.pdf"]
    assert found["check"] == "hidden-content" and "'benvolokh'" in found["message"]


def test_nothing_on_a_plain_file(safety_case) -> None:
    assert safety_case["safety/xray-no_bad_redactions.2.1.pdf"] == []


def test_identifying_metadata_on_real_files(tmp_path) -> None:
    names = ["safety/exiftool-NikonD70.jpg", "safety/xray-rectangles_yes_2.pdf"]
    with Case.open(tmp_path / "case", create=True) as case:
        ingest(case, [str(CORPUS / name) for name in names], lang="eng", jobs=1)
        findings.run_checks(case, ["identifying-metadata"])
        by_file = {}
        paths = {s.sha256: Path(s.path).name for s in case.sources()}
        for record in findings.finding_records(case):
            by_file[paths[record["source_sha256"]]] = record
    camera = by_file["exiftool-NikonD70.jpg"]
    assert camera["severity"] == "alert"  # the camera's serial number, from the maker notes
    values = {i["what"]: i["value"] for i in camera["evidence"]["items"]}
    assert values["serial number"] == "NO= 20025585"
    assert values["device"] in ("NIKON CORPORATION", "NIKON D70")
    author = by_file["xray-rectangles_yes_2.pdf"]
    assert author["severity"] == "warn"
    assert "'Eugene Volokh'" in author["message"]
