"""Findings: what the case's checks found, stored beside the pages, dismissable on the record.

Why it is shaped this way:
- A finding points a reviewer at something to look at (a page missing from a numbered
  cable, a file dated before the software that made it). It is evidence for a verdict,
  not a verdict, so it lives in its own table (``findings``, with ``finding_pages`` to
  find a page's findings fast) and never changes a page's status.
- Checks are incremental: ``check_units`` keeps, per check and unit (a file, a
  document), the hash of the inputs the check last saw with the check's version. A unit
  is checked again only when that hash changes; then its old findings are replaced.
- A finding's id comes from the check, the unit and what it is about, so the same
  problem keeps the same id across runs. Dismissing one is a reviewer's decision, so it
  is an event (kind ``dismiss``) in the hash-chained review log, carrying the hash of the
  finding's content: if a later run finds something different under the same id, the
  old dismissal no longer covers it and the finding is open again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench import checks, review
from workbench.checks.base import SEVERITIES, Check, Draft, canonical, sha256_text
from workbench.errors import UsageError
from workbench.store import Case, utc_now

# The keys of `workbench findings --json`: an interface, never renamed.
FINDING_KEYS = (
    "finding_id",
    "check",
    "severity",
    "page_ids",
    "source_sha256",
    "message",
    "evidence",
    "check_version",
    "ran_at",
    "dismissed",
)
UNITS_PER_TRANSACTION = 500


@dataclass
class CheckReport:
    """What one ``run_checks`` did: the findings it produced and how much it looked at."""

    produced: list[dict[str, Any]] = field(default_factory=list)
    units_checked: int = 0
    units_unchanged: int = 0
    findings_removed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def finding_id(check_name: str, unit_key: str, discriminator: str) -> str:
    """Stable id of a finding: the same check, unit and subject give the same id."""
    return "F-" + sha256_text(f"{check_name}\n{unit_key}\n{discriminator}")[:12]


def _content_sha256(draft: Draft) -> str:
    return sha256_text(
        canonical(
            {
                "severity": draft.severity,
                "message": draft.message,
                "page_ids": draft.page_ids,
                "evidence": draft.evidence,
                "source_sha256": draft.source_sha256,
            }
        )
    )


def run_checks(case: Case, only: list[str] | None = None) -> CheckReport:
    """Run the checks (all, or those named) on every unit whose inputs changed."""
    report = CheckReport()
    for check in checks.select(only):
        started = time.perf_counter()
        _run_one(case, check, report)
        report.seconds[check.name] = time.perf_counter() - started
    return report


def _run_one(case: Case, check: Check, report: CheckReport) -> None:
    known = {
        row[0]: (row[1], row[2])
        for row in case.db.execute(
            "SELECT unit, inputs_sha256, check_version FROM check_units WHERE check_name = ?",
            (check.name,),
        )
    }
    seen: set[str] = set()
    pending: list[tuple[str, str, list[Draft]]] = []
    for unit in check.units(case):
        if unit.key in seen:
            raise RuntimeError(f"check {check.name} gave unit {unit.key} twice")
        seen.add(unit.key)
        digest = sha256_text(canonical({"version": check.version, "inputs": unit.inputs}))
        if known.get(unit.key) == (digest, check.version):
            report.units_unchanged += 1
            continue
        pending.append((unit.key, digest, check.run(case, unit)))
        report.units_checked += 1
        if len(pending) >= UNITS_PER_TRANSACTION:
            _store(case, check, pending, report)
            pending = []
    _store(case, check, pending, report)
    gone = [key for key in known if key not in seen]
    if gone:
        with case.transaction():
            for key in gone:
                report.findings_removed += _forget_unit(case, check.name, key)
                case.db.execute(
                    "DELETE FROM check_units WHERE check_name = ? AND unit = ?", (check.name, key)
                )


def _queue_pages(case: Case, page_ids: Iterable[str]) -> None:
    """Pages whose open findings changed go back to the search index (finding:NAME)."""
    wanted = sorted(set(page_ids))
    rows: list[int] = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows.extend(
            row[0]
            for row in case.db.execute(
                f"SELECT id FROM pages WHERE page_id IN ({','.join('?' * len(chunk))})", chunk
            )
        )
    case.queue_for_index(rows)


def _forget_unit(case: Case, check_name: str, unit_key: str) -> int:
    ids = [
        row[0]
        for row in case.db.execute(
            "SELECT finding_id FROM findings WHERE check_name = ? AND unit = ?",
            (check_name, unit_key),
        )
    ]
    _queue_pages(
        case,
        (
            row[0]
            for found in ids
            for row in case.db.execute(
                "SELECT page_id FROM finding_pages WHERE finding_id = ?", (found,)
            )
        ),
    )
    for found in ids:
        case.db.execute("DELETE FROM finding_pages WHERE finding_id = ?", (found,))
        case.db.execute("DELETE FROM findings WHERE finding_id = ?", (found,))
    return len(ids)


def _store(
    case: Case, check: Check, results: list[tuple[str, str, list[Draft]]], report: CheckReport
) -> None:
    if not results:
        return
    now = utc_now()
    new_ids: list[str] = []
    with case.transaction() as db:
        for unit_key, digest, drafts in results:
            before = _forget_unit(case, check.name, unit_key)
            ids_here: set[str] = set()
            for draft in drafts:
                fid = finding_id(check.name, unit_key, draft.discriminator)
                if fid in ids_here:
                    raise RuntimeError(
                        f"check {check.name} gave two findings with one id on {unit_key}"
                    )
                ids_here.add(fid)
                db.execute(
                    "INSERT INTO findings(finding_id, check_name, unit, severity, page_ids,"
                    " source_sha256, message, evidence, check_version, ran_at, content_sha256)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        fid,
                        check.name,
                        unit_key,
                        draft.severity,
                        json.dumps(draft.page_ids),
                        draft.source_sha256,
                        draft.message,
                        json.dumps(draft.evidence, sort_keys=True, ensure_ascii=False),
                        check.version,
                        now,
                        _content_sha256(draft),
                    ),
                )
                db.executemany(
                    "INSERT INTO finding_pages(finding_id, page_id, position) VALUES (?,?,?)",
                    [(fid, page, position) for position, page in enumerate(draft.page_ids)],
                )
                _queue_pages(case, draft.page_ids)
                new_ids.append(fid)
            report.findings_removed += max(before - len(drafts), 0)
            db.execute(
                "INSERT INTO check_units(check_name, unit, inputs_sha256, check_version, ran_at)"
                " VALUES (?,?,?,?,?) ON CONFLICT(check_name, unit) DO UPDATE SET"
                " inputs_sha256 = excluded.inputs_sha256,"
                " check_version = excluded.check_version, ran_at = excluded.ran_at",
                (check.name, unit_key, digest, check.version, now),
            )
    report.produced.extend(_records(case, "WHERE f.finding_id IN ({})", new_ids))


# ----- reading ------------------------------------------------------------------------


def finding_records(
    case: Case,
    *,
    check: str | None = None,
    severity: str | None = None,
    page_id: str | None = None,
) -> list[dict[str, Any]]:
    """Findings, filtered, in a stable order (check, then first page); dismissed included."""
    clauses: list[str] = []
    args: list[Any] = []
    if check:
        checks.get(check)  # an unknown name is a usage error, not an empty list
        clauses.append("f.check_name = ?")
        args.append(check)
    if severity:
        if severity not in SEVERITIES:
            raise UsageError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        clauses.append("f.severity = ?")
        args.append(severity)
    if page_id:
        clauses.append("f.finding_id IN (SELECT finding_id FROM finding_pages WHERE page_id = ?)")
        args.append(page_id.strip().upper())
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return _query(case, where, args)


def finding_record(case: Case, fid: str) -> dict[str, Any]:
    found = _query(case, "WHERE f.finding_id = ?", [fid.strip()])
    if not found:
        raise UsageError(
            f"no finding {fid!r} in this case (ids look like F-3fa9c01b2e4d; "
            "'workbench findings' lists them)"
        )
    return found[0]


def _records(case: Case, where_template: str, ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.extend(_query(case, where_template.format(",".join("?" * len(chunk))), chunk))
    return sorted(found, key=_order)


def _order(record: dict[str, Any]) -> tuple[Any, ...]:
    order = checks.names()
    rank = order.index(record["check"]) if record["check"] in order else len(order)
    return (rank, record["page_ids"][:1], record["finding_id"])


def _query(case: Case, where: str, args: Iterable[Any]) -> list[dict[str, Any]]:
    dismissed = dismissed_contents(case)
    rows = case.db.execute(f"SELECT f.* FROM findings f {where}", list(args)).fetchall()
    records = [
        {
            "finding_id": row["finding_id"],
            "check": row["check_name"],
            "severity": row["severity"],
            "page_ids": json.loads(row["page_ids"]),
            "source_sha256": row["source_sha256"],
            "message": row["message"],
            "evidence": json.loads(row["evidence"]),
            "check_version": row["check_version"],
            "ran_at": row["ran_at"],
            "dismissed": row["content_sha256"] in dismissed.get(row["finding_id"], ()),
        }
        for row in rows
    ]
    return sorted(records, key=_order)


def dismissals(case: Case) -> dict[str, dict[str, Any]]:
    """finding id -> who dismissed it, when and why (the latest dismissal)."""
    found: dict[str, dict[str, Any]] = {}
    for row in case.db.execute(
        "SELECT reviewer, at, note, payload FROM review_events WHERE kind = 'dismiss' ORDER BY seq"
    ):
        data = json.loads(row["payload"] or "{}")
        found[data.get("finding_id", "")] = {
            "reviewer": row["reviewer"],
            "at": row["at"],
            "note": row["note"],
        }
    return found


def by_page(
    case: Case, records: list[dict[str, Any]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """page id -> the findings about it (all of them, dismissed ones included)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in finding_records(case) if records is None else records:
        for page in record["page_ids"]:
            found.setdefault(page, []).append(record)
    return found


def open_severity_by_page(case: Case, page_ids: list[str]) -> dict[str, str]:
    """page id -> the highest severity of its open (not dismissed) findings, for lists."""
    if not page_ids:
        return {}
    dismissed = dismissed_contents(case)
    rank = {name: number for number, name in enumerate(SEVERITIES)}
    found: dict[str, str] = {}
    for start in range(0, len(page_ids), 500):
        chunk = page_ids[start : start + 500]
        for page, fid, severity, content in case.db.execute(
            "SELECT fp.page_id, f.finding_id, f.severity, f.content_sha256 FROM finding_pages fp"
            " JOIN findings f ON f.finding_id = fp.finding_id"
            f" WHERE fp.page_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            if content in dismissed.get(fid, ()):
                continue
            if page not in found or rank[severity] > rank[found[page]]:
                found[page] = severity
    return found


def dismissed_contents(case: Case) -> dict[str, set[str]]:
    """finding id -> the contents (hashes) a reviewer dismissed, from the review log."""
    found: dict[str, set[str]] = {}
    for (payload,) in case.db.execute(
        "SELECT payload FROM review_events WHERE kind = 'dismiss' ORDER BY seq"
    ):
        data = json.loads(payload or "{}")
        found.setdefault(data.get("finding_id", ""), set()).add(data.get("content_sha256", ""))
    return found


# ----- dismissing ---------------------------------------------------------------------


def dismiss(case: Case, fid: str, *, note: str, reviewer: str) -> dict[str, Any]:
    """Record a reviewer's dismissal of a finding as an event in the review log."""
    if not note or not note.strip():
        raise UsageError("say why the finding is dismissed: --note TEXT (it goes in the log)")
    with case.transaction() as db:
        record = finding_record(case, fid)
        if record["dismissed"]:
            raise UsageError(f"finding {record['finding_id']} is already dismissed")
        content = db.execute(
            "SELECT content_sha256 FROM findings WHERE finding_id = ?", (record["finding_id"],)
        ).fetchone()[0]
        first_page = record["page_ids"][0] if record["page_ids"] else None
        state = case.review_state(first_page) if first_page else {}
        review.append_event(
            db,
            kind="dismiss",
            page_id=first_page,
            document_id=state.get("document_id"),
            reviewer=reviewer,
            note=note.strip(),
            page_sha256=state.get("page_sha256"),
            payload={
                "finding_id": record["finding_id"],
                "check": record["check"],
                "content_sha256": content,
                "page_ids": record["page_ids"],
            },
        )
        _queue_pages(case, record["page_ids"])
    return finding_record(case, record["finding_id"])
