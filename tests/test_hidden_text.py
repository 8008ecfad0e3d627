"""Text drawn where nobody sees it (hidden-content's page part), kind by kind, and the
text drawn to be read, which it must leave alone."""

from __future__ import annotations

import io

import pymupdf
from PIL import Image

from workbench import pdfsafety


def _page_with_every_kind() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 72), "Read me, a plain black line", fontsize=11)
    page.insert_text((72, 110), "secret invisible words", fontsize=11, render_mode=3)
    page.insert_text((72, 150), "white secret on white", fontsize=11, color=(1, 1, 1))
    page.draw_rect(pymupdf.Rect(60, 170, 400, 200), color=(0, 0, 0), fill=(0, 0, 0))
    page.insert_text((72, 190), "white on black shows", fontsize=11, color=(1, 1, 1))
    page.insert_text((72, 230), "tiny print", fontsize=0.5)
    page.insert_text((700, 900), "off the page", fontsize=11)
    page.insert_text((72, 270), "   ", fontsize=11, render_mode=3)  # blanks: nothing
    scan = io.BytesIO()
    Image.new("L", (200, 60), 200).save(scan, "PNG")
    page.insert_image(pymupdf.Rect(60, 300, 460, 420), stream=scan.getvalue())
    page.insert_text((72, 350), "an OCR layer over the image", fontsize=11, render_mode=3)
    return doc.tobytes()


def test_each_kind_of_hidden_text_is_found_and_read_text_is_not() -> None:
    found = pdfsafety.hidden_text(_page_with_every_kind(), [1])
    by_how = {item["how"]: item["excerpt"] for item in found}
    assert by_how == {
        "invisible (render mode 3)": "secret invisible words",
        "white on a white background": "white secret on white",
        "too small to read (under 1 pt)": "tiny print",
        "outside the page": "off the page",
    }
    assert all(item["page"] == 1 and item["what"] == "hidden text" for item in found)
