"""Born-digital ingest speed (700 pages, then unchanged again) and ingest memory at scale."""

from __future__ import annotations

import resource
import shutil
from pathlib import Path
from typing import Any

from bench.common import CORES, cache_root, cached_trove, fixtures_key, ground_truth, ingest


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (and theirs: the ingest's workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def speed(work: Path, pages: int) -> dict[str, Any]:
    trove = cached_trove("digital", pages=pages, scanned=0, seed=7)
    case_dir = work / "case-digital"
    inputs = [str(trove / "born_digital")]
    children_before = _children_cpu()
    first = ingest(case_dir, inputs, jobs=CORES, lang="eng")
    first_cpu = _children_cpu() - children_before  # the ingest and its workers
    again = ingest(case_dir, inputs, jobs=CORES, lang="eng")
    steps = floor(trove)
    return {
        "pages": ground_truth(trove)["total_pages"],
        "jobs": CORES,
        "ingest_seconds": round(first.seconds, 2),
        "floor": steps,
        "ratio_ingest_vs_floor": round(first.seconds / steps["floor_seconds"], 3),
        "ingest_cpu_seconds": round(first_cpu, 2),
        "ratio_cpu_ingest_vs_floor": round(first_cpu / steps["floor_cpu_seconds"], 3),
        "pages_per_second": round(ground_truth(trove)["total_pages"] / first.seconds, 1),
        "reingest_unchanged_seconds": round(again.seconds, 2),
        "case_dir": str(case_dir),
    }


def copied_trove(base: Path, target_pages: int, out: Path) -> int:
    """At least target_pages pages made of copies of base's born-digital files.

    Each copy gets ``%bench N`` appended after ``%%EOF`` (a PDF comment) so every file
    hashes differently and none is skipped as a duplicate. Returns the page count.
    """
    files = [(f["path"], len(f["pages"])) for f in ground_truth(base)["files"]]
    if out.exists():
        shutil.rmtree(out)
    total, copy = 0, 0
    while total < target_pages:
        for rel, count in files:
            if total >= target_pages:
                break
            dest = out / f"copy{copy:03d}" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = (base / rel).read_bytes()
            dest.write_bytes(data + f"\n%bench {copy}\n".encode())
            total += count
        copy += 1
    return total


def memory(work: Path, small: int, large: int) -> dict[str, Any]:
    """Peak RSS of ingesting `small` and `large` born-digital pages (copies of one trove)."""
    base = cached_trove("digital", pages=min(small, 1000), scanned=0, seed=11)
    result: dict[str, Any] = {"jobs": CORES}
    for label, target in (("small", small), ("large", large)):
        folder = cache_root() / fixtures_key() / f"copies-{min(small, 1000)}-{target}"
        marker = folder / ".pages"
        if marker.exists():
            pages = int(marker.read_text())
        else:
            pages = copied_trove(base, target, folder / "trove")
            marker.write_text(str(pages))
        case_dir = work / f"case-memory-{label}"
        ran = ingest(case_dir, [str(folder / "trove")], jobs=CORES, lang="eng")
        result[label] = {
            "pages": pages,
            "seconds": round(ran.seconds, 2),
            "peak_tree_rss_mb": round(ran.peak_tree_rss_mb, 1),
            "max_process_rss_mb": round(ran.max_process_rss_mb, 1),
        }
        shutil.rmtree(case_dir, ignore_errors=True)
    small_peak = result["small"]["peak_tree_rss_mb"]
    large_peak = result["large"]["peak_tree_rss_mb"]
    result["growth_ratio"] = round(large_peak / small_peak, 3)
    result["pages_ratio"] = round(result["large"]["pages"] / result["small"]["pages"], 2)
    return result


def floor(trove: Path) -> dict[str, Any]:
    """The two steps a born-digital ingest cannot skip, timed on the same pages, in this
    process, one after the other: PyMuPDF's text extraction of every page (open each
    file, ``get_text()`` each page) and Whoosh indexing those texts (workbench's schema
    and analyzer, the pairs field included, ingest's posting pool, a fresh folder,
    one commit per ``pipeline.FEED_PAGES`` pages as the ingest commits them: with the
    small pool one 700-page commit spills and costs about 1.5x as much, which would
    flatter the ratio).
    Imports are done before the clock starts; the ingest's own start-up is its cost.
    The CPU time beside it (one process: about its wall time on an idle machine) is
    compared with all the CPU of the ingest and its workers, which load disturbs less."""
    import tempfile
    import time

    import pymupdf
    from whoosh.filedb.filestore import FileStorage

    from workbench import index, pipeline

    files = sorted((trove / "born_digital").rglob("*.pdf"))
    cpu_started = time.process_time()
    started = time.perf_counter()
    texts: list[tuple[str, int, str]] = []
    for path in files:
        with pymupdf.open(path) as doc:
            for number, page in enumerate(doc, start=1):
                texts.append((str(path), number, page.get_text("text")))
    extract = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="wb-floor-") as folder:
        started = time.perf_counter()
        ix = FileStorage(folder, supports_mmap=False).create_index(index.schema())
        # the text twice, as the ingest indexes it: its words, and its adjacent word
        # pairs for phrases (index layout v6)
        for first in range(0, len(texts), pipeline.FEED_PAGES):
            writer = ix.writer(limitmb=index.WRITER_LIMIT_MB)
            batch = texts[first : first + pipeline.FEED_PAGES]
            for serial, (path, number, text) in enumerate(batch, start=first + 1):
                writer.add_document(page_id=f"WB-{serial:06d}", path=path, page=number,
                                    text=text, pairs=text, source=Path(path).name.lower(),
                                    text_source="layer", lang="eng",
                                    status="unreviewed")  # fmt: skip
            writer.commit()
        indexing = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "pages": len(texts),
        "extract_seconds": round(extract, 2),
        "index_seconds": round(indexing, 2),
        "floor_seconds": round(extract + indexing, 2),
        "floor_cpu_seconds": round(cpu, 2),
    }
