"""The safe export: every promise checked again on the written file with readers that
did not write it (pikepdf, exiftool, Pillow), on files planted with everything a PDF or
a photo can carry that would expose a source.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import CORPUS, needs_corpus, needs_tesseract
from workbench import safe_pdf
from workbench.pipeline import ingest
from workbench.store import Case

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
VISIBLE = "SAFE EXPORT ALPHA BRAVO"
NEVER_SHOWN = ("WHITESECRET", "HIDDENLAYER", "SECONDREVISION", "Jane Source", "J. Leaker")
DOTS = [(x, y) for x in range(60, 600, 16) for y in range(400, 560, 16)]  # the photo's grid


def _hostile_pdf(path: Path) -> None:
    """One page showing VISIBLE, carrying everything the export must leave behind."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 100), VISIBLE, fontsize=22)
    page.insert_text((72, 160), "WHITESECRET words", fontsize=22, color=(1, 1, 1))
    layer = doc.add_ocg("Source notes", on=False)
    page.insert_text((72, 220), "HIDDENLAYER words", fontsize=22, oc=layer)
    annot = page.add_text_annot((400, 300), "the source's desk")
    annot.set_info(title="J. Leaker")
    annot.update()
    page.insert_link({"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(72, 80, 300, 105),
                      "uri": "http://example.org/track"})  # fmt: skip
    widget = pymupdf.Widget()
    widget.field_type = pymupdf.PDF_WIDGET_TYPE_TEXT
    widget.field_name = "informant"
    widget.field_value = "Ali Source"
    widget.rect = pymupdf.Rect(72, 400, 300, 430)
    page.add_widget(widget)
    doc.embfile_add("notes.txt", b"the source's name")
    doc.set_metadata({"author": "Jane Source", "creator": "Microsoft Word 2013"})
    doc.set_xml_metadata(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Source</dc:creator>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    doc.xref_set_key(doc.pdf_catalog(), "OpenAction", "<< /S /JavaScript /JS (app.alert(1)) >>")
    doc.save(path)
    doc.close()
    doc = pymupdf.open(path)  # a second revision appended to the first
    doc[0].insert_text((72, 600), "SECONDREVISION", fontsize=4, color=(1, 1, 1))
    doc.saveIncr()
    doc.close()


def _gps_photo(path: Path) -> None:
    """A colour photo of a page: EXIF with camera and GPS, and pale yellow dots."""
    image = Image.new("RGB", (1240, 1754), (252, 251, 247))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 48)
    draw.text((80, 150), "PHOTO PAGE CHARLIE", fill=(10, 10, 10), font=font)
    draw.text((80, 250), "blue ink stays", fill=(20, 40, 200), font=font)
    for x, y in DOTS:
        draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=(250, 238, 90))
    exif = Image.Exif()
    exif[0x010F] = "NIKON CORPORATION"  # Make
    exif[0x0110] = "NIKON D70"  # Model
    gps = {1: "N", 2: (35.0, 41.0, 24.0), 3: "E", 4: (51.0, 25.0, 12.0)}
    exif[0x8825] = gps
    image.save(path, format="JPEG", quality=95, exif=exif, dpi=(150, 150))


@pytest.fixture(scope="module")
def hostile_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("safe-trove")
    _hostile_pdf(folder / "hostile.pdf")
    _gps_photo(folder / "photo.jpg")
    case_dir = tmp_path_factory.mktemp("safe-case") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(folder)], lang="eng", jobs=2)
        assert report.ok, report.failures
    return case_dir


def _copy(case_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(case_dir, target)
    return target


def _export(case_dir: Path, out: Path, **options) -> safe_pdf.SafeExportReport:
    with Case.open(case_dir) as case:
        pages = safe_pdf.select_pages(case)
        return safe_pdf.export_safe_pdf(case, out, pages, dpi=150, jobs=2, **options)


@needs_tesseract
def test_the_export_carries_nothing_but_the_pages(hostile_case: Path, tmp_path: Path) -> None:
    case_dir = _copy(hostile_case, tmp_path)
    out = tmp_path / "out" / "safe.pdf"
    report = _export(case_dir, out)
    data = out.read_bytes()
    assert data.count(b"%%EOF") == 1
    with pikepdf.open(out) as pdf:
        assert "/Prev" not in pdf.trailer
        assert set(pdf.Root.keys()) <= {"/Type", "/Pages"}
        assert {str(k): str(v) for k, v in pdf.docinfo.items()} == {"/Producer": safe_pdf.PRODUCER}
        assert len(pdf.pages) == report.pages == 2
        for page in pdf.pages:
            assert "/Annots" not in page.obj and "/AA" not in page.obj
            xobjects = page.obj.Resources.XObject.values()
            images = [x for x in xobjects if x.get("/Subtype") == pikepdf.Name.Image]
            assert len(images) == 1
            (image,) = images
            assert image.get("/Filter") == pikepdf.Name.DCTDecode
            assert image.get("/ColorSpace") == pikepdf.Name.DeviceGray
            raw = image.read_raw_bytes()
            assert b"Exif" not in raw and b"ICC_PROFILE" not in raw and b"http" not in raw
        for obj in pdf.objects:  # nothing anywhere in the file names a script or a file
            if isinstance(obj, pikepdf.Dictionary):
                assert not {"/JS", "/JavaScript", "/EmbeddedFile", "/OCProperties"} & set(
                    obj.keys()
                )
    for secret in (b"Jane Source", b"J. Leaker", b"Ali Source", b"example.org", b"notes.txt"):
        assert secret not in data
    text = "".join(page.get_text() for page in pymupdf.open(out))
    assert "ALPHA" in text and "CHARLIE" in text  # the OCR text layer of the new images
    for secret in NEVER_SHOWN:
        assert secret not in text


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
@needs_tesseract
def test_exiftool_finds_no_metadata_in_the_export(hostile_case: Path, tmp_path: Path) -> None:
    case_dir = _copy(hostile_case, tmp_path)
    out = tmp_path / "safe.pdf"
    _export(case_dir, out)
    shown = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-ee", str(out)], capture_output=True, text=True, check=True
    )
    (tags,) = json.loads(shown.stdout)
    groups = {key.split(":")[0] for key in tags if ":" in key}
    assert not {g for g in groups if g.startswith(("XMP", "EXIF", "GPS", "ICC"))}, groups
    found = {key.split(":")[-1]: value for key, value in tags.items()}
    assert found.get("Producer") == safe_pdf.PRODUCER
    for name in (
        "Author",
        "Creator",
        "Title",
        "Subject",
        "Keywords",
        "Make",
        "Model",
        "GPSLatitude",
    ):
        assert name not in found, (name, found.get(name))


@needs_tesseract
def test_yellow_dots_are_whitened_and_ink_stays(hostile_case: Path, tmp_path: Path) -> None:
    case_dir = _copy(hostile_case, tmp_path)
    out = tmp_path / "safe.pdf"
    _export(case_dir, out, text="none")
    with pikepdf.open(out) as pdf:
        photo = Image.open(io.BytesIO(pdf.pages[1].obj.Resources.XObject["/Im0"].read_raw_bytes()))
        photo.load()
    assert photo.mode == "L" and photo.size == (1240, 1754)
    assert min(photo.getpixel(dot) for dot in DOTS) >= 245  # no dot survives
    assert photo.getpixel((5, 5)) == 255  # the paper is white
    ink = photo.crop((80, 150, 700, 320))
    assert ink.getextrema()[0] < 80  # black and blue ink stay dark


@needs_tesseract
def test_colour_keeps_colour_and_says_dots_may_survive(hostile_case: Path, tmp_path: Path) -> None:
    case_dir = _copy(hostile_case, tmp_path)
    out = tmp_path / "safe.pdf"
    report = _export(case_dir, out, colour=True, text="none")
    with pikepdf.open(out) as pdf:
        image = pdf.pages[1].obj.Resources.XObject["/Im0"]
        assert image.get("/ColorSpace") == pikepdf.Name.DeviceRGB
    assert "may survive" in report.safety["tracking_dots"]
    assert any("may survive" in line for line in safe_pdf.describe(report))
    assert "".join(page.get_text() for page in pymupdf.open(out)).strip() == ""


@needs_tesseract
def test_the_safety_record_names_what_was_removed(hostile_case: Path, tmp_path: Path) -> None:
    case_dir = _copy(hostile_case, tmp_path)
    out = tmp_path / "safe.pdf"
    report = _export(case_dir, out, text="none")
    record = json.loads((tmp_path / "safe.safety.json").read_text(encoding="utf-8"))
    assert record == json.loads(json.dumps(report.safety))
    assert record["output_sha256"] == pikepdf_sha256(out)
    pdf_page, photo_page = record["pages"]
    assert pdf_page["file"].endswith("hostile.pdf") and photo_page["file"].endswith("photo.jpg")
    page_items = {item["what"]: item for item in pdf_page["removed"]}
    assert "J. Leaker" in page_items["annotations"]["detail"]
    assert "form fields" in page_items and "text layer" in page_items
    (pdf_file,) = [f for f in record["files"] if f["file"].endswith("hostile.pdf")]
    whats = {item["what"] for item in pdf_file["removed"]}
    assert {"document information", "XMP metadata", "revisions", "attachment"} <= whats
    assert "hidden layer" in whats and "form value" in whats
    assert any(item["what"] == "active content" or "JavaScript" in json.dumps(item)
               for item in pdf_file["removed"])  # fmt: skip
    photo_items = {item["what"]: item for item in photo_page["removed"]}
    assert "GPS position" in photo_items["EXIF"]["detail"]
    assert "colour" in photo_items
    lines = safe_pdf.describe(report)
    assert any("hostile.pdf" in line and "document information" in line for line in lines)


def pikepdf_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_tesseract
def test_a_changed_file_stops_the_export_and_writes_nothing(
    hostile_case: Path, tmp_path: Path
) -> None:
    case_dir = _copy(hostile_case, tmp_path)
    with Case.open(case_dir) as case:
        photo = next(s.path for s in case.sources() if s.path.endswith("photo.jpg"))
    original = Path(photo).read_bytes()
    try:
        Path(photo).write_bytes(original + b"\0")
        out = tmp_path / "safe.pdf"
        with pytest.raises(Exception, match="photo.jpg"):
            _export(case_dir, out, text="none")
        assert not out.exists() and not (tmp_path / "safe.safety.json").exists()
    finally:
        Path(photo).write_bytes(original)


@needs_tesseract
def test_cli_options_and_exit_codes(hostile_case: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    case_dir = _copy(hostile_case, tmp_path)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--case", str(case_dir), *args], catch_exceptions=False)

    wrong = run("export", "--format", "csv", "-o", str(tmp_path / "x.csv"), "--pages", "WB-1")
    assert wrong.exit_code == 2 and "safe-pdf" in wrong.output
    not_pdf = run("export", "--format", "safe-pdf", "-o", str(tmp_path / "x.png"))
    assert not_pdf.exit_code == 2
    done = run(
        "export", "--format", "safe-pdf", "-o", str(tmp_path / "one.pdf"), "--pages", "WB-000001",
        "--text", "none", "--dpi", "100",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "wrote 1 page(s)" in done.output and "one.safety.json" in done.output
    assert len(pikepdf.open(tmp_path / "one.pdf").pages) == 1


@needs_corpus
@needs_tesseract
def test_an_open_bad_redaction_refuses_the_page_until_dismissed_or_forced(tmp_path: Path) -> None:
    """x-ray's file with text under black boxes: the export runs the check itself, names
    the page and exits 9; --force goes past it (and says so); a dismissal lets it through."""
    from click.testing import CliRunner

    from workbench import findings
    from workbench.cli import main

    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(CORPUS / "safety" / "xray-rectangles_yes_2.pdf")], lang="eng")
        assert report.ok
    runner = CliRunner()

    def export(*extra: str):
        args = ["--case", str(case_dir), "export", "--format", "safe-pdf", "-o",
                str(tmp_path / "out.pdf"), "--text", "none", "--dpi", "100", *extra]  # fmt: skip
        return runner.invoke(main, args, catch_exceptions=False)

    refused = export()
    assert refused.exit_code == 9
    assert "WB-000001 (bad-redaction)" in refused.output and "--force" in refused.output
    assert not (tmp_path / "out.pdf").exists()
    forced = export("--force")
    assert forced.exit_code == 0, forced.output
    assert "forced past 1 open finding" in forced.output
    record = json.loads((tmp_path / "out.safety.json").read_text(encoding="utf-8"))
    (finding,) = [f for f in record["pages"][0]["findings"] if f["check"] == "bad-redaction"]
    assert finding["forced"] and record["forced_past"] == [finding["finding_id"]]
    with Case.open(case_dir) as case:
        findings.dismiss(case, finding["finding_id"], note="boxes checked", reviewer="desk")
    allowed = export()
    assert allowed.exit_code == 0, allowed.output
    assert "forced" not in allowed.output


@pytest.fixture(scope="module")
def dotted_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted colour scan with a printer's yellow dot grid, ingested and checked."""
    from fixtures.anomalies import generate_anomaly_trove
    from workbench import findings

    out = tmp_path_factory.mktemp("dots")
    generate_anomaly_trove(out)
    case_dir = tmp_path_factory.mktemp("dots-case") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, [str(out / "anomalies" / "colour" / "scan_dots.jpg")], lang="eng")
        assert report.ok
        findings.run_checks(case, ["tracking-dots"])
        assert [r["check"] for r in findings.finding_records(case)] == ["tracking-dots"]
    return case_dir


def _dot_grid_in_export(path: Path):  # type: ignore[no-untyped-def]
    import numpy as np

    from workbench.checks.tracking_dots import find_dot_grid

    with pikepdf.open(path) as pdf:
        raw = pdf.pages[0].obj.Resources.XObject["/Im0"].read_raw_bytes()
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    return find_dot_grid(np.asarray(image), (300, 300))


@needs_tesseract
def test_tracking_dots_refuse_the_scan_and_do_not_survive_the_grey_copy(
    dotted_case: Path, tmp_path: Path
) -> None:
    """The dot finder that found the grid on the scan finds none on the grey export; with
    --colour (as the export warns) the grid is still there."""
    case_dir = _copy(dotted_case, tmp_path)
    with Case.open(case_dir) as case:
        pages = safe_pdf.select_pages(case)
        with pytest.raises(safe_pdf.UnsafePagesError, match="tracking-dots"):
            safe_pdf.export_safe_pdf(case, tmp_path / "refused.pdf", pages, text="none")
        grey, colour = tmp_path / "grey.pdf", tmp_path / "colour.pdf"
        safe_pdf.export_safe_pdf(case, grey, pages, text="none", force=True, jobs=1)
        safe_pdf.export_safe_pdf(case, colour, pages, text="none", force=True, colour=True)
    assert _dot_grid_in_export(grey) is None
    assert _dot_grid_in_export(colour) is not None
