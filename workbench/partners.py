"""Another newsroom's review log, imported beside ours, and agreement page by page.

Why it is shaped this way:
- Each newsroom runs its own case (its own ingest order, page ids, reviewers), so pages
  are matched by content: the page fingerprint (``page_sha256``, compared only between
  equal ``fingerprint_version``), then the file's SHA-256 and the page number. The page
  records of a JSONL export give both.
- A partner's log is verified (chain, signed checkpoints, against an allowed-signers file
  when given) before anything is stored, and its verdicts are stored apart from our own
  chain (``partners``, ``partner_pages``, ``partner_reviews``): our chain records only one
  ``import`` event with their head and counts, so importing never changes what our
  reviewers decided, and our own ``log verify`` is unaffected.
- A later export of the same partner must extend what was imported before (their event at
  our last imported count has our last imported head); one that rewrote that history is
  refused, naming both heads. Importing the same log again changes nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench import review
from workbench.errors import LogVerifyError, UsageError
from workbench.store import Case, utc_now

IMPORT_KIND = "import"
# Agreement of one page between us and one partner, in the order the summary lists them.
CATEGORIES = (
    "both_verified",
    "both_disputed",
    "both_illegible",
    "disagree",
    "only_we_reviewed",
    "only_they_reviewed",
    "neither_reviewed",
    "only_ours",
    "only_theirs",
)
CATEGORY_LABELS = {
    "both_verified": "both verified",
    "both_disputed": "both disputed",
    "both_illegible": "both illegible",
    "disagree": "we disagree",
    "only_we_reviewed": "only we reviewed",
    "only_they_reviewed": "only they reviewed",
    "neither_reviewed": "neither reviewed",
    "only_ours": "pages they do not have",
    "only_theirs": "pages we do not have",
}


@dataclass
class ImportReport:
    """What one import did."""

    name: str
    head: str
    events: int
    new_events: int
    pages: int
    reviewed: int
    matched_by_fingerprint: int = 0
    matched_by_file: int = 0
    unmatched: int = 0
    signed: list[tuple[int, str]] = field(default_factory=list)
    unsigned_tail: int = 0
    already: bool = False


def partner_names(case: Case) -> list[str]:
    return [row[0] for row in case.db.execute("SELECT name FROM partners ORDER BY id")]


def import_log(
    case: Case,
    path: str | os.PathLike[str],
    name: str,
    reviewer: str,
    allowed_signers: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Verify a partner's JSONL export and store their verdicts beside ours."""
    from workbench import export

    name = " ".join(name.split())
    if not name:
        raise UsageError("give the partner a name: --name 'Paper B'")
    log = export.read_jsonl(path)
    checked = export.verify_log(log, path, allowed_signers=allowed_signers)
    if not checked.ok:
        raise LogVerifyError(
            f"{path}: {name}'s log does not verify, nothing imported: "
            + "; ".join(checked.problems)
        )
    if allowed_signers is not None and not checked.signed:
        raise LogVerifyError(
            f"{path}: {name}'s log has no signed checkpoint, so nothing in it can be checked"
            f" against {allowed_signers}; ask them for 'workbench log sign' before the export,"
            " or import without --allowed-signers"
        )
    pages = _their_pages(log.pages, log.events)
    states, _ = review.derive_state(log.events)
    reviewed = {p: s for p, s in states.items() if s["status"] != "unreviewed" or s["notes"]}
    signers = sorted({signer for _, signer in checked.signed})
    with case.transaction() as db:
        earlier = db.execute(
            "SELECT id, head, events FROM partners WHERE name = ?", (name,)
        ).fetchone()
        if earlier is not None:
            _check_extends(path, name, log.events, earlier["head"], earlier["events"])
        report = ImportReport(
            name=name,
            head=checked.head,
            events=checked.events,
            new_events=checked.events - (earlier["events"] if earlier else 0),
            pages=len(pages),
            reviewed=sum(1 for s in reviewed.values() if s["status"] != "unreviewed"),
            signed=checked.signed,
            unsigned_tail=checked.unsigned_tail,
        )
        if earlier is not None and earlier["head"] == checked.head:
            report.already = True
            _count_matches(case, earlier["id"], report)
            return report
        if earlier is None:
            partner_id = db.execute(
                "INSERT INTO partners(name, head, events, signers, imported_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, checked.head, checked.events, json.dumps(signers), utc_now()),
            ).lastrowid
        else:
            partner_id = earlier["id"]
            db.execute(
                "UPDATE partners SET head = ?, events = ?, signers = ?, imported_at = ?"
                " WHERE id = ?",
                (checked.head, checked.events, json.dumps(signers), utc_now(), partner_id),
            )
        start = earlier["events"] if earlier else 0
        db.executemany(
            "INSERT INTO partner_events(partner_id, seq, event) VALUES (?, ?, ?)",
            [
                (partner_id, event["seq"], json.dumps(event, ensure_ascii=False, sort_keys=True))
                for event in log.events[start:]
            ],
        )
        before = _matched_rows(case, partner_id)
        db.execute("DELETE FROM partner_pages WHERE partner_id = ?", (partner_id,))
        db.execute("DELETE FROM partner_reviews WHERE partner_id = ?", (partner_id,))
        db.executemany(
            "INSERT INTO partner_pages(partner_id, page_id, page_sha256, fingerprint_version,"
            " source_sha256, page_number) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    partner_id,
                    p["page_id"],
                    p["page_sha256"],
                    p["fingerprint_version"],
                    p["source_sha256"],
                    p["page_number"],
                )
                for p in pages.values()
            ],
        )
        db.executemany(
            "INSERT INTO partner_reviews(partner_id, page_id, status, reviewer, reviewed_at,"
            " notes, page_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    partner_id,
                    page_id,
                    state["status"],
                    state["reviewer"],
                    state["reviewed_at"],
                    state["notes"] or "",
                    (pages.get(page_id) or {}).get("page_sha256"),
                )
                for page_id, state in sorted(reviewed.items())
            ],
        )
        _count_matches(case, partner_id, report)
        review.append_event(
            db,
            kind=IMPORT_KIND,
            reviewer=reviewer,
            payload={
                "partner": name,
                "head": checked.head,
                "events": checked.events,
                "new_events": report.new_events,
                "pages": report.pages,
                "reviewed": report.reviewed,
                "matched": report.matched_by_fingerprint + report.matched_by_file,
                "signers": signers,
            },
        )
        # their verdicts are searchable on our pages (partner:..., disagree:true)
        case.queue_for_index(sorted(before | _matched_rows(case, partner_id)))
    return report


def _check_extends(
    path: str | os.PathLike[str],
    name: str,
    events: list[dict[str, Any]],
    head: str,
    count: int,
) -> None:
    if len(events) >= count and (count == 0 or events[count - 1]["hash"] == head):
        return
    found = events[count - 1]["hash"] if len(events) >= count else None
    now = events[-1]["hash"] if events else review.GENESIS_HASH
    what = (
        f"its event #{count} is {found}"
        if found
        else f"it has only {len(events)} event(s), ending at {now}"
    )
    raise LogVerifyError(
        f"{path}: {name}'s log rewrote history this case imported before, nothing imported:"
        f" the earlier import ended at event #{count} with head {head}; {what}"
    )


def _their_pages(
    records: list[dict[str, Any]], events: Iterable[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Their pages from the export's page records; a page named only by an event (an
    export without page records) keeps the fingerprint the event carries, version unknown."""
    pages = {r["page_id"]: dict(r) for r in records}
    for event in events:
        page_id = event.get("page_id")
        if page_id and page_id not in pages:
            pages[page_id] = {
                "page_id": page_id,
                "page_sha256": event.get("page_sha256"),
                "fingerprint_version": None,
                "source_sha256": None,
                "page_number": None,
            }
    return pages


def verify_partners(case: Case) -> list[str]:
    """Every imported log, checked again from the events stored at import: their chain,
    its head against the head our chain's last import event recorded, and their stored
    verdicts against what their events give. Why: the verdicts are what ``agreement``,
    the search, the app and the report show; a change made to them in the database (not
    through an import) is found only by deriving them again."""
    problems: list[str] = []
    last_import: dict[str, str] = {}
    for event in review.iter_events(case):
        if event["kind"] == IMPORT_KIND:
            last_import[event["payload"].get("partner")] = event["payload"].get("head")
    partners = case.db.execute("SELECT id, name, head, events FROM partners ORDER BY id")
    for partner_id, name, head, count in partners.fetchall():
        events = [
            json.loads(row[0])
            for row in case.db.execute(
                "SELECT event FROM partner_events WHERE partner_id = ? ORDER BY seq",
                (partner_id,),
            )
        ]
        chain = review.verify_chain(events)
        if not chain.ok:
            problems += [f"{name}'s imported log: {problem}" for problem in chain.problems]
            continue
        if (chain.head, chain.events) != (head, count):
            problems.append(
                f"{name}'s imported log: its {chain.events} stored event(s) end at {chain.head},"
                f" not at the imported head {head} after {count} (changed outside workbench)"
            )
        if last_import.get(name) != head:
            problems.append(
                f"{name}'s imported log: our review log's last import of it recorded head"
                f" {last_import.get(name)}, the case holds {head} (changed outside workbench)"
            )
        states, _ = review.derive_state(events)
        want = {
            page_id: (s["status"], s["reviewer"], s["reviewed_at"], s["notes"] or "")
            for page_id, s in states.items()
            if s["status"] != "unreviewed" or s["notes"]
        }
        have = {
            row[0]: (row[1], row[2], row[3], row[4])
            for row in case.db.execute(
                "SELECT page_id, status, reviewer, reviewed_at, notes FROM partner_reviews"
                " WHERE partner_id = ?",
                (partner_id,),
            )
        }
        for page_id in sorted(set(want) | set(have)):
            if want.get(page_id) != have.get(page_id):
                problems.append(
                    f"{name}'s verdict on their {page_id}: stored {have.get(page_id)!r}, their"
                    f" log gives {want.get(page_id)!r} (changed outside workbench)"
                )
    return problems


# ----- matching ------------------------------------------------------------------------


def match_pages(case: Case, partner_id: int) -> dict[str, tuple[int, str, str]]:
    """Their page id -> (our page row, our page id, 'fingerprint' | 'file')."""
    ours_by_print: dict[tuple[str, int], tuple[int, str]] = {}
    ours_by_file: dict[tuple[str, int], tuple[int, str]] = {}
    for row in case.db.execute(
        "SELECT p.id, p.page_id, p.page_sha256, p.fingerprint_version, s.sha256, p.page_number"
        " FROM pages p JOIN sources s ON s.id = p.source_id ORDER BY p.id"
    ):
        if row["page_sha256"]:
            ours_by_print.setdefault(
                (row["page_sha256"], row["fingerprint_version"]), (row["id"], row["page_id"])
            )
        if row["sha256"]:
            ours_by_file.setdefault((row["sha256"], row["page_number"]), (row["id"], row[1]))
    matched: dict[str, tuple[int, str, str]] = {}
    for row in case.db.execute(
        "SELECT page_id, page_sha256, fingerprint_version, source_sha256, page_number"
        " FROM partner_pages WHERE partner_id = ? ORDER BY page_id",
        (partner_id,),
    ):
        found = ours_by_print.get((row["page_sha256"], row["fingerprint_version"]))
        if found:
            matched[row["page_id"]] = (*found, "fingerprint")
            continue
        found = ours_by_file.get((row["source_sha256"], row["page_number"]))
        if found:
            matched[row["page_id"]] = (*found, "file")
    return matched


def _matched_rows(case: Case, partner_id: int) -> set[int]:
    return {row for row, _, _ in match_pages(case, partner_id).values()}


def _count_matches(case: Case, partner_id: int, report: ImportReport) -> None:
    matched = match_pages(case, partner_id)
    report.matched_by_fingerprint = sum(1 for m in matched.values() if m[2] == "fingerprint")
    report.matched_by_file = sum(1 for m in matched.values() if m[2] == "file")
    report.unmatched = report.pages - len(matched)


# ----- agreement -----------------------------------------------------------------------


def category(ours: str | None, theirs: str | None) -> str:
    """One page's agreement; None: the side does not have the page."""
    if theirs is None:
        return "only_ours"
    if ours is None:
        return "only_theirs"
    if ours == "unreviewed" and theirs == "unreviewed":
        return "neither_reviewed"
    if theirs == "unreviewed":
        return "only_we_reviewed"
    if ours == "unreviewed":
        return "only_they_reviewed"
    if ours == theirs:
        return f"both_{ours}"
    return "disagree"


@dataclass
class Agreement:
    """Per page (ours, then theirs we do not have) and the counts per partner."""

    pages: list[dict[str, Any]]
    summary: dict[str, dict[str, int]]


def agreement(case: Case, partner: str | None = None) -> Agreement:
    """Our status and each partner's, page by page, with a summary per partner."""
    partners = [
        (row["id"], row["name"])
        for row in case.db.execute("SELECT id, name FROM partners ORDER BY id")
        if partner is None or row["name"].casefold() == " ".join(partner.split()).casefold()
    ]
    if partner is not None and not partners:
        known = ", ".join(partner_names(case)) or "none yet: run 'workbench log import'"
        raise UsageError(f"no partner named {partner!r} (imported: {known})")
    rows: dict[int, dict[str, Any]] = {}
    for row in case.db.execute(
        "SELECT p.id, p.page_id, p.page_sha256, ifnull(r.status, 'unreviewed') AS status,"
        " r.reviewer, r.reviewed_at, r.notes FROM pages p"
        " LEFT JOIN page_review r ON r.page_row = p.id ORDER BY p.id"
    ):
        rows[row["id"]] = {
            "page_id": row["page_id"],
            "page_sha256": row["page_sha256"],
            "ours": _verdict(row["status"], row["reviewer"], row["reviewed_at"], row["notes"]),
            "theirs": {},
            "agreement": {},
        }
    extra: list[dict[str, Any]] = []
    summary: dict[str, dict[str, int]] = {}
    for partner_id, name in partners:
        counts = dict.fromkeys(CATEGORIES, 0)
        matched = match_pages(case, partner_id)
        theirs = _their_verdicts(case, partner_id)
        matched_rows: set[int] = set()
        for their_id, (our_row, _, how) in matched.items():
            if our_row in matched_rows:
                continue  # the same content twice on their side: the first one counts
            matched_rows.add(our_row)
            verdict = dict(theirs.get(their_id) or _verdict("unreviewed", None, None, None))
            rows[our_row]["theirs"][name] = {**verdict, "page_id": their_id, "matched_by": how}
        for their_id, verdict in _unmatched(case, partner_id, matched, theirs):
            extra.append(
                {
                    "page_id": None,
                    "page_sha256": verdict.pop("page_sha256"),
                    "ours": None,
                    "theirs": {name: {**verdict, "page_id": their_id, "matched_by": None}},
                    "agreement": {name: "only_theirs"},
                }
            )
            counts["only_theirs"] += 1
        for row in rows.values():
            their = row["theirs"].get(name)
            found = category(row["ours"]["status"], their["status"] if their else None)
            row["agreement"][name] = found
            counts[found] += 1
        summary[name] = counts
    return Agreement(pages=[*rows.values(), *extra], summary=summary)


def _verdict(
    status: str, reviewer: str | None, at: str | None, notes: str | None
) -> dict[str, Any]:
    return {"status": status, "reviewer": reviewer, "time": at, "note": notes or None}


def _their_verdicts(case: Case, partner_id: int) -> dict[str, dict[str, Any]]:
    return {
        row["page_id"]: _verdict(row["status"], row["reviewer"], row["reviewed_at"], row["notes"])
        for row in case.db.execute(
            "SELECT page_id, status, reviewer, reviewed_at, notes FROM partner_reviews"
            " WHERE partner_id = ?",
            (partner_id,),
        )
    }


def _unmatched(
    case: Case,
    partner_id: int,
    matched: dict[str, tuple[int, str, str]],
    theirs: dict[str, dict[str, Any]],
) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for row in case.db.execute(
        "SELECT page_id, page_sha256 FROM partner_pages WHERE partner_id = ? ORDER BY page_id",
        (partner_id,),
    ):
        if row["page_id"] in matched:
            continue
        verdict = dict(theirs.get(row["page_id"]) or _verdict("unreviewed", None, None, None))
        out.append((row["page_id"], {**verdict, "page_sha256": row["page_sha256"]}))
    return out


def partner_verdicts(case: Case, page_rows: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Our page row -> {partner name: their verdict (status, reviewer, time, note, their
    page_id)} for the pages asked about (the search index, ``show`` and the app): the same
    matching as :func:`match_pages`, looked up from our side for these pages only, so a
    batch costs its own size."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    if not page_rows or case.db.execute("SELECT 1 FROM partners LIMIT 1").fetchone() is None:
        return out
    marks = ",".join("?" * len(page_rows))
    ours = case.db.execute(
        "SELECT p.id, p.page_sha256, p.fingerprint_version, s.sha256, p.page_number"
        f" FROM pages p JOIN sources s ON s.id = p.source_id WHERE p.id IN ({marks})",
        page_rows,
    ).fetchall()
    select = (
        "SELECT pp.page_id, ifnull(pr.status, 'unreviewed'), pr.reviewer, pr.reviewed_at,"
        " pr.notes FROM partner_pages pp LEFT JOIN partner_reviews pr"
        " ON pr.partner_id = pp.partner_id AND pr.page_id = pp.page_id WHERE pp.partner_id = ?"
    )
    for partner_id, name in case.db.execute("SELECT id, name FROM partners ORDER BY id"):
        for row in ours:
            found = (
                case.db.execute(
                    select + " AND pp.page_sha256 = ? AND pp.fingerprint_version = ?"
                    " ORDER BY pp.page_id LIMIT 1",
                    (partner_id, row[1], row[2]),
                ).fetchone()
                or case.db.execute(
                    select + " AND pp.source_sha256 = ? AND pp.page_number = ?"
                    " ORDER BY pp.page_id LIMIT 1",
                    (partner_id, row[3], row[4]),
                ).fetchone()
            )
            if found:
                out.setdefault(row[0], {})[name] = {
                    **_verdict(found[1], found[2], found[3], found[4]),
                    "page_id": found[0],
                }
    return out


def partner_statuses(case: Case, page_rows: list[int]) -> dict[int, dict[str, str]]:
    """Our page row -> {partner name: their status}."""
    return {
        row: {name: verdict["status"] for name, verdict in theirs.items()}
        for row, theirs in partner_verdicts(case, page_rows).items()
    }


def search_slug(name: str) -> str:
    """A partner's name as search terms spell it: lower case, runs of anything but
    letters and digits as one ``_`` ("Paper B" -> ``paper_b``)."""
    return re.sub(r"[\W_]+", "_", name.casefold(), flags=re.UNICODE).strip("_")


def disagrees(ours: str, theirs: dict[str, str]) -> bool:
    """Both sides reviewed the page and came to different statuses (any partner)."""
    return any(category(ours, status) == "disagree" for status in theirs.values())
