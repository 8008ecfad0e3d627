"""The review app: a windowed page list, the page (text, metadata, image), one-key marking.

Why it is shaped this way:
- The page list never holds the whole case: it loads ``WINDOW`` rows around the cursor
  through ``views.page_window`` and reloads when the cursor nears an edge, so it stays fast
  at 100,000 pages.
- Every mark goes straight through ``review.mark`` (the hash-chained log is written the
  moment the key is pressed); nothing is buffered in the app.
- Slow work (page images, search + index sync) runs in worker threads, each opening its
  own ``Case`` (a SQLite connection belongs to one thread).
- The app only calls the library; it never touches the database or the index directly.
- Ingest (``a``) and re-OCR (``r``) run in thread workers with their own ``Case``; progress
  comes back through ``call_from_thread``, so the list stays usable while they run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import (
    DataTable,
    Footer,
    Label,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)

from workbench import documents, export, findings, index, pipeline, review, views
from workbench.errors import CustodyError, WorkbenchError
from workbench.store import Case, format_page_id
from workbench.tui import graphics
from workbench.tui.findings_pane import SEVERITY_MARK, SEVERITY_STYLE, FindingsPane
from workbench.tui.render import (
    HalfBlockImage,
    base_is_rtl,
    display_text,
    for_terminal,
    has_rtl,
)
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

WINDOW = 200  # rows held by the page list at once
EDGE = 5  # reload the window when the cursor is this close to its edge
IMAGE_CACHE = 64  # rendered half-block page images kept
PIXEL_IMAGE_CACHE = 12  # full-resolution page images kept (Kitty/Sixel): a few MB each
FILTERS = (None, "unreviewed", "verified", "disputed", "illegible")
STATUS_STYLE = {
    "unreviewed": "dim",
    "verified": "bold green",
    "disputed": "bold red",
    "illegible": "bold yellow",
}
# The date before the long file name: a narrow list clips the file name, not the date.
COLUMNS = (
    ("id", "ID"),
    ("finding", "!"),
    ("status", "Status"),
    ("date", "Date"),
    ("page", "Pg"),
    ("file", "File"),
    ("source", "Src"),
    ("conf", "Conf"),
)


class WorkbenchApp(App[None]):
    """Review one case page by page."""

    CSS_PATH = "workbench.tcss"
    TITLE = "workbench"
    # Footer order is what fits at 80 columns first: the marks, search, help and quit.
    BINDINGS = [
        Binding("v", "mark('verified')", "Verified"),
        Binding("x", "mark('disputed')", "Disputed"),
        Binding("i", "mark('illegible')", "Illegible"),
        Binding("u", "mark('unreviewed')", "Unreviewed"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("c", "note", "Note"),
        Binding("space", "select", "Select", key_display="space"),
        Binding("g", "group", "Group into doc"),
        Binding("d", "documents", "Documents"),
        Binding("e", "export", "Export"),
        Binding("a", "add_files", "Add files"),
        Binding("o", "open_image", "Open image"),
        Binding("r", "reocr", "Re-OCR page"),
        Binding("j", "cursor_down", "Next page", key_display="j/↓", show=False),
        Binding("k", "cursor_up", "Prev page", key_display="k/↑", show=False),
        Binding("V", "mark_with_note('verified')", "Verified + note", show=False),
        Binding("X", "mark_with_note('disputed')", "Disputed + note", show=False),
        Binding("I", "mark_with_note('illegible')", "Illegible + note", show=False),
        Binding("escape", "clear_selection", "Clear selection", show=False),
        Binding("n", "next_hit", "Next hit", show=False),
        Binding("N", "prev_hit", "Prev hit", show=False),
        Binding("t", "next_tab", "Text/Meta/Image/Findings", show=False),
        Binding("1", "filter(0)", "All pages", show=False),
        Binding("2", "filter(1)", "Unreviewed only", show=False),
        Binding("3", "filter(2)", "Verified only", show=False),
        Binding("4", "filter(3)", "Disputed only", show=False),
        Binding("5", "filter(4)", "Illegible only", show=False),
        Binding("f", "search_filter", "Only search hits", show=False),
        Binding("6", "findings_filter", "Pages with open findings", show=False),
        Binding("z", "dismiss_finding", "Dismiss a finding (note)", show=False),
        Binding("7", "disagree_filter", "Pages a partner disagrees on", show=False),
        Binding("home", "first", "First page", show=False, priority=True),
        Binding("G", "last", "Last page", show=False),
        Binding("end", "last", "Last page", show=False, priority=True),
        Binding("L", "toggle_theme", "Light/dark theme", show=False),
    ]

    def __init__(self, case_dir: str, *, graphics: str = "halfblock") -> None:
        super().__init__()
        self.case_dir = str(case_dir)
        self.graphics = graphics  # see workbench.tui.graphics: chosen before the app runs
        self.case: Case | None = None
        self.reviewer: str | None = None
        self.status_filter: str | None = None
        self.total = 0  # pages under the current filter
        self.window_offset = 0
        self.rows: list[dict[str, Any]] = []
        self.current_page_id: str | None = None
        self.current_detail: dict[str, Any] | None = None
        self.text_view: Text = Text()
        self.search_query: str | None = None
        # When the list shows only the current search's pages: their ids in page-id order.
        self.search_filter_ids: list[str] | None = None
        self.search_hits: list[Any] = []
        self.hit_spans: list[tuple[str, int, int]] = []  # (page_id, start, end)
        self.hit_pos = -1
        self.image_cache: dict[tuple[str, int, int], RenderableType | PILImage.Image] = {}
        self._search_screen: SearchScreen | None = None
        self.selected: set[str] = set()  # page ids picked with space for a bulk mark
        self.status_counts: dict[str, int] | None = None  # kept current by our own marks
        self.ingesting = False
        self.stop_ingest = False  # set to stop the running ingest after its current page
        self.quit_after_ingest = False

    # ----- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with Horizontal(id="main"):
            yield DataTable(id="pages", cursor_type="row", zebra_stripes=True)
            with TabbedContent(id="tabs", initial="tab-text"):
                with TabPane("Text", id="tab-text"), VerticalScroll(id="text-scroll"):
                    yield Static("", id="page-head")
                    yield Static("", id="text")
                with TabPane("Metadata", id="tab-meta"), VerticalScroll():
                    yield Static("", id="meta")
                with TabPane("Image", id="tab-image"):
                    yield Static("", id="image")
                    widget_class = graphics.image_widget_class(self.graphics)
                    if widget_class is not None:
                        yield widget_class(id="image-gfx")
                with TabPane("Findings", id="tab-findings"):
                    yield FindingsPane(id="findings-pane")
        with Horizontal(id="ingest"):
            yield Label("adding files…", id="ingest-label")
            yield ProgressBar(id="ingest-progress", show_eta=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        try:
            self.case = Case.open(self.case_dir)
        except WorkbenchError as error:
            self.exit(message=error.message)
            return
        self.sub_title = Path(self.case_dir).name
        table = self.query_one("#pages", DataTable)
        # the ID column has room for the "● " of a selected page from the start
        id_width = len(format_page_id(self.case.prefix, 1)) + 2
        for key, label in COLUMNS:
            table.add_column(label, key=key, width=id_width if key == "id" else None)
        self.reload(0, 0)
        table.focus()
        try:
            self.reviewer = review.resolve_reviewer(self.case, None)
        except WorkbenchError:
            self.ask_reviewer()
        self.update_status()
        self.check_index()

    @work(thread=True, exclusive=True, group="index-check")
    def check_index(self) -> None:
        """A missing or damaged search index is rebuilt from the case when the app opens
        (off the UI thread); the reviewer is told in a notification."""
        try:
            with Case.open(self.case_dir) as case:
                notice = index.check(case)
        except WorkbenchError as error:
            self.call_from_thread(self.notify, error.message, severity="warning")
            return
        if notice:
            self.call_from_thread(self.notify, notice, severity="warning", timeout=8)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a dialog is open none of our keys act (quit aside): no mark may land on a
        hidden page. Textual's own app actions (Tab between fields, the palette) still work."""
        if len(self.screen_stack) <= 1 or action == "quit":
            return True
        return action not in OWN_ACTIONS

    def on_unmount(self) -> None:
        if self.case is not None:
            self.case.close()

    # ----- reviewer -------------------------------------------------------------------

    def ask_reviewer(self, then: Any = None) -> None:
        """Ask the reviewer's name once per case and store it in the case settings."""

        def store(name: str | None) -> None:
            if not name or self.case is None:
                self.notify("No reviewer set: marks need a name", severity="warning")
                return
            try:
                with self.case.transaction():
                    self.case.set_setting("reviewer", name)
            except WorkbenchError as error:
                self.notify(error.message, severity="error")
                return
            self.reviewer = name
            self.update_status()
            if then is not None:
                then()

        self.push_screen(PromptScreen("Who is reviewing this case? (your name)"), store)

    # ----- the page list --------------------------------------------------------------

    def reload(self, start: int, cursor: int) -> None:
        """Load the window of rows starting at ``start`` and put the cursor on ``cursor``."""
        assert self.case is not None
        ids = self.search_filter_ids
        if ids is not None:
            self.total = len(ids)
        else:  # per-status counts: ~40 ms at 100,000 pages (case.counts() takes ~300)
            counts = self.status_counts = views.status_counts(self.case)
            if self.status_filter:
                self.total = counts.get(self.status_filter, 0)
            else:
                self.total = sum(counts.values())
        start = max(0, min(start, max(self.total - WINDOW, 0)))
        try:
            if ids is not None:
                self.rows = views.page_list_records(self.case, ids[start : start + WINDOW])
            else:
                self.rows = views.page_window(self.case, start, WINDOW, self.status_filter)
        except WorkbenchError as error:
            self.notify(error.message, severity="error")
            self.rows = []
        self.window_offset = start
        table = self.query_one("#pages", DataTable)
        table.clear()
        for record in self.rows:
            table.add_row(*self.cells(record), key=record["page_id"])
        if self.rows:
            row = max(0, min(cursor - start, len(self.rows) - 1))
            table.move_cursor(row=row, animate=False)
            self.show_page(self.rows[row]["page_id"])
        else:
            self.show_empty()
        self.update_status()

    def cells(self, record: dict[str, Any]) -> list[Any]:
        conf = record.get("ocr_confidence")
        date = record.get("first_date") or ""
        status = record.get("status") or "unreviewed"
        mark = "● " if record["page_id"] in self.selected else ""
        worst = record.get("finding")
        return [
            Text(mark + record["page_id"], style="bold magenta" if mark else ""),
            Text(SEVERITY_MARK[worst], style=SEVERITY_STYLE[worst]) if worst else "",
            Text(status, style=STATUS_STYLE.get(status, "")),
            date,
            str(record["page_number"]),
            for_terminal(Path(record["source_path"]).name),
            record.get("text_source") or "",
            "" if conf is None else f"{conf:.0f}",
        ]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table  # not a query: this can arrive while the app is closing
        if table.id != "pages":
            return
        row = table.cursor_row
        if not self.rows or row < 0 or row >= len(self.rows):
            return
        absolute = self.window_offset + row
        near_end = row >= len(self.rows) - EDGE and self.window_offset + len(self.rows) < self.total
        near_start = row < EDGE and self.window_offset > 0
        if near_end or near_start:
            self.reload(absolute - WINDOW // 2, absolute)
            return
        self.show_page(self.rows[row]["page_id"])

    def action_cursor_down(self) -> None:
        self.query_one("#pages", DataTable).action_cursor_down()
        self.sync_cursor()

    def action_cursor_up(self) -> None:
        self.query_one("#pages", DataTable).action_cursor_up()
        self.sync_cursor()

    def sync_cursor(self) -> str | None:
        """The page under the list cursor, shown now (keys can outrun highlight messages)."""
        row = self.query_one("#pages", DataTable).cursor_row
        if 0 <= row < len(self.rows):
            self.show_page(self.rows[row]["page_id"])
        return self.current_page_id

    def action_first(self) -> None:
        self.reload(0, 0)

    def action_last(self) -> None:
        self.reload(self.total - WINDOW, self.total - 1)

    def action_filter(self, which: int) -> None:
        """Show only one status (1 = all pages)."""
        self.status_filter = FILTERS[which]
        if self.search_filter_ids is not None and self.search_query:
            self.load_search_filter(self.search_query, self.status_filter)
            return
        self.reload(0, 0)
        self.notify(f"Showing {self.status_filter or 'all'} pages ({self.total})", timeout=2)

    def action_search_filter(self) -> None:
        """Toggle: list only the pages the current search matches (status filter still applies)."""
        if self.search_filter_ids is not None:
            self.search_filter_ids = None
            self.reload(0, 0)
            self.notify(f"Showing {self.status_filter or 'all'} pages ({self.total})", timeout=2)
            return
        if not self.search_query:
            self.notify("No search yet: press / to search", severity="warning", timeout=2)
            return
        self.load_search_filter(self.search_query, self.status_filter)

    @work(thread=True, exclusive=True, group="search-filter")
    def load_search_filter(self, query: str, status: str | None) -> None:
        """Every page the query matches (under the status filter), off the UI thread."""
        wanted = f"({query}) AND status:{status}" if status else query
        try:
            with Case.open(self.case_dir) as case:
                index.sync(case)  # statuses just marked must be in the index
                ids = index.matching_page_ids(case, wanted)
        except WorkbenchError as error:
            self.call_from_thread(self.notify, error.message, severity="error", title="Filter")
            return
        self.call_from_thread(self.search_filter_ready, query, ids)

    def search_filter_ready(self, query: str, ids: list[str]) -> None:
        self.search_filter_ids = list(dict.fromkeys(ids))  # a list row per page, whatever comes
        self.reload(0, 0)
        what = f"{self.status_filter} pages" if self.status_filter else "pages"
        self.notify(f"Showing {len(ids)} {what} matching {query!r} (f: all)", timeout=3)

    def drop_from_filtered_list(self, page_ids: list[str], status: str) -> None:
        """Pages whose new status leaves the status filter leave the list; the cursor stays."""
        if not self.status_filter or status == self.status_filter:
            return
        if self.search_filter_ids is not None:
            gone = set(page_ids)
            self.search_filter_ids = [p for p in self.search_filter_ids if p not in gone]
        cursor = self.window_offset + max(self.query_one("#pages", DataTable).cursor_row, 0)
        self.reload(self.window_offset, cursor)

    # ----- the page pane --------------------------------------------------------------

    def show_empty(self) -> None:
        self.current_page_id = None
        self.current_detail = None
        self.text_view = Text("No pages under this filter.", style="dim")
        self.query_one("#page-head", Static).update("")
        self.query_one("#text", Static).update(self.text_view)
        self.query_one("#meta", Static).update("")
        self.show_findings(None, [])
        self.show_image_message("")

    def show_page(self, page_id: str, *, force: bool = False) -> None:
        """Fill the text, metadata and image panes for one page."""
        if page_id == self.current_page_id and not force:
            return
        try:
            detail = views.page_detail(self.case, page_id)  # type: ignore[arg-type]
        except WorkbenchError as error:
            self.notify(error.message, severity="error")
            return
        if views.needs_redaction_look(self.case, detail):  # type: ignore[arg-type]
            # words under a black box stay in the stored text; shown masked (as `show`)
            views.redaction_view(detail, reveal=False)
        self.current_page_id = page_id
        self.current_detail = detail
        self.render_text()
        self.query_one("#meta", Static).update(metadata_table(detail))
        self.show_findings(page_id, detail["findings"])
        if self.query_one("#tabs", TabbedContent).active == "tab-image":
            self.request_image()

    def render_text(self) -> None:
        detail = self.current_detail
        if detail is None:
            return
        text = detail.get("text") or ""
        spans = [(s, e) for pid, s, e in self.hit_spans if pid == detail["page_id"]]
        current = None
        if 0 <= self.hit_pos < len(self.hit_spans):
            pid, start, end = self.hit_spans[self.hit_pos]
            if pid == detail["page_id"]:
                current = (start, end)
        self.text_view = display_text(text, spans, current) if text else Text("(no text)", "dim")
        self.query_one("#page-head", Static).update(page_heading(detail))
        self.query_one("#text", Static).update(justify_lines(self.text_view, text))
        if current is not None:
            line = text[: current[0]].count("\n")
            self.query_one("#text-scroll", VerticalScroll).scroll_to(
                y=max(line - 3, 0), animate=False
            )

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-image":
            self.request_image()

    def action_next_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        order = ["tab-text", "tab-meta", "tab-image", "tab-findings"]
        tabs.active = order[(order.index(tabs.active) + 1) % len(order)]

    def request_image(self) -> None:
        """Draw the page image, from the cache or in a worker thread."""
        if self.current_page_id is None:
            return
        size = self.query_one("#tabs", TabbedContent).content_size
        columns, rows = max(size.width - 2, 10), max(size.height - 4, 5)
        key = (self.current_page_id, columns, rows)
        if key in self.image_cache:
            self.show_image(self.image_cache[key])
            return
        self.show_image_message(Text("rendering page image…", style="dim"))
        self.load_image(self.current_page_id, columns, rows)

    @work(thread=True, exclusive=True, group="image")
    def load_image(self, page_id: str, columns: int, rows: int) -> None:
        result: RenderableType | PILImage.Image
        try:
            if self.graphics == "halfblock":
                with Case.open(self.case_dir) as case:
                    image = views.page_image(case, page_id, max_side=max(columns, rows * 2) * 4)
                result = HalfBlockImage.fit(image, columns, rows)
            else:  # full resolution for the pane, in pixels; the widget scales to fit
                cell_width, cell_height = graphics.cell_pixels()
                side = max(columns * cell_width, rows * cell_height)
                with Case.open(self.case_dir) as case:
                    result = views.page_image(case, page_id, max_side=min(side, 2400))
        except CustodyError as error:  # never the new file's page: say so, show it stale
            result = Text(f"Image not shown for {page_id}:\n{error.message}", style="bold red")
            self.call_from_thread(self.image_ready, (page_id, columns, rows), result)
            self.call_from_thread(self.refresh_if_current, page_id)
            return
        except WorkbenchError as error:
            result = Text(f"Image unavailable for {page_id}:\n{error.message}", style="yellow")
        except Exception as error:  # a broken file must not kill the app
            result = Text(f"Image unavailable for {page_id}: {error}", style="yellow")
        self.call_from_thread(self.image_ready, (page_id, columns, rows), result)

    def refresh_if_current(self, page_id: str) -> None:
        """Re-read the page shown (e.g. now stale) without moving the cursor."""
        if page_id == self.current_page_id:
            self.show_page(page_id, force=True)

    def image_ready(
        self, key: tuple[str, int, int], result: RenderableType | PILImage.Image
    ) -> None:
        self.image_cache[key] = result
        limit = IMAGE_CACHE if self.graphics == "halfblock" else PIXEL_IMAGE_CACHE
        while len(self.image_cache) > limit:  # oldest first: dicts keep insertion order
            self.image_cache.pop(next(iter(self.image_cache)))
        if key[0] == self.current_page_id:
            self.show_image(result)

    def show_image(self, result: RenderableType | PILImage.Image) -> None:
        """Put a rendered page (or a message about it) in the Image tab."""
        if not isinstance(result, PILImage.Image):
            self.show_image_message(result)
            return
        gfx = self.query_one("#image-gfx")
        gfx.image = result  # type: ignore[attr-defined]
        gfx.display = True
        self.query_one("#image", Static).display = False

    def show_image_message(self, message: RenderableType) -> None:
        pane = self.query_one("#image", Static)
        pane.update(message)
        pane.display = True
        for gfx in self.query("#image-gfx"):
            gfx.display = False

    # ----- marking and notes ----------------------------------------------------------

    def with_reviewer(self, then: Any) -> None:
        if self.reviewer:
            then()
        else:
            self.ask_reviewer(then)

    def targets(self) -> list[str]:
        """The selected pages if any, else the page under the cursor."""
        if self.selected:
            return sorted(self.selected)
        page_id = self.sync_cursor()
        return [page_id] if page_id else []

    def action_select(self) -> None:
        """Toggle the page under the cursor in the bulk selection, then move down."""
        page_id = self.sync_cursor()
        if page_id is None:
            return
        self.selected ^= {page_id}
        self.refresh_row(page_id)
        self.update_status()
        self.action_cursor_down()

    def action_clear_selection(self) -> None:
        picked, self.selected = self.selected, set()
        for page_id in picked:
            self.refresh_row(page_id)
        self.update_status()

    def action_mark(self, status: str) -> None:
        """Commit a status at once (one review-log event per page) for the cursor/selection."""
        pages = self.targets()
        if pages:
            self.mark_pages(pages, status)

    def mark_pages(self, page_ids: list[str], status: str, note: str | None = None) -> None:
        """Write status events through ``review.mark`` and refresh what shows them."""

        def commit() -> None:
            try:
                events = review.mark(self.case, page_ids, status, self.reviewer, note)  # type: ignore[arg-type]
            except WorkbenchError as error:
                self.notify(error.message, severity="error")
                return
            if self.status_counts is not None:  # no recount of 100,000 pages per key
                for event in events:
                    self.status_counts[event["old_status"]] -= 1
                    self.status_counts[event["new_status"]] += 1
            self.selected -= set(page_ids)
            for page_id in page_ids:  # each row once; the page pane if it shows one of them
                self.refresh_row(page_id)
            if self.current_page_id in page_ids:
                self.show_page(self.current_page_id, force=True)
            self.update_status()
            self.drop_from_filtered_list(page_ids, status)
            what = page_ids[0] if len(page_ids) == 1 else f"{len(page_ids)} pages"
            self.notify(f"{what} → {status}", timeout=1.5)

        self.with_reviewer(commit)

    def action_mark_with_note(self, status: str) -> None:
        pages = self.targets()
        if not pages:
            return
        what = pages[0] if len(pages) == 1 else f"{len(pages)} pages"

        def got(note: str | None) -> None:
            if note:
                self.mark_pages(pages, status, note)

        self.push_screen(PromptScreen(f"Note for {what} ({status})", "why?"), got)

    def action_note(self) -> None:
        page_id = self.sync_cursor()
        if page_id is None:
            return

        def got(note: str | None) -> None:
            if not note:
                return

            def commit() -> None:
                try:
                    review.add_note(self.case, page_id, note, self.reviewer)  # type: ignore[arg-type]
                except WorkbenchError as error:
                    self.notify(error.message, severity="error")
                    return
                self.after_change(page_id)
                self.notify(f"Note added to {page_id}", timeout=1.5)

            self.with_reviewer(commit)

        self.push_screen(PromptScreen(f"Note for {page_id}", "what did you see?"), got)

    def refresh_row(self, page_id: str) -> None:
        """Redraw one list row from the case (if it is in the loaded window)."""
        table = self.query_one("#pages", DataTable)
        for number, record in enumerate(self.rows):
            if record["page_id"] == page_id:
                fresh = views.page_detail(self.case, page_id)  # type: ignore[arg-type]
                fresh["first_date"] = views.first_date(fresh.get("dates") or [])
                fresh["finding"] = views.open_severity(fresh["findings"])
                self.rows[number] = fresh
                for (key, _), value in zip(COLUMNS, self.cells(fresh), strict=True):
                    table.update_cell(page_id, key, value)
                break

    def after_change(self, page_id: str | None) -> None:
        """Refresh the row, the status bar and the page pane after a write."""
        if page_id is None:
            return
        self.refresh_row(page_id)
        self.show_page(page_id, force=True)
        self.update_status()

    # ----- findings -------------------------------------------------------------------

    def show_findings(self, page_id: str | None, records: list[dict[str, Any]]) -> None:
        pane = self.query_one("#findings-pane", FindingsPane)
        pane.show(page_id, records)
        opened = pane.open_count()
        label = f"Findings ({opened})" if opened else "Findings"
        self.query_one("#tabs", TabbedContent).get_tab("tab-findings").label = label

    def on_findings_pane_jump_requested(self, message: FindingsPane.JumpRequested) -> None:
        self.open_page(message.page_id)
        self.query_one("#tabs", TabbedContent).active = "tab-findings"

    def action_findings_filter(self) -> None:
        """List only the pages with an open finding (the status filter still applies)."""
        self.search_query = "finding:any"
        self.load_search_filter(self.search_query, self.status_filter)

    def action_disagree_filter(self) -> None:
        """List only the pages where an imported partner's verdict differs from ours."""
        self.search_query = "disagree:true"
        self.load_search_filter(self.search_query, self.status_filter)

    def action_dismiss_finding(self) -> None:
        record = self.query_one("#findings-pane", FindingsPane).highlighted()
        if record is None:
            self.notify("No finding on this page", severity="warning", timeout=2)
            return
        if record["dismissed"]:
            self.notify(f"{record['finding_id']} is already dismissed", timeout=2)
            return

        def got(note: str | None) -> None:
            if not note:
                return

            def commit() -> None:
                try:
                    findings.dismiss(
                        self.case,  # type: ignore[arg-type]
                        record["finding_id"],
                        note=note,
                        reviewer=self.reviewer or "",
                    )
                except WorkbenchError as error:
                    self.notify(error.message, severity="error")
                    return
                for page_id in record["page_ids"]:
                    self.refresh_row(page_id)
                self.show_page(self.current_page_id or record["page_ids"][0], force=True)
                self.notify(f"dismissed {record['finding_id']} ({record['check']})", timeout=2)

            self.with_reviewer(commit)

        self.push_screen(
            PromptScreen(f"Dismiss {record['check']} {record['finding_id']}: why?", "a note"),
            got,
        )

    # ----- search ---------------------------------------------------------------------

    def action_search(self) -> None:
        screen = SearchScreen(self.search_query or "")
        self._search_screen = screen

        def chosen(number: int | None) -> None:
            self._search_screen = None
            if number is not None and 0 <= number < len(self.search_hits):
                hit = self.search_hits[number]
                page_id = hit.record["page_id"]
                spans = enumerate(self.hit_spans)
                first = next((i for i, span in spans if span[0] == page_id), -1)
                self.hit_pos = first
                self.open_page(hit.record["page_id"])

        self.push_screen(screen, chosen)

    @work(thread=True, exclusive=True, group="search")
    def run_search(self, query: str) -> None:
        """Bring the index up to date and search, off the UI thread."""
        try:
            with Case.open(self.case_dir) as case:
                index.sync(case)
                results = index.search(case, query, limit=100)
        except WorkbenchError as error:
            self.call_from_thread(self.search_failed, error.message)
            return
        self.call_from_thread(self.search_done, query, results)

    def search_failed(self, message: str) -> None:
        self.notify(message, severity="error", title="Search")
        if self._search_screen is not None:
            self._search_screen.show_error(message)

    def search_done(self, query: str, results: Any) -> None:
        self.search_query = query
        self.search_hits = list(results.hits)
        self.hit_spans = [
            (hit.record["page_id"], m["start"], m["end"])
            for hit in self.search_hits
            for m in (hit.matches or [{"start": 0, "end": 0}])
        ]
        self.hit_pos = -1
        if self._search_screen is not None:
            self._search_screen.show_results(results.total, self.search_hits)
        if self.search_filter_ids is not None:  # the list follows the new search
            self.load_search_filter(query, self.status_filter)

    def open_page(self, page_id: str) -> None:
        """Show a page and put the list cursor on it when it can be found near its number."""
        table = self.query_one("#pages", DataTable)
        for number, record in enumerate(self.rows):
            if record["page_id"] == page_id:
                table.move_cursor(row=number, animate=False)
                self.show_page(page_id, force=True)
                return
        ids = self.search_filter_ids
        if ids is not None and page_id in ids:
            guess = ids.index(page_id)
        else:
            try:
                guess = int(page_id.rsplit("-", 1)[-1]) - 1
            except ValueError:
                guess = 0
            self.status_filter = None
            self.search_filter_ids = None
        self.reload(guess - WINDOW // 2, guess)
        for number, record in enumerate(self.rows):
            if record["page_id"] == page_id:
                table.move_cursor(row=number, animate=False)
                break
        self.show_page(page_id, force=True)

    def step_hit(self, step: int) -> None:
        if not self.hit_spans:
            self.notify("No search hits: press / to search", severity="warning", timeout=2)
            return
        self.hit_pos = (self.hit_pos + step) % len(self.hit_spans)
        page_id = self.hit_spans[self.hit_pos][0]
        self.query_one("#tabs", TabbedContent).active = "tab-text"
        if page_id != self.current_page_id:
            self.open_page(page_id)
        else:
            self.render_text()
        self.notify(f"hit {self.hit_pos + 1} of {len(self.hit_spans)}", timeout=1)

    def action_next_hit(self) -> None:
        self.step_hit(1)

    def action_prev_hit(self) -> None:
        self.step_hit(-1)

    # ----- documents ------------------------------------------------------------------

    def action_group(self) -> None:
        """Group the selected pages (or the page under the cursor) into a new document."""
        pages = self.targets()
        if not pages:
            return
        what = pages[0] if len(pages) == 1 else f"{len(pages)} pages ({pages[0]}..{pages[-1]})"

        def save(values: dict[str, Any]) -> dict[str, Any]:
            if not self.reviewer:
                raise WorkbenchError("no reviewer set: press Esc, then mark a page to give one")
            return documents.add_document(self.case, pages, reviewer=self.reviewer, **values)  # type: ignore[arg-type]

        def done(record: dict[str, Any] | None) -> None:
            if record is None:
                return
            self.selected -= set(pages)
            for page_id in pages:
                self.refresh_row(page_id)
            self.after_change(self.current_page_id)
            mark = "  MISMATCH" if record.get("mismatch") else ""
            self.notify(f"{record['id']}: {record['actual_pages']} page(s){mark}", timeout=3)

        self.with_reviewer(lambda: self.push_screen(DocumentFormScreen(what, save), done))

    def action_documents(self) -> None:
        """The documents view; Enter there jumps to a document's first page."""
        try:
            records = documents.document_records(self.case)  # type: ignore[arg-type]
        except WorkbenchError as error:
            self.notify(error.message, severity="error")
            return

        def chosen(page_id: str | None) -> None:
            if page_id:
                self.open_page(page_id)

        self.push_screen(DocumentsScreen(records), chosen)

    def suggest_documents(self, view: DocumentsScreen) -> None:
        """Show proposed documents; accept them all on confirmation and refresh the view."""
        try:
            suggestions = documents.suggest_documents(self.case)  # type: ignore[arg-type]
        except WorkbenchError as error:
            self.notify(error.message, severity="error")
            return
        if not suggestions:
            self.notify("No suggestions: every page is in a document already", timeout=3)
            return

        def confirmed(accept: bool | None) -> None:
            if not accept:
                return

            def commit() -> None:
                try:
                    made = documents.accept_suggestions(
                        self.case,  # type: ignore[arg-type]
                        suggestions,
                        reviewer=self.reviewer,  # type: ignore[arg-type]
                    )
                except WorkbenchError as error:
                    self.notify(error.message, severity="error")
                else:
                    self.notify(f"created {len(made)} document(s)", timeout=3)
                view.show(documents.document_records(self.case))  # type: ignore[arg-type]

            self.with_reviewer(commit)

        self.push_screen(SuggestionsScreen(suggestions), confirmed)

    # ----- export -----------------------------------------------------------------------

    def action_export(self) -> None:
        folder = str(Path(self.case_dir) / "exports")

        def chosen(choice: tuple[str, str] | None) -> None:
            if choice is not None:
                fmt, path = choice
                self.notify(f"exporting {fmt}…", timeout=1.5)
                self.run_export(fmt, str(Path(path).expanduser()))

        self.push_screen(ExportScreen(folder), chosen)

    @work(thread=True, exclusive=True, group="export")
    def run_export(self, fmt: str, path: str) -> None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with Case.open(self.case_dir) as case:
                summary = export.export(case, fmt, path)
        except WorkbenchError as error:
            self.call_from_thread(self.notify, error.message, severity="error", title="Export")
            return
        except OSError as error:
            message = f"cannot write {path}: {error.strerror or error}"
            self.call_from_thread(self.notify, message, severity="error", title="Export")
            return
        self.call_from_thread(self.notify, summary, title="Export", timeout=6)

    # ----- adding files -----------------------------------------------------------------

    def action_add_files(self) -> None:
        if self.ingesting:
            self.notify("Files are being added already", severity="warning")
            return

        def chosen(path: str | None) -> None:
            if path:
                self.start_ingest(str(Path(path).expanduser()))

        self.push_screen(PromptScreen("Add a file or folder to the case", "path"), chosen)

    def start_ingest(self, path: str) -> None:
        self.ingesting = True
        bar = self.query_one("#ingest-progress", ProgressBar)
        bar.update(total=None, progress=0)
        self.query_one("#ingest-label", Label).update(f"adding {for_terminal(Path(path).name)}…")
        self.query_one("#ingest").display = True
        self.run_ingest(path)

    async def action_quit(self) -> None:
        """Quit; while files are being added, ask first and stop the ingest cleanly."""
        if not self.ingesting:
            self.exit()
            return
        if self.quit_after_ingest:
            return  # already stopping

        def answered(yes: bool | None) -> None:
            if yes:
                self.quit_after_ingest = True
                self.stop_ingest = True
                self.notify("Stopping the ingest after the page being read…", timeout=10)

        self.push_screen(
            ConfirmScreen(
                "Files are still being added. Quit now?",
                "Every file finished so far is saved in the case. The file being read now is "
                "not; add the same folder again later and ingest picks up where it stopped "
                "(no page is ever added twice).",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, group="ingest")
    def run_ingest(self, path: str) -> None:
        """Ingest in this thread with a Case of its own; progress goes to the bar."""
        try:
            with Case.open(self.case_dir) as case:
                report = pipeline.ingest(case, [path], observer=AppIngestObserver(self))
        except IngestStopped:
            self.call_from_thread(self.ingest_done, None, None)
            return
        except WorkbenchError as error:
            self.call_from_thread(self.ingest_done, None, error.message)
            return
        except Exception as error:  # the app must survive a broken batch
            self.call_from_thread(self.ingest_done, None, f"ingest failed: {error}")
            return
        self.call_from_thread(self.ingest_done, report, None)

    def ingest_progress(self, done: int, total: int) -> None:
        self.query_one("#ingest-progress", ProgressBar).update(total=total, progress=done)

    def ingest_done(self, report: Any, problem: str | None) -> None:
        """The ingest ended (report), failed (problem) or was stopped (neither)."""
        self.ingesting = False
        self.stop_ingest = False
        self.query_one("#ingest").display = False
        if self.quit_after_ingest:
            self.exit()
            return
        if report is None and problem is None:
            self.notify("Ingest stopped; files finished before it are saved", title="Add files")
            return
        if report is None:
            self.notify(problem or "ingest failed", severity="error", title="Add files")
            return
        summary = (
            f"added {report.pages_added} page(s) from {report.files_ingested} file(s)"
            f"; {report.files_already} already in the case"
        )
        if report.failures:
            summary += f"; {len(report.failures)} failed"
        if report.index_problem:
            summary += f"; search index: {report.index_problem}"
        severity = "warning" if report.failures else "information"
        self.notify(summary, title="Add files", severity=severity, timeout=6)
        absolute = self.window_offset + max(self.query_one("#pages", DataTable).cursor_row, 0)
        self.reload(absolute - WINDOW // 2, absolute)

    # ----- the page image in a real viewer, re-OCR ----------------------------------------

    def action_open_image(self) -> None:
        page_id = self.sync_cursor()
        if page_id is None:
            return
        active = [
            r
            for r in (self.current_detail or {}).get("findings", ())
            if r["check"] == "active-content" and not r["dismissed"]
        ]

        def go(yes: bool | None = True) -> None:
            if yes:
                self.notify(f"rendering {page_id}…", timeout=1)
                self.save_image(page_id)

        if not active:
            go()
            return
        self.push_screen(
            ConfirmScreen(
                "This file carries active content",
                f"{active[0]['message']}. o opens only a picture of the page, never the file "
                "itself; do not open the file in a PDF viewer. Open the picture?",
            ),
            go,
        )

    @work(thread=True, group="open-image")
    def save_image(self, page_id: str) -> None:
        try:
            with Case.open(self.case_dir) as case:
                image = views.page_image(case, page_id, max_side=2400)
            handle, name = tempfile.mkstemp(prefix=f"workbench-{page_id}-", suffix=".png")
            with open(handle, "wb") as out:
                image.save(out, format="PNG")
        except WorkbenchError as error:
            self.call_from_thread(self.notify, error.message, severity="error")
            return
        except Exception as error:  # a broken file must not kill the app
            self.call_from_thread(self.notify, f"{page_id}: {error}", severity="error")
            return
        self.call_from_thread(self.image_saved, name)

    def image_saved(self, path: str) -> None:
        opener = shutil.which("xdg-open")
        if opener is None:
            self.notify(f"No system viewer (xdg-open); page image saved to {path}", timeout=10)
            return
        try:
            subprocess.Popen(  # noqa: S603 - a fixed program and our own temp file
                [opener, path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            self.notify(f"xdg-open failed ({error}); image saved to {path}", severity="warning")
            return
        self.notify(f"opened {path}", timeout=3)

    def action_reocr(self) -> None:
        page_id = self.sync_cursor()
        if page_id is None:
            return
        ocr = (self.current_detail or {}).get("ocr") or {}
        current = ocr.get("lang") or (self.current_detail or {}).get("ocr_lang") or "fas+eng"

        def chosen(lang: str | None) -> None:
            if lang:
                self.with_reviewer(lambda: self.start_reocr(page_id, lang))

        prompt = PromptScreen(f"Re-OCR {page_id} with language(s)", "fas+eng", value=current)
        self.push_screen(prompt, chosen)

    def start_reocr(self, page_id: str, lang: str) -> None:
        self.notify(f"re-OCR of {page_id} ({lang}) started", timeout=2)
        self.run_reocr(page_id, lang, self.reviewer or "")

    @work(thread=True, group="reocr")
    def run_reocr(self, page_id: str, lang: str, reviewer: str) -> None:
        reocr = getattr(pipeline, "reocr_page", None)
        if reocr is None:
            message = "re-OCR is not available in this version of workbench"
            self.call_from_thread(self.notify, message, severity="error")
            return
        try:
            with Case.open(self.case_dir) as case:
                reocr(case, page_id, lang, reviewer=reviewer)
        except WorkbenchError as error:
            self.call_from_thread(self.notify, error.message, severity="error", title="Re-OCR")
            if isinstance(error, CustodyError):  # the page is now shown stale
                self.call_from_thread(self.refresh_if_current, page_id)
            return
        except Exception as error:  # tesseract crashing must not kill the app
            message = f"{page_id}: {error}"
            self.call_from_thread(self.notify, message, severity="error", title="Re-OCR")
            return
        self.call_from_thread(self.reocr_done, page_id, lang)

    def reocr_done(self, page_id: str, lang: str) -> None:
        self.refresh_row(page_id)
        if page_id == self.current_page_id:
            self.show_page(page_id, force=True)
        self.update_status()
        self.notify(f"{page_id} re-read with {lang}", timeout=3)

    # ----- status bar, help, theme ----------------------------------------------------

    def update_status(self) -> None:
        if self.case is None:
            return
        if self.status_counts is None:
            self.status_counts = views.status_counts(self.case)
        counts = self.status_counts
        total = sum(counts.values())
        done = total - counts.get("unreviewed", 0)
        bar = Text()
        bar.append(f" {Path(self.case_dir).name} ", style="bold reverse")
        bar.append(f" {self.reviewer or 'no reviewer'} ", style="italic")
        shown = self.status_filter or "all"
        if self.search_filter_ids is not None:
            shown += f" matching {self.search_query!r}"
        bar.append(f"[{shown}: {self.total}] ", style="cyan")
        for status in review.STATUSES:
            bar.append(f"{status[:5]} ", style=STATUS_STYLE[status])
            bar.append(f"{counts.get(status, 0)}  ")
        percent = 100.0 * done / total if total else 0.0
        bar.append(f"{percent:.1f}% done", style="bold")
        if self.selected:
            bar.append(f"  {len(self.selected)} selected", style="bold magenta")
        self.query_one("#status", Static).update(bar)

    def action_help(self) -> None:
        bindings = sorted(self.BINDINGS, key=lambda b: not b.show)  # type: ignore[union-attr]
        rows = [(b.key_display or b.key, b.description) for b in bindings]  # type: ignore[union-attr]
        rows.append(("PgUp/PgDn", "Page through the list"))
        self.push_screen(HelpScreen(rows))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"


def justify_lines(view: Text, logical: str) -> RenderableType:
    """Right-align the lines whose logical text is right-to-left, as a reader expects."""
    if not has_rtl(logical):
        return view
    lines = view.split("\n", allow_blank=True)
    out = []
    for line, source in zip(lines, logical.split("\n"), strict=False):
        line.justify = "right" if has_rtl(source) and base_is_rtl(source) else "left"
        out.append(line)
    return Group(*out)


def page_heading(detail: dict[str, Any]) -> Text:
    """One line above the text: id, file, page, status, reviewer, notes count."""
    status = detail.get("status") or "unreviewed"
    head = Text(f"{detail['page_id']} ", style="bold")
    head.append(f"{for_terminal(Path(detail['source_path']).name)} p.{detail['page_number']} ")
    head.append(status, style=STATUS_STYLE.get(status, ""))
    if detail.get("reviewer"):
        head.append(f" by {detail['reviewer']}", style="italic")
    if detail.get("stale"):
        head.append("  STALE: its file changed since the ingest", style="bold red")
    for name, theirs in (detail.get("partners") or {}).items():
        # the partner's verdict beside ours (an imported log: 'workbench log import')
        head.append(f"  {for_terminal(name)}: ")
        head.append(theirs["status"], style=STATUS_STYLE.get(theirs["status"], ""))
        if theirs.get("reviewer"):
            head.append(f" by {for_terminal(theirs['reviewer'])}", style="italic")
        if status != "unreviewed" and theirs["status"] not in ("unreviewed", status):
            head.append("  DISAGREE", style="bold red")
    notes = detail.get("notes")
    if notes:
        head.append(f"\nnotes: {notes}", style="magenta")
    head.append("\n")
    return head


def metadata_table(detail: dict[str, Any]) -> RenderableType:
    """File metadata, dates found, page marker, hashes and OCR provenance for one page."""
    table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
    table.add_column(style="bold cyan", no_wrap=True, max_width=16, overflow="ellipsis")
    table.add_column(overflow="fold")

    def add(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            table.add_row(label, for_terminal(str(value)))  # terminals do no bidi

    add("page", detail["page_id"])
    add("stale", detail.get("stale_reason"))
    add("file", detail["source_path"])
    add("page no.", detail["page_number"])
    marker = detail.get("page_marker")
    if marker:
        add("marker", f"page {marker['number']} of {marker['total']}  ({marker.get('text')})")
    add("status", detail.get("status"))
    add("reviewer", detail.get("reviewer"))
    add("reviewed", detail.get("reviewed_at"))
    add("notes", detail.get("notes"))
    add("text from", detail.get("text_source"))
    ocr = detail.get("ocr") or {}
    if detail.get("text_source") == "ocr" or ocr.get("engine"):
        add("ocr engine", ocr.get("engine"))
        add("ocr lang", ocr.get("lang"))
        add("ocr conf.", ocr.get("confidence"))
        add("rotation", ocr.get("rotation"))
        add("skew", ocr.get("skew"))
        add("orientation", ocr.get("orientation_method"))
    for date in detail.get("dates") or []:
        add("date", f"{date.get('iso')}  {date.get('original')} ({date.get('calendar')})")
    for prefix, values in (
        ("file", detail.get("source_metadata")),
        ("page", detail.get("metadata")),
    ):
        for key, value in flatten(values or {}):
            add(f"{prefix} {key}", value)
    add("page sha256", detail.get("page_sha256"))
    add("file sha256", detail.get("source_sha256"))
    add("error", detail.get("error"))
    return Group(table)


def flatten(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Nested metadata as readable rows: the PDF info dict first, fonts by name only."""
    rows: list[tuple[str, Any]] = []
    for key, value in sorted(values.items(), key=lambda item: item[0] != "info"):
        if key.endswith("_raw"):
            continue
        if isinstance(value, dict):
            for sub, inner in flatten(value):
                rows.append((sub if key == "info" else f"{key}.{sub}", inner))
        elif key == "fonts" and isinstance(value, list):
            names = [f.get("name", "?") if isinstance(f, dict) else str(f) for f in value]
            rows.append((key, ", ".join(dict.fromkeys(names))))
        else:
            rows.append((key, value))
    return rows


class IngestStopped(Exception):
    """The reviewer quit while files were being added."""


class AppIngestObserver(pipeline.IngestObserver):
    """Runs in the ingest thread: every callback hops to the UI thread."""

    def __init__(self, app: WorkbenchApp) -> None:
        self.app = app

    def page_done(self, pages_done: int, total_pages: int) -> None:
        if self.app.stop_ingest:
            # Raised inside the pipeline: its workers are shut down, committed files stay.
            raise IngestStopped
        self.app.call_from_thread(self.app.ingest_progress, pages_done, total_pages)

    def file_failed(self, path: str, reason: str) -> None:
        message = f"{for_terminal(Path(path).name)}: {reason}"
        self.app.call_from_thread(
            self.app.notify, message, severity="warning", title="File not added"
        )


OWN_ACTIONS = {
    binding.action.split("(", 1)[0]
    for binding in WorkbenchApp.BINDINGS
    if isinstance(binding, Binding)
}


def make_app(case_dir: str, *, graphics_mode: str = "halfblock") -> WorkbenchApp:
    """Build the app for a case folder (tests drive it with ``run_test``)."""
    return WorkbenchApp(case_dir, graphics=graphics_mode)


def run_app(case_dir: str, *, graphics_mode: str | None = None) -> None:
    """Open the app on a case folder and block until the user quits.

    The image mode is settled first: asking the terminal must happen before Textual runs.
    """
    mode = graphics.choose(graphics_mode)
    graphics.image_widget_class(mode)  # imported now: it measures the terminal on import
    make_app(case_dir, graphics_mode=mode).run()
