"""No update to the search index is lost, whatever runs between reading the queue and
dequeuing it: a mark made while a sync or a rebuild is indexing must reach the index.

The in-process tests put the racing mark exactly where it hurt (after the pages were read,
after the index commit, before the queue entries are deleted); the cross-process test
lets real processes mark, sync and rebuild at once and compares every page at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from workbench import index, review
from workbench.pipeline import ingest
from workbench.store import Case

STATUSES = ("unreviewed", "verified", "disputed", "illegible")


@pytest.fixture(scope="module")
def born_digital_case(small_trove: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small trove's born-digital files, ingested and indexed once (copied per test)."""
    case_dir = tmp_path_factory.mktemp("races") / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(small_trove / "born_digital")], jobs=2)
        index.sync(case)
    return case_dir


@pytest.fixture
def case_dir(born_digital_case: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "case"
    shutil.copytree(born_digital_case, copy)
    yield copy
    index.close_searchers()


def _mark_elsewhere(case_dir: Path, page_id: str, status: str) -> None:
    """A mark through its own connection, as another process (the app, a CLI) makes it."""
    with Case.open(case_dir) as other:
        review.mark(other, [page_id], status, "racer")


def _index_statuses(case: Case) -> dict[str, str]:
    found: dict[str, str] = {}
    for status in STATUSES:
        for page_id in index.matching_page_ids(case, f"status:{status}"):
            assert page_id not in found, f"{page_id} is in the index twice"
            found[page_id] = status
    return found


def _database_statuses(case: Case) -> dict[str, str]:
    return {
        row["page_id"]: row["status"]
        for row in case.db.execute(
            "SELECT p.page_id, ifnull(r.status, 'unreviewed') AS status FROM pages p"
            " LEFT JOIN page_review r ON r.page_row = p.id"
        )
    }


@pytest.mark.parametrize("moment", ["pages-read", "index-committed"])
def test_a_mark_during_sync_reaches_the_index(case_dir: Path, monkeypatch, moment: str) -> None:
    with Case.open(case_dir) as case:
        review.mark(case, ["WB-000002"], "verified", "alice")  # queued for the index
        fired = []

        def race() -> None:
            if not fired:
                fired.append(True)
                _mark_elsewhere(case_dir, "WB-000002", "disputed")

        if moment == "pages-read":
            real_rows = index._rows

            def rows_then_mark(*args, **kwargs):
                rows = list(real_rows(*args, **kwargs))
                race()
                return iter(rows)

            monkeypatch.setattr(index, "_rows", rows_then_mark)
        else:
            real_writer = index._writer

            def writer_that_marks_after_commit(*args, **kwargs):
                writer = real_writer(*args, **kwargs)
                real_commit = writer.commit

                def commit(*a, **k):
                    real_commit(*a, **k)
                    race()

                writer.commit = commit
                return writer

            monkeypatch.setattr(index, "_writer", writer_that_marks_after_commit)
        index.sync(case)
        assert fired, "the race hook never ran"
        monkeypatch.undo()
        index.sync(case)
        assert case.review_state("WB-000002")["status"] == "disputed"
        assert index.matching_page_ids(case, "status:disputed") == ["WB-000002"]
        assert index.matching_page_ids(case, "status:verified") == []


def test_a_mark_during_rebuild_reaches_the_index(case_dir: Path, monkeypatch) -> None:
    with Case.open(case_dir) as case:
        real_rows = index._rows
        fired = []

        def rows_then_mark(case_arg, row_ids):
            rows = list(real_rows(case_arg, row_ids))
            if not fired:  # WB-000003 has just been read by the rebuild
                fired.append(True)
                _mark_elsewhere(case_dir, "WB-000003", "illegible")
            return iter(rows)

        monkeypatch.setattr(index, "_rows", rows_then_mark)
        index.rebuild(case)
        assert fired
        monkeypatch.undo()
        index.sync(case)
        assert case.review_state("WB-000003")["status"] == "illegible"
        assert index.matching_page_ids(case, "status:illegible") == ["WB-000003"]


def test_a_crash_between_index_commit_and_dequeue_loses_nothing(
    case_dir: Path, monkeypatch
) -> None:
    """The process dies after the index commit: the next sync indexes the page again."""
    with Case.open(case_dir) as case:
        review.mark(case, ["WB-000004"], "disputed", "alice")
        real_writer = index._writer

        class Crash(BaseException):
            pass

        def writer_that_dies_after_commit(*args, **kwargs):
            writer = real_writer(*args, **kwargs)
            real_commit = writer.commit

            def commit(*a, **k):
                real_commit(*a, **k)
                writer.cancel = lambda: None  # the process is gone: nothing to cancel
                raise Crash

            writer.commit = commit
            return writer

        monkeypatch.setattr(index, "_writer", writer_that_dies_after_commit)
        with pytest.raises(Crash):
            index.sync(case)
        monkeypatch.undo()
        assert index.pending(case) >= 1  # still queued: indexed again, never lost
        review.mark(case, ["WB-000004"], "verified", "alice")
        index.sync(case)
        assert index.pending(case) == 0
        assert index.matching_page_ids(case, "status:verified") == ["WB-000004"]
        assert index.matching_page_ids(case, "status:disputed") == []


MARKER = """
import sys
from workbench import review
from workbench.store import Case
statuses = ("verified", "disputed", "illegible", "unreviewed")
case = Case.open(sys.argv[1])
pages = sys.argv[2].split(",")
for n in range(int(sys.argv[3])):
    review.mark(case, [pages[n % len(pages)]], statuses[(n // len(pages)) % 4], sys.argv[4])
case.close()
"""

SYNCER = """
import sys
from workbench import index
from workbench.store import Case
case = Case.open(sys.argv[1])
for n in range(int(sys.argv[2])):
    index.sync(case)
    index.matching_page_ids(case, "status:disputed")
case.close()
"""


def test_marks_racing_syncs_and_rebuilds_across_processes(case_dir: Path) -> None:
    """Two markers, a syncing process and this one (syncing, searching, rebuilding)."""
    with Case.open(case_dir) as case:
        pages = [row["page_id"] for row in case.db.execute("SELECT page_id FROM pages")]
    env = subprocess_env()
    halves = (pages[: len(pages) // 2], pages[len(pages) // 2 :])
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", MARKER, str(case_dir), ",".join(half), "120", who],
            env=env,
        )
        for half, who in zip(halves, ("m1", "m2"), strict=True)
    ]
    workers.append(subprocess.Popen([sys.executable, "-c", SYNCER, str(case_dir), "40"], env=env))
    with Case.open(case_dir) as case:
        rounds = 0
        while any(w.poll() is None for w in workers[:2]) and rounds < 400:
            rounds += 1
            if rounds % 10 == 0:
                index.rebuild(case)
            else:
                index.sync(case)
            index.matching_page_ids(case, "status:verified")
        for worker in workers:
            assert worker.wait(timeout=300) == 0
        index.sync(case)
        assert index.pending(case) == 0
        in_database = _database_statuses(case)
        assert set(in_database.values()) != {"unreviewed"}, "the markers marked nothing"
        assert _index_statuses(case) == in_database


def test_mark_query_acts_on_the_case_not_on_a_stale_index(case_dir: Path, monkeypatch) -> None:
    """The index is behind (its sync could not run): --query marks what the case says."""
    from click.testing import CliRunner

    from workbench.cli import main

    with Case.open(case_dir) as case:
        review.mark(case, ["WB-000003"], "disputed", "alice")
        index.sync(case)
        review.mark(case, ["WB-000003"], "verified", "bob")  # no longer disputed
        review.mark(case, ["WB-000005"], "disputed", "bob")  # newly disputed

    def busy(*args, **kwargs):
        raise index.IndexBusyError("the search index is being written by another process")

    monkeypatch.setattr(index, "sync", busy)
    result = CliRunner().invoke(
        main,
        ["mark", "--query", "status:disputed", "--status", "illegible", "--yes"],
        env={"WORKBENCH_CASE": str(case_dir), "WORKBENCH_REVIEWER": "erin"},
    )
    assert result.exit_code == 0, result.output
    assert "1 page(s) match 'status:disputed'" in result.stderr
    monkeypatch.undo()
    with Case.open(case_dir) as case:
        assert case.review_state("WB-000003")["status"] == "verified"
        assert case.review_state("WB-000005")["status"] == "illegible"
        index.sync(case)
        assert _index_statuses(case) == _database_statuses(case)


def test_mark_query_rechecks_the_hits_it_was_shown(case_dir: Path) -> None:
    """Between showing the hits and marking them, pages change: only what still matches."""
    with Case.open(case_dir) as case:
        review.mark(case, ["WB-000003", "WB-000004"], "disputed", "alice")
        index.sync(case)
        shown = index.current_matching_page_ids(case, "status:disputed")
        assert shown == ["WB-000003", "WB-000004"]
        # meanwhile, another reviewer (the index does not know yet)
        _mark_elsewhere(case_dir, "WB-000004", "verified")
        _mark_elsewhere(case_dir, "WB-000006", "disputed")
        done = review.mark_query(case, [], "status:disputed", shown, "illegible", "carol")
        assert [e["page_id"] for e in done.events] == ["WB-000003"]
        assert done.no_longer_matching == ["WB-000004"]
        assert done.not_confirmed == ["WB-000006"]
        assert case.review_state("WB-000004")["status"] == "verified"
        assert case.review_state("WB-000006")["status"] == "disputed"


def test_a_case_from_before_the_tickets_keeps_its_queue(tmp_path: Path) -> None:
    """Schema 3 -> 4: the queued pages are still queued, each with a ticket."""
    import sqlite3

    from workbench import store

    path = tmp_path / "old" / store.DATABASE_NAME
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    for script in store.MIGRATIONS[:3]:
        for statement in store._split_sql(script):
            db.execute(statement)
    db.execute("PRAGMA user_version = 3")
    db.execute(
        "INSERT INTO sources(id, path, status, recorded_at) VALUES (1, 'a.pdf', 'ingested', 'x')"
    )
    for row in (1, 2, 3):
        db.execute(
            "INSERT INTO pages(id, page_id, source_id, page_number, text, text_source,"
            " char_count) VALUES (?, ?, 1, ?, '', 'none', 0)",
            (row, f"WB-{row:06d}", row),
        )
    db.execute("INSERT INTO index_queue(page_row) VALUES (3), (1)")
    db.close()
    with Case.open(path.parent) as case:
        assert sorted(case.index_queue_batch(10)) == [1, 3]
        before = dict(case.index_queue_tickets(10))
        with case.transaction():
            case.queue_for_index([1])
        after = dict(case.index_queue_tickets(10))
        assert after[3] == before[3] and after[1] > max(before.values())


def test_mark_query_refuses_when_the_index_is_far_behind(case_dir: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    with Case.open(case_dir) as case:
        case.queue_all_pages_for_index()
        behind = index.pending(case)
    monkeypatch.setattr(index, "CURRENT_MATCH_PENDING_LIMIT", behind - 1)
    monkeypatch.setattr(index, "sync", lambda *a, **k: 0)  # the index stays behind
    result = CliRunner().invoke(
        main,
        ["mark", "--query", "status:unreviewed", "--status", "verified", "--yes"],
        env={"WORKBENCH_CASE": str(case_dir), "WORKBENCH_REVIEWER": "erin"},
    )
    assert result.exit_code == 5
    assert result.stderr.startswith(f"error: the search index is {behind} page(s) behind")
    with Case.open(case_dir) as case:
        assert case.status_counts()["verified"] == 0
