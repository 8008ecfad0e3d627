"""SQLite FTS5 beside Whoosh: the same page texts and the bench's queries (a measurement only).

Why: issue #15 asks how far workbench's search (Whoosh) is from the C engine a user
might pick instead, on the same texts and queries, in the same run. The product keeps
Whoosh; this builds an FTS5 table in a temporary database, never in a case.

How the texts and queries are made comparable:
- FTS5 indexes :func:`workbench.analysis.normalize` of each page (Persian/Arabic letter
  folding, ZWNJ and می/ها joins, digits, case and accents), with the ``unicode61``
  tokenizer, ``remove_diacritics 2``: the same words as the index has. The
  normalisation is timed apart from the FTS5 build. Snippets come from that
  normalised text (the product would map them back to the page, as it does for Whoosh).
- Each query is translated by hand (``TRANSLATIONS``): words, phrases, AND/OR/NOT and
  prefixes are FTS5's own; ``lang:``, ``from:`` and ``status:`` are UNINDEXED columns
  compared in SQL; dates are a side table (page, ISO date) joined in SQL. A date-only
  query has no FTS5 match, so it is ranked in SQL by the page's dates in range (as
  Whoosh scores it) and has no snippet. FTS5 has no fuzzy terms: ``Korvandel~`` is not
  expressed (reported, not timed).
- A date filter is written ``+rowid IN (...)``: a bare ``rowid IN`` lets SQLite run the
  FTS5 match once per dated page (600 ms instead of a few ms at 5,000 pages).
- Every query returns the top 20 (bm25 rank, page id and snippet) and the exact total.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import median, percentile
from bench.search import QUERIES, REPEATS
from workbench import index
from workbench.analysis import normalize, normalize_query
from workbench.store import Case

# The bench's query -> (FTS5 MATCH expression or None, SQL filter on the page or None).
# A filter uses the columns of `pages_fts` (lang, text_source, status) and `rowid`.
_Y2014 = "+rowid IN (SELECT page FROM dates WHERE iso BETWEEN '2014-01-01' AND '2014-12-31')"
TRANSLATIONS: dict[str, tuple[str | None, str | None] | None] = {
    "oil": ("oil", None),
    "recruitment": ("recruitment", None),
    "Tehran": ("tehran", None),
    "تهران": ("تهران", None),
    "صادرات": ("صادرات", None),
    '"crude oil shipments"': ('"crude oil shipments"', None),
    '"diplomatic passport"': ('"diplomatic passport"', None),
    '"صادرات نفت"': ('"صادرات نفت"', None),
    "oil AND (shipment OR shipments)": ("oil AND (shipment OR shipments)", None),
    "source NOT reliable": ("source NOT reliable", None),
    "embassy OR consulate": ("embassy OR consulate", None),
    "recruit*": ("recruit*", None),
    "Korvandel~": None,  # FTS5 has no fuzzy (edit-distance) terms
    "lang:fas AND نفت": ("نفت", "lang = 'fas'"),
    "from:layer AND courier": ("courier", "text_source = 'layer'"),
    "date:[2014-01-01 TO 2014-06-30]": (None, "iso BETWEEN '2014-01-01' AND '2014-06-30'"),
    "date:2014-08": (None, "iso BETWEEN '2014-08-01' AND '2014-08-31'"),
    "date:[2015-01-01 TO 2015-03-31] AND oil": (
        "oil",
        "+rowid IN (SELECT page FROM dates WHERE iso BETWEEN '2015-01-01' AND '2015-03-31')",
    ),
    "status:unreviewed AND passport": ("passport", "status = 'unreviewed'"),
    '"exchange house" AND date:2014': ('"exchange house"', _Y2014),
}
LIMIT = 20
BATCH = 2_000


def build(case_dir: Path, db_path: Path) -> dict[str, Any]:
    """A temporary FTS5 database of the case's pages; times of reading, normalising, building."""
    db = sqlite3.connect(db_path)
    db.executescript(
        "CREATE VIRTUAL TABLE pages_fts USING fts5(text, page_id UNINDEXED, lang UNINDEXED,"
        " text_source UNINDEXED, status UNINDEXED,"
        " tokenize = 'unicode61 remove_diacritics 2');"
        "CREATE TABLE dates(page INTEGER, iso TEXT);"
    )
    read = norm = insert = 0.0
    with Case.open(case_dir) as case:
        for row_ids in case.page_row_id_batches(BATCH):
            started = time.perf_counter()
            rows = case.index_rows(row_ids)
            dates = case.db.execute(
                f"SELECT DISTINCT page_row, iso FROM page_dates WHERE page_row IN"
                f" ({','.join('?' * len(row_ids))})",
                row_ids,
            ).fetchall()
            records = [
                (
                    r["id"],
                    r["text"],
                    r["page_id"],
                    index.page_language(r["text"], r["ocr_lang"]),
                    r["text_source"],
                    r["status"] or "unreviewed",
                )
                for r in rows
            ]
            read += time.perf_counter() - started
            started = time.perf_counter()
            records = [(rid, normalize(text), *rest) for rid, text, *rest in records]
            norm += time.perf_counter() - started
            started = time.perf_counter()
            with db:
                db.executemany(
                    "INSERT INTO pages_fts(rowid, text, page_id, lang, text_source, status)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    records,
                )
                db.executemany("INSERT INTO dates(page, iso) VALUES (?, ?)", dates)
            insert += time.perf_counter() - started
    started = time.perf_counter()
    with db:
        db.execute("CREATE INDEX dates_iso ON dates(iso, page)")
        db.execute("INSERT INTO pages_fts(pages_fts) VALUES ('optimize')")
    insert += time.perf_counter() - started
    db.close()
    return {
        "read_seconds": round(read, 1),
        "normalize_seconds": round(norm, 1),
        "fts5_build_seconds": round(insert, 1),
    }


def search(db: sqlite3.Connection, match: str | None, where: str | None) -> tuple[int, list]:
    """Top LIMIT hits (page id, snippet, score) and the exact total of one query."""
    if match is None:  # dates only: ranked by the page's dates in the range
        hits = db.execute(
            f"SELECT f.page_id, NULL, n FROM (SELECT page, count(*) AS n FROM dates WHERE {where}"
            " GROUP BY page) d JOIN pages_fts f ON f.rowid = d.page"
            f" ORDER BY n DESC, d.page LIMIT {LIMIT}"
        ).fetchall()
        total = db.execute(f"SELECT count(DISTINCT page) FROM dates WHERE {where}").fetchone()[0]
        return total, hits
    extra = f" AND {where}" if where else ""
    hits = db.execute(
        "SELECT page_id, snippet(pages_fts, 0, '[', ']', '…', 24), rank FROM pages_fts"
        f" WHERE pages_fts MATCH ?{extra} ORDER BY rank LIMIT {LIMIT}",
        (match,),
    ).fetchall()
    total = db.execute(
        f"SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?{extra}", (match,)
    ).fetchone()[0]
    return total, hits


def latency(db_path: Path) -> dict[str, Any]:
    """Every expressible query REPEATS times, as bench.search.latency times Whoosh."""
    db = sqlite3.connect(db_path)
    timings: list[float] = []
    per_query: dict[str, float] = {}
    totals: dict[str, int] = {}
    search(db, "oil", None)  # warm the page cache once
    for query in QUERIES:
        translated = TRANSLATIONS.get(query)
        if translated is None:
            continue
        match, where = translated
        if match is not None:
            match = normalize_query(match)  # words folded, operators kept
        mine = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            total, _hits = search(db, match, where)
            mine.append(time.perf_counter() - started)
        totals[query] = total
        per_query[query] = round(median(mine) * 1000, 2)
        timings.extend(mine)
    db.close()
    return {
        "queries": len(per_query),
        "not_expressible": [q for q in QUERIES if TRANSLATIONS.get(q) is None],
        "repeats": REPEATS,
        "p50_ms": round(percentile(timings, 50) * 1000, 2),
        "p95_ms": round(percentile(timings, 95) * 1000, 2),
        "median_ms_per_query": per_query,
        "hits_per_query": totals,
    }


def run(case_dir: Path, work: Path, whoosh: dict[str, Any]) -> dict[str, Any]:
    """Build, time, and compare with the Whoosh figures measured on the same case."""
    db_path = work / f"fts5-{case_dir.name}.sqlite"
    db_path.unlink(missing_ok=True)
    try:
        built = build(case_dir, db_path)
        result: dict[str, Any] = {"build": built, **latency(db_path)}
    finally:
        db_path.unlink(missing_ok=True)
    same = [q for q in result["median_ms_per_query"] if q in whoosh["median_ms_per_query"]]
    result["totals_differ"] = {
        q: [whoosh["hits_per_query"][q], result["hits_per_query"][q]]
        for q in same
        if whoosh["hits_per_query"].get(q) != result["hits_per_query"][q]
    }
    result["ratio_workbench_p95_vs_fts5"] = round(whoosh["p95_ms"] / result["p95_ms"], 1)
    result["ratio_workbench_p50_vs_fts5"] = round(whoosh["p50_ms"] / result["p50_ms"], 1)
    return result
