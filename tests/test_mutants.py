"""Seeded mutants of real files (bytes flipped, truncated, spliced, zeroed) through one ingest.

Every mutant must be accounted for (ingested, failed or duplicate), and the only lines on
stderr are `error:`/`warning:` lines: MuPDF's and Pillow's own messages (also those printed
in the worker processes) go through the same path. The CLI runs in a subprocess so the
real stderr and stdout are seen. Mutants are built at test time from the shared corpus (when
present) and from the fixture generator's files (always), kept small so the run is fast.
"""

from __future__ import annotations

import io
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CORPUS, subprocess_env, tesseract_ready
from workbench.store import DATABASE_NAME

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not tesseract_ready("eng", "osd"), reason="Tesseract with eng+osd is not installed"
    ),
]

KINDS = ("flip", "truncate", "splice", "zero")
IMAGE_SIDE = 360  # small images: OCR stays cheap


def mutate(data: bytes, rng: random.Random, kind: str) -> bytes:
    out = bytearray(data)
    size = len(out)
    if kind == "flip":
        for _ in range(rng.randint(1, 24)):
            out[rng.randrange(size)] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        out = out[: rng.randint(size // 3, size - 1)]
    elif kind == "splice":
        start, end = sorted(rng.sample(range(size), 2))
        at = rng.randrange(size)
        out = out[:at] + out[start:end] + out[at:]
    else:  # zero a stretch
        at = rng.randrange(size)
        length = rng.randint(16, max(17, size // 8))
        out[at : at + length] = bytes(len(out[at : at + length]))
    return bytes(out)


def small_image(path: Path, fmt: str) -> bytes:
    """A real image re-encoded small, in ``fmt``, so its OCR costs little."""
    with Image.open(path) as image:
        image = image.convert("L")
        image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
        buffer = io.BytesIO()
        options = {"compression": "tiff_lzw"} if fmt == "TIFF" else {}
        image.save(buffer, format=fmt, dpi=(150, 150), **options)
    return buffer.getvalue()


def write_mutants(folder: Path, originals: list[tuple[str, bytes]], count: int, seed: int) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        name, data = originals[number % len(originals)]
        kind = KINDS[number % len(KINDS)]
        (folder / f"{number:03d}-{kind}-{name}").write_bytes(mutate(data, rng, kind))


def ingest_and_check(case_dir: Path, folder: Path) -> dict[str, str]:
    command = [
        sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest", str(folder),
        "--lang", "eng", "--jobs", "2",
    ]  # fmt: skip
    result = subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode in (0, 3), result.stderr
    for line in result.stderr.splitlines():
        assert line.startswith(("error: ", "warning: ")), line
    stdout = result.stdout.splitlines()
    # the summary, and the checks' line when they found something (the checks run on
    # the mutants too: none may crash or print anything else)
    assert stdout[0].startswith("ingested ") and len(stdout) <= 2, result.stdout
    assert all(line.startswith("checks: ") for line in stdout[1:]), result.stdout
    db = sqlite3.connect(f"file:{case_dir / DATABASE_NAME}?mode=ro", uri=True)
    try:
        statuses = dict(db.execute("SELECT path, status FROM sources").fetchall())
        whole = db.execute(
            "SELECT count(*) FROM sources s WHERE s.status = 'ingested' AND s.page_count !="
            " (SELECT count(*) FROM pages p WHERE p.source_id = s.id)"
        ).fetchone()[0]
    finally:
        db.close()
    files = sorted(str(p) for p in folder.iterdir())
    assert sorted(statuses) == files, "some file is not accounted for"
    assert set(statuses.values()) <= {"ingested", "failed", "duplicate"}
    assert whole == 0
    failed_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(failed_lines) == sum(1 for s in statuses.values() if s == "failed")
    return statuses


def test_mutated_pdfs_from_the_fixture_generator(small_trove, tmp_path):
    pdfs = sorted((small_trove / "born_digital").rglob("*.pdf"))
    originals = [(p.name, p.read_bytes()) for p in pdfs if p.stat().st_size < 50_000][:3]
    assert originals
    write_mutants(tmp_path / "in", originals, 24, seed=10)
    statuses = ingest_and_check(tmp_path / "case", tmp_path / "in")
    assert "ingested" in statuses.values()


def test_mutated_images_from_the_fixture_generator(small_trove, tmp_path):
    scans = sorted(p for p in (small_trove / "loose").rglob("*") if p.is_file())[:3]
    originals = []
    for number, fmt in enumerate(("PNG", "JPEG", "TIFF")):
        source = scans[number % len(scans)]
        originals.append((f"{source.stem}.{fmt.lower()}", small_image(source, fmt)))
    write_mutants(tmp_path / "in", originals, 18, seed=11)
    statuses = ingest_and_check(tmp_path / "case", tmp_path / "in")
    assert "ingested" in statuses.values()


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
def test_mutated_real_pdfs(tmp_path):
    names = [
        "born_digital/samplefiles-pdflatex-4-pages.pdf",
        "born_digital/pdfplumber-issue-33-lorem-ipsum.pdf",
        "born_digital/samplefiles-habibi.pdf",
        "born_digital/pdfplumber-pr-138-example.pdf",
        "born_digital/pdfplumber-150109DSP-Milw-505-90D.pdf",
        "safety/samplefiles-002-trivial-libre-office-writer.pdf",
        "safety/xray-rectangles_yes_2.pdf",
        "born_digital/ocrmypdf-tagged.pdf",
    ]
    originals = [(Path(n).name, (CORPUS / n).read_bytes()) for n in names]
    write_mutants(tmp_path / "in", originals, 36, seed=12)
    ingest_and_check(tmp_path / "case", tmp_path / "in")


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
def test_mutated_real_scans(tmp_path):
    sources = [
        (CORPUS / "scans/ocrmypdf-typewriter.png", "PNG"),
        (CORPUS / "scans/ocrmypdf-baiona_color.jpg", "JPEG"),
        (CORPUS / "scans/tesseract-phototest.tif", "TIFF"),
        (CORPUS / "safety/exiftool-NikonD70.jpg", None),  # as is: 3.6 KB, EXIF kept
    ]
    originals = []
    for path, fmt in sources:
        data = path.read_bytes() if fmt is None else small_image(path, fmt)
        suffix = path.suffix if fmt is None else "." + fmt.lower()
        originals.append((path.stem + suffix, data))
    write_mutants(tmp_path / "in", originals, 20, seed=13)
    ingest_and_check(tmp_path / "case", tmp_path / "in")


def text_png(tmp_path: Path) -> bytes:
    from PIL import ImageDraw

    image = Image.new("L", (400, 300), 255)
    draw = ImageDraw.Draw(image)
    for row in range(8):
        draw.text((20, 20 + row * 32), f"line {row} of the damaged scan", fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_image_is_ingested_with_a_page_warning(tmp_path, fmt):
    """What decodes is kept; the page says it is damaged, in the case and on stderr."""
    data = text_png(tmp_path)
    if fmt != "PNG":
        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.save(buffer, format=fmt, quality=90)
            data = buffer.getvalue()
    damaged = tmp_path / f"damaged.{fmt.lower()}"
    damaged.write_bytes(data[: len(data) * 2 // 3])
    case_dir = tmp_path / "case"
    command = [
        sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest", str(damaged),
        "--lang", "eng", "--jobs", "1",
    ]  # fmt: skip
    result = subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"warning: {damaged}: page 1: damaged image: "), line
    assert "1 page warning(s)" in result.stdout
    shown = subprocess.run(
        [sys.executable, "-m", "workbench", "--case", str(case_dir), "show", "WB-000001"],
        env=subprocess_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "  error          damaged image: " in shown.stdout
