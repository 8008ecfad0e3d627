"""Pages of every size, images with huge frames, big XMP: every render and decode is capped.

The PDFs are built here with PyMuPDF (/UserUnit set through ``xref_set_key``); nothing
is downloaded. The memory bound is measured, not timed: a page is analysed in a
subprocess and its peak RSS (``ru_maxrss`` of the waited-for children) must stay under
a bound that the unbounded 72 dpi render of a poster page exceeds many times over.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFile, ImageFont, TiffImagePlugin

from tests.conftest import needs_tesseract, subprocess_env
from workbench import metadata, readers, views
from workbench.errors import SourceError
from workbench.pipeline import ingest
from workbench.store import Case

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# A worker's peak RSS for the poster page (Python + PyMuPDF + Pillow + the capped render,
# and Tesseract in its own process): measured at 353 MB once capped; the
# unbounded 72 dpi RGB render alone of an 18,000 x 36,000 pt page is 1.9 GB.
PEAK_RSS_BOUND_MB = 600


def _pdf(
    path: Path,
    width: float,
    height: float,
    *,
    user_unit: float | None = None,
    rotate: int = 0,
    text: str = "Hello page",
    image: bytes | None = None,
) -> Path:
    """One page of ``width`` x ``height`` units, with text or an image filling the page."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    if image is not None:
        page.insert_image(page.rect, stream=image)
    else:
        size = max(min(width, height) / 10, 0.5)
        page.insert_text((0, min(size, height)), text, fontsize=size)
    if user_unit is not None:
        doc.xref_set_key(page.xref, "UserUnit", str(user_unit))
    if rotate:
        page.set_rotation(rotate)
    doc.save(path)
    doc.close()
    return path


def _scan_png(text: str = "POSTER SCAN 2014", size: tuple[int, int] = (1200, 1600)) -> bytes:
    """A page-like greyscale scan: big dark words on white."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, size[0] // 12)
    draw.text((size[0] // 12, size[1] // 3), text, fill=0, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# ----- the one capped render ------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "user_unit", "rotate"),
    [
        (1, 1, None, 0),
        (3, 14400, None, 0),
        (14400, 14400, None, 0),
        (18000, 36000, None, 0),
        (14400, 14400, 10, 0),  # 144,000 pt square
        (14400, 14400, 75000, 0),  # a billion points a side: MuPDF still opens it
        (14400, 200, 50, 90),
    ],
)
def test_every_render_is_capped_before_it_is_made(tmp_path, width, height, user_unit, rotate):
    path = _pdf(tmp_path / "p.pdf", width, height, user_unit=user_unit, rotate=rotate)
    with pymupdf.open(path) as doc:
        page = doc[0]
        unit = user_unit or 1
        expect = (
            (width * unit, height * unit) if rotate % 180 == 0 else (height * unit, width * unit)
        )
        # PyMuPDF's page.rect already has /UserUnit and /Rotate applied
        assert page.rect.width == pytest.approx(expect[0])
        assert page.rect.height == pytest.approx(expect[1])
        for dpi in (readers.FINGERPRINT_DPI, readers.OCR_DPI, 1200):
            width_px, height_px = readers.render_size(page, dpi=dpi)
            assert width_px * height_px <= readers.MAX_RENDER_PIXELS
            pixmap = readers.render_page(page, dpi=dpi, gray=True)
            assert (pixmap.width, pixmap.height) == (width_px, height_px)
            assert pixmap.width * pixmap.height <= readers.MAX_RENDER_PIXELS
            assert max(pixmap.width, pixmap.height) <= readers.MAX_RENDER_SIDE
        image = readers.render_for_ocr(page)
        assert image.width * image.height <= readers.MAX_RENDER_PIXELS
        assert readers.page_fingerprint(page)


def test_the_render_honours_user_unit(tmp_path):
    """A 100 x 200 unit page with /UserUnit 10 is 1000 x 2000 pt: 72 dpi gives 1000 x 2000 px."""
    path = _pdf(tmp_path / "uu.pdf", 100, 200, user_unit=10)
    with pymupdf.open(path) as doc:
        pixmap = readers.render_page(doc[0], dpi=72)
    assert (pixmap.width, pixmap.height) == (1000, 2000)


def test_render_never_allocates_more_than_the_cap(tmp_path, monkeypatch):
    """No pixmap above the cap is ever asked of MuPDF, for any render path."""
    asked: list[int] = []
    real = pymupdf.Page.get_pixmap

    def spy(self, *args, **kwargs):
        pixmap = real(self, *args, **kwargs)
        asked.append(pixmap.width * pixmap.height)
        return pixmap

    monkeypatch.setattr(pymupdf.Page, "get_pixmap", spy)
    path = _pdf(tmp_path / "big.pdf", 14400, 14400)
    with pymupdf.open(path) as doc:
        page = doc[0]
        readers.page_fingerprint(page, version=1)
        readers.page_fingerprint(page)
        readers.render_for_ocr(page)
    readers.render_page_image(str(path), "pdf", 1, max_side=1600)
    assert asked and max(asked) <= readers.MAX_RENDER_PIXELS


# ----- whole pages through the ingest -------------------------------------------------------


@needs_tesseract
def test_pages_from_one_point_to_poster_size_are_ingested(tmp_path):
    files = [
        _pdf(tmp_path / "a-tiny.pdf", 1, 1),
        _pdf(tmp_path / "b-limit.pdf", 14400, 14400),
        _pdf(tmp_path / "c-userunit.pdf", 14400, 14400, user_unit=20),
        _pdf(tmp_path / "d-poster-scan.pdf", 18000, 36000, image=_scan_png()),
    ]
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(f) for f in files], lang="eng", jobs=2)
        assert report.failures == []
        pages = {Path(p["source_path"]).name: p for p in views.page_records(case)}
        assert len(pages) == 4
        for name, page in pages.items():
            assert page["page_sha256"], name
        poster = views.page_detail(case, pages["d-poster-scan.pdf"]["page_id"])
        assert poster["width_pt"] == 18000 and poster["height_pt"] == 36000
        assert poster["ocr"]["engine"]  # it went through OCR (at the capped resolution)
        huge = views.page_detail(case, pages["c-userunit.pdf"]["page_id"])
        assert huge["width_pt"] == 288000  # the /UserUnit is part of the page's size
        image = views.page_image(case, poster["page_id"], max_side=800)
        assert max(image.size) <= 800


_MEASURE = """
import json, resource, subprocess, sys
child = subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": child.returncode, "out": child.stdout, "err": child.stderr[-2000:],
                  "maxrss_kb": usage.ru_maxrss}))
"""

_ANALYSE = """
import sys
from workbench import readers
result = readers.analyse_page(readers.PageJob({path!r}, "pdf", 0, None, "eng"))
print(result["page_sha256"], result["text_source"], result.get("error"))
"""


@needs_tesseract
def test_poster_page_peak_memory_per_worker_is_bounded(tmp_path):
    """The worker's peak RSS (with its Tesseract) for the poster page stays under the bound."""
    path = _pdf(tmp_path / "poster.pdf", 18000, 36000, image=_scan_png())
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, _ANALYSE.format(path=str(path))],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    found = json.loads(measured.stdout)
    assert found["rc"] == 0, found["err"]
    fingerprint, _source, error = found["out"].split()
    assert len(fingerprint) == 64 and error == "None"
    peak_mb = found["maxrss_kb"] / 1024
    print(f"poster page: worker peak RSS {peak_mb:.0f} MB")
    assert peak_mb < PEAK_RSS_BOUND_MB, f"peak RSS {peak_mb:.0f} MB"


# ----- images: every frame checked, decoded no larger than needed ------------------------


def _tiff_with_a_huge_second_frame(path: Path) -> Path:
    """A tiny first frame, then a 20,000 x 20,000 (400 megapixel) one of one colour."""
    first = Image.new("1", (16, 16), 1)
    second = Image.new("1", (20_000, 20_000), 1)
    first.save(path, format="TIFF", save_all=True, append_images=[second], compression="group4")
    return path


def test_every_frame_of_a_tiff_is_checked_before_decoding(tmp_path, monkeypatch):
    path = _tiff_with_a_huge_second_frame(tmp_path / "bomb.tif")
    assert path.stat().st_size < 1_000_000

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "load", no_decoding)
    with pytest.raises(SourceError, match="frame 2 declares 20000x20000 pixels"):
        readers.open_image(str(path))


def test_a_tiff_bomb_in_a_later_frame_is_refused_by_ingest(tmp_path):
    path = _tiff_with_a_huge_second_frame(tmp_path / "bomb.tif")
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(path)], jobs=1)
    [(failed, reason)] = report.failures
    assert failed == str(path) and "decompression bomb" in reason


def test_the_app_image_of_a_big_jpeg_is_decoded_reduced(tmp_path, monkeypatch):
    """JPEG draft mode: a 4000 x 3000 scan is decoded at 1/4 size for an 800 px view."""
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 10, 10)).save(path, quality=80)
    decoded: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def spy(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    image = readers.render_page_image(str(path), "image", 1, max_side=800)
    assert image.size == (800, 600) and image.mode == "RGB"
    assert decoded and max(max(size) for size in decoded) <= 1000


# ----- metadata -----------------------------------------------------------------------------


def test_raw_xmp_kept_is_bounded_and_the_cut_recorded():
    body = "".join(f"<rdf:li>{i:08d}</rdf:li>" for i in range(20_000))
    raw = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"><rdf:RDF><rdf:Description>'
        "<xmp:CreateDate>2014-08-03T12:00:00+04:30</xmp:CreateDate>"
        f"<rdf:Seq>{body}</rdf:Seq></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    assert len(raw.encode()) > 300_000
    found = metadata.parse_xmp(raw)
    assert len(found["raw"].encode("utf-8")) <= metadata.MAX_RAW_XMP_BYTES
    assert found["raw_truncated"] is True
    assert found["raw_bytes"] == len(raw.encode("utf-8"))
    assert found["dates"]["CreateDate"] == "2014-08-03T12:00:00+04:30"
    small = metadata.parse_xmp(raw[:100] + "</x:xmpmeta>")
    assert "raw_truncated" not in small
