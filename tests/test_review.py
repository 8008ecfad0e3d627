"""Page review and the hash-chained log: marks, notes, tamper detection, concurrency."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from workbench import index, review, views
from workbench.errors import UsageError
from workbench.pipeline import ingest
from workbench.store import DATABASE_NAME, Case


@pytest.fixture
def reviewed_case(small_trove: Path, tmp_path: Path) -> Path:
    """A born-digital case with a few reviewed pages (ids WB-000001...)."""
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(small_trove / "born_digital")], jobs=2)
        review.mark(case, ["WB-000001", "WB-000002"], "verified", "alice", note="matches scan")
        review.mark(case, ["WB-000003"], "disputed", "bob", note="letterhead font is wrong")
        review.add_note(case, "WB-000001", "seen by second reviewer", "bob")
        review.mark(case, ["WB-000004"], "illegible", "alice")
    return case_dir


def _raw(case_dir: Path) -> sqlite3.Connection:
    """The database as an attacker would open it, with the protecting triggers dropped."""
    db = sqlite3.connect(case_dir / DATABASE_NAME, isolation_level=None)
    db.execute("DROP TRIGGER review_events_no_update")
    db.execute("DROP TRIGGER review_events_no_delete")
    return db


def _verify(case_dir: Path) -> review.ChainReport:
    with Case.open(case_dir) as case:
        return review.verify_chain(review.iter_events(case))


def test_marks_and_notes_are_events_and_state(reviewed_case: Path) -> None:
    with Case.open(reviewed_case) as case:
        events = list(review.iter_events(case))
        pages = {p["page_id"]: p for p in views.page_records(case)}
        detail = views.page_detail(case, "WB-000001")
    assert [e["kind"] for e in events] == ["status", "status", "status", "note", "status"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    first = events[0]
    assert first["old_status"] == "unreviewed" and first["new_status"] == "verified"
    assert first["reviewer"] == "alice" and first["at"].endswith("Z")
    assert first["page_sha256"] == pages["WB-000001"]["page_sha256"]
    assert pages["WB-000003"]["status"] == "disputed"
    assert pages["WB-000003"]["reviewer"] == "bob"
    assert pages["WB-000004"]["status"] == "illegible"
    assert pages["WB-000005"]["status"] == "unreviewed" and pages["WB-000005"]["reviewer"] is None
    assert "matches scan" in detail["notes"] and "second reviewer" in detail["notes"]
    assert _verify(reviewed_case).ok


def test_the_index_follows_statuses(reviewed_case: Path) -> None:
    with Case.open(reviewed_case) as case:
        index.sync(case)
        verified = sorted(h.record["page_id"] for h in index.search(case, "status:verified").hits)
        assert verified == ["WB-000001", "WB-000002"]
        assert [h.record["page_id"] for h in index.search(case, 'notes:"letterhead"').hits] == [
            "WB-000003"
        ]
        assert index.count_by_status(case, "status:disputed OR status:illegible") == {
            "disputed": 1,
            "illegible": 1,
        }


def test_ranges_and_bad_ids(reviewed_case: Path) -> None:
    with Case.open(reviewed_case) as case:
        assert review.expand_page_ids(case, ["WB-000010..WB-000012"]) == [
            "WB-000010",
            "WB-000011",
            "WB-000012",
        ]
        assert review.expand_page_ids(case, ["wb-5..6,WB-000001"]) == [
            "WB-000005",
            "WB-000006",
            "WB-000001",
        ]
        with pytest.raises(UsageError, match="no such page"):
            review.expand_page_ids(case, ["WB-999999"])
        with pytest.raises(UsageError, match="not a page id"):
            review.expand_page_ids(case, ["page seven"])


def test_the_reviewer_is_never_empty(reviewed_case: Path, monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_REVIEWER", raising=False)
    with Case.open(reviewed_case) as case:
        with pytest.raises(UsageError, match="who is reviewing"):
            review.resolve_reviewer(case, "  ")
        monkeypatch.setenv("WORKBENCH_REVIEWER", "carol")
        assert review.resolve_reviewer(case) == "carol"
        assert review.resolve_reviewer(case, "dan") == "dan"
        with pytest.raises(sqlite3.IntegrityError), case.transaction() as db:
            review.append_event(db, kind="note", page_id="WB-000001", reviewer=" ", note="x")


def test_triggers_refuse_update_and_delete(reviewed_case: Path) -> None:
    db = sqlite3.connect(reviewed_case / DATABASE_NAME)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE review_events SET reviewer = 'mallory' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM review_events WHERE seq = 2")


@pytest.mark.parametrize(
    "column",
    ["kind", "page_id", "old_status", "new_status", "reviewer", "at", "note", "page_sha256",
     "payload", "document_id"],
)  # fmt: skip
def test_tampering_with_any_field_is_detected(reviewed_case: Path, column: str) -> None:
    db = _raw(reviewed_case)
    value = {"payload": '{"forged": true}'}.get(column, "forged")
    db.execute(f"UPDATE review_events SET {column} = ? WHERE seq = 3", (value,))
    report = _verify(reviewed_case)
    assert not report.ok
    assert report.problems[0].startswith("event #3:")


def test_deleting_or_reordering_events_is_detected(reviewed_case: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(reviewed_case, copy)
    db = _raw(reviewed_case)
    db.execute("DELETE FROM review_events WHERE seq = 2")
    assert _verify(reviewed_case).problems[0].startswith("event #2:")

    db = _raw(copy)
    db.execute("UPDATE review_events SET seq = 100 WHERE seq = 2")
    db.execute("UPDATE review_events SET seq = 2 WHERE seq = 3")
    db.execute("UPDATE review_events SET seq = 3 WHERE seq = 100")
    assert _verify(copy).problems[0].startswith("event #2:")


def test_rewriting_the_whole_tail_still_changes_the_head(reviewed_case: Path) -> None:
    """An attacker who recomputes every hash after an edit produces a different head:
    the head a newsroom wrote down no longer matches."""
    head = _verify(reviewed_case).head
    db = _raw(reviewed_case)
    db.execute("UPDATE review_events SET note = 'forged' WHERE seq = 1")
    prev = review.GENESIS_HASH
    for row in db.execute("SELECT * FROM review_events ORDER BY seq").fetchall():
        cols = [d[0] for d in db.execute("SELECT * FROM review_events LIMIT 0").description]
        event = dict(zip(cols, row, strict=True))
        digest = review.event_hash(prev, event)
        db.execute(
            "UPDATE review_events SET prev_hash = ?, hash = ? WHERE seq = ?",
            (prev, digest, event["seq"]),
        )
        prev = digest
    report = _verify(reviewed_case)
    assert report.ok and report.head != head


def test_log_verify_cli_reports_head_and_changed_files(
    reviewed_case: Path, small_trove: Path, tmp_path: Path, monkeypatch
) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    runner = CliRunner()
    env = {"WORKBENCH_CASE": str(reviewed_case)}
    result = runner.invoke(main, ["log", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert f"chain head  {_verify(reviewed_case).head}" in result.stdout

    with Case.open(reviewed_case) as case:
        victim = Path(case.sources()[0].path)
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        result = runner.invoke(main, ["log", "verify"], env=env)
    finally:
        victim.write_bytes(original)
    assert result.exit_code == 6
    assert f"BROKEN: {victim}: changed since ingest" in result.stderr
    assert "4 reviewed page(s) on it are now stale: WB-000001, WB-000002" in result.stderr

    _raw(reviewed_case).execute("UPDATE review_events SET new_status = 'verified' WHERE seq = 3")
    result = runner.invoke(main, ["log", "verify"], env=env)
    assert result.exit_code == 6
    assert "BROKEN: event #3: its content does not match its hash" in result.stderr


def test_mark_cli_with_query_and_ranges(reviewed_case: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    runner = CliRunner()
    env = {"WORKBENCH_CASE": str(reviewed_case), "WORKBENCH_REVIEWER": "erin"}
    result = runner.invoke(main, ["mark", "WB-000010..WB-000012", "--status", "verified"], env=env)
    assert result.exit_code == 0, result.stderr
    assert "3 page(s) marked verified by erin" in result.stdout
    result = runner.invoke(
        main, ["mark", "--query", "lang:fas", "--status", "disputed"], env=env, input="n\n"
    )
    assert result.exit_code == 1 and "aborted: nothing was changed" in result.stderr
    result = runner.invoke(
        main, ["mark", "--query", "lang:fas", "--status", "disputed", "--yes"], env=env
    )
    assert result.exit_code == 0, result.stderr
    with Case.open(reviewed_case) as case:
        fas = index.matching_page_ids(case, "lang:fas")
        statuses = {p["page_id"]: p["status"] for p in views.page_records(case)}
    assert fas and all(statuses[p] == "disputed" for p in fas)
    assert runner.invoke(main, ["note", "WB-000002", "a note"], env=env).exit_code == 0
    shown = json.loads(runner.invoke(main, ["show", "WB-000002", "--json"], env=env).stdout)
    assert shown["status"] == "verified" and "a note" in shown["notes"]
    no_reviewer = runner.invoke(main, ["mark", "WB-000002", "--status", "verified"],
                                env={"WORKBENCH_CASE": str(reviewed_case),
                                     "WORKBENCH_REVIEWER": ""})  # fmt: skip
    assert no_reviewer.exit_code == 2 and "who is reviewing" in no_reviewer.stderr


def test_two_processes_marking_at_once_lose_nothing(reviewed_case: Path) -> None:
    program = """
import sys
from workbench import review
from workbench.store import Case
case = Case.open(sys.argv[1])
page, who = sys.argv[2], sys.argv[3]
for n in range(500):
    review.mark(case, [page], "verified" if n % 2 == 0 else "disputed", who)
"""
    with Case.open(reviewed_case) as case:
        before = len(list(review.iter_events(case)))
        review.mark(case, ["WB-000020", "WB-000021"], "disputed", "setup")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", program, str(reviewed_case), page, who], env=subprocess_env()
        )
        for page, who in (("WB-000020", "p1"), ("WB-000021", "p2"))
    ]
    for worker in workers:
        assert worker.wait(timeout=300) == 0
    with Case.open(reviewed_case) as case:
        events = list(review.iter_events(case))
    assert len(events) == before + 2 + 1000
    assert review.verify_chain(events).ok
    assert sum(1 for e in events if e["reviewer"] in ("p1", "p2")) == 1000
