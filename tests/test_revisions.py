"""Revisions: earlier versions of a PDF found, opened, compared and extracted.

Real files from ../shared/corpus/ (skipped without it) and the anomaly trove's edited file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS, needs_corpus
from workbench import revisions
from workbench.cli import main
from workbench.pipeline import ingest
from workbench.store import Case


@needs_corpus
@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("safety/qpdf-incremental-1.pdf", 3),
        ("born_digital/pdfplumber-150109DSP-Milw-505-90D.pdf", 1),  # linearized, 2 markers
        ("born_digital/pdfplumber-2023-06-20-PV.pdf", 2),  # linearized, then updated
        ("born_digital/samplefiles-multicolumn.pdf", 1),
    ],
)
def test_revision_count(name: str, count: int) -> None:
    data = (CORPUS / name).read_bytes()
    ends = revisions.revision_ends(data)
    assert len(ends) == count
    assert ends[-1] == len(data)


@needs_corpus
def test_potato_then_salad() -> None:
    found = revisions.analyse((CORPUS / "safety/qpdf-incremental-1.pdf").read_bytes())
    assert [r.page_count for r in found] == [1, 1, 1]
    assert [(c.removed, c.added) for c in found[1].text_changes] == [(["Potato"], [])]
    assert [(c.removed, c.added) for c in found[2].text_changes] == [([], ["Salad"])]
    assert "removed 'Potato'" in revisions.describe(found)


def test_marker_inside_data_is_not_a_revision() -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "startxref 0 %%EOF and %%EOF in the text")
    data = doc.tobytes()
    assert len(revisions.revision_ends(data)) == 1
    assert len(revisions.revision_ends(data + b"%%EOF\n" * 3)) == 1  # stray markers


@pytest.fixture(scope="module")
def edited_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from fixtures.anomalies import generate_anomaly_trove

    out = tmp_path_factory.mktemp("anomalies")
    truth = json.loads(generate_anomaly_trove(out).read_text(encoding="utf-8"))
    case_dir = tmp_path_factory.mktemp("case") / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(out / "anomalies" / "edited.pdf")], lang="eng", jobs=1)
    return case_dir, truth


def _cli(case_dir: Path, *args: str):
    return CliRunner().invoke(main, list(args), env={"WORKBENCH_CASE": str(case_dir)})


def test_the_planted_edit_is_found_with_its_words(edited_case, tmp_path) -> None:
    case_dir, truth = edited_case
    planted = next(a for a in truth["anomalies"] if a["check"] == "revisions")
    result = _cli(case_dir, "check", "--only", "revisions", "--json")
    assert result.exit_code == 0, result.output
    (finding,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert finding["severity"] == "warn"
    assert finding["page_ids"] == ["WB-000001"]
    change = finding["evidence"]["revisions"][1]["text_changes"][0]
    assert planted["revision_words"]["removed"] in change["removed"]
    assert planted["revision_words"]["added"] in change["added"]


def test_revisions_command_extracts_earlier_versions(edited_case, tmp_path) -> None:
    case_dir, truth = edited_case
    planted = next(a for a in truth["anomalies"] if a["check"] == "revisions")
    out = tmp_path / "revs"
    result = _cli(case_dir, "revisions", "WB-000001", "--extract", str(out))
    assert result.exit_code == 0, result.output
    assert "2 revision(s), 1 incremental update(s)" in result.output
    (first,) = sorted(out.glob("*.pdf"))
    assert first.name == "edited.rev1.pdf"
    with pymupdf.open(first) as doc:  # an earlier revision is a PDF of its own
        text = doc[0].get_text()
    assert planted["revision_words"]["removed"] in text
    assert planted["revision_words"]["added"] not in text
    as_json = _cli(case_dir, "revisions", "WB-000001", "--json")
    assert [json.loads(line)["revision"] for line in as_json.output.splitlines()] == [1, 2]


def test_revisions_refuses_a_changed_file(edited_case, tmp_path) -> None:
    case_dir, _ = edited_case
    with Case.open(case_dir) as case:
        path = Path(case.sources()[0].path)
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n% appended\n")
        result = _cli(case_dir, "revisions", str(path))
        assert result.exit_code == 3
        assert "changed since it was ingested" in result.output
    finally:
        path.write_bytes(original)
    unknown = _cli(case_dir, "revisions", "nothing-like-this")
    assert unknown.exit_code == 2
