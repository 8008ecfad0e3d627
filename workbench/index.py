"""The full-text index of a case: Whoosh, one document per page, rebuilt from SQLite at will.

Why it is shaped this way:
- SQLite is the truth. Every page (and later every status or note change) is put on the
  ``index_queue`` table in the same transaction that changes it; :func:`sync` drains the
  queue into Whoosh and only then deletes the drained entries. A crash in between re-indexes
  a few pages (``update_document`` is idempotent), never loses one.
- Whoosh commits are atomic, so readers never see a half-written index and are never
  blocked. Only one writer at a time: another waits up to ``timeout`` seconds for the
  lock, then fails with :class:`IndexBusyError`.
- The page text is not stored in the index (SQLite has it); snippets and match offsets
  are computed from the SQLite text with the same analyzer the index used.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh import qparser, sorting
from whoosh.fields import ID, KEYWORD, NUMERIC, TEXT, Schema
from whoosh.index import LockError
from whoosh.searching import Hit
from whoosh.util.filelock import try_for

from workbench import views
from workbench.analysis import NormalizingTokenizer, normalize_query, page_text_analyzer
from workbench.errors import UsageError, WorkbenchError
from workbench.store import Case

# The folder name carries the index layout version: a new layout is built beside the old
# one from the case database (every page is queued when the folder is new).
INDEX_DIRNAME = "index-v2"
DEFAULT_WRITER_TIMEOUT = 30.0
SYNC_BATCH = 500
SNIPPET_WIDTH = 180

# Query field names a journalist types, mapped to index fields.
FIELD_ALIASES = {
    "id": "page_id",
    "source": "source",
    "path": "path",
    "page": "page",
    "lang": "lang",
    "status": "status",
    "doc": "document",
    "document": "document",
    "note": "notes",
    "notes": "notes",
    "date": "date",
    "text": "text",
    "from": "text_source",
}


class IndexBusyError(WorkbenchError):
    """Another process holds the index writer lock for longer than we wait."""

    exit_code = 5


class QueryError(UsageError):
    """The search query cannot be parsed."""


def schema() -> Schema:
    analyzer = page_text_analyzer()
    return Schema(
        page_id=ID(stored=True, unique=True),
        path=ID(stored=True),
        source=ID(),  # the file name, lower-cased when indexed
        page=NUMERIC(int, stored=True),
        text=TEXT(analyzer=analyzer, phrase=True),
        text_source=ID(stored=True),
        lang=ID(stored=True),
        status=ID(stored=True),
        document=ID(stored=True),
        notes=TEXT(analyzer=analyzer, phrase=True),
        # ISO dates as keywords: ranges compare as strings (ISO order is date order).
        # Whoosh's multi-valued DATETIME field trips an assertion in its intersection
        # matcher ("oil AND date:2014" on a few thousand pages), so it is not used.
        date=KEYWORD(lowercase=False),
    )


def index_dir(case: Case) -> Path:
    return case.root / INDEX_DIRNAME


def open_or_create(case: Case) -> whoosh_index.Index:
    folder = index_dir(case)
    if whoosh_index.exists_in(str(folder)):
        return whoosh_index.open_dir(str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    created = whoosh_index.create_in(str(folder), schema())
    case.queue_all_pages_for_index()  # a new or lost index is filled from the case
    return created


def _writer(ix: whoosh_index.Index, timeout: float):
    try:
        return ix.writer(timeout=timeout)
    except LockError:
        raise IndexBusyError(
            f"the search index is being written by another workbench process and stayed "
            f"locked for {timeout:g} s; try again when that ingest or rebuild finishes"
        ) from None


# ----- documents ----------------------------------------------------------------------


_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff]")
_LATIN_LETTER = re.compile("[A-Za-z]")
_PERSIAN_ONLY = re.compile("[پچژگ]")


def page_language(text: str, ocr_lang: str | None) -> str:
    """The page's language for ``lang:`` queries: OCR's if it read in one, else by script."""
    if ocr_lang and "+" not in ocr_lang:
        return ocr_lang
    # پ چ ژ گ exist in Persian and not in Arabic; ی/ي and ک/ك prove nothing (PDF
    # text layers and OCR mix the two forms freely).
    sample = text[:5000]
    arabic = len(_ARABIC_SCRIPT.findall(sample))
    latin = len(_LATIN_LETTER.findall(sample))
    persian_letters = len(_PERSIAN_ONLY.findall(sample))
    if arabic + latin == 0:
        return "und"
    if arabic >= latin:
        return "fas" if persian_letters >= 2 else "ara"
    return "eng"


def _document(row: dict[str, Any], dates: list[str]) -> dict[str, Any]:
    path = row["source_path"]
    valid_dates = sorted({iso for iso in dates if _ISO_DATE.fullmatch(iso)})
    document = {
        "page_id": row["page_id"],
        "path": path,
        "source": os.path.basename(path).lower(),
        "page": row["page_number"],
        "text": row["text"],
        "text_source": row["text_source"],
        "lang": page_language(row["text"], row["ocr_lang"]),
        "status": row["status"] or "unreviewed",
        "document": row["document_id"] or "",
        "notes": row["notes"] or "",
    }
    if valid_dates:
        document["date"] = " ".join(valid_dates)
    return document


def _rows(case: Case, row_ids: list[int]) -> Iterator[tuple[dict[str, Any], list[str]]]:
    for row in case.index_rows(row_ids):
        yield dict(row), case.page_date_isos(row["id"])


# ----- writing ------------------------------------------------------------------------


def sync(case: Case, *, timeout: float = DEFAULT_WRITER_TIMEOUT) -> int:
    """Bring the index up to date with the case: drain ``index_queue``. Returns pages indexed."""
    ix = open_or_create(case)
    total = 0
    while True:
        queued = case.index_queue_batch(SYNC_BATCH)
        if not queued:
            return total
        writer = _writer(ix, timeout)
        try:
            for row, dates in _rows(case, queued):
                writer.update_document(**_document(row, dates))
            writer.commit()
        except BaseException:
            writer.cancel()
            raise
        case.index_queue_done(queued)
        total += len(queued)


def pending(case: Case) -> int:
    """Pages changed in the case but not yet in the index."""
    return case.index_queue_length()


def rebuild(case: Case, *, timeout: float = DEFAULT_WRITER_TIMEOUT) -> int:
    """Rebuild the index from the SQLite case alone, then swap it in atomically."""
    folder = index_dir(case)
    fresh = folder.with_name(INDEX_DIRNAME + ".rebuild")
    old = folder.with_name(INDEX_DIRNAME + ".old")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    guard = open_or_create(case).lock("WRITELOCK")  # the lock Whoosh writers take
    if not try_for(guard.acquire, timeout=timeout, delay=0.1):
        raise IndexBusyError(
            f"the search index is being written by another workbench process and stayed "
            f"locked for {timeout:g} s; try again when that ingest finishes"
        )
    try:
        high_water = case.max_page_row()
        fresh.mkdir(parents=True)
        ix = whoosh_index.create_in(str(fresh), schema())
        writer = ix.writer()
        count = 0
        for row_ids in case.page_row_id_batches(SYNC_BATCH):
            for row, dates in _rows(case, row_ids):
                writer.add_document(**_document(row, dates))
                count += 1
        writer.commit()
        folder.rename(old)
        fresh.rename(folder)
        case.index_queue_done_through(high_water)
    finally:
        guard.release()
        shutil.rmtree(old, ignore_errors=True)
    return count


# ----- searching ----------------------------------------------------------------------


@dataclass
class SearchHit:
    """One page found: the ``pages --json`` keys plus score, snippet and matched spans."""

    record: dict[str, Any]
    score: float
    snippet: str
    snippet_matches: list[tuple[int, int]]
    matches: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        out = dict(self.record)
        out["score"] = round(self.score, 4)
        out["snippet"] = self.snippet
        out["snippet_matches"] = [list(span) for span in self.snippet_matches]
        out["matches"] = self.matches
        return out


@dataclass
class SearchResults:
    query: str
    total: int
    offset: int
    hits: list[SearchHit] = field(default_factory=list)


def parse_query(text: str):
    """Parse a user query with Whoosh's language (see ``workbench search --help``)."""
    if not text.strip():
        raise QueryError("empty search query")
    parser = qparser.QueryParser("text", schema())
    parser.add_plugin(qparser.FuzzyTermPlugin())
    parser.add_plugin(qparser.GtLtPlugin())
    try:
        prepared = _date_terms(_alias_fields(normalize_query(text)))
    except QueryError as error:
        raise QueryError(f"cannot understand the query {text!r}: {error}") from None
    try:
        query = parser.parse(prepared)
    except Exception as error:  # Whoosh raises many types on odd input
        raise QueryError(f"cannot understand the query {text!r}: {error}") from None
    problem = _query_error(query)
    if problem:
        raise QueryError(f"cannot understand the query {text!r}: {problem}")
    return query


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PARTIAL_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")
_DATE_RANGE = re.compile(
    r"date:([\[{])\s*([^\]}]*?)\s*(?:\bto\b|\bTO\b)\s*([^\]}]*?)\s*([\]}])", re.IGNORECASE
)
_DATE_TERM = re.compile(r"date:(?![\[{])(\S+)")


def _date_terms(text: str) -> str:
    """Rewrite date queries for the keyword date field.

    ``date:2014`` / ``date:2014-08`` / ``date:2014-08-03`` become prefixes; a range's
    partial upper bound is stretched to the end of its year or month.
    """

    def check(value: str) -> str:
        if value and not _PARTIAL_DATE.fullmatch(value):
            raise QueryError(
                f"{value!r} is not a date: dates in queries look like 2014-08-03, 2014-08 or 2014"
            )
        return value

    def upper(value: str) -> str:
        value = check(value)
        if len(value) == 4:
            return value + "-12-31"
        if len(value) == 7:
            return value + "-31"
        return value

    def range_(match: re.Match[str]) -> str:
        opening, low, high, closing = match.groups()
        return f"date:{opening}{check(low)} TO {upper(high)}{closing}"

    def term(match: re.Match[str]) -> str:
        value = match.group(1).rstrip("*")
        return f"date:{check(value)}*"

    return _DATE_TERM.sub(term, _DATE_RANGE.sub(range_, text))


def _alias_fields(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return FIELD_ALIASES.get(name.lower(), name) + ":"

    return re.sub(r"(?<![\w\"])([A-Za-z_]+):", replace, text)


def _query_error(query) -> str | None:
    from whoosh import query as q

    for node in [query, *list(query.leaves())] if not query.is_leaf() else [query]:
        if isinstance(node, q.qcore._NullQuery):
            continue
        if node.__class__.__name__ == "ErrorQuery":
            return str(getattr(node, "message", "invalid term"))
    return None


def search(case: Case, text: str, *, limit: int = 20, offset: int = 0) -> SearchResults:
    """Ranked pages for a query, ``limit`` at a time from ``offset``."""
    query = parse_query(text)
    ix = open_or_create(case)
    analyzer_tokens = NormalizingTokenizer()
    with ix.searcher() as searcher:
        page_number = offset // max(limit, 1) + 1
        results = searcher.search_page(query, page_number, pagelen=max(limit, 1), terms=True)
        hits = []
        for hit in results:
            row = case.page_row(hit["page_id"])
            matched = _matched_words(hit)
            matches = _match_spans(analyzer_tokens, row["text"], matched)
            snippet, snippet_spans = _snippet(row["text"], matches)
            hits.append(
                SearchHit(
                    record=views.page_summary(row),
                    score=hit.score or 0.0,
                    snippet=snippet,
                    snippet_matches=snippet_spans,
                    matches=matches,
                )
            )
        return SearchResults(query=text, total=results.total, offset=offset, hits=hits)


def matching_page_ids(case: Case, text: str) -> list[str]:
    """Every page id a query matches, in page-id order (for bulk marking)."""
    query = parse_query(text)
    ix = open_or_create(case)
    with ix.searcher() as searcher:
        results = searcher.search(query, limit=None)
        return sorted(hit["page_id"] for hit in results)


def count_by_status(case: Case, text: str) -> dict[str, int]:
    """How many pages a query matches, per review status (for the app's filter bar)."""
    query = parse_query(text)
    ix = open_or_create(case)
    with ix.searcher() as searcher:
        results = searcher.search(query, groupedby=sorting.FieldFacet("status"), limit=None)
        return {status: len(docs) for status, docs in results.groups("status").items()}


def _matched_words(hit: Hit) -> set[str]:
    words = set()
    for fieldname, value in hit.matched_terms():
        if fieldname == "text":
            words.add(value.decode("utf-8") if isinstance(value, bytes) else str(value))
    return words


def _match_spans(
    tokenizer: NormalizingTokenizer, text: str, words: Iterable[str]
) -> list[dict[str, Any]]:
    wanted = set(words)
    if not wanted:
        return []
    spans = []
    for token in tokenizer(text, chars=True, mode="query"):
        if token.text in wanted:
            spans.append(
                {
                    "start": token.startchar,
                    "end": token.endchar,
                    "text": text[token.startchar : token.endchar],
                }
            )
    return spans


def _snippet(text: str, matches: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """A window of the page around its densest run of matches, on one line."""
    if not matches:
        window_start, window_end = 0, min(len(text), SNIPPET_WIDTH)
    else:
        best_start, best_count = matches[0]["start"], 0
        for first in matches:
            count = sum(
                1 for m in matches if first["start"] <= m["start"] < first["start"] + SNIPPET_WIDTH
            )
            if count > best_count:
                best_start, best_count = first["start"], count
        window_start = max(0, best_start - SNIPPET_WIDTH // 4)
        window_end = min(len(text), window_start + SNIPPET_WIDTH)
        # do not cut words at the edges
        while window_start > 0 and not text[window_start - 1].isspace():
            window_start -= 1
        while window_end < len(text) and not text[window_end].isspace():
            window_end += 1
    raw = text[window_start:window_end]
    snippet = raw.replace("\n", " ")
    spans = [
        (m["start"] - window_start, m["end"] - window_start)
        for m in matches
        if window_start <= m["start"] and m["end"] <= window_end
    ]
    prefix = "…" if window_start > 0 else ""
    suffix = "…" if window_end < len(text) else ""
    shift = len(prefix)
    return prefix + snippet + suffix, [(s + shift, e + shift) for s, e in spans]
