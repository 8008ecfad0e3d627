"""OCR failures are never swallowed: a missing engine stops the run before it starts (exit 4),
a page Tesseract fails on is a page error (exit 3, recorded) that the next run retries."""

from __future__ import annotations

import os
import sqlite3
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


# Test double for the in-process engine: a sitecustomize module, which every Python
# process of the run imports at start (the coordinator and each spawned worker), wraps
# workbench.ocr._run, the one place Tesseract is called. It is the real engine, except:
# - FAIL_FLAG exists: a reading that contains FAILME fails as an engine error would;
# - SLOW > 0: every call takes that many seconds longer;
# - a reading that contains HANGME never returns (an engine stuck where it does not check
#   its time budget, as in layout analysis), and OCR_TIMEOUT, the page's OCR budget, is
#   cut to OCR_TIMEOUT seconds in every process;
# - a reading that contains CRASHME kills the process with SIGSEGV, as a crash in
#   Tesseract's C++ would.
ENGINE_DOUBLE = """
import os, signal, time

def _install():
    from workbench import inputs, ocr
    from workbench.errors import OcrError

    real = ocr._run
    if {ocr_timeout!r}:  # the one value the worker, the pool and a cluster read
        inputs.OCR_TIMEOUT = {ocr_timeout!r}

    def run(image, lang, psm, deadline, *, invert=True):
        time.sleep({slow!r})
        rows = real(image, lang, psm, deadline, invert=invert)
        text = " ".join(rows["text"]).upper()
        if os.path.exists({flag!r}) and "FAILME" in text:
            raise OcrError("Tesseract failed on this page: simulated engine failure")
        while "HANGME" in text:
            time.sleep(3600)
        if "CRASHME" in text:
            os.kill(os.getpid(), signal.SIGSEGV)
        return rows

    ocr._run = run

_install()
"""


def engine_double(
    folder: Path, *, flag: Path | None = None, slow: float = 0.0, ocr_timeout: float = 0.0
) -> dict[str, str]:
    """Environment for run_cli that puts the engine double in every process."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        ENGINE_DOUBLE.format(flag=str(flag or folder / "never"), slow=slow, ocr_timeout=ocr_timeout)
    )
    return {"PYTHONPATH": f"{folder}{os.pathsep}{subprocess_env()['PYTHONPATH']}"}


@needs_eng
def test_a_page_tesseract_fails_on_is_an_error_and_the_next_run_retries_it(tmp_path):
    flag = tmp_path / "fail-now"
    flag.touch()
    env = engine_double(tmp_path / "double", flag=flag)

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
    """The per-job limit (here 2 s) bounds MuPDF/Pillow; a page in OCR has Tesseract's
    own, longer limit. Every Tesseract call here takes over 2.5 s."""
    scan = tmp_path / "scan.png"
    text_image("SLOW READING").save(scan, dpi=(300, 300))
    env = {**engine_double(tmp_path / "double", slow=2.5), "WORKBENCH_PAGE_TIMEOUT": "2"}
    result = run_cli(tmp_path / "case", "ingest", str(scan), "--lang", "eng", env=env)
    assert result.returncode == 0, result.stderr
    [(_, _, source, text, error)] = page_rows(tmp_path / "case")
    assert source == "ocr" and "SLOW" in text and error is None


@needs_eng
@pytest.mark.parametrize("word", ["HANGME", "CRASHME"])
def test_a_page_the_engine_hangs_or_crashes_on_is_an_ocr_error(tmp_path, word):
    """Tesseract runs inside the worker: one that never returns (where it does not check
    its time budget) has its worker killed once the page's OCR budget and the job's
    limit are spent; one that crashes takes its worker with it. Either way the pool is
    replaced, the batch goes on, and the page is kept without text as an OCR failure
    (as when Tesseract was a separate program): the rest of its file is kept, and the
    next run reads exactly that page again."""
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [text_image("GOOD MORNING"), text_image(f"{word} PLEASE"), text_image("GOOD NIGHT")]
    frames[0].save(folder / "a-scan.tif", save_all=True, append_images=frames[1:], dpi=(300, 300))
    make_pdf(folder / "b.pdf", 1, "born digital")
    case_dir = tmp_path / "case"
    command = ("ingest", str(folder), "--lang", "eng", "--jobs", "2")
    env = {
        **engine_double(tmp_path / "double", ocr_timeout=2.0),
        "WORKBENCH_PAGE_TIMEOUT": "2",
    }
    first = run_cli(case_dir, *command, env=env)
    assert first.returncode == 3, (first.stdout, first.stderr)
    [line] = first.stderr.strip().splitlines()
    assert line.startswith(f"error: {folder / 'a-scan.tif'}: page 2: OCR failed: Tesseract ")
    assert ("did not finish" if word == "HANGME" else "crashed") in line
    rows = page_rows(case_dir)
    assert [(r[0], r[2]) for r in rows] == [
        ("WB-000001", "ocr"), ("WB-000002", "none"), ("WB-000003", "ocr"), ("WB-000004", "layer"),
    ]  # fmt: skip
    assert rows[1][4].startswith("OCR failed: Tesseract ")
    # the engine works again (no double): that page alone is read, in place
    again = run_cli(case_dir, *command, env={})
    assert again.returncode == 0, again.stderr
    assert "1 page(s) read again" in again.stdout
    after = page_rows(case_dir)
    assert after[1][2] == "ocr" and word in after[1][3] and after[1][4] is None
    assert [after[i] for i in (0, 2, 3)] == [rows[i] for i in (0, 2, 3)]
