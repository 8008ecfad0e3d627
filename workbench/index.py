"""The full-text index of a case: Whoosh, one document per page, rebuilt from SQLite at will.

Why it is shaped this way:
- SQLite is the truth. Every page (and every status, note or document change) is put on
  the ``index_queue`` table, with a new ticket, in the same transaction that changes it;
  :func:`sync` drains the queue into Whoosh and only then deletes the entries it read, by
  ticket: a page queued again in between keeps its entry. A crash in between re-indexes a
  few pages (``update_document`` is idempotent), never loses one.
- Whoosh commits are atomic, so readers never see a half-written index and are never
  blocked. Only one writer at a time: another waits up to ``timeout`` seconds for the
  lock, then fails with :class:`IndexBusyError`.
- The page text is not stored in the index (SQLite has it); snippets and match offsets
  are computed from the SQLite text with the same analyzer the index used.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whoosh import index as whoosh_index
from whoosh import matching, sorting
from whoosh import query as wquery
from whoosh.fields import ID, KEYWORD, NUMERIC, TEXT, Schema
from whoosh.filedb.filestore import FileStorage, RamStorage
from whoosh.index import LockError
from whoosh.matching.mcore import Matcher
from whoosh.query.spans import Span
from whoosh.searching import ResultsPage
from whoosh.util.filelock import try_for

from workbench import views
from workbench.analysis import (
    PAIR_SEPARATOR,
    NormalizedPositions,
    WordPairPositions,
    normalize_query,
    page_text_analyzer,
    word_spans,
)
from workbench.errors import ReadOnlyCaseError, UsageError, WorkbenchError, from_os_error
from workbench.store import Case

# The folder name carries the index layout version: a new layout is built beside the old
# one from the case database (every page is queued when the folder is new).
# v5: partner and disagree fields (issue #14); v6: the pairs field (issue #15)
INDEX_DIRNAME = "index-v6"
DEFAULT_WRITER_TIMEOUT = 30.0
SYNC_BATCH = 500
# Whoosh's posting pool spills sorted runs to disk past this many MB. It counts encoded
# bytes, while the pool holds Python tuples several times that size, so its default
# (128) let a sync or segment merge take hundreds of MB; this keeps it near 100 MB.
WRITER_LIMIT_MB = 16
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
    "finding": "finding",
    "findings": "finding",
    "partner": "partner",
    "disagree": "disagree",
}


class IndexBusyError(WorkbenchError):
    """Another process holds the index writer lock for longer than we wait."""

    exit_code = 5


class QueryError(UsageError):
    """The search query cannot be parsed."""


class IndexDamagedError(WorkbenchError):
    """The search index failed while being read (damaged bytes inside a segment).
    It is derived data: :func:`rebuild` makes it again from the case."""

    exit_code = 2

    def __init__(self, folder: str, detail: str) -> None:
        super().__init__(
            f"{folder}: the search index is damaged ({detail}); run 'workbench index --rebuild'"
        )
        self.detail = detail


def _page_text_field() -> TEXT:
    field = TEXT(analyzer=page_text_analyzer(), phrase=True)
    field.format = NormalizedPositions(field_boost=field.format.field_boost)
    return field


def _pairs_field() -> TEXT:
    """Adjacent word pairs of the page text, with positions (see :class:`PairPhrase`).

    Nothing scores this field (phrases score by their words in ``text``), yet it stays
    scorable: for a field without a lengths column Whoosh stats that missing column's
    file for every posting it writes (+2.5 s per 700 pages); the lengths cost a byte a page.
    """
    field = TEXT(analyzer=page_text_analyzer(), phrase=True)
    field.format = WordPairPositions(field_boost=field.format.field_boost)
    return field


def schema() -> Schema:
    return Schema(
        page_id=ID(stored=True, unique=True),
        path=ID(stored=True),
        source=ID(),  # the file name, lower-cased when indexed
        page=NUMERIC(int, stored=True),
        text=_page_text_field(),
        # the page's adjacent word pairs, for phrases in ``text`` (see PairPhrase)
        pairs=_pairs_field(),
        text_source=ID(stored=True),
        lang=ID(stored=True),
        status=ID(stored=True),
        document=ID(stored=True),
        notes=_page_text_field(),
        # ISO dates as keywords: ranges compare as strings (ISO order is date order).
        # Whoosh's multi-valued DATETIME field trips an assertion in its intersection
        # matcher ("oil AND date:2014" on a few thousand pages), so it is not used.
        date=KEYWORD(lowercase=False),
        # The same dates by year and by month, once per distinct date (the term frequency
        # is the number of the page's dates in that year or month): a range or a year is
        # a handful of terms instead of one per day, and scores the same (see
        # _rewrite_dates).
        date_year=KEYWORD(lowercase=False),
        date_month=KEYWORD(lowercase=False),
        # the checks with an open (not dismissed) finding on the page, and "any"
        finding=KEYWORD(lowercase=True),
        # each imported partner's verdict on the page: "SLUG__STATUS" and "SLUG__any"
        # (partner:paper_b:verified, partner:paper_b), and whether any partner disagrees
        partner=KEYWORD(lowercase=True),
        disagree=ID(),
    )


def index_dir(case: Case) -> Path:
    return case.root / INDEX_DIRNAME


def _drive_errors(*, read_only: str | None = None) -> Any:
    """A full or read-only drive met while writing the index leaves as the same typed
    error (and line) as in the store: ENOSPC -> DiskFullError, EROFS -> ReadOnlyCaseError.

    ``read_only``: what the function does on a read-only case, before trying: "skip"
    (return 0: nothing can be brought up to date; searches read the index as it is) or
    "refuse" (ReadOnlyCaseError).
    """

    def decorate(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(case: Case, *args: Any, **kwargs: Any) -> Any:
            if case.read_only and read_only == "skip":
                return 0
            if case.read_only and read_only == "refuse":
                raise ReadOnlyCaseError(
                    f"{index_dir(case)}: the case is read-only, so its search index cannot "
                    "be rebuilt; copy the case to a writable drive (or remount it read-write)"
                )
            try:
                return function(case, *args, **kwargs)
            except OSError as error:
                translated = from_os_error(error, str(index_dir(case)))
                if translated is None:
                    raise
                raise translated from error

        return wrapper

    return decorate


def _index_problem(folder: Path) -> str | None:
    """'missing', 'damaged' or None: does the index open, with every segment readable?

    Opening a reader opens each segment's files (a truncated or overwritten segment
    fails there); a damaged TOC fails to unpickle. Whoosh raises many exception types
    on such bytes, so any failure to open counts as damage.
    """
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    has_toc = any(n.startswith("_MAIN_") and n.endswith(".toc") for n in names)
    if not has_toc:
        return "damaged" if any(n.endswith(".seg") for n in names) else "missing"
    try:
        ix = FileStorage(str(folder), supports_mmap=False).open_index()
        with ix.reader() as reader:
            reader.doc_count()
            for fieldname in ("page_id", "text"):
                for _ in itertools.islice(reader.lexicon(fieldname), 1):
                    pass
    except Exception:  # noqa: BLE001 - whatever Whoosh raises on bad bytes is damage
        return "damaged"
    return None


def check(case: Case, *, timeout: float = DEFAULT_WRITER_TIMEOUT) -> str | None:
    """Make sure the case's index opens; rebuild it from the case if missing or damaged.

    Returns the line to show the user (None when there was nothing to do). A missing
    index whose every page is still queued (a new case, an ingest stopped before its
    first index commit) is not news: :func:`open_or_create` makes it as before. On a
    read-only case nothing can be rebuilt: :class:`ReadOnlyCaseError` says so.
    """
    folder = index_dir(case)
    problem = _index_problem(folder)
    if problem is None:
        return None
    if problem == "missing" and pending(case) >= case.page_total():
        return None
    if case.read_only:
        raise ReadOnlyCaseError(
            f"{folder}: the search index is {problem} and the case is read-only, so it "
            "cannot be rebuilt: copy the case to a writable drive (or remount it "
            "read-write) and search there"
        )
    count = rebuild(case, timeout=timeout)
    return f"{folder}: the search index was {problem}; rebuilt from the case ({count} pages)"


def _write_lock(case: Case) -> Any:
    """The lock Whoosh writers take (MAIN_WRITELOCK), without opening the index: a
    damaged index must still be lockable to be rebuilt."""
    folder = index_dir(case)
    folder.mkdir(parents=True, exist_ok=True)
    return FileStorage(str(folder)).lock("MAIN_WRITELOCK")


@_drive_errors()
def open_or_create(case: Case, *, mmap: bool = True) -> whoosh_index.Index:
    """The case's index, created (and every page queued for it) when missing.

    ``mmap=False`` for writers: Whoosh maps whole segment files to read them, and a
    writer reads every segment it merges, so during an ingest the mapped pages counted
    in the process's RSS grew with the index (to ~180 MB at 10,000 pages). Searchers
    keep the mapping (shared page cache, fast random access).
    """
    folder = index_dir(case)
    if whoosh_index.exists_in(str(folder)):
        return FileStorage(str(folder), supports_mmap=mmap).open_index()
    folder.mkdir(parents=True, exist_ok=True)
    created = FileStorage(str(folder), supports_mmap=mmap).create_index(schema())
    case.queue_all_pages_for_index()  # a new or lost index is filled from the case
    return created


def _writer(ix: whoosh_index.Index, timeout: float, limitmb: int = WRITER_LIMIT_MB):
    try:
        return ix.writer(timeout=timeout, limitmb=limitmb)
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
        "pairs": row["text"],
        "text_source": row["text_source"],
        "lang": page_language(row["text"], row["ocr_lang"]),
        "status": row["status"] or "unreviewed",
        "document": row["document_id"] or "",
        "notes": row["notes"] or "",
    }
    if row.get("partner_terms"):
        document["partner"] = row["partner_terms"]
    document["disagree"] = "true" if row.get("disagree") else "false"
    if row.get("open_findings"):
        document["finding"] = "any " + row["open_findings"].replace(",", " ")
    if valid_dates:
        document["date"] = " ".join(valid_dates)
        document["date_year"] = " ".join(iso[:4] for iso in valid_dates)
        document["date_month"] = " ".join(iso[:7] for iso in valid_dates)
    return document


def _rows(case: Case, row_ids: list[int]) -> Iterator[tuple[dict[str, Any], list[str]]]:
    from workbench import partners

    theirs = partners.partner_statuses(case, row_ids)
    for row in case.index_rows(row_ids):
        record = dict(row)
        verdicts = theirs.get(row["id"], {})
        record["partner_terms"] = " ".join(
            f"{partners.search_slug(name)}__{term}"
            for name, status in verdicts.items()
            for term in (status, "any")
        )
        record["disagree"] = partners.disagrees(row["status"] or "unreviewed", verdicts)
        yield record, case.page_date_isos(row["id"])


# ----- writing ------------------------------------------------------------------------


@_drive_errors(read_only="skip")
def sync(case: Case, *, timeout: float = DEFAULT_WRITER_TIMEOUT, batches: int | None = None) -> int:
    """Bring the index up to date with the case: drain ``index_queue``. Returns pages indexed.

    Each batch is read (queue tickets and page rows, in one read transaction) while this
    process holds the writer lock, so index commits follow the order of the states they
    read; only the tickets read are dequeued, after the commit: a page changed meanwhile
    is queued again under a new ticket and indexed by the next sync. Entries queued after
    the call began are left to the next call, so a sync ends even while pages keep coming.

    ``batches`` caps the commits (of up to SYNC_BATCH pages each) made in this call, for a
    caller that syncs while pages keep arriving and wants few, full commits.
    """
    ix = open_or_create(case, mmap=False)
    through = case.index_queue_head()
    total = 0
    for _ in range(batches) if batches is not None else itertools.count():
        if not case.index_queue_tickets(1, through):
            return total
        writer = _writer(ix, timeout)
        try:
            with case.read_snapshot():
                queued = case.index_queue_tickets(SYNC_BATCH, through)
                rows = list(_rows(case, [row for row, _ in queued]))
            for row, dates in rows:
                writer.update_document(**_document(row, dates))
            if queued:
                writer.commit()
            else:  # another process drained the queue meanwhile
                writer.cancel()
        except BaseException:
            writer.cancel()
            raise
        if not queued:
            return total
        case.index_queue_done(queued)
        total += len(queued)
    return total


def pending(case: Case) -> int:
    """Pages changed in the case but not yet in the index."""
    return case.index_queue_length()


@_drive_errors(read_only="refuse")
def rebuild(
    case: Case, *, timeout: float = DEFAULT_WRITER_TIMEOUT, limitmb: int = WRITER_LIMIT_MB
) -> int:
    """Rebuild the index from the SQLite case alone, then swap it in atomically.

    One writer, one commit: the result is a single segment. A larger ``limitmb`` (the
    posting pool) makes a big rebuild faster at the cost of memory. The queue's newest
    ticket is read before any page: afterwards only entries up to it are dequeued, since
    every page read after it shows at least those changes (later ones keep their entries).
    """
    folder = index_dir(case)
    fresh = folder.with_name(INDEX_DIRNAME + ".rebuild")
    old = folder.with_name(INDEX_DIRNAME + ".old")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    guard = _write_lock(case)
    if not try_for(guard.acquire, timeout=timeout, delay=0.1):
        raise IndexBusyError(
            f"the search index is being written by another workbench process and stayed "
            f"locked for {timeout:g} s; try again when that ingest finishes"
        )
    try:
        through = case.index_queue_head()
        fresh.mkdir(parents=True)
        ix = FileStorage(str(fresh), supports_mmap=False).create_index(schema())
        writer = ix.writer(limitmb=limitmb)
        count = 0
        for row_ids in case.page_row_id_batches(SYNC_BATCH):
            with case.read_snapshot():
                rows = list(_rows(case, row_ids))
            for row, dates in rows:
                writer.add_document(**_document(row, dates))
                count += 1
        writer.commit()
        folder.rename(old)
        fresh.rename(folder)
        case.index_queue_done_through(through)
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
    from whoosh import qparser  # only queries need the parser; mark and sync do not

    if not text.strip():
        raise QueryError("empty search query")
    parser = qparser.QueryParser("text", schema())
    parser.add_plugin(qparser.FuzzyTermPlugin())
    parser.add_plugin(qparser.GtLtPlugin())
    try:
        protected, exact = _protect_exact_fields(text)
        prepared = _restore_exact_fields(
            _date_terms(_alias_fields(normalize_query(protected))), exact
        )
    except QueryError as error:
        raise QueryError(f"cannot understand the query {text!r}: {error}") from None
    try:
        query = parser.parse(prepared)
    except Exception as error:  # Whoosh raises many types on odd input
        raise QueryError(f"cannot understand the query {text!r}: {error}") from None
    problem = _query_error(query)
    if problem:
        raise QueryError(f"cannot understand the query {text!r}: {problem}")
    return _pair_phrases(_rewrite_dates(query))


_PARTNER_STATUSES = ("unreviewed", "verified", "disputed", "illegible")
# Identifier fields are matched exactly as stored, so their values skip the text
# normalisation (which lower-cases): page and document ids are upper case, paths as found.
_EXACT_FIELDS = {"id": str.upper, "page_id": str.upper, "doc": str.upper,
                 "document": str.upper, "path": str, "finding": str.lower,
                 "findings": str.lower}  # fmt: skip
_EXACT_TERM = re.compile(
    r"(?<![\w\"])(id|page_id|doc|document|path|findings?):(\S+)", re.IGNORECASE
)


_PARTNER_TERM = re.compile(
    r'(?<![\w"])partner:(?:"([^"]+)"|([^\s:()"]+))(?::([A-Za-z*]+))?', re.IGNORECASE
)


def _protect_exact_fields(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Swap identifier terms for placeholders that normalisation leaves alone."""
    exact: list[tuple[str, str]] = []

    def partner(match: re.Match[str]) -> str:
        from workbench import partners

        name = match.group(1) or match.group(2)
        status = (match.group(3) or "any").lower()
        if status not in (*_PARTNER_STATUSES, "any", "*"):
            raise QueryError(
                f"{status!r} is not a status: partner:NAME:verified (or disputed,"
                " illegible, unreviewed)"
            )
        exact.append(("partner", f"{partners.search_slug(name)}__{status.replace('*', 'any')}"))
        return f" wbexactterm{len(exact) - 1}x "

    text = _PARTNER_TERM.sub(partner, text)

    def hide(match: re.Match[str]) -> str:
        field_name = FIELD_ALIASES.get(match.group(1).lower(), match.group(1).lower())
        value = _EXACT_FIELDS[match.group(1).lower()](match.group(2))
        exact.append((field_name, value))
        return f" wbexactterm{len(exact) - 1}x "

    return _EXACT_TERM.sub(hide, text), exact


def _restore_exact_fields(text: str, exact: list[tuple[str, str]]) -> str:
    def show(match: re.Match[str]) -> str:
        field_name, value = exact[int(match.group(1))]
        return f"{field_name}:{value}"

    return re.sub(r"wbexactterm(\d+)x", show, text)


# Dates the index holds: months 01-12, days 01-31 (so a month is covered by -01 to -31).
_ISO_DATE = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])")


def _rewrite_dates(query: wquery.Query) -> wquery.Query:
    """Turn ``date`` prefixes and ranges into year and month terms where they cover them.

    Why: a year or a six-month range is hundreds of day terms, and Whoosh unions them
    one matcher per term. Each day term scores 1 (the field is not scorable), so a page
    scores the number of its dates in the range; a year or month term's frequency is
    the number of the page's dates in it, so the score, the hits and the order stay.
    """
    if query.is_leaf():
        if getattr(query, "fieldname", None) != "date" or query.boost != 1.0:
            return query
        if isinstance(query, wquery.Prefix):
            if re.fullmatch(r"\d{4}", query.text):
                return wquery.Term("date_year", query.text)
            if re.fullmatch(r"\d{4}-(?:0[1-9]|1[0-2])", query.text):
                return wquery.Term("date_month", query.text)
        elif isinstance(query, wquery.TermRange) and not (query.startexcl or query.endexcl):
            return _date_span(query.start, query.end) or query
        return query
    return query.apply(_rewrite_dates)


def _date_span(low: str | None, high: str | None) -> wquery.Query | None:
    """Years, months and day ranges that together hold exactly the dates in [low, high]."""
    if not low or not high:
        return None
    low = {4: low + "-01-01", 7: low + "-01"}.get(len(low), low)
    if not (_ISO_DATE.fullmatch(low) and _ISO_DATE.fullmatch(high)) or low > high:
        return None
    year, month = int(low[:4]), int(low[5:7])
    last = (int(high[:4]), int(high[5:7]))
    parts: list[wquery.Query] = []
    while (year, month) <= last:
        first_day, last_day = f"{year:04d}-{month:02d}-01", f"{year:04d}-{month:02d}-31"
        if month == 1 and low <= first_day and f"{year:04d}-12-31" <= high:
            parts.append(wquery.Term("date_year", f"{year:04d}"))
            year += 1
            continue
        if low <= first_day and last_day <= high:
            parts.append(wquery.Term("date_month", f"{year:04d}-{month:02d}"))
        else:
            parts.append(wquery.TermRange("date", max(low, first_day), min(high, last_day)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if len(parts) == 1:
        return parts[0]
    union = wquery.Or(parts)
    # Preload the union into arrays (sums the scores like the default tree of union
    # matchers, which costs several times more per page at 100,000 pages).
    union.matcher_type = wquery.Or.ARRAY_MATCHER
    return union


def _pair_phrases(query: wquery.Query) -> wquery.Query:
    """Exact phrases in ``text`` become :class:`PairPhrase` (same words, same meaning)."""
    if isinstance(query, wquery.Phrase):
        if type(query) is wquery.Phrase and query.fieldname == "text" and query.slop == 1:
            return PairPhrase(
                query.fieldname, query.words, boost=query.boost, char_ranges=query.char_ranges
            )
        return query
    if query.is_leaf():
        return query
    return query.apply(_pair_phrases)


class PairPhrase(wquery.Phrase):
    """A phrase in ``text`` answered from the ``pairs`` field; matches and scores unchanged.

    Why: Whoosh's phrase intersects the phrase's words and reads their positions on every
    page that has them all (400-700 ms at 100,000 pages for a phrase of common words).
    Here the pages are those holding every adjacent pair of the phrase (one posting list
    for two words) with, for three words or more, pair i at position p + i: the same
    pages as adjacent words in order. The score is still the sum of the words' own
    scores in ``text`` (what Whoosh's phrase gives), from the same term matchers in the
    same tree, so the ranking is identical. An index without the field (a scratch one
    of another layout) takes Whoosh's own path.
    """

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        schema_ = searcher.schema
        if self.slop != 1 or len(self.words) < 2 or "pairs" not in schema_:
            return super().matcher(searcher, context)
        field = schema_[self.fieldname]
        reader = searcher.reader()
        word_matchers = []
        for word in self.words:
            try:
                word = field.to_bytes(word)
            except ValueError:
                return matching.NullMatcher()
            if (self.fieldname, word) not in reader:
                return matching.NullMatcher()
            word_matchers.append(wquery.Term(self.fieldname, word).matcher(searcher, context))
        pair_matchers = []
        for first, second in itertools.pairwise(self.words):
            pair = first + PAIR_SEPARATOR + second
            if ("pairs", pair) not in reader:
                return matching.NullMatcher()
            pair_matchers.append(reader.postings("pairs", pair))
        m: Any = _PairPhraseMatcher(pair_matchers, word_matchers)
        if self.boost != 1.0:
            m = matching.WrappingMatcher(m, boost=self.boost)
        return m


def _tree_sum(values: list[float]) -> float:
    """Sum in the order of Whoosh's binary tree of intersections (make_binary_tree), whose
    score is a.score() + b.score(): the same floats, so the same ranking."""
    if len(values) == 1:
        return values[0]
    half = len(values) // 2
    return _tree_sum(values[:half]) + _tree_sum(values[half:])


class _PairPhraseMatcher(Matcher):  # type: ignore[misc]
    """Pages with every pair of the phrase (for 3+ words, at consecutive positions), driven
    by the first pair's posting list; scored by the words' own matchers.

    Why not Whoosh's intersection and span wrappers around the same lists: at 100,000
    pages their per-page method calls cost more than the postings (10-15 µs a match)."""

    def __init__(self, pairs: list[Any], words: list[Any]) -> None:
        self._pairs = pairs
        self._words = words
        self._others = pairs[1:] + words
        self._done = False
        self._find()

    def _find(self) -> None:
        first = self._pairs[0]
        others = self._others
        while first.is_active():
            target = first.id()
            for other in others:
                if other.id() < target:
                    other.skip_to(target)
                    if not other.is_active():
                        self._done = True
                        return
                if other.id() > target:
                    first.skip_to(other.id())
                    break
            else:
                if len(self._pairs) == 1 or self._starts():
                    return
                first.next()

    def _starts(self) -> list[int]:
        """Where the phrase starts on the current page (pair i at start + i)."""
        pairs = self._pairs
        starts = set(pairs[0].value_as("positions"))
        for offset, other in enumerate(pairs[1:], start=1):
            starts &= {p - offset for p in other.value_as("positions")}
            if not starts:
                return []
        return sorted(starts)

    def is_active(self) -> bool:
        return not self._done and self._pairs[0].is_active()

    def id(self) -> int:
        return self._pairs[0].id()

    def next(self) -> None:
        self._pairs[0].next()
        self._find()

    def skip_to(self, id: int) -> None:
        if self.is_active() and id > self.id():
            self._pairs[0].skip_to(id)
            self._find()

    def all_ids(self) -> Iterator[int]:
        while self.is_active():
            yield self.id()
            self.next()

    def reset(self) -> None:
        for matcher in self._pairs + self._words:
            matcher.reset()
        self._done = False
        self._find()

    def copy(self) -> Any:
        return self.__class__([m.copy() for m in self._pairs], [m.copy() for m in self._words])

    def replace(self, minquality: float = 0) -> Any:
        return self if self.is_active() else matching.NullMatcher()

    def is_leaf(self) -> bool:
        return False

    def children(self) -> list[Any]:
        return list(self._words)

    def depth(self) -> int:
        return 1

    def supports(self, astype: str) -> bool:
        return False

    def supports_block_quality(self) -> bool:
        return False

    def max_quality(self) -> float:
        return _tree_sum([m.max_quality() for m in self._words])

    def block_quality(self) -> float:
        return _tree_sum([m.block_quality() for m in self._words])

    def weight(self) -> float:
        return _tree_sum([m.weight() for m in self._words])

    def score(self) -> float:
        return _tree_sum([m.score() for m in self._words])

    def spans(self) -> list[Any]:
        last = len(self._pairs)
        starts = self._pairs[0].value_as("positions") if last == 1 else self._starts()
        return [Span(p, p + last) for p in starts]


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


# One open searcher per index folder, shared by every search in the process: opening the
# index and its segment readers costs more than a small search. A commit from any
# process makes it out of date, and it is reopened; so is a rebuilt index (a new folder,
# a new inode). Whoosh searchers are not thread-safe: the lock
# serialises their use (the app searches from worker threads).
_SEARCHERS: dict[str, tuple[tuple[int, int], Any]] = {}
_SEARCHERS_LOCK = threading.RLock()
_SEARCHERS_MAX = 4


@contextlib.contextmanager
def _searcher(case: Case) -> Iterator[Any]:
    """The cached, refreshed searcher of the case's index, held under the cache lock.

    Whoosh meeting damaged bytes while opening or searching (it raises many types, e.g.
    "Block tag error") leaves as :class:`IndexDamagedError`, and the searcher is dropped.
    """
    key = str(index_dir(case))
    with _SEARCHERS_LOCK:
        try:
            with _cached_searcher(case) as searcher:
                yield searcher
        except (WorkbenchError, GeneratorExit):
            raise
        except Exception as error:  # noqa: BLE001 - whatever Whoosh raises on bad bytes
            stale = _SEARCHERS.pop(key, None)
            if stale is not None:
                with contextlib.suppress(Exception):
                    stale[1].close()
            raise IndexDamagedError(key, f"{type(error).__name__}: {error}") from error


@contextlib.contextmanager
def _cached_searcher(case: Case) -> Iterator[Any]:
    folder = index_dir(case)
    key = str(folder)
    with _SEARCHERS_LOCK:
        ix = open_or_create(case) if not whoosh_index.exists_in(key) else None
        stat = folder.stat()
        identity = (stat.st_dev, stat.st_ino)
        cached = _SEARCHERS.pop(key, None)
        if cached is not None and cached[0] == identity and _retrying(cached[1].up_to_date):
            searcher = cached[1]
        else:
            # Not Searcher.refresh(): it reuses the readers of unchanged segment ids and
            # so keeps their OLD deletions; an updated page then shows up twice (the old
            # copy in its segment, the new one in the next).
            if cached is not None:
                cached[1].close()
            searcher = _retrying(lambda: (ix or whoosh_index.open_dir(key)).searcher())
        _SEARCHERS[key] = (identity, searcher)  # most recently used last
        while len(_SEARCHERS) > _SEARCHERS_MAX:
            _, oldest = _SEARCHERS.pop(next(iter(_SEARCHERS)))
            oldest.close()
        yield searcher


def _retrying(open_: Any, attempts: int = 5) -> Any:
    """Open (or look at) the index again when a writer replaced its table of contents or
    merged a segment between our listing its files and reading them: a missing file there
    is a commit in progress in another process, not damage."""
    for attempt in range(attempts):
        try:
            return open_()
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def close_searchers() -> None:
    """Close the cached searchers (tests that delete case folders, long-lived apps)."""
    with _SEARCHERS_LOCK:
        for _, searcher in _SEARCHERS.values():
            searcher.close()
        _SEARCHERS.clear()


def search(case: Case, text: str, *, limit: int = 20, offset: int = 0) -> SearchResults:
    """Ranked pages for a query, ``limit`` at a time from ``offset``.

    Hits are scored without collecting matched terms per document (a per-hit cost); the
    words to highlight are the query's own positive ``text`` terms (wildcards and fuzzy
    terms expanded) found on the page.
    """
    query = parse_query(text)
    with _searcher(case) as searcher:
        pagelen = max(limit, 1)
        page_number = offset // pagelen + 1
        # One pass over every match, counting as it scores: no block-max skipping and
        # no matcher replacement (a union narrowed to the side that can still reach the
        # top). With them on, Whoosh counts the total in a second pass over every match
        # (20-300 ms at 100,000 pages), and on page text, where matches spread evenly,
        # they skipped 0 or 1 block of 128 pages for all but one of the bench's queries
        # (25 for date:2014-08, 8 ms either way): 1.3-3x slower than this one pass.
        collector = searcher.collector(limit=page_number * pagelen, optimize=False)
        collector.replace = 0
        # needs_current: build the same matchers as a search that collects terms, so a
        # multi-term range scores a page by how many of its terms it has, whatever the
        # index size (Whoosh otherwise preloads such ORs with a flat score)
        context = searcher.context(needs_current=True)
        searcher.search_with_collector(query, collector, context=context)
        # the count of this pass (TopCollector.count without skipping)
        results = ResultsPage(collector.results(), page_number, pagelen)
        total = results.total
        page_ids = [hit["page_id"] for hit in results]
        scores = [hit.score or 0.0 for hit in results]
        words = _highlight_words(query, searcher.reader()) if page_ids else set()
    rows = case.page_rows_by_id(page_ids)
    hits = []
    for page_id, score in zip(page_ids, scores, strict=True):
        row = rows.get(page_id.upper())
        if row is None:  # deleted from the case since it was indexed
            row = case.page_row(page_id)
        matches = _match_spans(row["text"], words)
        snippet, snippet_spans = _snippet(row["text"], matches)
        hits.append(
            SearchHit(
                record=views.page_summary(row),
                score=score,
                snippet=snippet,
                snippet_matches=snippet_spans,
                matches=matches,
            )
        )
    return SearchResults(query=text, total=total, offset=offset, hits=hits)


def matching_page_ids(case: Case, text: str) -> list[str]:
    """Every page id a query matches, in page-id order (for bulk marking)."""
    query = parse_query(text)
    with _searcher(case) as searcher:
        docnums = searcher.docs_for_query(query)
        return sorted(searcher.stored_fields(docnum)["page_id"] for docnum in docnums)


# Past this many pages waiting for the index, a query is not evaluated page by page (the
# index is being rebuilt or an ingest is far ahead): the caller is told to sync first.
CURRENT_MATCH_PENDING_LIMIT = 5 * SYNC_BATCH


def current_matching_page_ids(case: Case, text: str) -> list[str]:
    """Every page id a query matches in the case as it is now, in page-id order.

    Why: the index lags the case by the pages on ``index_queue`` (a sync that could not
    get the writer lock, a mark in another process a moment ago). Those pages are taken
    out of the index's answer and matched instead against their current rows, in a small
    in-memory index built the same way. The queue is read before the index is searched:
    a page off the queue then is in the index as it is (its entry was deleted only after
    the index commit). Inside a write transaction (``review.mark_query``) nothing changes
    between this answer and what is done with it.
    """
    query = parse_query(text)
    if not whoosh_index.exists_in(str(index_dir(case))):
        raise IndexBusyError("the search index is missing; run 'workbench index' and try again")
    with case.read_snapshot():
        waiting = case.page_pending_index()
        if len(waiting) > CURRENT_MATCH_PENDING_LIMIT:
            raise IndexBusyError(
                f"the search index is {len(waiting)} page(s) behind the case (an ingest or "
                "rebuild is running?); run 'workbench index' and try again"
            )
        rows = list(_rows(case, waiting)) if waiting else []
    stale = {row["page_id"] for row, _ in rows}
    with _searcher(case) as searcher:
        found = {
            page_id
            for docnum in searcher.docs_for_query(query)
            if (page_id := searcher.stored_fields(docnum)["page_id"]) not in stale
        }
    if rows:
        scratch = RamStorage().create_index(schema())
        writer = scratch.writer()
        for row, dates in rows:
            writer.add_document(**_document(row, dates))
        writer.commit()
        with scratch.searcher() as searcher:
            found.update(
                searcher.stored_fields(docnum)["page_id"]
                for docnum in searcher.docs_for_query(query)
            )
    return sorted(found)


def count_by_status(case: Case, text: str) -> dict[str, int]:
    """How many pages a query matches, per review status (for the app's filter bar)."""
    query = parse_query(text)
    with _searcher(case) as searcher:
        results = searcher.search(query, groupedby=sorting.FieldFacet("status"), limit=None)
        return {status: len(docs) for status, docs in results.groups("status").items()}


def _highlight_words(query: wquery.Query, reader: Any) -> set[str]:
    """The ``text`` words a hit can have matched: every term outside a NOT, expanded.

    Why: equals what Whoosh's per-hit ``matched_terms`` gives for the text field once it
    is intersected with the page's own words, without paying for it on every match.
    """
    if isinstance(query, wquery.Not):
        return set()
    if isinstance(query, wquery.AndNot):
        return _highlight_words(query.a, reader)
    if not query.is_leaf():
        words: set[str] = set()
        for child in query.children():
            words |= _highlight_words(child, reader)
        return words
    found = set()
    for fieldname, value in query.existing_terms(reader, phrases=True, expand=True):
        if fieldname == "text":
            found.add(value.decode("utf-8") if isinstance(value, bytes) else str(value))
    return found


def _match_spans(text: str, words: set[str]) -> list[dict[str, Any]]:
    """Every occurrence on the page of a matched word, as original-text spans."""
    return [
        {"start": start, "end": end, "text": text[start:end]}
        for start, end in word_spans(text, words)
    ]


def _snippet(text: str, matches: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """A window of the page around its densest run of matches, on one line."""
    if not matches:
        window_start, window_end = 0, min(len(text), SNIPPET_WIDTH)
    else:
        # matches are in text order: a sliding window counts those starting within
        # SNIPPET_WIDTH of each match (the first densest one wins)
        starts = [m["start"] for m in matches]
        best_start, best_count = starts[0], 0
        last = 0
        for first, begin in enumerate(starts):
            last = max(last, first)
            while last < len(starts) and starts[last] < begin + SNIPPET_WIDTH:
                last += 1
            if last - first > best_count:
                best_start, best_count = begin, last - first
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
