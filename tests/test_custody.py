"""Re-OCR and the app read a page's file again: only the file that was ingested."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import needs_tesseract
from workbench import pipeline, readers, review, views
from workbench.errors import CustodyError, SourceError
from workbench.pipeline import ingest
from workbench.store import Case

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _scan(path: Path, words: str) -> Path:
    image = Image.new("L", (1200, 400), 255)
    ImageDraw.Draw(image).text((60, 140), words, fill=0, font=ImageFont.truetype(FONT, 72))
    image.save(path, format="PNG", dpi=(300, 300))
    return path


def _pdf(path: Path, words: str) -> Path:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 100), words, fontsize=24)
    doc.save(path)
    return path


def _replace(path: Path, make, words: str) -> None:
    """Put another file at the same path, the way a sync tool or a colleague would."""
    other = path.with_name("incoming-" + path.name)
    make(other, words)
    os.replace(other, path)


@needs_tesseract
def test_reocr_of_a_replaced_file_is_refused_and_the_text_kept(tmp_path):
    path = _scan(tmp_path / "memo.png", "ORIGINAL MEMO")
    with Case.open(tmp_path / "case", create=True) as case:
        assert ingest(case, [str(path)], lang="eng", jobs=1).failures == []
        [page] = list(views.page_records(case))
        before = views.page_detail(case, page["page_id"])
        assert "ORIGINAL" in before["text"] and before["stale"] is False
        _replace(path, _scan, "FORGED WORDS")
        with pytest.raises(CustodyError) as raised:
            pipeline.reocr_page(case, page["page_id"], "eng", reviewer="Ana")
        message = str(raised.value)
        assert message.startswith(f"{path}: changed since it was ingested (sha256 ")
        assert before["source_sha256"] in message
        assert "its pages' decisions are stale; restore the original file" in message
        assert "\n" not in message
        after = views.page_detail(case, page["page_id"])
        assert after["text"] == before["text"]
        assert [e["kind"] for e in review.iter_events(case)] == []  # no reocr event
        assert after["stale"] is True
        assert "changed since it was ingested" in after["stale_reason"]
    # recorded: another process (the CLI's show) sees the page stale too
    with Case.open(tmp_path / "case") as case:
        assert views.page_detail(case, page["page_id"])["stale"] is True
        _replace(path, _scan, "ORIGINAL MEMO")  # same pixels, same bytes: the original
        pipeline.reocr_page(case, page["page_id"], "eng", reviewer="Ana")
        restored = views.page_detail(case, page["page_id"])
        assert restored["stale"] is False and restored["stale_reason"] is None


def test_the_page_image_of_a_replaced_file_is_refused(tmp_path):
    path = _pdf(tmp_path / "memo.pdf", "original memo")
    with Case.open(tmp_path / "case", create=True) as case:
        ingest(case, [str(path)], jobs=1)
        [page] = list(views.page_records(case))
        assert views.page_image(case, page["page_id"], max_side=200).size[1] == 200
        _replace(path, _pdf, "forged memo")
        with pytest.raises(SourceError, match="changed since it was ingested"):
            views.page_image(case, page["page_id"], max_side=200)
        assert views.page_detail(case, page["page_id"])["stale"] is True


def test_the_custody_hash_is_cached_per_file_version(tmp_path, monkeypatch):
    path = _pdf(tmp_path / "a.pdf", "one")
    digest, _ = readers.sha256_file(path)
    calls: list[str] = []
    real = readers.sha256_file

    def counting(name):
        calls.append(str(name))
        return real(name)

    monkeypatch.setattr(readers, "sha256_file", counting)
    for _ in range(5):
        assert readers.check_custody(str(path), digest) == digest
    assert len(calls) == 1  # the app does not re-hash the file for every page
    _replace(path, _pdf, "two")
    with pytest.raises(CustodyError):
        readers.check_custody(str(path), digest)
    assert len(calls) == 2


def test_the_app_shows_a_clear_message_instead_of_the_new_files_image(tmp_path, monkeypatch):
    from workbench.tui.app import make_app

    monkeypatch.delenv("WORKBENCH_REVIEWER", raising=False)
    path = _pdf(tmp_path / "memo.pdf", "original memo")
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(path)], jobs=1)
        with case.transaction():
            case.set_setting("reviewer", "Tester")
    _replace(path, _pdf, "forged memo")

    async def scenario() -> None:
        app = make_app(str(case_dir), graphics_mode="halfblock")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("t", "t")  # the Image tab
            await app.workers.wait_for_complete()
            await pilot.pause()
            [shown] = app.image_cache.values()
            assert not isinstance(shown, Image.Image)  # no picture of the new file
            text = shown.plain
            assert "changed since it was ingested" in text
            assert "restore the original file" in text
            assert app.current_detail["stale"] is True
            assert "STALE" in app.query_one("#page-head").render().plain

    asyncio.run(scenario())
