"""The findings pane in the app: shown per page, Enter jumps to the other page, z dismisses
(a logged event), 6 lists only pages with open findings, o warns on active content."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from workbench import findings, review
from workbench.pipeline import ingest
from workbench.store import Case
from workbench.tui.app import make_app
from workbench.tui.findings_pane import FindingsPane
from workbench.tui.screens import ConfirmScreen, PromptScreen

SIZE = (140, 45)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from fixtures.anomalies import generate_anomaly_trove

    out = tmp_path_factory.mktemp("anomalies")
    truth = json.loads(generate_anomaly_trove(out).read_text(encoding="utf-8"))
    case_dir = tmp_path_factory.mktemp("case") / "case"
    wanted = ["canary_a.pdf", "canary_b.pdf", "opens_javascript.pdf", "clean_1.pdf",
              "bad_redaction.pdf"]  # fmt: skip
    with Case.open(case_dir, create=True) as case:
        ingest(case, [str(out / "anomalies" / name) for name in wanted], lang="eng", jobs=1)
        findings.run_checks(case)
        with case.transaction():
            case.set_setting("reviewer", "Tester")
    return case_dir, truth


@pytest.fixture
def app_case(checked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("WORKBENCH_REVIEWER", raising=False)
    target = tmp_path / "case"
    shutil.copytree(checked[0], target)
    return target


def _page_of(case_dir: Path, name: str) -> str:
    with Case.open(case_dir) as case:
        return next(r["page_id"] for r in case.page_rows() if r["source_path"].endswith(name))


def test_findings_pane_jump_and_dismiss(app_case: Path) -> None:
    first, second = _page_of(app_case, "canary_a.pdf"), _page_of(app_case, "canary_b.pdf")

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.open_page(first)
            await pilot.pause()
            pane = app.query_one("#findings-pane", FindingsPane)
            assert [r["check"] for r in pane.records] == ["copy-difference", "near-duplicate"]
            assert str(app.query_one("#tabs").get_tab("tab-findings").label) == "Findings (2)"
            assert app.rows[[r["page_id"] for r in app.rows].index(first)]["finding"] == "alert"
            app.query_one("#tabs").active = "tab-findings"
            app.query_one("#finding-list").focus()
            await pilot.press("enter")
            await pilot.pause()
            assert app.current_page_id == second
            await pilot.press("z")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*"a canary test", "enter")
            await pilot.pause()
            assert pane.open_count() == 1
            assert [r["dismissed"] for r in pane.records] == [False, True]

    asyncio.run(scenario())
    with Case.open(app_case) as case:
        (copies,) = findings.finding_records(case, check="copy-difference")
        assert copies["dismissed"] is True
        last = list(review.iter_events(case))[-1]
        assert last["kind"] == "dismiss" and last["note"] == "a canary test"
        assert last["reviewer"] == "Tester"
        assert review.verify_chain(review.iter_events(case)).ok
        assert review.verify_derived_state(case) == []


def test_findings_filter_lists_only_pages_with_open_findings(app_case: Path) -> None:
    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            total = app.total
            await pilot.press("6")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert 0 < app.total < total
            assert all(row["finding"] for row in app.rows)

    asyncio.run(scenario())


def test_o_warns_before_opening_a_file_with_active_content(app_case: Path) -> None:
    page = _page_of(app_case, "opens_javascript.pdf")

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.open_page(page)
            await pilot.pause()
            await pilot.press("o")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)

    asyncio.run(scenario())


def test_words_under_a_black_box_are_masked_in_the_text_pane(checked, app_case: Path) -> None:
    """The stored text keeps the words a bad redaction left; the app shows them as █."""
    _, truth = checked
    (planted,) = [a for a in truth["anomalies"] if a.get("file", "").endswith("/bad_redaction.pdf")]
    page = _page_of(app_case, "bad_redaction.pdf")

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            app.open_page(page)
            await pilot.pause()
            shown = app.text_view.plain
            assert "█" in shown
            for word in planted["hidden_words"]:
                assert word not in shown

    asyncio.run(scenario())
