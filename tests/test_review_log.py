"""The review log is the record: verify checks the derived state against it, and a review
event that was committed survives a power loss (synchronous=FULL when it commits)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench import documents, review
from workbench.cli import main
from workbench.pipeline import ingest
from workbench.store import DATABASE_NAME, Case

SYNCHRONOUS_FULL = 2


@pytest.fixture(scope="module")
def reviewed_template(small_trove: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    case_dir = tmp_path_factory.mktemp("log") / "case"
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(small_trove / "born_digital")], jobs=2)
        review.mark(case, ["WB-000001", "WB-000002"], "verified", "alice", note="matches scan")
        review.mark(case, ["WB-000003"], "disputed", "bob", note="letterhead font is wrong")
        review.add_note(case, "WB-000001", "seen by second reviewer", "bob")
        review.mark(case, ["WB-000001"], "verified", "carol", note="checked again")
        review.mark(case, ["WB-000004"], "illegible", "alice")
        review.mark(case, ["WB-000004"], "unreviewed", "alice")
        documents.add_document(
            case, ["WB-000005", "WB-000006"], reviewer="dan", title="TEHRAN 0042/2014",
            date="1393/05/12", claimed_pages=3,
        )  # fmt: skip
    return case_dir


@pytest.fixture
def reviewed_case(reviewed_template: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "case"
    shutil.copytree(reviewed_template, copy)
    return copy


def _verify_cli(case_dir: Path):
    return CliRunner().invoke(main, ["log", "verify"], env={"WORKBENCH_CASE": str(case_dir)})


def _raw(case_dir: Path) -> sqlite3.Connection:
    """The database opened by another SQLite tool: the triggers allow this change."""
    return sqlite3.connect(case_dir / DATABASE_NAME, isolation_level=None)


def test_the_derived_state_of_an_honest_case_verifies(reviewed_case: Path) -> None:
    with Case.open(reviewed_case) as case:
        assert review.verify_derived_state(case) == []
    result = _verify_cli(reviewed_case)
    assert result.exit_code == 0, result.output
    assert "BROKEN" not in result.stderr


def test_a_status_changed_in_the_database_is_caught(reviewed_case: Path) -> None:
    """UPDATE page_review behind the log's back: verify names the page, exit 6."""
    db = _raw(reviewed_case)
    db.execute(
        "INSERT OR REPLACE INTO page_review(page_row, status) "
        "SELECT id, 'verified' FROM pages WHERE page_id = 'WB-000010'"
    )
    db.execute(
        "UPDATE page_review SET status = 'verified' WHERE page_row = "
        "(SELECT id FROM pages WHERE page_id = 'WB-000003')"
    )
    db.close()
    result = _verify_cli(reviewed_case)
    assert result.exit_code == 6
    broken = [line for line in result.stderr.splitlines() if line.startswith("BROKEN: ")]
    assert len(broken) == 2, result.stderr
    assert broken[0].startswith("BROKEN: WB-000003: ")
    assert "status 'verified'" in broken[0] and "the log gives 'disputed'" in broken[0]
    assert broken[1].startswith("BROKEN: WB-000010: ")
    assert "the log gives 'unreviewed'" in broken[1]
    assert "log verified" not in result.stdout


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("reviewer", "'mallory'", "reviewer 'mallory'"),
        ("reviewed_at", "'2001-01-01T00:00:00Z'", "reviewed_at '2001-01-01T00:00:00Z'"),
        ("notes", "'all fine'", "notes 'all fine'"),
        ("document_id", "NULL", "document_id None"),
    ],
)
def test_every_derived_column_is_checked(
    reviewed_case: Path, column: str, value: str, shown: str
) -> None:
    page = "WB-000005" if column == "document_id" else "WB-000001"
    _raw(reviewed_case).execute(
        f"UPDATE page_review SET {column} = {value} WHERE page_row = "
        f"(SELECT id FROM pages WHERE page_id = '{page}')"
    )
    with Case.open(reviewed_case) as case:
        problems = review.verify_derived_state(case)
    assert len(problems) == 1 and problems[0].startswith(f"{page}: ")
    assert shown in problems[0]


def test_a_document_changed_in_the_database_is_caught(reviewed_case: Path) -> None:
    _raw(reviewed_case).execute("UPDATE documents SET claimed_pages = 2, title = 'x'")
    with Case.open(reviewed_case) as case:
        problems = review.verify_derived_state(case)
    assert len(problems) == 1 and problems[0].startswith("DOC-0001: ")
    assert "claimed_pages 2" in problems[0] and "the log gives 3" in problems[0]


def test_review_events_commit_with_synchronous_full(reviewed_case: Path, monkeypatch) -> None:
    """Every path that appends an event does so on a connection set to FULL."""
    seen: list[int] = []
    real_append = review.append_event

    def append_and_look(db, **fields):
        seen.append(db.execute("PRAGMA synchronous").fetchone()[0])
        return real_append(db, **fields)

    monkeypatch.setattr(review, "append_event", append_and_look)
    statements: list[str] = []
    with Case.open(reviewed_case) as case:
        case.db.set_trace_callback(statements.append)
        review.mark(case, ["WB-000007"], "verified", "erin")
        review.add_note(case, "WB-000007", "a note", "erin")
        documents.add_document(case, ["WB-000008"], reviewer="erin")
        case.db.set_trace_callback(None)
        assert case.db.execute("PRAGMA synchronous").fetchone()[0] == SYNCHRONOUS_FULL
    assert seen == [SYNCHRONOUS_FULL] * 3
    lowered = [s.lower().replace(" ", "") for s in statements]
    assert "pragmasynchronous=normal" not in lowered
    assert lowered.count("commit") >= 3
