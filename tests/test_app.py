"""The review app driven headless through Textual's pilot, against a copy of the small case."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
import threading
from pathlib import Path

import pytest

from workbench import documents, export, index, pipeline, review, views
from workbench.store import Case
from workbench.tui.app import WINDOW, make_app
from workbench.tui.render import display_text, visual_line
from workbench.tui.screens import (
    ConfirmScreen,
    DocumentFormScreen,
    DocumentsScreen,
    ExportScreen,
    HelpScreen,
    PromptScreen,
    SearchScreen,
    SuggestionsScreen,
)

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
            with Case.open(app_case) as case:  # the bar's running counts equal a recount
                assert app.status_counts == views.status_counts(case)
            await pilot.press("space", "space", "i")  # a bulk mark of two pages
            with Case.open(app_case) as case:
                assert app.status_counts == views.status_counts(case)
            assert app.status_counts["illegible"] == 2
            assert "illeg 2 " in str(app.query_one("#status").render())

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
            await pilot.press("home")
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


def messages(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def doc_records(case_dir: Path) -> list[dict]:
    with Case.open(case_dir) as case:
        return documents.document_records(case)


def test_g_groups_selected_pages_into_a_document(app_case: Path) -> None:
    pages = [p["page_id"] for p in first_pages(app_case, 3)]

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("space", "space", "g")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, DocumentFormScreen)
            await pilot.press(*"Cable one", "tab", *"banana", "tab", "3", "enter")
            await pilot.pause()
            assert app.screen is form, "a bad date must keep the form open"
            assert any("banana" in m or "date" in m.lower() for m in errors_shown(app))
            form.query_one("#doc-date").value = "۱۳۹۳/۰۵/۱۲"  # Jalali, Persian digits
            form.query_one("#doc-claimed").focus()
            await pilot.press("enter")
            await pilot.pause()
            assert not isinstance(app.screen, DocumentFormScreen)
            assert not app.selected
            # the first page is taken now: grouping it again is refused, the form stays
            await pilot.press("home", "g")
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, DocumentFormScreen)
            assert any("already belong" in m for m in errors_shown(app))
            await pilot.press("escape")

    run(scenario())
    (record,) = doc_records(app_case)
    assert record["page_ids"] == pages[:2]
    assert record["title"] == "Cable one"
    assert record["date_iso"] == "2014-08-03" and record["date_jalali"] == "1393/05/12"
    assert record["claimed_pages"] == 3 and record["mismatch"]


def _two_documents(case_dir: Path) -> list[str]:
    """Two documents made through the library, the first with a wrong claimed count."""
    pages = [p["page_id"] for p in first_pages(case_dir, 4)]
    with Case.open(case_dir) as case:
        documents.add_document(
            case, pages[:2], reviewer="Tester", title="First", date="2014-08-03", claimed_pages=5
        )
        documents.add_document(case, pages[2:4], reviewer="Tester", claimed_pages=2)
    return pages


def test_d_lists_documents_enter_jumps_s_accepts_suggestions(app_case: Path) -> None:
    pages = _two_documents(app_case)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("d")
            await pilot.pause()
            view = app.screen
            assert isinstance(view, DocumentsScreen)
            table = view.query_one("#docs")
            assert "MISMATCH" in str(table.get_cell("DOC-0001", "count"))
            assert "MISMATCH" not in str(table.get_cell("DOC-0002", "count"))
            assert table.get_cell("DOC-0001", "jalali") == "1393/05/12"
            await pilot.press("down", "enter")
            await pilot.pause()
            assert not isinstance(app.screen, DocumentsScreen)
            assert app.current_page_id == pages[2]
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, DocumentsScreen)
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("s")
            await pilot.pause()
            assert isinstance(app.screen, SuggestionsScreen)
            wanted = len(app.screen.suggestions)
            assert wanted > 0
            await pilot.press("y")
            await pilot.pause()
            assert isinstance(app.screen, DocumentsScreen)
            assert len(app.screen.records) == 2 + wanted

    run(scenario())
    assert len(doc_records(app_case)) > 2
    with Case.open(app_case) as case:
        assert documents.suggest_documents(case) == []


def test_e_exports_to_the_case_exports_folder(app_case: Path) -> None:
    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("v", "e")
            await pilot.pause()
            assert isinstance(app.screen, ExportScreen)
            await pilot.press("down", "enter")  # jsonl, then to the path
            await pilot.pause()
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert any("wrote 1 review events" in m for m in messages(app)), messages(app)

    run(scenario())
    out = app_case / "exports" / "review-log.jsonl"
    report = export.verify_jsonl(out)
    assert report.ok and report.events == 1


def _gate_ingest(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[str]]:
    """Hold pipeline.ingest until the returned event is set; record the threads it ran in."""
    gate = threading.Event()
    real_ingest = pipeline.ingest
    threads: list[str] = []

    def gated_ingest(*args, **kwargs):
        threads.append(threading.current_thread().name)
        assert gate.wait(30)
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(pipeline, "ingest", gated_ingest)
    return gate, threads


def _new_pdfs(small_trove: Path, folder: Path, count: int) -> Path:
    """Copies of the smallest fixture PDFs that are new files to the case, same pages:
    a trailing PDF comment changes their bytes."""
    folder.mkdir()
    pdfs = sorted((small_trove / "born_digital").rglob("*.pdf"), key=lambda p: p.stat().st_size)
    for number, pdf in enumerate(pdfs[:count]):
        data = pdf.read_bytes() + f"\n% app test copy {number}\n".encode()
        (folder / f"new_{number}.pdf").write_bytes(data)
    return folder


def test_a_adds_files_in_a_thread_and_the_list_stays_live(
    app_case: Path, small_trove: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming = _new_pdfs(small_trove, tmp_path / "incoming", 2)
    with Case.open(app_case) as case:
        before = case.counts()["pages"]
    pages = first_pages(app_case, 2)

    gate, threads = _gate_ingest(monkeypatch)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("a")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            app.screen.query_one("#prompt-input").value = str(incoming)
            await pilot.press("enter")
            await pilot.pause()
            assert app.ingesting and app.query_one("#ingest").display
            await pilot.press("j")  # the UI answers while the worker runs
            assert app.current_page_id == pages[1]["page_id"]
            gate.set()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not app.ingesting and not app.query_one("#ingest").display
            bar = app.query_one("#ingest-progress")
            assert bar.total and bar.progress == bar.total
            assert app.total > before
            assert any("added" in m for m in messages(app)), messages(app)
            assert f"{app.total}]" in str(app.query_one("#status").render())

    run(scenario())
    assert threads and threads[0] != threading.main_thread().name
    with Case.open(app_case) as case:
        assert case.counts()["pages"] > before


def test_o_saves_a_png_when_there_is_no_viewer(
    app_case: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    page_id = first_pages(app_case, 1)[0]["page_id"]
    saved: list[Path] = []

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("o")
            await app.workers.wait_for_complete()
            await pilot.pause()
            found = [m for m in messages(app) if "saved to" in m]
            assert found, messages(app)
            saved.append(Path(found[-1].split("saved to ", 1)[1].strip()))

    run(scenario())
    png = saved[0]
    try:
        assert png.is_file() and png.suffix == ".png" and page_id in png.name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        png.unlink(missing_ok=True)


def test_r_reocrs_the_page_with_another_language(app_case: Path) -> None:
    if not hasattr(pipeline, "reocr_page"):
        pytest.skip("workbench.pipeline.reocr_page is not written yet (another engineer's task)")
    from workbench import ocr

    if shutil.which("tesseract") is None or "eng" not in ocr.available_languages():
        pytest.skip("tesseract with eng is not installed")
    page_id = first_pages(app_case, 1)[0]["page_id"]
    before = len(events(app_case))

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("r")
            await pilot.pause()
            prompt = app.screen
            assert isinstance(prompt, PromptScreen)
            prompt.query_one("#prompt-input").value = "eng"
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not errors_shown(app), errors_shown(app)
            assert app.current_detail["ocr"]["lang"] == "eng"
            assert app.current_detail == detail(app_case, page_id)

    run(scenario())
    fresh = detail(app_case, page_id)
    assert fresh["ocr"]["lang"] == "eng" and fresh["text_source"] == "ocr"
    assert len(events(app_case)) > before  # the re-reading is on the record


def screen_text(app) -> str:
    """The words of ``export_screenshot()`` (an SVG), one string, spaces normalised."""
    svg = app.export_screenshot()
    parts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(parts)).replace("\xa0", " ")


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_screens_at_small_and_large_sizes(app_case: Path, size: tuple[int, int]) -> None:
    _two_documents(app_case)
    word, _ = _known_word(app_case)
    first = first_pages(app_case, 1)[0]["page_id"]
    with Case.open(app_case) as case:
        unreviewed = views.status_counts(case).get("unreviewed", 0)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            main = screen_text(app)
            assert first in main
            assert f"unrev {unreviewed}" in main and "verif 0" in main
            if size[0] >= 200:
                assert "Group" in main and "Documents" in main  # the footer names new keys

            await pilot.press("slash", *word, "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            found = screen_text(app)
            assert "page(s) match" in found
            assert app.search_hits[0].record["page_id"] in found
            await pilot.press("escape")
            await pilot.pause()

            await pilot.press("d")
            await pilot.pause()
            docs = screen_text(app)
            assert "DOC-0001" in docs and "DOC-0002" in docs and "MISMATCH" in docs
            assert "2/5" in docs
            await pilot.press("escape")
            await pilot.pause()

            await pilot.press("question_mark")
            await pilot.pause()
            helped = screen_text(app)
            for key, words in (("v", "Verified"), ("g", "Group"), ("d", "Documents")):
                assert f"{key} " in helped and words in helped
            for words in ("Export", "Add files", "Open image", "Re-OCR"):
                assert words in helped, words

    run(scenario())


@pytest.mark.parametrize("mode", ["sixel", "kitty"])
def test_image_tab_draws_with_terminal_graphics(app_case: Path, mode: str) -> None:
    """Kitty/Sixel modes hand the page at pixel resolution to a graphics widget."""
    first = first_pages(app_case, 1)[0]["page_id"]

    async def scenario() -> None:
        app = make_app(str(app_case), graphics_mode=mode)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("t", "t")
            await app.workers.wait_for_complete()
            await pilot.pause()
            gfx = app.query_one("#image-gfx")
            assert gfx.display and not app.query_one("#image").display
            picture = gfx.image
            assert picture is not None and max(picture.size) > 200  # not a thumbnail
            with Case.open(app_case) as case:
                source = views.page_image(case, first, max_side=max(picture.size))
            assert picture.size == source.size
            await pilot.press("j")  # the next page replaces it
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.query_one("#image-gfx").image is not picture
            assert len(app.image_cache) == 2

    run(scenario())


def _run_in_terminal(case_dir: Path, mode: str, keys: list[bytes], wanted: bytes) -> bytes:
    """Start ``workbench open`` on a pseudo-terminal, type keys, read until ``wanted`` shows."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import sys
    import termios
    import time

    command = [str(Path(sys.executable).with_name("workbench")), "--case", str(case_dir)]
    command += ["open", "--graphics", mode]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal app on the pty
        os.environ.update({"TERM": "xterm-256color", "WORKBENCH_REVIEWER": "Tester"})
        os.environ.pop("TMUX", None)
        os.execv(command[0], command)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 800, 1200))
    output = b""

    def read_until(marker: bytes, seconds: float) -> bool:
        nonlocal output
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if marker in output:
                return True
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    output += os.read(fd, 1 << 16)
                except OSError:
                    return marker in output
        return marker in output

    try:
        assert read_until(b"Text", 60), "the app did not start"
        for key in keys:
            os.write(fd, key)
            read_until(b"\x00never", 0.5)
        found = read_until(wanted, 60)
        os.write(fd, b"q")
        read_until(b"\x00never", 3)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert found, f"{wanted!r} never reached the terminal"
    assert os.waitstatus_to_exitcode(status) == 0
    return output


@pytest.mark.parametrize(
    ("mode", "wanted"),
    [("sixel", b"\x1bP0;0;0q"), ("kitty", b"\x1b_Ga=p")],  # a Sixel image; a Kitty placement
)
def test_terminal_receives_the_page_as_graphics(app_case: Path, mode: str, wanted: bytes) -> None:
    _run_in_terminal(app_case, mode, [b"t", b"t"], wanted)


def test_marked_page_leaves_a_status_filtered_list(app_case: Path) -> None:
    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("2")  # unreviewed only
            await pilot.pause()
            before = app.total
            first, second = app.rows[0]["page_id"], app.rows[1]["page_id"]
            assert app.current_page_id == first
            await pilot.press("v")
            await pilot.pause()
            assert detail(app_case, first)["status"] == "verified"
            assert app.total == before - 1
            assert first not in [r["page_id"] for r in app.rows]
            assert app.current_page_id == second  # the cursor stays where it was
            await pilot.press("1")
            await pilot.pause()
            assert first in [r["page_id"] for r in app.rows]

    run(scenario())


def test_f_lists_only_the_pages_a_search_matches(app_case: Path) -> None:
    word = "the"  # common enough to match several pages, not all

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            everything = app.total
            await pilot.press("f")  # no search yet: a warning, nothing changes
            await pilot.pause()
            assert app.search_filter_ids is None and app.total == everything
            await pilot.press("slash", *word, "enter")
            await app.workers.wait_for_complete()
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("f")
            await app.workers.wait_for_complete()
            await pilot.pause()
            with Case.open(app_case) as case:
                matching = index.matching_page_ids(case, word)
            assert 0 < len(matching) < everything
            assert [r["page_id"] for r in app.rows] == matching[:WINDOW]
            assert app.total == len(matching)
            assert f"matching {word!r}" in screen_text(app)
            marked = app.rows[0]["page_id"]
            await pilot.press("x")  # disputed
            await pilot.press("4")  # disputed only, still within the search
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert [r["page_id"] for r in app.rows] == [marked]
            await pilot.press("f")  # back to every disputed page
            await pilot.pause()
            assert app.search_filter_ids is None and app.status_filter == "disputed"
            assert [r["page_id"] for r in app.rows] == [marked]

    run(scenario())


def test_q_during_an_ingest_asks_then_stops_it_cleanly(
    app_case: Path, small_trove: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming = _new_pdfs(small_trove, tmp_path / "incoming", 3)
    with Case.open(app_case) as case:
        before = case.counts()["pages"]

    gate, _ = _gate_ingest(monkeypatch)

    async def scenario() -> None:
        app = make_app(str(app_case))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("a")
            await pilot.pause()
            app.screen.query_one("#prompt-input").value = str(incoming)
            await pilot.press("enter")
            await pilot.pause()
            assert app.ingesting
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")  # stay
            await pilot.pause()
            assert app.is_running and not app.stop_ingest
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert app.is_running and app.stop_ingest  # stops at the next page, then quits
            gate.set()
            for _ in range(600):  # the ingest stops at its first page, then the app exits
                if not app.is_running:
                    break
                await asyncio.sleep(0.1)
            assert not app.is_running

    run(scenario())
    import pymupdf

    expected = sum(pymupdf.open(pdf).page_count for pdf in incoming.iterdir())
    with Case.open(app_case) as case:
        stopped_at = case.counts()["pages"]
        assert stopped_at < before + expected  # it did stop before the end
        report = pipeline.ingest(case, [str(incoming)], lang="eng", jobs=1)
        assert report.ok
        # every file whole and once: what the stop left out came in now, nothing twice
        assert case.counts()["pages"] == before + expected
