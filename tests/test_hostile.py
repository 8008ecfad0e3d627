"""Bad input: one clean error line per file, recorded in the case, the batch goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import HOSTILE, needs_tesseract
from workbench.store import Case

HOSTILE_FILES = {
    "truncated.pdf": "",
    "corrupt.pdf": "",
    "zero_pages.pdf": "no pages",
    "encrypted.pdf": "password",
    "not_a_document.pdf": "not a PDF or an image",
    "empty.pdf": "empty file",
    "bomb.png": "decompression bomb",
    "random.bin": "not a PDF or an image",
}


@pytest.fixture
def batch(tmp_path: Path, small_trove: Path) -> tuple[Path, list[Path]]:
    """Hostile files with two good PDFs between them."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in HOSTILE_FILES:
        shutil.copy(HOSTILE / name, folder / name)
    good = sorted((small_trove / "born_digital").rglob("*.pdf"))[:2]
    copies = []
    for number, path in enumerate(good):
        target = folder / f"m{number}-good.pdf"  # sorts between the hostile files
        shutil.copy(path, target)
        copies.append(target)
    return folder, copies


def test_each_hostile_file_gets_one_error_line_and_the_rest_goes_in(cli, case_dir, batch):
    folder, good = batch
    result = cli("ingest", str(folder), "--quiet")
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == len(HOSTILE_FILES) - _ingestible_hostile(), lines
    for line in lines:
        assert line.startswith(f"error: {folder}/")
    for name, reason in HOSTILE_FILES.items():
        matching = [line for line in lines if line.startswith(f"error: {folder / name}: ")]
        if name in ("truncated.pdf", "corrupt.pdf") and not matching:
            continue  # MuPDF may repair these: then they must be ingested (checked below)
        assert len(matching) == 1, (name, lines)
        assert reason in matching[0], matching[0]
    with Case.open(case_dir) as case:
        sources = {Path(s.path).name: s for s in case.sources()}
    for path in good:
        assert sources[path.name].status == "ingested"
    for name in HOSTILE_FILES:
        source = sources[name]
        if source.status == "failed":
            assert source.error
        else:
            assert name in ("truncated.pdf", "corrupt.pdf") and source.page_count


def _ingestible_hostile() -> int:
    """How many of the hostile PDFs MuPDF repairs well enough to ingest (version dependent)."""
    import pymupdf

    count = 0
    for name in ("truncated.pdf", "corrupt.pdf"):
        try:
            with pymupdf.open(HOSTILE / name) as doc:
                if doc.page_count:
                    for page in doc:
                        page.get_text()
                    count += 1
        except Exception:  # noqa: BLE001 - unreadable is the expected case
            pass
    return count


def test_the_right_password_opens_an_encrypted_file(cli, case_dir):
    result = cli("ingest", str(HOSTILE / "encrypted.pdf"), "--password", "wrong", "--quiet")
    assert result.exit_code == 3
    assert "none of the 1 password(s)" in result.stderr
    result = cli(
        "ingest", str(HOSTILE / "encrypted.pdf"), "--password", "wrong", "--password", "s3cret"
    )
    assert result.exit_code == 0, result.stderr
    with Case.open(case_dir) as case:
        [source] = case.sources()
        assert source.status == "ingested"
        assert source.metadata["password_used"] is True
        text = next(case.page_rows())["text"]
    assert text.strip()


def test_missing_path_is_reported_and_others_continue(cli, small_trove, tmp_path):
    good = sorted((small_trove / "born_digital").rglob("*.pdf"))[0]
    result = cli("ingest", str(tmp_path / "nope.pdf"), str(good), "--quiet")
    assert result.exit_code == 3
    assert f"error: {tmp_path / 'nope.pdf'}: no such file or folder" in result.stderr
    assert cli("status", "--json").exit_code == 0


@needs_tesseract
def test_a_garbage_text_layer_is_not_trusted():
    from workbench.readers import text_layer_usable

    assert text_layer_usable("A real sentence of text on a page." * 3, 0.0)
    assert not text_layer_usable("\ufffd\ufffd\ufffd abc \ufffd\ufffd", 0.0)
    assert not text_layer_usable("   \n  ", 0.0)
    assert not text_layer_usable("Page 3", 0.95)  # a scan with a stray page number


def test_image_coverage_is_measured_only_for_a_short_text_layer(tmp_path, monkeypatch):
    """It decides only whether a short layer is a scan's stray words, and costs a second
    extraction of the page: a page with a long text layer does not pay for it."""
    import pymupdf

    from workbench import readers

    pdf = pymupdf.open()
    pdf.new_page().insert_text((72, 72), "\n".join(["A real sentence of text on a page."] * 12))
    pdf.new_page().insert_text((72, 72), "Page 3")
    pdf.save(tmp_path / "two.pdf")
    measured: list[int] = []
    real = readers._image_coverage

    def counting(page):
        measured.append(page.number)
        return real(page)

    monkeypatch.setattr(readers, "_image_coverage", counting)
    for index in (0, 1):
        found = readers.analyse_page(
            readers.PageJob(str(tmp_path / "two.pdf"), "pdf", index, None, "eng")
        )
        assert found["text_source"] == "layer"
    assert measured == [1]
