"""The case: one folder holding one SQLite database plus files derived from it.

The database is the single source of truth (the search index, thumbnails and renders
can all be rebuilt from it). It runs in WAL mode so readers never block the writer,
and every schema change is a numbered migration recorded in ``PRAGMA user_version``.
The tables are documented in README.md ("The case database") for anyone who wants to
open the file in another SQLite tool.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import (
    CaseError,
    DamagedCaseError,
    DiskFullError,
    ReadOnlyCaseError,
    UsageError,
    WorkbenchError,
    from_os_error,
    read_only_message,
)

DATABASE_NAME = "workbench.sqlite"
DEFAULT_PREFIX = "WB"
DEFAULT_LANGUAGES = "eng"
PAGE_ID_DIGITS = 6
BUSY_TIMEOUT_MS = 30_000
# A database up to this size gets PRAGMA quick_check each time it is opened (about
# 0.5 ms per MB when cached: ~1.5 ms for a 700-page case, ~35 ms at this bound, about
# 17,000 pages), so a damaged page is found before a command reads or writes near it.
# Larger cases skip it; a damaged page met later still gives the same one line.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024

_PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")

# Each entry moves the schema from version N to N+1. Never edit a released entry:
# append a new one, so existing cases upgrade in place.
MIGRATIONS: list[str] = [
    # 1: sources, pages, dates found in page text, case settings
    """
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE sources (
        id            INTEGER PRIMARY KEY,
        path          TEXT NOT NULL,
        sha256        TEXT,
        size          INTEGER,
        kind          TEXT,
        status        TEXT NOT NULL CHECK (status IN ('ingested', 'failed', 'duplicate')),
        error         TEXT,
        duplicate_of  INTEGER REFERENCES sources(id),
        page_count    INTEGER,
        metadata      TEXT NOT NULL DEFAULT '{}',
        recorded_at   TEXT NOT NULL
    );
    CREATE UNIQUE INDEX sources_path_sha ON sources(path, ifnull(sha256, ''));
    CREATE UNIQUE INDEX sources_ingested_sha ON sources(sha256) WHERE status = 'ingested';
    CREATE TABLE pages (
        id                  INTEGER PRIMARY KEY,
        page_id             TEXT NOT NULL UNIQUE,
        source_id           INTEGER NOT NULL REFERENCES sources(id),
        page_number         INTEGER NOT NULL,
        text                TEXT NOT NULL,
        text_source         TEXT NOT NULL CHECK (text_source IN ('layer', 'ocr', 'none')),
        char_count          INTEGER NOT NULL,
        ocr_engine          TEXT,
        ocr_lang            TEXT,
        ocr_confidence      REAL,
        ocr_rotation        INTEGER,
        ocr_skew            REAL,
        orientation_method  TEXT,
        page_sha256         TEXT,
        width_pt            REAL,
        height_pt           REAL,
        marker_number       INTEGER,
        marker_total        INTEGER,
        marker_text         TEXT,
        metadata            TEXT NOT NULL DEFAULT '{}',
        error               TEXT,
        UNIQUE (source_id, page_number)
    );
    CREATE TABLE page_dates (
        page_row   INTEGER NOT NULL REFERENCES pages(id),
        start      INTEGER NOT NULL,
        end        INTEGER NOT NULL,
        original   TEXT NOT NULL,
        calendar   TEXT NOT NULL,
        iso        TEXT NOT NULL
    );
    CREATE INDEX page_dates_page ON page_dates(page_row);
    CREATE INDEX page_dates_iso ON page_dates(iso);
    """,
    # 2: pages waiting to be (re)indexed by the search index; drained by index.sync
    """
    CREATE TABLE index_queue (
        page_row  INTEGER PRIMARY KEY REFERENCES pages(id)
    );
    INSERT INTO index_queue(page_row) SELECT id FROM pages;
    """,
    # 3: the review log (append-only, hash-chained) and the state derived from it
    """
    CREATE TABLE review_events (
        seq          INTEGER PRIMARY KEY,
        kind         TEXT NOT NULL,
        page_id      TEXT,
        document_id  TEXT,
        old_status   TEXT,
        new_status   TEXT,
        reviewer     TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
        at           TEXT NOT NULL,
        note         TEXT,
        page_sha256  TEXT,
        payload      TEXT NOT NULL DEFAULT '{}',
        prev_hash    TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE
    );
    CREATE INDEX review_events_page ON review_events(page_id);
    CREATE TRIGGER review_events_no_update BEFORE UPDATE ON review_events
    BEGIN SELECT RAISE(ABORT, 'the review log is append-only: events cannot be changed'); END;
    CREATE TRIGGER review_events_no_delete BEFORE DELETE ON review_events
    BEGIN SELECT RAISE(ABORT, 'the review log is append-only: events cannot be deleted'); END;
    CREATE TABLE page_review (
        page_row     INTEGER PRIMARY KEY REFERENCES pages(id),
        status       TEXT NOT NULL DEFAULT 'unreviewed',
        reviewer     TEXT,
        reviewed_at  TEXT,
        notes        TEXT NOT NULL DEFAULT '',
        document_id  TEXT
    );
    CREATE TABLE documents (
        id             TEXT PRIMARY KEY,
        title          TEXT,
        date_iso       TEXT,
        date_jalali    TEXT,
        date_original  TEXT,
        claimed_pages  INTEGER,
        created_by     TEXT NOT NULL,
        created_at     TEXT NOT NULL
    );
    """,
    # 4: every (re)queueing of a page gets a new ticket, never reused (AUTOINCREMENT), so
    # index.sync and index.rebuild dequeue only the entries they indexed: a page queued
    # again meanwhile keeps its entry (INSERT OR IGNORE + DELETE lost such updates)
    """
    CREATE TABLE index_queue_tickets (
        ticket    INTEGER PRIMARY KEY AUTOINCREMENT,
        page_row  INTEGER NOT NULL UNIQUE REFERENCES pages(id)
    );
    INSERT INTO index_queue_tickets(page_row) SELECT page_row FROM index_queue ORDER BY page_row;
    DROP TABLE index_queue;
    ALTER TABLE index_queue_tickets RENAME TO index_queue;
    """,
    # 5: which page fingerprint each page carries (pages stored before are version 1: the
    # 72 dpi rendering); a source file found changed since ingest when a page of it was
    # about to be read again (re-OCR, the app's page image): its SHA-256 then and when
    """
    ALTER TABLE pages ADD COLUMN fingerprint_version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE sources ADD COLUMN changed_sha256 TEXT;
    ALTER TABLE sources ADD COLUMN changed_seen_at TEXT;
    """,
    # 6: findings of the case's checks (authenticity, source safety), and what each check
    # last looked at, so a re-run checks only what changed. Dismissals are review events.
    """
    CREATE TABLE findings (
        finding_id     TEXT PRIMARY KEY,
        check_name     TEXT NOT NULL,
        unit           TEXT NOT NULL,
        severity       TEXT NOT NULL CHECK (severity IN ('info', 'warn', 'alert')),
        page_ids       TEXT NOT NULL DEFAULT '[]',
        source_sha256  TEXT,
        message        TEXT NOT NULL,
        evidence       TEXT NOT NULL DEFAULT '{}',
        check_version  INTEGER NOT NULL,
        ran_at         TEXT NOT NULL,
        content_sha256 TEXT NOT NULL
    );
    CREATE INDEX findings_unit ON findings(check_name, unit);
    CREATE TABLE finding_pages (
        finding_id  TEXT NOT NULL,
        page_id     TEXT NOT NULL,
        position    INTEGER NOT NULL,
        PRIMARY KEY (finding_id, position)
    );
    CREATE INDEX finding_pages_page ON finding_pages(page_id);
    CREATE TABLE check_units (
        check_name     TEXT NOT NULL,
        unit           TEXT NOT NULL,
        inputs_sha256  TEXT NOT NULL,
        check_version  INTEGER NOT NULL,
        ran_at         TEXT NOT NULL,
        PRIMARY KEY (check_name, unit)
    );
    CREATE INDEX review_events_kind ON review_events(kind);
    CREATE TABLE page_signatures (
        page_row      INTEGER PRIMARY KEY REFERENCES pages(id),
        basis_sha256  TEXT NOT NULL,
        image_hash    TEXT,
        minhash       BLOB
    );
    """,
    # 7: two newsrooms. log_checkpoints: a second record of every signed checkpoint event
    # (seq and hash), so a log cut short after a signed checkpoint is caught by 'log
    # verify'. partners / partner_pages / partner_reviews: a partner's imported log,
    # kept apart from our own chain: the head and event count last imported (a later
    # import must extend it), their events as imported (append-only, so 'log verify'
    # re-checks their chain), their pages (fingerprint, file SHA-256, page number) and
    # their review state per page, derived from their verified events.
    """
    CREATE TABLE log_checkpoints (
        seq   INTEGER PRIMARY KEY,
        hash  TEXT NOT NULL
    );
    CREATE TABLE partners (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        head         TEXT NOT NULL,
        events       INTEGER NOT NULL,
        signers      TEXT NOT NULL DEFAULT '[]',
        imported_at  TEXT NOT NULL
    );
    CREATE TABLE partner_pages (
        partner_id           INTEGER NOT NULL REFERENCES partners(id),
        page_id              TEXT NOT NULL,
        page_sha256          TEXT,
        fingerprint_version  INTEGER,
        source_sha256        TEXT,
        page_number          INTEGER,
        PRIMARY KEY (partner_id, page_id)
    );
    CREATE INDEX partner_pages_sha ON partner_pages(page_sha256);
    CREATE INDEX partner_pages_file ON partner_pages(source_sha256, page_number);
    CREATE TABLE partner_events (
        partner_id  INTEGER NOT NULL REFERENCES partners(id),
        seq         INTEGER NOT NULL,
        event       TEXT NOT NULL,
        PRIMARY KEY (partner_id, seq)
    );
    CREATE TRIGGER partner_events_no_update BEFORE UPDATE ON partner_events
    BEGIN SELECT RAISE(ABORT, 'an imported log is append-only: events cannot be changed'); END;
    CREATE TRIGGER partner_events_no_delete BEFORE DELETE ON partner_events
    BEGIN SELECT RAISE(ABORT, 'an imported log is append-only: events cannot be deleted'); END;
    CREATE TABLE partner_reviews (
        partner_id   INTEGER NOT NULL REFERENCES partners(id),
        page_id      TEXT NOT NULL,
        status       TEXT NOT NULL,
        reviewer     TEXT,
        reviewed_at  TEXT,
        notes        TEXT NOT NULL DEFAULT '',
        page_sha256  TEXT,
        PRIMARY KEY (partner_id, page_id)
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

# What one reading of a page (text layer or OCR) sets; re-OCR replaces exactly these.
_READING_COLUMNS = (
    "text",
    "text_source",
    "char_count",
    "ocr_engine",
    "ocr_lang",
    "ocr_confidence",
    "ocr_rotation",
    "ocr_skew",
    "orientation_method",
    "marker_number",
    "marker_total",
    "marker_text",
    "error",
)


def _reading_values(page: dict[str, Any]) -> tuple[Any, ...]:
    values = dict(page, char_count=len(page["text"]))
    return tuple(values.get(column) for column in _READING_COLUMNS)


_REVIEW_COLUMNS = (
    "ifnull(r.status, 'unreviewed') AS status, r.reviewer, r.reviewed_at,"
    " r.document_id, ifnull(r.notes, '') AS notes"
)


def utc_now() -> str:
    """UTC timestamp, ISO 8601, second precision: what every record carries."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def format_page_id(prefix: str, number: int) -> str:
    return f"{prefix}-{number:0{PAGE_ID_DIGITS}d}"


@dataclass(frozen=True)
class SourceRow:
    id: int
    path: str
    sha256: str | None
    size: int | None
    kind: str | None
    status: str
    error: str | None
    duplicate_of: int | None
    page_count: int | None
    metadata: dict[str, Any]
    recorded_at: str


class Case:
    """An open case folder. Use :meth:`open` or :meth:`create`; close when done."""

    def __init__(
        self,
        root: Path,
        connection: sqlite3.Connection,
        *,
        read_only: bool = False,
        scratch: Path | None = None,
    ) -> None:
        self.root = root
        self.db = connection
        # True when the case folder or database cannot be written (a read-only drive):
        # reads work, every transaction is refused with one line.
        self.read_only = read_only
        self._scratch = scratch  # a private copy read instead of the case (see _connect_read_only)

    # ----- opening -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        create: bool = False,
        prefix: str | None = None,
        writable: bool = False,
    ) -> Case:
        """Open the case at ``root``; with ``create`` make it first if it is missing.

        A case on a read-only drive opens read-only (``read_only`` is True) unless
        ``writable`` (or ``create``) asks for writing: then :class:`ReadOnlyCaseError`.
        A database that is not SQLite, truncated or damaged gives :class:`DamagedCaseError`.
        """
        root = Path(root)
        database = root / DATABASE_NAME
        if not database.exists():
            if not create:
                raise CaseError(
                    f"{root}: no case here (no {DATABASE_NAME}); "
                    "run 'workbench ingest' or 'workbench init' to create one, "
                    "or point --case / WORKBENCH_CASE at an existing case"
                )
            if root.exists() and not root.is_dir():
                raise CaseError(f"{root}: exists and is not a folder; choose another --case")
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise translate_error(error, root) or CaseError(
                    f"{root}: cannot create the case folder ({error.strerror})"
                ) from None
        read_only = _is_read_only(root, database)
        if read_only and (writable or create):
            raise ReadOnlyCaseError(read_only_message(str(root)))
        _check_not_empty(database)
        scratch = None
        try:
            if read_only:
                connection, scratch = _connect_read_only(database)
            else:
                connection = _connect(database)
        except sqlite3.Error as error:
            raise translate_error(error, root) or CaseError(
                f"{database}: cannot be opened ({error})"
            ) from None
        case = cls(root, connection, read_only=read_only, scratch=scratch)
        try:
            case._check_health(database)
            case._migrate()
            case._init_settings(prefix)
        except BaseException as error:
            case.close()
            if isinstance(error, sqlite3.Error | OSError):
                translated = translate_error(error, root)
                if translated is not None:
                    raise translated from None
            raise
        return case

    def close(self) -> None:
        self.db.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _check_health(self, database: Path) -> None:
        """PRAGMA quick_check on a database small enough to check in a few ms."""
        if database.stat().st_size > QUICK_CHECK_MAX_BYTES:
            return
        problems = [row[0] for row in self.db.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:
            raise _damaged(database, " ".join(problems))

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise _damaged(self.root / DATABASE_NAME, "it holds another program's tables")
        if version < SCHEMA_VERSION and self.read_only:
            raise ReadOnlyCaseError(
                f"{self.root}: the case was written by an older workbench and must be "
                "upgraded, which needs a writable drive: copy the case to one (or remount "
                "it read-write) and run the command again"
            )
        if version > SCHEMA_VERSION:
            raise CaseError(
                f"{self.root}: this case was written by a newer workbench "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade workbench"
            )
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                for statement in _split_sql(MIGRATIONS[number]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    def _init_settings(self, prefix: str | None) -> None:
        existing = self.get_setting("prefix")
        if existing is None:
            chosen = (prefix or DEFAULT_PREFIX).upper()
            if not _PREFIX_RE.match(chosen):
                raise UsageError(
                    f"page id prefix {prefix!r} is not usable: use 1-16 capital letters, "
                    "digits or _, starting with a letter (e.g. WB, LEAK2019)"
                )
            with self.transaction():
                self.set_setting("prefix", chosen)
                self.set_setting("created_at", utc_now())
                self.set_setting("languages", DEFAULT_LANGUAGES)
        elif prefix and prefix.upper() != existing:
            raise UsageError(
                f"{self.root}: this case already numbers its pages {existing}-...; "
                f"the prefix cannot change to {prefix.upper()!r}"
            )

    # ----- transactions and settings -------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (Ctrl-C included).

        The store's write boundary: a full disk, a read-only drive or a damaged database
        met here leaves as the typed error (see :func:`translate_error`), never as a raw
        sqlite3 error; SQLite itself keeps the database consistent.
        """
        if self.read_only:
            raise ReadOnlyCaseError(read_only_message(str(self.root)))
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self._rollback()
                raise
            try:
                self.db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except (sqlite3.Error, OSError) as error:
            translated = translate_error(error, self.root)
            if translated is None:
                raise
            raise translated from error

    def _rollback(self) -> None:
        """ROLLBACK unless SQLite already rolled back (it may on SQLITE_FULL or an I/O error)."""
        if self.db.in_transaction:
            # a failing ROLLBACK must not hide the error being reported (SQLite rolls an
            # open transaction back when the connection closes anyway)
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")

    def get_setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO settings(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def prefix(self) -> str:
        return self.get_setting("prefix") or DEFAULT_PREFIX

    @property
    def languages(self) -> str:
        return self.get_setting("languages") or DEFAULT_LANGUAGES

    # ----- sources -------------------------------------------------------------------

    def ingested_source_by_sha(self, sha256: str) -> SourceRow | None:
        row = self.db.execute(
            "SELECT * FROM sources WHERE sha256 = ? AND status = 'ingested'", (sha256,)
        ).fetchone()
        return _source(row) if row else None

    def source_by_path_sha(self, path: str, sha256: str | None) -> SourceRow | None:
        row = self.db.execute(
            "SELECT * FROM sources WHERE path = ? AND ifnull(sha256, '') = ?",
            (path, sha256 or ""),
        ).fetchone()
        return _source(row) if row else None

    def record_source(
        self,
        *,
        path: str,
        sha256: str | None,
        size: int | None,
        kind: str | None,
        status: str,
        error: str | None = None,
        duplicate_of: int | None = None,
        page_count: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Insert or update the row for (path, sha256); returns its id. Call in a transaction."""
        row = self.db.execute(
            "INSERT INTO sources(path, sha256, size, kind, status, error, duplicate_of,"
            " page_count, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path, ifnull(sha256, '')) DO UPDATE SET size = excluded.size,"
            " kind = excluded.kind, status = excluded.status, error = excluded.error,"
            " duplicate_of = excluded.duplicate_of, page_count = excluded.page_count,"
            " metadata = excluded.metadata, recorded_at = excluded.recorded_at"
            " RETURNING id",
            (
                path,
                sha256,
                size,
                kind,
                status,
                error,
                duplicate_of,
                page_count,
                _dumps(metadata or {}),
                utc_now(),
            ),
        ).fetchone()
        return int(row[0])

    def sources(self) -> list[SourceRow]:
        rows = self.db.execute("SELECT * FROM sources ORDER BY id").fetchall()
        return [_source(r) for r in rows]

    # ----- pages ---------------------------------------------------------------------

    def add_page(self, source_id: int, page: dict[str, Any]) -> str:
        """Store one analysed page and the dates found on it; returns its page id.

        Page ids follow the row id, which SQLite assigns as max+1: a rolled-back
        transaction consumes no number, so ids stay gapless across crashes.
        """
        columns = ", ".join(_READING_COLUMNS)
        marks = ",".join("?" * len(_READING_COLUMNS))
        row_id = self.db.execute(
            "INSERT INTO pages(page_id, source_id, page_number, page_sha256,"
            f" fingerprint_version, width_pt, height_pt, metadata, {columns})"
            f" VALUES ('pending', ?,?,?,?,?,?,?, {marks}) RETURNING id",
            (
                source_id,
                page["page_number"],
                page.get("page_sha256"),
                page.get("fingerprint_version", 1),
                page.get("width_pt"),
                page.get("height_pt"),
                _dumps(page.get("metadata") or {}),
                *_reading_values(page),
            ),
        ).fetchone()[0]
        page_id = format_page_id(self.prefix_cached, row_id)
        self.db.execute("UPDATE pages SET page_id = ? WHERE id = ?", (page_id, row_id))
        self._store_dates(row_id, page)
        return page_id

    def _store_dates(self, page_row: int, page: dict[str, Any]) -> None:
        """The dates found in the page's text; the page goes on the index queue."""
        self.db.execute("DELETE FROM page_dates WHERE page_row = ?", (page_row,))
        self.db.executemany(
            "INSERT INTO page_dates(page_row, start, end, original, calendar, iso)"
            " VALUES (?,?,?,?,?,?)",
            [
                (page_row, d["start"], d["end"], d["original"], d["calendar"], d["iso"])
                for d in page.get("dates", ())
            ],
        )
        self.queue_for_index([page_row])

    @property
    def prefix_cached(self) -> str:
        cached = getattr(self, "_prefix", None)
        if cached is None:
            cached = self._prefix = self.prefix
        return cached

    def page_rows(self) -> Iterator[sqlite3.Row]:
        """Every page with its source's path and hash, in page-id order (streamed)."""
        yield from self.db.execute(
            f"SELECT p.*, s.path AS source_path, s.sha256 AS source_sha256, {_REVIEW_COLUMNS}"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            " LEFT JOIN page_review r ON r.page_row = p.id ORDER BY p.id"
        )

    def page_window(self, offset: int, limit: int, status: str | None = None) -> list[sqlite3.Row]:
        """A slice of the page list in page-id order, optionally one status only."""
        where = "WHERE ifnull(r.status, 'unreviewed') = ?" if status else ""
        params: tuple[Any, ...] = (status,) if status else ()
        return self.db.execute(
            f"SELECT p.*, s.path AS source_path, s.sha256 AS source_sha256, {_REVIEW_COLUMNS}"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            f" LEFT JOIN page_review r ON r.page_row = p.id {where}"
            " ORDER BY p.id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()

    def reviewed_pages_of_source(self, source_id: int) -> list[str]:
        """Pages of a file that carry a review decision (stale if the file changed)."""
        rows = self.db.execute(
            "SELECT p.page_id FROM pages p JOIN page_review r ON r.page_row = p.id"
            " WHERE p.source_id = ? AND r.status != 'unreviewed' ORDER BY p.id",
            (source_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def replace_page_text(self, page_row: int, page: dict[str, Any]) -> None:
        """Swap in a new reading of a page (re-OCR). Call inside a transaction."""
        assignments = ", ".join(f"{column} = ?" for column in _READING_COLUMNS)
        self.db.execute(
            f"UPDATE pages SET {assignments} WHERE id = ?", (*_reading_values(page), page_row)
        )
        self._store_dates(page_row, page)

    def record_source_change(self, source_id: int, current_sha256: str | None) -> None:
        """Record that the file at a source's path is not (None: is again) the one ingested.

        The pages of a source so recorded are stale (``views.page_detail``). Written only
        when the finding changes, so viewing pages does not write.
        """
        row = self.db.execute(
            "SELECT changed_sha256 FROM sources WHERE id = ?", (source_id,)
        ).fetchone()
        if row is None or row[0] == current_sha256:
            return
        with self.transaction():
            self.db.execute(
                "UPDATE sources SET changed_sha256 = ?, changed_seen_at = ? WHERE id = ?",
                (current_sha256, utc_now() if current_sha256 else None, source_id),
            )

    def source_kind(self, source_id: int) -> str | None:
        row = self.db.execute("SELECT kind FROM sources WHERE id = ?", (source_id,)).fetchone()
        return row[0] if row else None

    def status_counts(self) -> dict[str, int]:
        """Pages per review status (every status present, zeros included)."""
        counts = dict(
            self.db.execute(
                "SELECT ifnull(r.status, 'unreviewed'), count(*) FROM pages p"
                " LEFT JOIN page_review r ON r.page_row = p.id GROUP BY 1"
            ).fetchall()
        )
        return {s: counts.get(s, 0) for s in ("unreviewed", "verified", "disputed", "illegible")}

    def page_row(self, page_id: str) -> sqlite3.Row:
        row = self.db.execute(
            "SELECT p.*, s.path AS source_path, s.sha256 AS source_sha256,"
            " s.changed_sha256 AS source_changed_sha256,"
            " s.changed_seen_at AS source_changed_seen_at,"
            f" s.metadata AS source_metadata, {_REVIEW_COLUMNS}"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            " LEFT JOIN page_review r ON r.page_row = p.id WHERE p.page_id = ?",
            (page_id.upper(),),
        ).fetchone()
        if row is None:
            raise UsageError(
                f"no page {page_id!r} in this case (ids look like {self.prefix}-000001)"
            )
        return row

    def page_rows_by_id(self, page_ids: list[str]) -> dict[str, sqlite3.Row]:
        """``page_row`` for many pages at once (search hits); ids not in the case are absent."""
        found: dict[str, sqlite3.Row] = {}
        for start in range(0, len(page_ids), 500):
            chunk = [p.upper() for p in page_ids[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "SELECT p.*, s.path AS source_path, s.sha256 AS source_sha256,"
                f" s.metadata AS source_metadata, {_REVIEW_COLUMNS}"
                " FROM pages p JOIN sources s ON s.id = p.source_id"
                f" LEFT JOIN page_review r ON r.page_row = p.id WHERE p.page_id IN ({marks})",
                chunk,
            ):
                found[row["page_id"]] = row
        return found

    def page_dates(self, page_row_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT start, end, original, calendar, iso FROM page_dates"
            " WHERE page_row = ? ORDER BY start",
            (page_row_id,),
        ).fetchall()
        return [dict(r) for r in rows]

    # ----- review state (derived from the review log) ---------------------------------

    def existing_page_ids(self, page_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(page_ids), 500):
            chunk = page_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self.db.execute(
                    f"SELECT page_id FROM pages WHERE page_id IN ({marks})", chunk
                )
            )
        return found

    def review_state(self, page_id: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT p.id AS page_row, p.page_sha256, ifnull(r.status, 'unreviewed') AS status,"
            " r.document_id FROM pages p LEFT JOIN page_review r ON r.page_row = p.id"
            " WHERE p.page_id = ?",
            (page_id,),
        ).fetchone()
        if row is None:
            raise UsageError(f"no page {page_id!r} in this case")
        return dict(row)

    def apply_review(self, page_row: int, event: dict[str, Any]) -> None:
        """Fold one review event into ``page_review`` and queue the page for the index."""
        self.db.execute("INSERT OR IGNORE INTO page_review(page_row) VALUES (?)", (page_row,))
        if event.get("new_status"):
            self.db.execute(
                "UPDATE page_review SET status = ?, reviewer = ?, reviewed_at = ?"
                " WHERE page_row = ?",
                (event["new_status"], event["reviewer"], event["at"], page_row),
            )
        if event.get("note"):
            line = f"[{event['at']} {event['reviewer']}] {event['note']}"
            self.db.execute(
                "UPDATE page_review SET notes = CASE WHEN notes = '' THEN ? "
                "ELSE notes || char(10) || ? END WHERE page_row = ?",
                (line, line, page_row),
            )
        if "document_id" in event and event.get("kind") == "document":
            self.db.execute(
                "UPDATE page_review SET document_id = ? WHERE page_row = ?",
                (event["document_id"], page_row),
            )
        self.queue_for_index([page_row])

    # ----- search index feed --------------------------------------------------------

    # Every change to what the index shows puts the page on ``index_queue`` in the same
    # transaction, with a fresh ticket (REPLACE deletes the old entry and AUTOINCREMENT never
    # reuses a number). An indexer remembers the tickets it read together with the pages,
    # and deletes exactly those afterwards: an entry re-queued meanwhile has another ticket
    # and stays. A crash between the index commit and the delete re-indexes, never loses.

    def queue_for_index(self, page_rows: list[int]) -> None:
        """Queue pages for the search index (new tickets). Call inside the changing transaction."""
        self.db.executemany(
            "REPLACE INTO index_queue(page_row) VALUES (?)", [(row,) for row in page_rows]
        )

    def queue_all_pages_for_index(self) -> None:
        with self.transaction():
            self.db.execute("REPLACE INTO index_queue(page_row) SELECT id FROM pages ORDER BY id")

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every SELECT inside sees the same committed state (WAL)."""
        if self.db.in_transaction:  # already inside one: it is the snapshot
            yield self.db
            return
        self.db.execute("BEGIN DEFERRED")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def index_queue_head(self) -> int:
        """The newest ticket queued so far (0 for an empty queue)."""
        return self.db.execute("SELECT ifnull(max(ticket), 0) FROM index_queue").fetchone()[0]

    def index_queue_batch(self, size: int) -> list[int]:
        """Queued page rows, oldest ticket first (a look only: see index_queue_tickets)."""
        return [row for row, _ in self.index_queue_tickets(size)]

    def index_queue_tickets(self, size: int, through: int | None = None) -> list[tuple[int, int]]:
        """(page_row, ticket) of up to ``size`` entries, oldest first, tickets <= ``through``."""
        rows = self.db.execute(
            "SELECT page_row, ticket FROM index_queue WHERE ticket <= ? ORDER BY ticket LIMIT ?",
            (through if through is not None else 2**63 - 1, size),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def index_queue_done(self, entries: list[tuple[int, int]]) -> None:
        """Dequeue (page_row, ticket) entries that were indexed; re-queued pages stay."""
        with self.transaction():
            self.db.executemany(
                "DELETE FROM index_queue WHERE page_row = ? AND ticket = ?", entries
            )

    def index_queue_done_through(self, ticket: int) -> None:
        """Dequeue every entry with a ticket up to ``ticket`` (a rebuild that read after it)."""
        with self.transaction():
            self.db.execute("DELETE FROM index_queue WHERE ticket <= ?", (ticket,))

    def page_total(self) -> int:
        return self.db.execute("SELECT count(*) FROM pages").fetchone()[0]

    def index_queue_length(self) -> int:
        return self.db.execute("SELECT count(*) FROM index_queue").fetchone()[0]

    def page_pending_index(self) -> list[int]:
        """Page rows changed in the case but not yet (re)indexed."""
        return [r[0] for r in self.db.execute("SELECT page_row FROM index_queue ORDER BY page_row")]

    def page_row_id_batches(self, size: int) -> Iterator[list[int]]:
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT id FROM pages WHERE id > ? ORDER BY id LIMIT ?", (last, size)
            ).fetchall()
            if not rows:
                return
            ids = [r[0] for r in rows]
            yield ids
            last = ids[-1]

    def index_rows(self, row_ids: list[int]) -> list[sqlite3.Row]:
        """Page rows with what the index needs, review state included."""
        marks = ",".join("?" * len(row_ids))
        return self.db.execute(
            "SELECT p.id, p.page_id, p.page_number, p.text, p.text_source, p.ocr_lang,"
            " s.path AS source_path, ifnull(r.status, 'unreviewed') AS status,"
            " r.document_id, r.notes,"
            # the checks with a finding on the page that no dismissal covers
            " (SELECT group_concat(DISTINCT f.check_name) FROM finding_pages fp"
            "  JOIN findings f ON f.finding_id = fp.finding_id WHERE fp.page_id = p.page_id"
            "  AND NOT EXISTS (SELECT 1 FROM review_events e WHERE e.kind = 'dismiss'"
            "   AND json_extract(e.payload, '$.finding_id') = f.finding_id"
            "   AND json_extract(e.payload, '$.content_sha256') = f.content_sha256)"
            " ) AS open_findings"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            " LEFT JOIN page_review r ON r.page_row = p.id"
            f" WHERE p.id IN ({marks}) ORDER BY p.id",
            row_ids,
        ).fetchall()

    def page_date_isos(self, page_row_id: int) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT iso FROM page_dates WHERE page_row = ?", (page_row_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> dict[str, Any]:
        """Totals for ``workbench status``."""
        sources = dict(
            self.db.execute("SELECT status, count(*) FROM sources GROUP BY status").fetchall()
        )
        by_text = dict(
            self.db.execute(
                "SELECT text_source, count(*) FROM pages GROUP BY text_source"
            ).fetchall()
        )
        pages = self.db.execute("SELECT count(*) FROM pages").fetchone()[0]
        page_errors = self.db.execute(
            "SELECT count(*) FROM pages WHERE error IS NOT NULL"
        ).fetchone()[0]
        return {
            "case": str(self.root),
            "prefix": self.prefix,
            "languages": self.languages,
            "sources": sum(sources.values()),
            "sources_ingested": sources.get("ingested", 0),
            "sources_duplicate": sources.get("duplicate", 0),
            "sources_failed": sources.get("failed", 0),
            "pages": pages,
            "pages_by_text_source": {k: by_text.get(k, 0) for k in ("layer", "ocr", "none")},
            "pages_with_errors": page_errors,
        }


def _connect(database: Path) -> sqlite3.Connection:
    try:
        connection = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        connection.row_factory = sqlite3.Row
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise CaseError(f"{database}: cannot switch the case database to WAL mode ({mode})")
        # FULL: in WAL mode each commit is synced to disk before COMMIT returns, so a mark,
        # note or document that was reported done survives a power cut (NORMAL can lose
        # the last commits). Measured: ~5 ms per commit on an ext4 laptop-class disk; no
        # visible change to a born-digital ingest (one commit per file).
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        raise translate_error(error, database.parent) or CaseError(
            f"{database}: not a usable case database ({error})"
        ) from error
    return connection


def _open_uri(uri: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
    )
    connection.row_factory = sqlite3.Row
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def _connect_read_only(database: Path) -> tuple[sqlite3.Connection, Path | None]:
    """A read-only connection to a case on a read-only drive; the scratch folder to delete.

    Why three ways (see https://www.sqlite.org/wal.html, "Read-Only Databases"): a WAL
    database opens read-only when its -wal and -shm files exist or can be created. On a
    read-only drive they usually do not exist (the last writer folded them in), and
    ``immutable=1`` reads the file as it is. If a writer died, the -wal holds its last
    commits, which ``immutable=1`` would silently skip: with the -shm there too ``mode=ro``
    reads both; without it, the database and its -wal are copied to a private temporary
    folder and read there.
    """
    uri = database.resolve().as_uri()
    try:
        return _open_uri(uri + "?mode=ro"), None
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_CANTOPEN:
            raise
    wal = database.with_name(database.name + "-wal")
    if not (wal.exists() and wal.stat().st_size > 0):
        return _open_uri(uri + "?immutable=1"), None
    scratch = Path(tempfile.mkdtemp(prefix="workbench-readonly-"))
    try:
        copy = scratch / database.name
        shutil.copyfile(database, copy)
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        return _open_uri(copy.as_uri() + "?mode=ro"), scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _is_read_only(root: Path, database: Path) -> bool:
    """The case cannot be written: a read-only drive, or a folder or file we may not write
    (WAL mode writes its -wal and -shm files beside the database)."""
    if not os.access(root, os.W_OK):
        return True
    return database.exists() and not os.access(database, os.W_OK)


def _check_not_empty(database: Path) -> None:
    """An empty file is a valid, empty SQLite database: opening it would quietly make a
    new, empty case where pages used to be."""
    wal = database.with_name(database.name + "-wal")
    if (
        database.exists()
        and database.stat().st_size == 0
        and not (wal.exists() and wal.stat().st_size > 0)
    ):
        raise DamagedCaseError(
            f"{database} is empty (0 bytes): if this case held pages, restore the file from "
            "a backup of the case; if the case was only just created, delete the file and "
            "run the command again"
        )


def _damaged(database: Path, detail: str) -> DamagedCaseError:
    detail = " ".join(detail.split())  # one line, whatever SQLite reported
    return DamagedCaseError(
        f"{database} is not a usable case database: damaged, or not a workbench database "
        f"({detail}); restore it from a backup of the case (the search index is rebuilt "
        "from it by itself)"
    )


def translate_error(error: BaseException, root: str | os.PathLike[str]) -> WorkbenchError | None:
    """The typed error for a fault of the drive or the database file; None for anything else.

    The one mapping from sqlite3 errors and OSError (ENOSPC, EROFS) to the errors the
    faces show, used at the store's boundary (opening, transactions) and by the CLI's
    error handler for a database error met in a plain read.
    """
    root = Path(root)
    database = root / DATABASE_NAME
    if isinstance(error, OSError):
        return from_os_error(error, str(root))
    if not isinstance(error, sqlite3.Error):
        return None
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return DiskFullError(str(root))
    if code == sqlite3.SQLITE_READONLY:
        return ReadOnlyCaseError(read_only_message(str(root)))
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return _damaged(database, str(error))
    if code == sqlite3.SQLITE_IOERR:
        if _drive_full(root):
            return DiskFullError(str(root))
        return CaseError(
            f"{database}: the drive could not be read or written ({error}); check the drive "
            "(is it still connected?) and run the command again"
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return CaseError(f"{database}: cannot be opened ({error}); check the drive and folder")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return CaseError(
            f"{root}: the case is busy (another workbench process is writing it); "
            "try again when it finishes"
        )
    return None


def _drive_full(root: Path) -> bool:
    try:
        return shutil.disk_usage(root).free < 64 * 1024
    except OSError as error:
        return error.errno == errno.ENOSPC


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script (triggers hold ';' inside BEGIN ... END)."""
    statements, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                statements.append(current.strip())
            current = ""
    return statements


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _source(row: sqlite3.Row) -> SourceRow:
    return SourceRow(
        id=row["id"],
        path=row["path"],
        sha256=row["sha256"],
        size=row["size"],
        kind=row["kind"],
        status=row["status"],
        error=row["error"],
        duplicate_of=row["duplicate_of"],
        page_count=row["page_count"],
        metadata=json.loads(row["metadata"] or "{}"),
        recorded_at=row["recorded_at"],
    )
