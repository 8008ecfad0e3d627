"""The page fingerprint (version 2): what the page is drawn from, hashed; versioned per page."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys

import pymupdf
import pytest

from tests.conftest import subprocess_env
from workbench import readers, store, views
from workbench.pipeline import ingest
from workbench.store import Case


def _doc(
    text: str = "Report 42", color: tuple[float, float, float] = (0, 0, 0)
) -> pymupdf.Document:
    doc = pymupdf.open()
    for number in range(3):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 100), f"{text} page {number + 1}", fontsize=14, color=color)
        page.draw_rect(pymupdf.Rect(72, 200, 300, 260), color=(0, 0, 1), width=1)
    return doc


def _reopen(doc: pymupdf.Document, **save: object) -> pymupdf.Document:
    return pymupdf.open("pdf", doc.tobytes(**save))


def _fingerprints(doc: pymupdf.Document) -> list[str]:
    return [readers.page_fingerprint(page) for page in doc]


def test_the_same_page_gives_the_same_hash_in_any_order_and_process(tmp_path):
    path = tmp_path / "a.pdf"
    doc = _doc()
    first = doc[0]
    first.add_text_annot((400, 400), "a reviewer's sticky note")  # annotation + popup: a cycle
    first.insert_link(
        {"kind": pymupdf.LINK_GOTO, "from": pymupdf.Rect(72, 90, 200, 110), "page": 2}
    )
    doc.save(path)
    forwards = _fingerprints(pymupdf.open(path))
    backwards_doc = pymupdf.open(path)
    backwards = [readers.page_fingerprint(backwards_doc[i]) for i in (2, 1, 0)][::-1]
    assert forwards == backwards
    assert len(set(forwards)) == 3  # the page number written on each differs
    script = (
        "import sys, pymupdf; from workbench import readers;"
        "print(readers.page_fingerprint(pymupdf.open(sys.argv[1])[0]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    assert other.stdout.strip() == forwards[0]


def test_object_numbers_and_unused_objects_do_not_enter_it():
    doc = _doc()
    doc.new_page()  # an extra page shifts nothing on the others
    plain = _fingerprints(_reopen(doc))[:3]
    renumbered = _fingerprints(_reopen(doc, garbage=4))[:3]
    assert plain == renumbered


@pytest.mark.parametrize(
    "change",
    [
        "text",
        "colour",
        "rotation",
        "user_unit",
        "annotation",
        "image_pixel",
        "hidden_layer",
        "inherited_rotation",
    ],
)
def test_a_visible_change_changes_it(change):
    doc = _doc()
    image = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    image.clear_with(200)
    ocg = doc.add_ocg("stamp", on=True)
    doc[0].insert_image(pymupdf.Rect(300, 300, 400, 400), pixmap=image)
    doc[0].insert_text((72, 500), "CONFIDENTIAL", fontsize=20, oc=ocg)
    before = readers.page_fingerprint(_reopen(doc)[0])
    page = doc[0]
    if change == "text":
        page.insert_text((72, 700), ".", fontsize=4)
    elif change == "colour":
        page.draw_rect(pymupdf.Rect(0, 0, 1, 1), color=(1, 0, 0))
    elif change == "rotation":
        page.set_rotation(90)
    elif change == "user_unit":
        doc.xref_set_key(page.xref, "UserUnit", "2")
    elif change == "annotation":
        page.add_highlight_annot(pymupdf.Rect(72, 85, 200, 105))
    elif change == "image_pixel":
        [xref] = [i[0] for i in page.get_images()]
        image.set_pixel(3, 3, (0, 0, 0))
        page.replace_image(xref, pixmap=image)
    elif change == "hidden_layer":  # the layer turned off in the document's settings
        doc.set_layer(-1, off=[ocg])
    elif change == "inherited_rotation":  # set on the page tree, not on the page
        pages_xref = int(doc.xref_get_key(page.xref, "Parent")[1].split()[0])
        doc.xref_set_key(pages_xref, "Rotate", "180")
        doc.xref_set_key(page.xref, "Rotate", "null")
    after = readers.page_fingerprint(_reopen(doc)[0])
    assert after != before, change


def test_version_2_renders_nothing_whatever_the_page_size(monkeypatch):
    def no_render(*args, **kwargs):
        raise AssertionError("the fingerprint rendered the page")

    monkeypatch.setattr(pymupdf.Page, "get_pixmap", no_render)
    doc = pymupdf.open()
    for width, height in ((1, 1), (595, 842), (14400, 14400), (18000, 36000)):
        doc.new_page(width=width, height=height).insert_text((0, 1), "x", fontsize=1)
    doc.xref_set_key(doc[2].xref, "UserUnit", "75000")
    hashes = _fingerprints(_reopen(doc))
    assert len(set(hashes)) == 4 and all(len(h) == 64 for h in hashes)


def _old_fingerprint(page: pymupdf.Page) -> str:
    """The ingest's fingerprint before version 2, as it was written (for small pages)."""
    pixmap = page.get_pixmap(dpi=72, alpha=False, clip=None, annots=True)
    header = f"{pixmap.width}x{pixmap.height}x{pixmap.n}:".encode()
    return hashlib.sha256(header + pixmap.samples).hexdigest()


def test_version_1_is_still_computed_as_before():
    doc = _reopen(_doc())
    for page in doc:
        assert readers.page_fingerprint(page, version=1) == _old_fingerprint(page)
    with pytest.raises(ValueError, match="unknown page fingerprint version 7"):
        readers.page_fingerprint(doc[0], version=7)


def test_new_pages_are_version_2_and_old_cases_keep_version_1(tmp_path):
    path = tmp_path / "doc.pdf"
    _doc().save(path)
    # an old case (schema 3) with one page fingerprinted the old way
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    with sqlite3.connect(old_dir / store.DATABASE_NAME) as db:
        for script in store.MIGRATIONS[:3]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 3")
        db.execute(
            "INSERT INTO sources(id, path, sha256, size, kind, status, page_count, recorded_at)"
            " VALUES (1, ?, 'abc', 1, 'pdf', 'ingested', 1, '2024-01-01T00:00:00Z')",
            (str(path),),
        )
        db.execute(
            "INSERT INTO pages(page_id, source_id, page_number, text, text_source, char_count,"
            " page_sha256) VALUES ('WB-000001', 1, 1, 'x', 'layer', 1, 'old')"
        )
        db.executemany(
            "INSERT INTO settings(key, value) VALUES (?, ?)",
            [("prefix", "WB"), ("languages", "eng"), ("created_at", "2024")],
        )
    with Case.open(old_dir) as case:
        assert views.page_detail(case, "WB-000001")["fingerprint_version"] == 1
    with Case.open(tmp_path / "new", create=True) as case:
        ingest(case, [str(path)], jobs=1)
        [page] = [p for p in views.page_records(case) if p["page_number"] == 1]
        shown = views.page_detail(case, page["page_id"])
    assert shown["fingerprint_version"] == readers.FINGERPRINT_VERSION == 2
    with pymupdf.open(path) as doc:
        assert shown["page_sha256"] == readers.page_fingerprint(doc[0], version=2)
    json.dumps(shown)  # still plain JSON


def test_an_image_pages_fingerprint_is_unchanged():
    """Image pages: SHA-256 of MODE:WxH: and the pixels, as before (hashed in strips now)."""
    from PIL import Image

    for mode, size in (("RGB", (1500, 2900)), ("1", (1001, 2500)), ("L", (5, 7))):
        image = Image.effect_noise(size, 64).convert(mode)
        old = f"{image.mode}:{image.width}x{image.height}:".encode() + image.tobytes()
        assert readers._pixel_digest(image) == hashlib.sha256(old).hexdigest()
