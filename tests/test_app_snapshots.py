"""Snapshot tests: the app's screens compared with the SVGs committed in __snapshots__.

A change that alters what a reviewer sees fails here until the new picture is looked at
and accepted with ``pytest tests/test_app_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench import documents, pipeline, views
from workbench.store import Case
from workbench.tui.app import make_app

SMALL, LARGE = (80, 24), (200, 60)


@pytest.fixture(scope="module")
def born_digital_case(small_trove: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small trove's born-digital files only: no OCR, so every figure on screen is fixed
    (OCR confidences move whenever the OCR steps change, and would break every picture)."""
    case_dir = tmp_path_factory.mktemp("snapshots") / "case"
    with Case.open(case_dir, create=True) as case:
        report = pipeline.ingest(case, [str(small_trove / "born_digital")], lang="eng", jobs=1)
    assert report.ok
    return case_dir


@pytest.fixture
def snapshot_case(born_digital_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy with a reviewer and two documents (one with a wrong claimed page count)."""
    monkeypatch.delenv("WORKBENCH_REVIEWER", raising=False)
    case_dir = tmp_path / "case"
    shutil.copytree(born_digital_case, case_dir)
    with Case.open(case_dir) as case:
        with case.transaction():
            case.set_setting("reviewer", "Tester")
        pages = [p["page_id"] for p in views.page_window(case, 0, 4)]
        documents.add_document(
            case, pages[:2], reviewer="Tester", title="First", date="2014-08-03", claimed_pages=5
        )
        documents.add_document(case, pages[2:4], reviewer="Tester", claimed_pages=2)
    return case_dir


async def _settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_main_screen(snap_compare, snapshot_case: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(str(snapshot_case)), terminal_size=size, run_before=_settle)


def test_main_screen_light_theme(snap_compare, snapshot_case: Path) -> None:
    assert snap_compare(
        make_app(str(snapshot_case)), press=["L"], terminal_size=LARGE, run_before=_settle
    )


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_search_results(snap_compare, snapshot_case: Path, size: tuple[int, int]) -> None:
    async def search(pilot) -> None:
        await pilot.pause()
        await pilot.press("slash", *"embassy", "enter")
        await _settle(pilot)

    assert snap_compare(make_app(str(snapshot_case)), terminal_size=size, run_before=search)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_documents_view(snap_compare, snapshot_case: Path, size: tuple[int, int]) -> None:
    async def open_documents(pilot) -> None:
        await pilot.pause()
        await pilot.press("d")
        await _settle(pilot)

    assert snap_compare(make_app(str(snapshot_case)), terminal_size=size, run_before=open_documents)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_help(snap_compare, snapshot_case: Path, size: tuple[int, int]) -> None:
    async def open_help(pilot) -> None:
        await pilot.pause()
        await pilot.press("question_mark")
        await _settle(pilot)

    assert snap_compare(make_app(str(snapshot_case)), terminal_size=size, run_before=open_help)
