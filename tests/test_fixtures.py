"""Tests for the synthetic trove generator and the hostile files (fixtures/)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import struct
import unicodedata
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from fixtures.calendars import (
    HIJRI_MONTH_NAMES_FA,
    JALALI_MONTHS,
    format_date,
    gregorian_to_hijri,
    gregorian_to_jalali,
    jalali_to_gregorian,
)
from fixtures.generate import generate_small_trove
from fixtures.hostile import ENCRYPTED_PASSWORD, ENCRYPTED_TEXT, HERE, NAMES, make_hostile_files


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _ws(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).strip()


@pytest.fixture(scope="module")
def trove(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("trove")
    gt = generate_small_trove(root)
    assert gt == root / "ground_truth.json"
    return root, json.loads(gt.read_text(encoding="utf-8"))


def _pages(gt: dict):
    for f in gt["files"]:
        for p in f["pages"]:
            yield f, p


def test_deterministic(trove, tmp_path: Path) -> None:
    root, _ = trove
    generate_small_trove(tmp_path)
    first, second = _hashes(root), _hashes(tmp_path)
    assert first == second
    assert len(first) >= 8


def test_files_and_page_counts(trove) -> None:
    root, gt = trove
    assert 25 <= gt["total_pages"] <= 35
    assert gt["total_pages"] == sum(len(f["pages"]) for f in gt["files"])
    for f in gt["files"]:
        path = root / f["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
        if f["format"] == "pdf":
            with pymupdf.open(path) as doc:
                assert doc.page_count == len(f["pages"])
        else:
            with Image.open(path) as im:
                assert (
                    im.format.lower() == {"tiff": "tiff", "png": "png", "jpeg": "jpeg"}[f["format"]]
                )
                assert getattr(im, "n_frames", 1) == len(f["pages"])
        assert [p["page_number"] for p in f["pages"]] == list(range(1, len(f["pages"]) + 1))


def test_documents_consistent(trove) -> None:
    _, gt = trove
    by_loc = {(f["path"], p["page_number"]): p for f, p in _pages(gt)}
    seen = set()
    for d in gt["documents"]:
        assert len(d["pages"]) == d["page_count"]
        for i, (path, num) in enumerate(d["pages"], start=1):
            p = by_loc[(path, num)]
            assert p["document"] == d["serial"]
            assert p["page_in_document"] == i
            assert p["document_pages"] == d["page_count"]
            seen.add((path, num))
        first = by_loc[tuple(d["pages"][0])]
        assert first["dates"][0]["original"] == d["date_original"]
        assert first["dates"][0]["iso"] == d["date_iso"]
    assert seen == set(by_loc)
    assert sum(d["page_count"] for d in gt["documents"]) == gt["total_pages"]


def test_page_truth_is_self_consistent(trove) -> None:
    _, gt = trove
    all_text = [p["text"] for _, p in _pages(gt)]
    for _, p in _pages(gt):
        assert p["marker"] == {"number": p["page_in_document"], "total": p["document_pages"]}
        last = p["text"].split("\n")[-1]
        if p["lang"] == "eng":
            assert last == f"Page {p['page_in_document']} of {p['document_pages']}"
        else:
            assert last.startswith("صفحه ")
        pos = 0
        for d in p["dates"]:
            i = p["text"].find(d["original"], pos)
            assert i >= 0, d
            pos = i + len(d["original"])
            assert dt.date.fromisoformat(d["iso"]).year in (2014, 2015)
            assert d["calendar"] in ("gregorian", "jalali", "hijri")
        assert 2 <= len(p["distinctive_phrases"]) <= 3
        for ph in p["distinctive_phrases"]:
            assert sum(ph in t for t in all_text) == 1, ph


def test_small_trove_covers_every_kind(trove) -> None:
    _, gt = trove
    kinds = {(f["kind"], f["format"]) for f in gt["files"]}
    assert kinds >= {
        ("born_digital", "pdf"),
        ("scanned_pdf", "pdf"),
        ("image", "tiff"),
        ("image", "png"),
        ("image", "jpeg"),
    }
    assert any(len({p["document"] for p in f["pages"]}) > 1 for f in gt["files"])  # bundle
    suffix = {"pdf": ".pdf", "tiff": ".tif", "png": ".png", "jpeg": ".jpg"}
    assert any(Path(f["path"]).suffix != suffix[f["format"]] for f in gt["files"])
    assert any(Path(f["path"]).suffix == "" for f in gt["files"])
    scanned = [p for f, p in _pages(gt) if f["kind"] != "born_digital"]
    assert 6 <= len(scanned) <= 10
    turned = [p for p in scanned if p["rotation"]]
    assert len(turned) >= 2 and any(p["sparse"] for p in turned)
    assert all(0.5 <= abs(p["skew"]) <= 2.5 for p in scanned)
    assert {p["lang"] for _, p in _pages(gt)} == {"eng", "fas"}
    forms = {d["original"] for _, p in _pages(gt) for d in p["dates"]}
    patterns = [
        r"^\d{4}-\d\d-\d\d$",
        r"^\d{1,2} [A-Z][a-z]+ \d{4}$",
        r"^[A-Z][a-z]+ \d{1,2}, \d{4}$",
        r"^[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2}$",
        r"^1[34]\d\d/\d\d/\d\d$",
        r"^[۰-۹]{1,2} (" + "|".join(JALALI_MONTHS) + r") [۰-۹]{4}$",
        r"^[۰-۹]{1,2} (" + "|".join(HIJRI_MONTH_NAMES_FA.values()) + r") ۱۴۳[۵۶]$",
    ]
    for pat in patterns:
        assert any(re.match(pat, f) for f in forms), pat
    assert {d["calendar"] for _, p in _pages(gt) for d in p["dates"]} == {
        "gregorian",
        "jalali",
        "hijri",
    }


def test_english_born_digital_text_layer(trove) -> None:
    root, gt = trove
    checked = 0
    for f in gt["files"]:
        if f["kind"] != "born_digital":
            continue
        with pymupdf.open(root / f["path"]) as doc:
            assert doc.metadata["title"]
            assert doc.metadata["creationDate"].startswith("D:201")
            for p in f["pages"]:
                if p["lang"] != "eng":
                    continue
                text = _ws(doc[p["page_number"] - 1].get_text())
                for ph in p["distinctive_phrases"] + [d["original"] for d in p["dates"]]:
                    assert ph in text, ph
                checked += 1
    assert checked >= 3


def test_persian_born_digital_is_shaped(trove) -> None:
    """The text layer is lossy (see README), but the shaped letters must be there."""
    root, gt = trove
    for f in gt["files"]:
        if f["kind"] != "born_digital":
            continue
        with pymupdf.open(root / f["path"]) as doc:
            for p in f["pages"]:
                if p["lang"] == "fas":
                    raw = doc[p["page_number"] - 1].get_text()
                    assert any(0xFB50 <= ord(c) <= 0xFEFF for c in raw)  # shaped forms
                    assert "صفحه" in unicodedata.normalize("NFKC", raw)


def test_scans_have_no_text_layer(trove) -> None:
    root, gt = trove
    for f in gt["files"]:
        if f["kind"] == "scanned_pdf":
            with pymupdf.open(root / f["path"]) as doc:
                for page in doc:
                    assert page.get_text().strip() == ""
                    assert len(page.get_images()) == 1
        elif f["format"] == "jpeg":
            with Image.open(root / f["path"]) as im:
                exif = im.getexif()
                assert exif[0x010F] == "Canon" and exif[0x0110] == "CanoScan LiDE 220"
                assert round(im.info["dpi"][0]) in (200, 300)
        elif f["format"] in ("png", "tiff"):
            with Image.open(root / f["path"]) as im:
                assert round(im.info["dpi"][0]) == 200


def test_calendars() -> None:
    assert jalali_to_gregorian(1393, 1, 1) == dt.date(2014, 3, 21)
    assert jalali_to_gregorian(1393, 5, 12) == dt.date(2014, 8, 3)
    assert jalali_to_gregorian(1394, 1, 1) == dt.date(2015, 3, 21)
    d = dt.date(2013, 12, 1)
    prev = gregorian_to_jalali(d - dt.timedelta(1))
    while d <= dt.date(2016, 2, 1):
        j = gregorian_to_jalali(d)
        assert jalali_to_gregorian(*j) == d
        assert j[2] == prev[2] + 1 or (j[2] == 1 and (j[1], j[0]) != (prev[1], prev[0]))
        prev = j
        d += dt.timedelta(1)
    assert gregorian_to_hijri(dt.date(2014, 8, 3)) == (1435, 10, 7)
    assert gregorian_to_hijri(dt.date(2014, 10, 25)) == (1436, 1, 1)
    assert format_date(dt.date(2014, 8, 3), "hijri") == "۷ شوال ۱۴۳۵"
    assert format_date(dt.date(2014, 8, 3), "jalali_text") == "۱۲ مرداد ۱۳۹۳"
    assert format_date(dt.date(2014, 8, 3), "jalali_fa") == "۱۳۹۳/۰۵/۱۲"
    assert format_date(dt.date(2014, 8, 3), "greg_mdy") == "August 3, 2014"


def test_hostile_files_committed() -> None:
    for name in NAMES:
        path = HERE / name
        assert path.is_file(), name
        assert path.stat().st_size < 100_000, name
    assert (HERE / "empty.pdf").stat().st_size == 0
    head = (HERE / "bomb.png").read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    assert struct.unpack(">II", head[16:24]) == (40000, 40000)
    assert (HERE / "bomb.png").stat().st_size < 20_000
    with pymupdf.open(HERE / "zero_pages.pdf") as doc:
        assert doc.page_count == 0
    with pymupdf.open(HERE / "encrypted.pdf") as doc:
        assert doc.needs_pass
        assert doc.authenticate(ENCRYPTED_PASSWORD)
        assert ENCRYPTED_TEXT in doc[0].get_text()
    for name in ("truncated.pdf", "corrupt.pdf", "not_a_document.pdf", "empty.pdf"):
        with pytest.raises((pymupdf.FileDataError, pymupdf.EmptyFileError, RuntimeError)):
            pymupdf.open(HERE / name)


def test_make_hostile_files_reproduces_committed(tmp_path: Path) -> None:
    made = make_hostile_files(tmp_path)
    assert sorted(p.name for p in made) == sorted(NAMES)
    for name in NAMES:
        if name != "encrypted.pdf":  # AES-256 uses a random file key
            assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name
