"""The review app driven headless through Textual's pilot, against a copy of the small case."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from workbench import review, views
from workbench.store import Case
from workbench.tui.app import WINDOW, make_app
from workbench.tui.render import display_text, visual_line
from workbench.tui.screens import HelpScreen, PromptScreen, SearchScreen

SIZE = (120, 40)


@pytest.fixture
def app_case(ingested_small_trove, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the ingested small case with the reviewer already configured."""
    monkeypatch.delenv("WORKBENCH_REVIEWER", raising=False)
    case_dir = tmp_path / "case"
    shutil.copytree(ingested_small_trove[0], case_dir)
    with Case.open(case_dir) as case, case.transaction():
        case.set_setting("reviewer", "Tester")
    return case_dir


def first_pages(case_dir: Path, count: int = 3) -> list[dict]:
    with Case.open(case_dir) as case:
        return views.page_window(case, 0, count)


def detail(case_dir: Path, page_id: str) -> dict:
    with Case.open(case_dir) as case:
        return views.page_detail(case, page_id)


def events(case_dir: Path) -> list[dict]:
    with Case.open(case_dir) as case:
        return list(review.iter_events(case))


def run(coro) -> None:
    asyncio.run(coro)


def errors_shown(app) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def test_starts_on_first_page_and_moves(app_case: Path) -> None:
    pages = first_pages(app_case)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.current_page_id == pages[0]["page_id"]
            assert app.reviewer == "Tester"
            text = detail(app_case, pages[0]["page_id"])["text"]
            first_line = next(line for line in text.split("\n") if line.strip())
            shown = "".join(ch for ch, _ in visual_line(first_line))
            assert shown in app.text_view.plain
            await pilot.press("j")
            assert app.current_page_id == pages[1]["page_id"]
            await pilot.press("down")
            await pilot.pause()
            assert app.current_page_id == pages[2]["page_id"]
            await pilot.press("k")
            assert app.current_page_id == pages[1]["page_id"]
            await pilot.press("q")
        assert app.return_code == 0

    run(scenario())


def test_marks_commit_to_the_log_at_once(app_case: Path) -> None:
    page_id = first_pages(app_case)[0]["page_id"]

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("v")
            assert detail(app_case, page_id)["status"] == "verified"
            log = events(app_case)
            assert log[-1]["page_id"] == page_id and log[-1]["new_status"] == "verified"
            assert log[-1]["reviewer"] == "Tester"
            assert "verif 1 " in str(app.query_one("#status").render())
            await pilot.press("x")
            assert detail(app_case, page_id)["status"] == "disputed"
            await pilot.press("u")
            assert detail(app_case, page_id)["status"] == "unreviewed"
            assert [e["new_status"] for e in events(app_case)] == [
                "verified",
                "disputed",
                "unreviewed",
            ]
            table = app.query_one("#pages")
            assert str(table.get_cell(page_id, "status")) == "unreviewed"

    run(scenario())


def test_marks_with_notes_and_plain_notes(app_case: Path) -> None:
    page_id = first_pages(app_case)[0]["page_id"]

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("X")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*"stamp forged")
            await pilot.press("enter")
            await pilot.pause()
            last = events(app_case)[-1]
            assert last["new_status"] == "disputed" and last["note"] == "stamp forged"
            await pilot.press("c")
            await pilot.pause()
            await pilot.press(*"ask source")
            await pilot.press("enter")
            await pilot.pause()
            last = events(app_case)[-1]
            assert last["kind"] == "note" and last["note"] == "ask source"
            assert detail(app_case, page_id)["status"] == "disputed"
            assert "ask source" in str(detail(app_case, page_id)["notes"])
            # Esc on a note prompt writes nothing
            before = len(events(app_case))
            await pilot.press("V")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert len(events(app_case)) == before

    run(scenario())


def test_asks_reviewer_once_and_stores_it(app_case: Path) -> None:
    with Case.open(app_case) as case, case.transaction():
        case.set_setting("reviewer", "")

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            await pilot.press(*"Maryam")
            await pilot.press("enter")
            await pilot.pause()
            assert app.reviewer == "Maryam"
            await pilot.press("i")
        with Case.open(app_case) as case:
            assert case.get_setting("reviewer") == "Maryam"
        assert events(app_case)[-1]["reviewer"] == "Maryam"

    run(scenario())


def _known_word(case_dir: Path) -> tuple[str, str]:
    """An English word of a page that few pages share, for searching."""
    with Case.open(case_dir) as case:
        for record in views.page_window(case, 0, 100):
            text = views.page_detail(case, record["page_id"])["text"] or ""
            for word in text.split():
                if word.isascii() and word.isalpha() and len(word) >= 7:
                    return word, record["page_id"]
    pytest.skip("no English word in the small case")


def test_search_opens_hit_and_n_steps(app_case: Path) -> None:
    word, _ = _known_word(app_case)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("slash")
            await pilot.pause()
            assert isinstance(app.screen, SearchScreen)
            await pilot.press(*word)
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.search_hits, f"no hits for {word!r}"
            target = app.search_hits[0].record["page_id"]
            await pilot.press("enter")
            await pilot.pause()
            assert not isinstance(app.screen, SearchScreen)
            assert app.current_page_id == target
            spans = [span for span in app.text_view.spans if "yellow" in str(span.style)]
            assert spans or any("green" in str(s.style) for s in app.text_view.spans)
            position = app.hit_pos
            await pilot.press("n")
            await pilot.pause()
            assert app.hit_pos == (position + 1) % len(app.hit_spans)
            assert app.current_page_id == app.hit_spans[app.hit_pos][0]
            highlighted = [s for s in app.text_view.spans if "green" in str(s.style)]
            assert highlighted
            await pilot.press("N")
            assert app.hit_pos == position

    run(scenario())


def test_bad_query_notifies_and_keeps_running(app_case: Path) -> None:
    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("slash")
            await pilot.pause()
            await pilot.press(*"date:[banana TO 2014]")
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert errors_shown(app)
            await pilot.press("escape")
            await pilot.pause()
            assert app.is_running
            await pilot.press("j")
            await pilot.press("q")
        assert app.return_code == 0

    run(scenario())


def test_help_filter_and_image(app_case: Path) -> None:
    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert any(key == "v" for key, _ in app.screen.rows)
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("v")
            await pilot.press("3")  # verified only
            await pilot.pause()
            assert app.status_filter == "verified" and len(app.rows) == 1
            await pilot.press("1")
            await pilot.pause()
            assert app.status_filter is None and len(app.rows) <= WINDOW
            await pilot.press("t", "t")  # the Image tab renders in a worker
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.image_cache

    run(scenario())


def test_display_text_reorders_rtl_and_keeps_spans() -> None:
    from bidi.algorithm import get_display

    line = "گزارش محرمانه 1392 secret"
    shown = display_text(line, [(0, 5)])
    assert shown.plain == get_display(line)
    styled = "".join(shown.plain[s.start : s.end] for s in shown.spans)
    assert sorted(styled) == sorted("گزارش")


def test_list_loads_windows_not_everything(app_case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.tui import app as app_module

    monkeypatch.setattr(app_module, "WINDOW", 10)
    monkeypatch.setattr(app_module, "EDGE", 2)
    pages = first_pages(app_case, 30)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert len(app.rows) == 10
            for _ in range(15):
                await pilot.press("j")
            await pilot.pause()
            assert app.current_page_id == pages[15]["page_id"]
            assert len(app.rows) <= 10 and app.window_offset > 0
            for _ in range(10):
                await pilot.press("k")
            await pilot.pause()
            assert app.current_page_id == pages[5]["page_id"]
            await pilot.press("G")
            await pilot.pause()
            assert app.current_page_id == pages[-1]["page_id"]
            await pilot.press("g")
            await pilot.pause()
            assert app.current_page_id == pages[0]["page_id"] and app.window_offset == 0

    run(scenario())


def test_space_selects_pages_for_a_bulk_mark(app_case: Path) -> None:
    pages = [p["page_id"] for p in first_pages(app_case, 3)]

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("space", "space")
            assert app.selected == set(pages[:2])
            assert app.current_page_id == pages[2]
            await pilot.press("i")
            await pilot.pause()
            assert not app.selected
            await pilot.press("L")  # light theme: only looks
            await pilot.pause()
        statuses = [detail(app_case, page_id)["status"] for page_id in pages]
        assert statuses == ["illegible", "illegible", "unreviewed"]

    run(scenario())


def test_keys_do_not_mark_behind_a_dialog(app_case: Path) -> None:
    page_id = first_pages(app_case)[0]["page_id"]

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await pilot.pause()
            await pilot.press("v", "x")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
        assert detail(app_case, page_id)["status"] == "unreviewed"
        assert events(app_case) == []

    run(scenario())
