"""Page review: statuses, notes, and the append-only, hash-chained review log.

Why it is shaped this way:
- Every decision is an event in ``review_events``. Each event stores the SHA-256 of
  (previous event's hash + canonical JSON of this event), so rewriting, deleting or
  reordering any event breaks the chain from there on; SQLite triggers refuse UPDATE and
  DELETE, and ``workbench log verify`` recomputes the chain for anyone who bypasses them.
- ``page_review`` is the current state derived from the log (a cache the app can read
  fast); the log is the record. ``workbench log verify`` recomputes that state (and the
  ``documents`` rows) from the events and names every page whose stored state differs.
- A review event is durable once the call returns: the case database runs with
  ``synchronous=FULL``, so in WAL mode each commit is on disk before COMMIT returns.
- An event is appended inside BEGIN IMMEDIATE: two reviewers marking pages from two
  processes are serialised by SQLite, so the chain stays one line.

Canonical JSON of an event (what is hashed): the keys of :data:`EVENT_FIELDS` with their
values, ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``,
UTF-8 encoded; ``payload`` is a JSON object. hash = sha256(prev_hash + canonical).
The first event's prev_hash is 64 zeros. README.md shows how to check it by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import UsageError
from workbench.hashing import sha256_file
from workbench.store import Case, utc_now

STATUSES = ("unreviewed", "verified", "disputed", "illegible")
GENESIS_HASH = "0" * 64
EVENT_FIELDS = (
    "seq",
    "kind",
    "page_id",
    "document_id",
    "old_status",
    "new_status",
    "reviewer",
    "at",
    "note",
    "page_sha256",
    "payload",
)
_RANGE_RE = re.compile(
    r"^\s*([A-Za-z][A-Za-z0-9_]*)-(\d+)\s*\.\.\s*(?:([A-Za-z][A-Za-z0-9_]*)-)?(\d+)\s*$"
)


# ----- the chain ----------------------------------------------------------------------


def canonical_json(event: dict[str, Any]) -> str:
    """The exact text that is hashed for an event."""
    body = {name: event.get(name) for name in EVENT_FIELDS}
    if isinstance(body["payload"], str):
        body["payload"] = json.loads(body["payload"] or "{}")
    body["payload"] = body["payload"] or {}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(event)).encode("utf-8")).hexdigest()


def resolve_reviewer(case: Case, given: str | None = None) -> str:
    """--reviewer, else WORKBENCH_REVIEWER, else the case's configured reviewer; never empty."""
    for candidate in (given, os.environ.get("WORKBENCH_REVIEWER"), case.get_setting("reviewer")):
        if candidate and candidate.strip():
            return candidate.strip()
    raise UsageError(
        "who is reviewing? give --reviewer NAME, set WORKBENCH_REVIEWER, "
        "or run 'workbench config reviewer NAME' once for this case"
    )


def append_event(db: sqlite3.Connection, **fields: Any) -> dict[str, Any]:
    """Append one event to the chain. Call inside ``case.transaction()`` (BEGIN IMMEDIATE)."""
    last = db.execute("SELECT seq, hash FROM review_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    event = {name: fields.get(name) for name in EVENT_FIELDS}
    event["seq"] = seq
    event["at"] = event["at"] or utc_now()
    event["payload"] = fields.get("payload") or {}
    digest = event_hash(prev_hash, event)
    db.execute(
        "INSERT INTO review_events(seq, kind, page_id, document_id, old_status, new_status,"
        " reviewer, at, note, page_sha256, payload, prev_hash, hash)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            seq,
            event["kind"],
            event["page_id"],
            event["document_id"],
            event["old_status"],
            event["new_status"],
            event["reviewer"],
            event["at"],
            event["note"],
            event["page_sha256"],
            json.dumps(event["payload"], sort_keys=True, ensure_ascii=False),
            prev_hash,
            digest,
        ),
    )
    event["prev_hash"] = prev_hash
    event["hash"] = digest
    return event


def iter_events(case: Case) -> Iterator[dict[str, Any]]:
    for row in case.db.execute("SELECT * FROM review_events ORDER BY seq"):
        event = dict(row)
        event["payload"] = json.loads(event["payload"] or "{}")
        yield event


@dataclass
class ChainReport:
    """What verifying a log found; ``problems`` is empty when all holds."""

    events: int = 0
    head: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)
    # signed checkpoints found good: (seq, signer), and events after the last one
    signed: list[tuple[int, str]] = field(default_factory=list)
    unsigned_tail: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(events: Iterable[dict[str, Any]]) -> ChainReport:
    """Recompute the chain; report the first broken link precisely."""
    report = ChainReport()
    prev_hash = GENESIS_HASH
    expected_seq = 1
    for event in events:
        seq = event.get("seq")
        if seq != expected_seq:
            report.problems.append(
                f"event #{expected_seq}: missing or out of order (found #{seq} in its place)"
            )
            return report
        if event.get("prev_hash") != prev_hash:
            report.problems.append(
                f"event #{seq}: its prev_hash does not match event #{seq - 1}'s hash"
                " (an event before it was changed, removed or reordered)"
            )
            return report
        recomputed = event_hash(prev_hash, event)
        if recomputed != event.get("hash"):
            report.problems.append(
                f"event #{seq}: its content does not match its hash (the event was edited)"
            )
            return report
        prev_hash = recomputed
        report.events += 1
        report.head = recomputed
        expected_seq += 1
    return report


# The kinds of event folded into a page's review state (documents are folded apart).
PAGE_STATE_KINDS = ("status", "note")
# What page_review holds when no event touched a page.
_UNREVIEWED = {
    "status": "unreviewed",
    "reviewer": None,
    "reviewed_at": None,
    "notes": "",
    "document_id": None,
}
_DOCUMENT_COLUMNS = (
    "title",
    "date_iso",
    "date_jalali",
    "date_original",
    "claimed_pages",
    "created_by",
    "created_at",
)


def derive_state(
    events: Iterable[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``page_review`` per page id and ``documents`` per document id, from the events alone.

    The same folding as ``Case.apply_review`` and ``documents.add_document``: a status
    sets status, reviewer and time; every note appends ``[at reviewer] note``; a document
    event sets the document of each page in its payload and holds the document's fields.
    """
    pages: dict[str, dict[str, Any]] = {}
    docs: dict[str, dict[str, Any]] = {}
    for event in events:
        payload = event.get("payload") or {}
        if isinstance(payload, str):
            payload = json.loads(payload or "{}")
        if event.get("kind") == "document":
            for page_id in payload.get("pages") or ():
                pages.setdefault(page_id, dict(_UNREVIEWED))["document_id"] = event["document_id"]
            docs[event["document_id"]] = {
                **{name: payload.get(name) for name in _DOCUMENT_COLUMNS},
                "created_by": event["reviewer"],
                "created_at": event["at"],
            }
            continue
        page_id = event.get("page_id")
        if event.get("kind") not in PAGE_STATE_KINDS or not page_id:
            continue  # re-OCR, finding dismissals, ...: on the record, not page state
        state = pages.setdefault(page_id, dict(_UNREVIEWED))
        if event.get("new_status"):
            state.update(
                status=event["new_status"], reviewer=event["reviewer"], reviewed_at=event["at"]
            )
        if event.get("note"):
            line = f"[{event['at']} {event['reviewer']}] {event['note']}"
            state["notes"] = f"{state['notes']}\n{line}" if state["notes"] else line
    return pages, docs


def verify_derived_state(case: Case) -> list[str]:
    """Every page (and document) whose stored state differs from what the log gives.

    Why: ``page_review`` and ``documents`` are what the app, ``pages``, ``show`` and every
    export read. A change made to them directly in the database (not through an event)
    leaves the chain intact, so it is found only by recomputing them from the events.
    """
    derived_pages, derived_docs = derive_state(iter_events(case))
    problems: list[str] = []
    stored: dict[str, dict[str, Any]] = {}
    for row in case.db.execute(
        "SELECT r.page_row, p.page_id, r.status, r.reviewer, r.reviewed_at, r.notes,"
        " r.document_id FROM page_review r LEFT JOIN pages p ON p.id = r.page_row"
        " ORDER BY r.page_row"
    ):
        if row["page_id"] is None:
            problems.append(
                f"page_review row {row['page_row']}: names no page of this case"
                " (written outside workbench)"
            )
            continue
        stored[row["page_id"]] = {name: row[name] for name in _UNREVIEWED}
    known = case.existing_page_ids(sorted(derived_pages))
    for page_id in sorted(set(stored) | set(derived_pages)):
        if page_id not in stored and page_id not in known:
            problems.append(f"{page_id}: the review log names this page but the case has none")
            continue
        have = stored.get(page_id, _UNREVIEWED)
        want = derived_pages.get(page_id, _UNREVIEWED)
        differences = _differences(have, want, tuple(_UNREVIEWED))
        if differences:
            problems.append(
                f"{page_id}: its stored review state does not match the review log"
                f" (changed outside the log): {differences}"
            )
    stored_docs = {
        row["id"]: dict(row) for row in case.db.execute("SELECT * FROM documents ORDER BY id")
    }
    for doc_id in sorted(set(stored_docs) | set(derived_docs)):
        if doc_id not in derived_docs:
            problems.append(f"{doc_id}: a document with no event in the review log")
        elif doc_id not in stored_docs:
            problems.append(f"{doc_id}: in the review log but missing from the documents table")
        else:
            differences = _differences(stored_docs[doc_id], derived_docs[doc_id], _DOCUMENT_COLUMNS)
            if differences:
                problems.append(
                    f"{doc_id}: its stored fields do not match the review log"
                    f" (changed outside the log): {differences}"
                )
    return problems


def _differences(have: dict[str, Any], want: dict[str, Any], names: Iterable[str]) -> str:
    return "; ".join(
        f"stored {name} {have.get(name)!r}, the log gives {want.get(name)!r}"
        for name in names
        if have.get(name) != want.get(name)
    )


def verify_sources(case: Case) -> list[str]:
    """Re-hash every ingested source file still on disk against its custody hash."""
    problems = []
    for source in case.sources():
        if source.status != "ingested":
            continue
        if not os.path.exists(source.path):
            continue
        try:
            digest, _ = sha256_file(source.path)
        except OSError as error:
            problems.append(f"{source.path}: cannot be read to check ({error.strerror})")
            continue
        if digest != source.sha256:
            stale = case.reviewed_pages_of_source(source.id)
            detail = ""
            if stale:
                shown = ", ".join(stale[:5]) + (" ..." if len(stale) > 5 else "")
                detail = f"; {len(stale)} reviewed page(s) on it are now stale: {shown}"
            problems.append(
                f"{source.path}: changed since ingest (sha256 now {digest}, "
                f"recorded {source.sha256}){detail}"
            )
    return problems


def missing_sources(case: Case) -> list[str]:
    return [s.path for s in case.sources() if s.status == "ingested" and not os.path.exists(s.path)]


# ----- page ids -----------------------------------------------------------------------


def expand_page_ids(case: Case, specs: Iterable[str]) -> list[str]:
    """Page ids from ids and ranges (``WB-000010..WB-000014``, ``WB-10..14``), in order."""
    prefix = case.prefix
    wanted: list[str] = []
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            match = _RANGE_RE.match(part)
            if match:
                first_prefix, first, second_prefix, last = match.groups()
                if first_prefix.upper() != prefix or (
                    second_prefix and second_prefix.upper() != prefix
                ):
                    raise UsageError(f"{part!r}: this case's page ids start with {prefix}-")
                start, end = int(first), int(last)
                if end < start:
                    raise UsageError(f"{part!r}: the range runs backwards")
                if end - start > 1_000_000:
                    raise UsageError(f"{part!r}: the range is too large")
                wanted.extend(f"{prefix}-{n:06d}" for n in range(start, end + 1))
            else:
                wanted.append(_normalise_id(part, prefix))
    known = case.existing_page_ids(wanted)
    unknown = [p for p in wanted if p not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise UsageError(f"no such page(s) in this case: {shown}")
    seen: set[str] = set()
    return [p for p in wanted if not (p in seen or seen.add(p))]


def _normalise_id(text: str, prefix: str) -> str:
    match = re.match(r"^([A-Za-z][A-Za-z0-9_]*)-(\d+)$", text)
    if not match:
        raise UsageError(f"{text!r} is not a page id (like {prefix}-000042) or a range")
    return f"{match.group(1).upper()}-{int(match.group(2)):06d}"


# ----- marking ------------------------------------------------------------------------


def mark(
    case: Case, page_ids: list[str], status: str, reviewer: str, note: str | None = None
) -> list[dict[str, Any]]:
    """Set the status of pages; one event per page whose status changes (or gets a note)."""
    _check_status(status)
    with case.transaction() as db:
        return _mark_in_transaction(case, db, page_ids, status, reviewer, note)


@dataclass
class QueryMark:
    """What ``mark_query`` did: events, and the shown hits it left alone and why."""

    events: list[dict[str, Any]]
    no_longer_matching: list[str]  # shown and confirmed, but the page changed: not marked
    not_confirmed: list[str]  # match now but were not shown before: not marked


def mark_query(
    case: Case,
    page_ids: list[str],
    query: str,
    confirmed: Iterable[str],
    status: str,
    reviewer: str,
    note: str | None = None,
) -> QueryMark:
    """Mark ``page_ids`` and the hits of ``query`` that were shown (``confirmed``).

    Why: between showing the hits and marking them, pages change (another reviewer, an
    index that was behind). The query is evaluated again on the case as it is inside
    the marking transaction, which holds the write lock; a confirmed page is marked only
    if it still matches, and a page that matches only now is reported, not marked.
    """
    _check_status(status)
    shown = list(dict.fromkeys(p.upper() for p in confirmed))
    from workbench import index  # imported here: Whoosh is needed only by --query marks

    with case.transaction() as db:
        now = set(index.current_matching_page_ids(case, query))
        still = [p for p in shown if p in now]
        targets = list(dict.fromkeys([*page_ids, *still]))
        events = _mark_in_transaction(case, db, targets, status, reviewer, note)
    seen = set(shown)
    return QueryMark(
        events=events,
        no_longer_matching=[p for p in shown if p not in now],
        not_confirmed=sorted(p for p in now if p not in seen),
    )


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise UsageError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")


def _mark_in_transaction(
    case: Case,
    db: sqlite3.Connection,
    page_ids: list[str],
    status: str,
    reviewer: str,
    note: str | None,
) -> list[dict[str, Any]]:
    events = []
    for page_id in page_ids:
        state = case.review_state(page_id)
        if state["status"] == status and not note:
            continue
        event = append_event(
            db,
            kind="status",
            page_id=page_id,
            document_id=state["document_id"],
            old_status=state["status"],
            new_status=status,
            reviewer=reviewer,
            note=note,
            page_sha256=state["page_sha256"],
        )
        case.apply_review(state["page_row"], event)
        events.append(event)
    return events


def add_note(case: Case, page_id: str, text: str, reviewer: str) -> dict[str, Any]:
    """Add a note to a page without changing its status."""
    if not text.strip():
        raise UsageError("the note is empty")
    with case.transaction() as db:
        state = case.review_state(page_id)
        event = append_event(
            db,
            kind="note",
            page_id=page_id,
            document_id=state["document_id"],
            reviewer=reviewer,
            note=text,
            page_sha256=state["page_sha256"],
        )
        case.apply_review(state["page_row"], event)
    return event
