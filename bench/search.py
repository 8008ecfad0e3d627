"""Search latency (p50/p95 over a fixed query set) at 700 pages and on a large synthetic case.

The large case is built once, without OCR: page rows assembled from the fixture vocabulary
(`fixtures.generate.build_cable`, dates included) go straight in through `Case`, then
`index.rebuild` indexes them in one commit (one segment). It is
cached outside the repository, keyed by a version string; when the index layout changes
(`index.INDEX_DIRNAME`), the cached rows are indexed again.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import cache_root, fixtures_key, median, percentile
from workbench import index
from workbench.store import Case

# Terms, phrases, booleans, wildcard/fuzzy, field filters and date ranges, English and Persian.
QUERIES = [
    "oil",
    "recruitment",
    "Tehran",
    "تهران",
    "صادرات",
    '"crude oil shipments"',
    '"diplomatic passport"',
    '"صادرات نفت"',
    "oil AND (shipment OR shipments)",
    "source NOT reliable",
    "embassy OR consulate",
    "recruit*",
    "Korvandel~",
    "lang:fas AND نفت",
    "from:layer AND courier",
    "date:[2014-01-01 TO 2014-06-30]",
    "date:2014-08",
    "date:[2015-01-01 TO 2015-03-31] AND oil",
    "status:unreviewed AND passport",
    '"exchange house" AND date:2014',
]
REPEATS = 5
# Bump when the synthetic case changes shape; part of the cache key.
CASE_VERSION = "2"
PAGES_PER_FILE = 3
# The one-off index build of the large case may use ~1 GB for its posting pool: with
# ingest's small pool it writes hundreds of sorted runs and takes several times longer.
# The build dominates a first run's time.
BUILD_LIMIT_MB = 256
ROWS_PER_TRANSACTION = 20_000


def _synthetic_pages(count: int, seed: int):
    """(lang, text, dates) for `count` pages from the fixture cable composer."""
    from fixtures.generate import Writer, build_cable

    rng = random.Random(seed)
    made = 0
    writer = Writer(rng)
    while made < count:
        if writer.phrase_n > 50_000:  # fresh writer: its unique-code pool is finite
            writer = Writer(random.Random(rng.random()))
        lang = "eng" if rng.random() < 0.4 else "fas"
        cable = build_cable(writer, lang, rng.randint(1, 6))
        for spec in cable.pages:
            if made >= count:
                return
            text = spec.text
            dates = []
            cursor = 0
            for found in spec.dates:
                start = text.find(found["original"], cursor)
                if start < 0:
                    start = max(0, text.find(found["original"]))
                end = start + len(found["original"])
                cursor = end
                dates.append({**found, "start": start, "end": end})
            made += 1
            yield lang, text, dates


def build_synthetic_case(folder: Path, pages: int) -> dict[str, float]:
    """Fill a new case with `pages` synthetic page rows and index them."""
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    case = Case.open(folder, create=True)
    try:
        batch: list[tuple[str, str, list[dict[str, Any]]]] = []
        number = 0

        def flush() -> None:
            nonlocal number
            with case.transaction():
                for start in range(0, len(batch), PAGES_PER_FILE):
                    group = batch[start : start + PAGES_PER_FILE]
                    name = f"/synthetic/{number // 1000:03d}/cable_{number:06d}.pdf"
                    source_id = case.record_source(
                        path=name,
                        sha256=hashlib.sha256(name.encode()).hexdigest(),
                        size=len(group) * 40_000,
                        kind="pdf",
                        status="ingested",
                        page_count=len(group),
                    )
                    number += 1
                    for page_number, (_, text, dates) in enumerate(group, start=1):
                        case.add_page(
                            source_id,
                            {
                                "page_number": page_number,
                                "text": text,
                                "text_source": "layer",
                                "dates": dates,
                            },
                        )
            batch.clear()

        for page in _synthetic_pages(pages, seed=100):
            batch.append(page)
            if len(batch) >= ROWS_PER_TRANSACTION:
                flush()
        if batch:
            flush()
        rows_done = time.perf_counter()
        _index_backlog(case)
        indexed = time.perf_counter()
    finally:
        case.close()
    return {"rows_seconds": rows_done - started, "index_seconds": indexed - rows_done}


def _index_backlog(case: Case) -> None:
    """Index every page with one writer and a big posting pool: one commit, one segment.

    225 s for 100,000 pages here, against 430 s for syncs of 10,000 pages followed by a
    merge into one segment."""
    index.rebuild(case, timeout=600, limitmb=BUILD_LIMIT_MB)


def large_case(pages: int) -> tuple[Path, dict[str, Any]]:
    """The cached synthetic case of `pages` pages, built when missing."""
    folder = cache_root() / fixtures_key() / f"search-case-{pages}-c{CASE_VERSION}"
    marker = folder / ".complete"
    info: dict[str, Any] = {"cached": marker.exists()}
    if not marker.exists():
        timings = build_synthetic_case(folder, pages)
        info.update({k: round(v, 1) for k, v in timings.items()})
        marker.write_text("ok\n")
    elif not (folder / index.INDEX_DIRNAME).exists():
        # cached rows, but the index layout changed since: index them again
        started = time.perf_counter()
        with Case.open(folder) as case:
            index.open_or_create(case)  # a new layout queues every page
            _index_backlog(case)
        info["reindex_seconds"] = round(time.perf_counter() - started, 1)
    return folder, info


def latency(case_dir: Path) -> dict[str, Any]:
    """Time every query REPEATS times through index.search (ranked page, snippets and all)."""
    timings: list[float] = []
    per_query: dict[str, float] = {}
    totals: dict[str, int] = {}
    errors: dict[str, str] = {}
    with Case.open(case_dir) as case:
        index.search(case, QUERIES[0])  # warm the imports and the OS cache once
        for query in QUERIES:
            mine = []
            try:
                for _ in range(REPEATS):
                    started = time.perf_counter()
                    found = index.search(case, query)
                    mine.append(time.perf_counter() - started)
            except Exception as error:  # noqa: BLE001 - a failing query is a finding, not a stop
                errors[query] = f"{type(error).__name__}: {error}".strip()
                continue
            totals[query] = found.total
            per_query[query] = round(median(mine) * 1000, 2)
            timings.extend(mine)
    return {
        "queries": len(QUERIES) - len(errors),
        "failed_queries": errors,
        "repeats": REPEATS,
        "p50_ms": round(percentile(timings, 50) * 1000, 2),
        "p95_ms": round(percentile(timings, 95) * 1000, 2),
        "median_ms_per_query": per_query,
        "hits_per_query": totals,
    }
