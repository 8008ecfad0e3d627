"""The case store: schema, WAL, settings, page ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workbench.errors import CaseError, UsageError
from workbench.store import DATABASE_NAME, SCHEMA_VERSION, Case, format_page_id


def test_new_case_is_wal_with_schema_version(case_dir: Path) -> None:
    with Case.open(case_dir, create=True) as case:
        assert case.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert case.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert case.prefix == "WB"
        assert case.languages == "eng"


def test_opening_a_missing_case_without_create_says_how(case_dir: Path) -> None:
    with pytest.raises(CaseError, match="no case here"):
        Case.open(case_dir)


def test_prefix_is_fixed_at_creation(case_dir: Path) -> None:
    Case.open(case_dir, create=True, prefix="leak").close()
    with Case.open(case_dir) as case:
        assert case.prefix == "LEAK"
    with pytest.raises(UsageError, match="cannot change"):
        Case.open(case_dir, prefix="OTHER")


@pytest.mark.parametrize("bad", ["1AB", "A-B", "", "x" * 17])
def test_bad_prefixes_are_refused(case_dir: Path, bad: str) -> None:
    if bad == "":
        Case.open(case_dir, create=True, prefix=bad).close()  # empty means default
        return
    with pytest.raises(UsageError):
        Case.open(case_dir, create=True, prefix=bad)


def test_newer_schema_is_refused(case_dir: Path) -> None:
    Case.open(case_dir, create=True).close()
    db = sqlite3.connect(case_dir / DATABASE_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(CaseError, match="newer workbench"):
        Case.open(case_dir)


def test_garbage_database_is_a_clear_error(case_dir: Path) -> None:
    case_dir.mkdir()
    (case_dir / DATABASE_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CaseError, match="not a usable case database"):
        Case.open(case_dir)


def test_page_ids_are_gapless_after_a_rolled_back_file(case_dir: Path) -> None:
    page = {"page_number": 1, "text": "x", "text_source": "layer"}
    with Case.open(case_dir, create=True) as case:
        with case.transaction():
            sid = case.record_source(path="/a", sha256="a", size=1, kind="pdf", status="ingested")
            assert case.add_page(sid, page) == "WB-000001"
        with pytest.raises(RuntimeError), case.transaction():
            sid = case.record_source(path="/b", sha256="b", size=1, kind="pdf", status="ingested")
            case.add_page(sid, page)
            raise RuntimeError("crash mid-file")
        with case.transaction():
            sid = case.record_source(path="/c", sha256="c", size=1, kind="pdf", status="ingested")
            assert case.add_page(sid, page) == "WB-000002"
        assert [s.path for s in case.sources()] == ["/a", "/c"]


def test_format_page_id() -> None:
    assert format_page_id("WB", 42) == "WB-000042"
    assert format_page_id("AP", 1234567) == "AP-1234567"
