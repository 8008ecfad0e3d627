"""tracking-dots: a printer's yellow dot grid is found on colour scans (PNG, JPEG, in a
PDF), one finding per page that has it; yellow things that are not a grid (a highlighter
stroke, a stamp, a logo, tinted paper, JPEG noise, scattered yellow specks) are not;
greyscale pages are skipped before the file is read.

The scans come from fixtures.anomalies.colour_scan (the anomaly trove's generator); the
planted anomalies themselves are checked by tests/test_findings.py.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from tests.conftest import CORPUS, needs_corpus
from workbench import findings
from workbench.checks import tracking_dots
from workbench.checks.tracking_dots import find_dot_grid
from workbench.pipeline import ingest
from workbench.store import Case

DPI = (300.0, 300.0)


@pytest.fixture(scope="module")
def scans() -> dict[str, Image.Image]:
    from fixtures.anomalies import colour_scan
    from fixtures.generate import Renderer, Writer, build_cable

    writer, renderer = Writer(random.Random("tracking-dots-test")), Renderer()
    cable = build_cable(writer, "eng", 2)
    first, second = cable.pages
    return {
        "dotted": colour_scan(renderer, cable, first, "test:dotted", dots=True),
        "harmless": colour_scan(
            renderer, cable, second, "test:harmless", dots=False, yellow_things=True
        ),
    }


def _encoded(image: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=quality, dpi=(300, 300))
    else:  # lossless; the fastest compression keeps the test short
        image.save(buffer, fmt, dpi=(300, 300), compress_level=1)
    return buffer.getvalue()


def _pixels(image: Image.Image, fmt: str, quality: int = 90) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(_encoded(image, fmt, quality))).convert("RGB"))


@pytest.mark.parametrize(("fmt", "quality"), [("PNG", 0), ("JPEG", 90), ("JPEG", 75)])
def test_the_dot_grid_is_found(scans, fmt: str, quality: int) -> None:
    grid = find_dot_grid(_pixels(scans["dotted"], fmt, quality), DPI)
    assert grid is not None
    assert grid.period_mm == pytest.approx((1.016, 1.016), abs=0.02)
    assert grid.dots > 2000 and grid.on_grid > 0.85
    if quality == 75:  # JPEG's blocks pull the dots' centres: found, less sure
        assert grid.confidence >= 0.6
    else:
        assert grid.confidence >= 0.85 and grid.on_grid > 0.95
        assert abs(grid.angle_deg + 0.35) < 0.1  # the scan's skew


@pytest.mark.parametrize(("fmt", "quality"), [("PNG", 0), ("JPEG", 90), ("JPEG", 75)])
def test_yellow_things_are_not_dots(scans, fmt: str, quality: int) -> None:
    """A highlighter stroke, a yellow stamp and logo, tinted paper, JPEG noise."""
    assert find_dot_grid(_pixels(scans["harmless"], fmt, quality), DPI) is None


def test_a_grey_page_stored_in_colour_has_no_grid(scans) -> None:
    rgb = np.asarray(scans["dotted"].convert("L").convert("RGB"))
    assert not tracking_dots._enough_yellow(rgb)
    assert find_dot_grid(rgb, DPI) is None


def test_scattered_yellow_specks_are_not_a_grid() -> None:
    """As many pale yellow dots as a real grid has, at random places: no grid."""
    rng = np.random.default_rng(7)
    page = np.full((2000, 1600, 3), (246, 243, 232), dtype=np.float32)
    ys, xs = rng.integers(2, 1998, 8000), rng.integers(2, 1598, 8000)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            page[ys + dy, xs + dx, 2] -= 40 if dx == dy == 0 else 15
    page += rng.normal(0, 1.5, page.shape)
    rgb = np.clip(page, 0, 255).astype(np.uint8)
    points, _ = tracking_dots.yellow_dots(rgb, DPI)
    assert len(points) > 5000  # the specks are seen as dots...
    assert find_dot_grid(rgb, DPI) is None  # ...but they make no grid


def test_a_grid_drawn_by_hand_is_measured() -> None:
    """A grid 0.5 x 1.0 mm at 600 dpi, a third of its places printed: steps in mm."""
    rng = np.random.default_rng(3)
    page = np.full((1800, 1800, 3), 244, dtype=np.float32)
    step_x, step_y = 0.5 * 600 / 25.4, 1.0 * 600 / 25.4
    for i in range(int(1790 / step_x)):
        for j in range(int(1790 / step_y)):
            if rng.random() < 0.33:
                x, y = round(5 + i * step_x), round(5 + j * step_y)
                page[y - 1 : y + 2, x - 1 : x + 2, 2] -= 45
    rgb = np.clip(page + rng.normal(0, 1.5, page.shape), 0, 255).astype(np.uint8)
    grid = find_dot_grid(rgb, (600.0, 600.0))
    assert grid is not None
    assert grid.period_mm == pytest.approx((0.5, 1.0), abs=0.01)


def test_a_grey_image_in_a_pdf_is_not_decoded() -> None:
    """An image's colour space is read from its dictionary: ICC-based with one component
    is grey (PyMuPDF writes every inserted image with an ICC profile)."""
    doc = pymupdf.open()
    for mode in ("L", "RGB"):
        buffer = io.BytesIO()
        Image.new(mode, (400, 400), "white").save(buffer, "JPEG")
        doc.new_page().insert_image(pymupdf.Rect(0, 0, 200, 200), stream=buffer.getvalue())
    grey, colour = (page.get_images()[0][0] for page in doc)
    assert not tracking_dots._may_be_colour(doc, grey)
    assert tracking_dots._may_be_colour(doc, colour)


def test_a_finding_per_dotted_page_and_greyscale_skipped(
    scans, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a case: a dotted PNG, the same scan in greyscale, a two-page scanned PDF (page 1
    harmless, page 2 dotted). The top third of each page keeps OCR at ingest short."""
    dotted, harmless = scans["dotted"], scans["harmless"]
    top = (0, 0, dotted.width, dotted.height // 3)
    folder = tmp_path / "trove"
    folder.mkdir()
    dotted.crop(top).save(folder / "dotted.png", dpi=(300, 300), compress_level=1)
    dotted.crop(top).convert("L").save(folder / "grey.png", dpi=(300, 300), compress_level=1)
    doc = pymupdf.open()
    for image in (harmless.crop(top), dotted.crop(top)):
        page = doc.new_page(width=image.width * 72 / 300, height=image.height * 72 / 300)
        page.insert_image(page.rect, stream=_encoded(image, "JPEG"))
    doc.save(folder / "scan.pdf")
    read: list[str] = []
    original = tracking_dots.TrackingDots.source_bytes

    def recorded(case, unit):
        read.append(Path(unit.inputs["path"]).name)
        return original(case, unit)

    monkeypatch.setattr(tracking_dots.TrackingDots, "source_bytes", staticmethod(recorded))
    with Case.open(tmp_path / "case", create=True) as case:
        assert ingest(case, [str(folder)], lang="eng", jobs=2).ok
        findings.run_checks(case, ["tracking-dots"])
        where = {
            row["page_id"]: (Path(row["source_path"]).name, row["page_number"])
            for row in case.page_rows()
        }
        records = findings.finding_records(case, check="tracking-dots")
    found = sorted(where[page] for record in records for page in record["page_ids"])
    assert found == [("dotted.png", 1), ("scan.pdf", 2)]
    for record in records:
        assert record["severity"] == "alert" and len(record["page_ids"]) == 1
        assert "1.0" in record["message"] and "mm" in record["message"]
        grid = record["evidence"]["grid"]
        assert grid["period_mm"] == pytest.approx([1.016, 1.016], abs=0.02)
        assert grid["dots"] > 300 and 0 < grid["confidence"] <= 1
    assert "grey.png" not in read  # skipped from what ingest recorded: never read
    assert sorted(read) == ["dotted.png", "scan.pdf"]


@needs_corpus
def test_real_colour_images_have_no_grid_and_damaged_files_do_not_stop_it() -> None:
    """The corpus's colour scans and photo show no dot grid; its damaged and encrypted
    PDFs give nothing (and raise nothing: MuPDF's own errors included)."""
    colour = [
        ("scans/ocrmypdf-baiona_color.jpg", "image", [1]),
        ("scans/ocrmypdf-typewriter.png", "image", [1]),
        ("safety/exiftool-NikonD70.jpg", "image", [1]),
        ("scans/ocrmypdf-multipage.pdf", "pdf", [1, 2, 3, 4, 5, 6]),
    ]
    for name, kind, pages in colour:
        assert list(tracking_dots.page_grids((CORPUS / name).read_bytes(), kind, pages)) == []
    for path in sorted((CORPUS / "malformed").glob("*.pdf")):
        assert list(tracking_dots.page_grids(path.read_bytes(), "pdf", [1, 2])) == []
