"""Real public documents nobody here wrote: every page accounted for or its file reported."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import CORPUS, needs_corpus, needs_tesseract
from workbench import views
from workbench.pipeline import ingest
from workbench.quality import character_error_rate
from workbench.store import Case

pytestmark = [needs_corpus, needs_tesseract]

PASSWORDS = ("test", "asdfzxcv", "foo")


def _manifest() -> dict[str, dict[str, str]]:
    with open(CORPUS / "MANIFEST.tsv", encoding="utf-8") as handle:
        return {row["local_path"]: row for row in csv.DictReader(handle, delimiter="\t")}


@pytest.fixture(scope="module")
def corpus_case(tmp_path_factory: pytest.TempPathFactory):
    """born_digital/ and malformed/ ingested in one batch (scans are tested separately)."""
    case_dir = tmp_path_factory.mktemp("corpus") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(
            case,
            [str(CORPUS / "born_digital"), str(CORPUS / "malformed")],
            lang="eng",
            jobs=2,
            passwords=PASSWORDS,
        )
        sources = {Path(s.path).relative_to(CORPUS).as_posix(): s for s in case.sources()}
        pages = list(views.page_records(case))
    return report, sources, pages


def test_born_digital_page_counts_and_text_layers(corpus_case):
    _, sources, pages = corpus_case
    manifest = _manifest()
    for local, row in manifest.items():
        if row["kind"] != "born-digital-pdf":
            continue
        source = sources[local]
        assert source.status == "ingested", (local, source.error)
        assert source.page_count == int(row["pages"]), local
        mine = [p for p in pages if p["source_path"] == source.path]
        assert len(mine) == int(row["pages"])
        assert all(p["text_source"] == "layer" for p in mine), local


def test_every_malformed_file_is_either_ingested_whole_or_reported(corpus_case):
    report, sources, pages = corpus_case
    failed = dict(report.failures)
    for path in (CORPUS / "malformed").iterdir():
        local = path.relative_to(CORPUS).as_posix()
        source = sources[local]
        if source.status == "failed":
            assert failed[str(path)] == source.error
            assert "\n" not in source.error and len(source.error) < 300
        else:
            stored = [p for p in pages if p["source_path"] == str(path)]
            assert source.status == "ingested" and len(stored) == source.page_count >= 1


def test_known_bad_files_fail_with_a_reason(corpus_case):
    _, sources, _ = corpus_case
    expect_failure = {
        "malformed/pdfplumber-empty.pdf": "empty file",
        "malformed/renamed-text-readme.pdf": "not a PDF or an image",
        "malformed/qpdf-bad1.pdf": "",
        "malformed/ocrmypdf-invalid.pdf": "",
        "malformed/qpdf-empty.pdf": "no pages",
        "malformed/pypdf-r6-both-passwords.pdf": "",
    }
    for local, reason in expect_failure.items():
        source = sources[local]
        if local.endswith("r6-both-passwords.pdf"):
            assert source.status == "ingested"  # the user password "foo" was given
            continue
        assert source.status == "failed", local
        assert reason in source.error, (local, source.error)


def test_encrypted_files_open_with_their_passwords(corpus_case):
    _, sources, pages = corpus_case
    for local in (
        "malformed/pypdf-encrypted-file.pdf",
        "malformed/pypdf-r2-user-password.pdf",
        "malformed/pypdf-r6-both-passwords.pdf",
    ):
        assert sources[local].status == "ingested", (local, sources[local].error)
        assert sources[local].metadata["password_used"] is True


def test_enormous_page_goes_through_with_a_capped_render(corpus_case):
    _, sources, pages = corpus_case
    source = sources["malformed/ocrmypdf-enormous.pdf"]
    assert source.status == "ingested", source.error
    [page] = [p for p in pages if p["source_path"] == source.path]
    assert page["page_sha256"]


def test_enormous_page_enlarged_past_every_cap_is_read_with_capped_renders(tmp_path, monkeypatch):
    """The same file with /UserUnit 10: a 21,600 pt square page (466 megapixels at 72 dpi).

    The 2,160 pt original stays under the cap at 72 dpi; this one is over it at any
    resolution, so every render of it (fingerprint, OCR) must be scaled before MuPDF
    allocates: none may exceed MAX_RENDER_PIXELS, and the OCR render is at the cap.
    """
    import pymupdf

    from workbench import readers

    path = tmp_path / "enormous-userunit.pdf"
    with pymupdf.open(CORPUS / "malformed" / "ocrmypdf-enormous.pdf") as doc:
        doc.xref_set_key(doc[0].xref, "UserUnit", "10")
        doc.save(path)
    rendered: list[int] = []
    real = pymupdf.Page.get_pixmap

    def spy(self, *args, **kwargs):
        pixmap = real(self, *args, **kwargs)
        rendered.append(pixmap.width * pixmap.height)
        return pixmap

    monkeypatch.setattr(pymupdf.Page, "get_pixmap", spy)
    ocr_input: list[tuple[int, int]] = []  # Tesseract on 36 Mpx is slow and proves nothing here
    monkeypatch.setattr(
        readers,
        "_ocr",
        lambda image, lang, *_: ocr_input.append(image.size) or {"text": "", "text_source": "none"},
    )
    result = readers.analyse_page(readers.PageJob(str(path), "pdf", 0, None, "eng"))
    assert result["page_sha256"] and result["width_pt"] == 21600
    assert rendered and max(rendered) <= readers.MAX_RENDER_PIXELS
    assert max(rendered) > 0.99 * readers.MAX_RENDER_PIXELS  # the cap was reached
    assert ocr_input and ocr_input[0][0] * ocr_input[0][1] == max(rendered)


def test_wrong_password_fails_cleanly(tmp_path):
    path = CORPUS / "malformed" / "pypdf-encrypted-file.pdf"
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(path)], passwords=("qwerty",), jobs=1)
    assert report.failures == [(str(path), "encrypted: none of the 1 password(s) given opens it")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "max_cer"),
    [("tesseract-phototest.tif", 0.01), ("ocrmypdf-linn.pdf", 0.03)],  # measured 0.000, 0.010
)
def test_real_scans_ocr_against_ground_truth(tmp_path, name, max_cer):
    path = CORPUS / "scans" / name
    truth = path.with_name(name.rsplit(".", 1)[0] + ".gt.txt")
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(path)], lang="eng", jobs=1)
        assert report.failures == []
        [page] = list(views.page_records(case))
        text = views.page_detail(case, page["page_id"])["text"]
    assert page["text_source"] == "ocr"
    cer = character_error_rate(truth.read_text(encoding="utf-8"), text)
    assert cer <= max_cer, f"{name}: CER {cer:.3f}"
