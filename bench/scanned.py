"""Scanned ingest against its limit (plain single-threaded Tesseract) and against OCRmyPDF."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymupdf
from PIL import Image, ImageOps

from bench.common import (
    CORES,
    ROOT,
    _tree,
    cached_trove,
    ground_truth,
    ingest,
    run_measured,
    trove_inputs,
)
from workbench import readers
from workbench.quality import character_error_rate
from workbench.store import Case

OCRMYPDF_ARGS = ["-l", "fas+eng", "--rotate-pages", "--deskew", "--output-type", "pdf",
                 "--optimize", "0"]  # fmt: skip


def _pages(trove: Path) -> list[tuple[str, dict[str, Any]]]:
    """(relative path, ground-truth page) for every page, in ground-truth order."""
    return [(f["path"], page) for f in ground_truth(trove)["files"] for page in f["pages"]]


def _ingest_image(trove: Path, rel: str, page: dict[str, Any]) -> Image.Image:
    """The page image exactly as ingest hands it to OCR (readers._analyse_*_page)."""
    path = str(trove / rel)
    if readers.identify(path) == "pdf":
        doc, _ = readers.open_pdf(path)
        try:
            return readers.render_for_ocr(doc.load_page(page["page_number"] - 1))
        finally:
            doc.close()
    with readers.open_image(path) as image:
        index = page["page_number"] - 1
        image.seek(index)
        frame = ImageOps.exif_transpose(image) if index == 0 else image.copy()
        dpi = image.info.get("dpi") or (readers.OCR_DPI, readers.OCR_DPI)
        gray = frame.convert("L")
    return readers._to_ocr_resolution(gray, min(float(dpi[0]), float(dpi[1])))


def _upright(image: Image.Image, page: dict[str, Any]) -> Image.Image:
    """Undo the fixture's quarter turn (clockwise) and skew (counter-clockwise)."""
    if page["rotation"]:
        image = image.rotate(page["rotation"], expand=True)
    if page["skew"]:
        image = image.rotate(
            -page["skew"], resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255
        )
    return image


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def tesseract_limit(trove: Path) -> dict[str, Any]:
    """Sum of single-threaded plain Tesseract time over the pages (upright, one language).

    Each page image is first written, untimed, as an uncompressed TIFF; then only the
    ``tesseract`` run is timed: one process start, one model load and one full read per
    page. (Timing ``pytesseract.image_to_string`` instead would count its PNG encoding,
    about half of each call on these noisy scans, and flatter the ratio.) workbench
    itself reads pages with Tesseract inside its workers (tesserocr, the same library),
    handing it raw pixels. ``cpu_seconds_sum`` is the CPU time of the same runs.
    """
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    total = cpu_total = 0.0
    per_lang: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="wb-limit-") as tmp:
        for number, (rel, page) in enumerate(_pages(trove)):
            image = _upright(_ingest_image(trove, rel, page), page)
            path = Path(tmp) / f"page-{number}.tif"
            image.save(path, format="TIFF", compression="raw")
            lang = "fas" if page["lang"] == "fas" else "eng"
            _, children_before = _cpu()
            started = time.perf_counter()
            subprocess.run(
                ["tesseract", str(path), "stdout", "-l", lang],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            seconds = time.perf_counter() - started
            cpu_total += _cpu()[1] - children_before
            total += seconds
            per_lang[lang] = per_lang.get(lang, 0.0) + seconds
    return {
        "tesseract_seconds_sum": total,
        "per_lang_seconds": per_lang,
        "cpu_seconds_sum": cpu_total,
    }


def _page_image_for_pdf(trove: Path, rel: str, page: dict[str, Any]) -> tuple[bytes, float, float]:
    """The scan as found in the trove (not uprighted): image bytes and page size in points."""
    path = trove / rel
    if readers.identify(str(path)) == "pdf":
        with pymupdf.open(path) as doc:
            source = doc.load_page(page["page_number"] - 1)
            xref = source.get_images()[0][0]
            return doc.extract_image(xref)["image"], source.rect.width, source.rect.height
    with Image.open(path) as image:
        image.seek(page["page_number"] - 1)
        frame = ImageOps.exif_transpose(image) if page["page_number"] == 1 else image.copy()
        dpi = image.info.get("dpi") or (300, 300)
        if frame.mode not in ("1", "L"):
            frame = frame.convert("L")
        from io import BytesIO

        buffer = BytesIO()
        frame.save(buffer, format="PNG")
        dpi_x, dpi_y = float(dpi[0]) or 300.0, float(dpi[1]) or 300.0
        return buffer.getvalue(), frame.width * 72 / dpi_x, frame.height * 72 / dpi_y


def assemble_pdf(trove: Path, out: Path) -> None:
    """All the pages as one image-only PDF, one image per page, at the scan's own size."""
    doc = pymupdf.open()
    for rel, page in _pages(trove):
        data, width, height = _page_image_for_pdf(trove, rel, page)
        new = doc.new_page(width=width, height=height)
        new.insert_image(new.rect, stream=data)
    doc.save(out)
    doc.close()


def ocrmypdf_available() -> bool:
    return shutil.which("ocrmypdf") is not None


def ocrmypdf_version() -> str | None:
    if not ocrmypdf_available():
        return None
    found = subprocess.run(["ocrmypdf", "--version"], capture_output=True, text=True)
    return found.stdout.strip() or None


def _cer_by_lang(pairs: list[tuple[str, str, str]]) -> dict[str, float]:
    """Mean page CER per language from (lang, reference, hypothesis)."""
    sums: dict[str, list[float]] = {}
    for lang, reference, hypothesis in pairs:
        sums.setdefault(lang, []).append(character_error_rate(reference, hypothesis))
    return {lang: round(sum(v) / len(v), 4) for lang, v in sorted(sums.items())}


def workbench_texts(case_dir: Path, trove: Path) -> dict[tuple[str, int], str]:
    with Case.open(case_dir) as case:
        texts = {}
        for row in case.page_rows():
            rel = Path(row["source_path"]).resolve().relative_to(trove.resolve()).as_posix()
            texts[(rel, row["page_number"])] = row["text"] or ""
        return texts


def run(work: Path, pages: int, *, with_ocrmypdf: bool = True) -> dict[str, Any]:
    """Scanned ingest, its limit and (unless ``with_ocrmypdf`` is False) OCRmyPDF.

    Besides the wall-time ratio, a CPU-time ratio that a busy machine disturbs less:
    all CPU of the ingest (main process, workers, every Tesseract) against the CPU of
    the limit's Tesseract runs (``ratio_cpu_ingest_vs_limit``: workbench's whole
    overhead over one plain recognition per page).
    """
    trove = cached_trove("scanned", pages=pages, scanned=pages, seed=7)
    page_list = _pages(trove)
    result: dict[str, Any] = {"pages": len(page_list), "jobs": CORES}

    case_dir = work / "case-scanned"
    _, children_before = _cpu()
    ingested = ingest(case_dir, trove_inputs(trove), jobs=CORES, lang="fas+eng")
    ingest_cpu = _cpu()[1] - children_before
    result["ingest_seconds"] = round(ingested.seconds, 2)
    result["ingest_cpu_seconds"] = round(ingest_cpu, 2)

    limit = tesseract_limit(trove)
    limit_seconds = limit["tesseract_seconds_sum"] / CORES
    result["tesseract_seconds_sum"] = round(limit["tesseract_seconds_sum"], 2)
    result["tesseract_per_lang_seconds"] = {
        k: round(v, 2) for k, v in limit["per_lang_seconds"].items()
    }
    result["limit_seconds"] = round(limit_seconds, 2)
    result["ratio_ingest_vs_limit"] = round(ingested.seconds / limit_seconds, 3)
    result["limit_cpu_seconds_sum"] = round(limit["cpu_seconds_sum"], 2)
    result["ratio_cpu_ingest_vs_limit"] = round(ingest_cpu / limit["cpu_seconds_sum"], 3)

    result["cluster"] = cluster_overhead(work, trove, ingested.seconds, case_dir)

    texts = workbench_texts(case_dir, trove)
    truth = [(page["lang"], page["text"]) for _, page in page_list]
    wb_pairs = [
        (lang, text, texts.get((rel, page["page_number"]), ""))
        for (rel, page), (lang, text) in zip(page_list, truth, strict=True)
    ]
    result["workbench_cer"] = _cer_by_lang(wb_pairs)

    if not with_ocrmypdf:
        return result
    if not ocrmypdf_available():
        result["ocrmypdf"] = "not measured: ocrmypdf is not installed (apt-get install ocrmypdf)"
        return result
    source_pdf, output_pdf = work / "ocrmypdf-in.pdf", work / "ocrmypdf-out.pdf"
    assemble_pdf(trove, source_pdf)
    command = ["ocrmypdf", "-q", "-j", str(CORES), *OCRMYPDF_ARGS, str(source_pdf), str(output_pdf)]
    ran = run_measured(command)
    result["ocrmypdf_version"] = ocrmypdf_version()
    result["ocrmypdf_seconds"] = round(ran.seconds, 2)
    result["ratio_workbench_vs_ocrmypdf"] = round(ingested.seconds / ran.seconds, 3)
    with pymupdf.open(output_pdf) as doc:
        layer = [doc.load_page(i).get_text("text") for i in range(doc.page_count)]
    om_pairs = [(lang, text, layer[i]) for i, (lang, text) in enumerate(truth)]
    result["ocrmypdf_cer"] = _cer_by_lang(om_pairs)
    return result


# ----- the cluster path (issue #16) ------------------------------------------------------

DASK = Path(sys.executable).with_name("dask")
# README "Running a cluster": the statistical profiler off (it samples each worker thread
# every 10 ms); the event-loop watch (every 20 ms), system monitor (500 ms) and memory
# monitor (100 ms) slowed down. Measured idle, a scheduler and two workers with nannies:
# 2.1 s of CPU every 30 s with Dask's defaults, 0.35 s with these.
QUIET_DASK = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
    "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s",
}


def _tree_cpu(pids: list[int]) -> float:
    """CPU seconds so far of these processes and everything under them (their own time
    and that of their children they have waited for: a worker's Tesseract runs)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in pids:
        for pid in _tree(root):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cu cs
    return total / ticks


@contextlib.contextmanager
def local_dask(work: Path, workers: int) -> Iterator[tuple[str, list[int]]]:
    """A real `dask scheduler` and `dask worker --nworkers N --nthreads 1` on 127.0.0.1
    (started, and waited for, before anything is timed); yields the scheduler address
    and the pids of the processes started (for their CPU time)."""
    folder = work / "dask"
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)  # a previous run's names a scheduler long gone
    # as README "Running a cluster" advises (Dask's profiler and its ticking: pure
    # overhead on OCR-bound jobs)
    env = {**os.environ, "PYTHONPATH": str(ROOT), **QUIET_DASK}
    processes: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], name: str) -> None:
        with open(folder / f"{name}.log", "wb") as log:
            processes.append(
                subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )

    def wait_for(condition: Any, what: str) -> Any:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if value := condition():
                    return value
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what} (logs in {folder})")

    try:
        start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", str(scheduler_file)], "scheduler")  # fmt: skip
        address = wait_for(
            lambda: json.loads(scheduler_file.read_text() or "{}").get("address"), "the scheduler"
        )
        start([str(DASK), "worker", "--scheduler-file", str(scheduler_file), "--nthreads",
               "1", "--nworkers", str(workers), "--no-dashboard", "--host", "127.0.0.1"],
              "workers")  # fmt: skip
        log = folder / "workers.log"
        wait_for(lambda: log.read_text(errors="replace").count("Registered to:") >= workers,
                 f"{workers} workers")  # fmt: skip
        yield address, [process.pid for process in processes]
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def cluster_overhead(
    work: Path, trove: Path, local_seconds: float, local_case: Path
) -> dict[str, Any]:
    """The same scanned ingest through a local scheduler with CORES single-threaded
    workers, against the local pool (--jobs CORES).

    The local pool is timed again right after the cluster run, and the baseline is the
    mean of the two local runs around it, so that a change in the machine's load during
    the section weighs on both sides alike. The cluster's case must equal the local one.
    """
    if not DASK.exists():
        return {"skipped": "Dask is not installed (pip install 'workbench[cluster]')"}
    with local_dask(work, CORES) as (address, pids):
        case_dir = work / "case-scanned-cluster"
        command = [sys.executable, "-m", "workbench", "--case", str(case_dir), "ingest",
                   *trove_inputs(trove), "--cluster", address, "--lang", "fas+eng", "--quiet",
                   "--no-check"]  # fmt: skip
        cluster_before, (_, children_before) = _tree_cpu(pids), _cpu()
        on_cluster = run_measured(command)
        # scheduler, nannies, workers and their Tesseracts; plus the coordinator
        cluster_cpu = _tree_cpu(pids) - cluster_before + _cpu()[1] - children_before
    _, children_before = _cpu()
    again = ingest(work / "case-scanned-again", trove_inputs(trove), jobs=CORES, lang="fas+eng")
    local_cpu = _cpu()[1] - children_before
    baseline = (local_seconds + again.seconds) / 2
    return {
        "workers": CORES,
        "cluster_seconds": round(on_cluster.seconds, 2),
        "local_seconds_before": round(local_seconds, 2),
        "local_seconds_after": round(again.seconds, 2),
        "ratio_cluster_vs_local": round(on_cluster.seconds / baseline, 3),
        "cluster_cpu_seconds": round(cluster_cpu, 2),
        "local_cpu_seconds": round(local_cpu, 2),
        "ratio_cpu_cluster_vs_local": round(cluster_cpu / local_cpu, 3),
        "same_case": _pages_of(case_dir) == _pages_of(local_case),
    }


def _pages_of(case_dir: Path) -> list[tuple[Any, ...]]:
    """Every column of every page, in page order (ids, fingerprints, text, provenance)."""
    import sqlite3

    db = sqlite3.connect(case_dir / "workbench.sqlite")
    try:
        return db.execute("SELECT * FROM pages ORDER BY id").fetchall()
    finally:
        db.close()
