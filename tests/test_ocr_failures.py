"""OCR failures are never swallowed: a missing engine stops the run before it starts (exit 4),
a page Tesseract fails on is a page error (exit 3, recorded) that the next run retries."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.conftest import subprocess_env, tesseract_ready
from tests.test_workers import make_pdf
from workbench.store import DATABASE_NAME, Case

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
needs_eng = pytest.mark.skipif(
    not tesseract_ready("eng", "osd") or not os.path.exists(FONT),
    reason="Tesseract with eng+osd, or the DejaVu font, is not installed",
)


def text_image(text: str, size: tuple[int, int] = (1400, 360)) -> Image.Image:
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    draw.text((60, 120), text, font=ImageFont.truetype(FONT, 80), fill=0)
    return image


def run_cli(case_dir: Path, *args: str, env: dict[str, str]):
    command = [sys.executable, "-m", "workbench", "--case", str(case_dir), *args]
    full_env = subprocess_env()
    full_env.update(env)
    return subprocess.run(
        command, env=full_env, capture_output=True, text=True, timeout=300, check=False
    )


def page_rows(case_dir: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{case_dir / DATABASE_NAME}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT page_id, page_number, text_source, text, error FROM pages ORDER BY id"
        ).fetchall()
    finally:
        db.close()


@needs_eng
def test_no_tesseract_on_the_path_stops_the_run_without_lang(tmp_path):
    """Without --lang the case's languages are checked before the batch, like --lang."""
    scan = tmp_path / "scan.png"
    text_image("HELLO WORLD").save(scan)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = run_cli(tmp_path / "case", "ingest", str(scan), env={"PATH": str(empty_bin)})
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [
        "error: Tesseract OCR is not installed (the 'tesseract' program was not found). "
        "Install it with: sudo apt-get install tesseract-ocr"
    ]
    assert page_rows(tmp_path / "case") == []


@needs_eng
def test_a_language_the_case_remembers_but_tesseract_lacks_stops_the_run(tmp_path):
    tessdata = tmp_path / "tessdata"
    tessdata.mkdir()
    real = Path("/usr/share/tesseract-ocr/5/tessdata")
    if not (real / "eng.traineddata").exists():
        pytest.skip(f"no eng.traineddata in {real}")
    (tessdata / "eng.traineddata").symlink_to(real / "eng.traineddata")
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case, case.transaction():
        case.set_setting("languages", "fas+eng")
    pdf = make_pdf(tmp_path / "a.pdf", 1, "alpha")
    result = run_cli(case_dir, "ingest", str(pdf), env={"TESSDATA_PREFIX": str(tessdata)})
    assert result.returncode == 4, (result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: Tesseract has no language pack for 'fas'")
    assert "sudo apt-get install tesseract-ocr-fas" in line


FAKE_TESSERACT = """#!{python}
# Test double: the real Tesseract, except that it fails on any page whose reading
# contains FAILME while the flag file exists.
import glob, os, subprocess, sys
args = sys.argv[1:]
done = subprocess.run([{real!r}, *args], capture_output=True)
if os.path.exists({flag!r}) and len(args) >= 2 and not args[0].startswith("-"):
    outputs = glob.glob(glob.escape(args[1]) + ".*")
    text = done.stdout.decode(errors="replace")
    for output in outputs:
        with open(output, errors="replace") as handle:
            text += handle.read()
    if "FAILME" in text.upper():
        for output in outputs:
            os.remove(output)
        sys.stderr.write("simulated engine failure on this page\\n")
        sys.exit(1)
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
sys.exit(done.returncode)
"""


@needs_eng
def test_a_page_tesseract_fails_on_is_an_error_and_the_next_run_retries_it(tmp_path):
    real = shutil.which("tesseract")
    assert real
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    flag = tmp_path / "fail-now"
    flag.touch()
    fake = bin_dir / "tesseract"
    fake.write_text(FAKE_TESSERACT.format(python=sys.executable, real=real, flag=str(flag)))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    folder = tmp_path / "in"
    folder.mkdir()
    frames = [text_image("HELLO WORLD"), text_image("FAILME NOW"), text_image("GOOD NIGHT")]
    frames[0].save(folder / "a-scan.tif", save_all=True, append_images=frames[1:], dpi=(300, 300))
    make_pdf(folder / "b.pdf", 2, "born digital")
    text_image("FAILME TOO").save(folder / "c-scan.png", dpi=(300, 300))
    case_dir = tmp_path / "case"
    command = ("ingest", str(folder), "--jobs", "2")

    first = run_cli(case_dir, *command, "--lang", "eng", env=env)
    assert first.returncode == 3, (first.stdout, first.stderr)
    errors = first.stderr.strip().splitlines()
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"error: {folder / 'a-scan.tif'}: page 2: OCR failed: ")
    assert errors[1].startswith(f"error: {folder / 'c-scan.png'}: page 1: OCR failed: ")
    assert "simulated engine failure" in errors[0]
    assert "2 page(s) not read" in first.stdout
    before = page_rows(case_dir)
    assert [(r[0], r[2]) for r in before] == [
        ("WB-000001", "ocr"), ("WB-000002", "none"), ("WB-000003", "ocr"),
        ("WB-000004", "layer"), ("WB-000005", "layer"), ("WB-000006", "none"),
    ]  # fmt: skip
    assert before[1][4].startswith("OCR failed: ") and before[5][4].startswith("OCR failed: ")
    assert before[0][4] is None

    # still failing: the same pages stay in error, nothing is added twice
    second = run_cli(case_dir, *command, env=env)
    assert second.returncode == 3, second.stderr
    assert len(second.stderr.strip().splitlines()) == 2
    assert page_rows(case_dir) == before

    # the engine works again: exactly the failed pages are read, in place, same ids
    flag.unlink()
    third = run_cli(case_dir, *command, env=env)
    assert third.returncode == 0, third.stderr
    assert third.stderr == ""
    assert third.stdout.strip() == (
        "ingested 0 file(s), 0 page(s); 3 already in the case; 2 page(s) read again"
    )
    after = page_rows(case_dir)
    assert [r[:2] for r in after] == [r[:2] for r in before]
    assert after[1][2] == "ocr" and "FAILME" in after[1][3] and after[1][4] is None
    assert after[5][2] == "ocr" and "FAILME" in after[5][3] and after[5][4] is None
    assert [after[i] for i in (0, 2, 3, 4)] == [before[i] for i in (0, 2, 3, 4)]
    search = run_cli(case_dir, "search", "FAILME", "--json", env=env)
    assert search.stdout.count('"page_id"') == 2
    fourth = run_cli(case_dir, *command, env=env)
    assert fourth.returncode == 0 and "read again" not in fourth.stdout
    assert page_rows(case_dir) == after


def test_an_index_feeder_failure_is_reported(tmp_path, monkeypatch):
    """The feeder thread's error used to vanish; it reaches report.index_problem."""
    from workbench import index, pipeline

    monkeypatch.setattr(pipeline, "FEED_PAGES", 1)
    real_sync = index.sync

    def failing_in_the_feeder(case, **kwargs):
        if kwargs.get("batches") == 1:
            raise OSError(28, "No space left on device")
        return real_sync(case, **kwargs)

    monkeypatch.setattr(index, "sync", failing_in_the_feeder)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        make_pdf(folder / f"{name}.pdf", 1, name)
    with Case.open(tmp_path / "case", create=True) as case:
        report = pipeline.ingest(case, [str(folder)], lang="eng", jobs=1)
    assert report.files_ingested == 3
    assert report.index_problem is not None
    assert "No space left on device" in report.index_problem


@needs_eng
def test_the_job_time_limit_allows_for_ocr(tmp_path):
    """The per-job limit (here 1 s) bounds MuPDF/Pillow; a page in OCR has Tesseract's
    own, longer limit. Every Tesseract run here takes over 1 s."""
    real = shutil.which("tesseract")
    assert real
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    slow = bin_dir / "tesseract"
    slow.write_text(f'#!/bin/sh\ncase "$1" in -*) ;; *) sleep 1.5 ;; esac\nexec {real} "$@"\n')
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    scan = tmp_path / "scan.png"
    text_image("SLOW READING").save(scan, dpi=(300, 300))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "WORKBENCH_PAGE_TIMEOUT": "1",
    }
    result = run_cli(tmp_path / "case", "ingest", str(scan), "--lang", "eng", env=env)
    assert result.returncode == 0, result.stderr
    [(_, _, source, text, error)] = page_rows(tmp_path / "case")
    assert source == "ocr" and "SLOW" in text and error is None
