"""Screens: reviewer name, note prompt, yes/no, search, help, documents, grouping, export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from workbench.errors import WorkbenchError
from workbench.tui.render import for_terminal, snippet_text


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (reviewer name, a note); dismisses with it, or None on Esc."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, placeholder: str = "", *, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label("Enter to save · Esc to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; dismisses with True on y, False on n or Esc."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, detail: str) -> None:
        super().__init__()
        self.title_text = title
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.detail)
            yield Label("y yes · n or Esc no", classes="dialog-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class SearchScreen(ModalScreen[int | None]):
    """A query box and its results; Enter on a result dismisses with that hit's index.

    The search itself runs in the app (a worker), which calls :meth:`show_results`.
    """

    BINDINGS = [Binding("escape", "cancel", "Close search")]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog search-dialog"):
            yield Label('Search (words, "a phrase", status:verified, date:[2013 TO 2014])')
            yield Input(value=self.query_text, placeholder="query", id="search-input")
            yield Label("", id="search-summary", classes="dialog-hint")
            yield OptionList(id="search-results")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.query_one("#search-summary", Label).update("searching…")
            self.app.run_search(event.value.strip())  # type: ignore[attr-defined]

    def show_results(self, total: int, hits: list[Any]) -> None:
        """Fill the result list (called by the app when its search worker finishes)."""
        options = self.query_one("#search-results", OptionList)
        options.clear_options()
        for number, hit in enumerate(hits):
            record = hit.record
            head = Text(f"{record['page_id']}  {record['status']:<10} ", style="bold")
            head.append(for_terminal(record["source_path"].rsplit("/", 1)[-1]), style="dim")
            body = snippet_text(hit.snippet, hit.snippet_matches)
            options.add_option(Option(Text.assemble(head, "\n  ", body), id=str(number)))
        shown = f"{len(hits)} shown" if len(hits) < total else "all shown"
        self.query_one("#search-summary", Label).update(
            f"{total} page(s) match · {shown} · ↓ then Enter opens a page"
        )
        if hits:
            options.highlighted = 0
            options.focus()

    def show_error(self, message: str) -> None:
        self.query_one("#search-summary", Label).update(Text(message, style="bold red"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key the app knows, from its bindings (so this list cannot go stale)."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = bindings

    def compose(self) -> ComposeResult:
        # two key/description pairs per line so the list fits an 80x24 terminal
        table = Table(box=None, show_header=False, padding=(0, 1))
        for _ in range(2):
            table.add_column(style="bold cyan", no_wrap=True)
            table.add_column(no_wrap=True)
        half = (len(self.rows) + 1) // 2
        left, right = self.rows[:half], self.rows[half:]
        for number, (key, description) in enumerate(left):
            other = right[number] if number < len(right) else ("", "")
            table.add_row(key, description, *other)
        with Vertical(classes="dialog help-dialog"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table, id="help-table")
            yield Label("Esc or ? closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class DocumentFormScreen(ModalScreen[dict[str, Any] | None]):
    """Title, date and claimed page count for grouping pages into a document.

    ``save`` gets the typed values and creates the document (raising ``WorkbenchError`` or
    ``ValueError`` when it cannot); an error is notified and the form stays open to fix it.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, save: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        super().__init__()
        self.what = what
        self.save = save

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Group {self.what} into a document", classes="dialog-title")
            yield Label("Title")
            yield Input(placeholder="e.g. REF: IRGC-QF/93/0042", id="doc-title")
            yield Label("Date: 2014-08-03 or 1393/05/12 (Persian digits too)")
            yield Input(placeholder="optional", id="doc-date")
            yield Label("Claimed page count (the Y of 'page X of Y')")
            yield Input(placeholder="optional", id="doc-claimed")
            yield Label("Enter saves · Tab next field · Esc cancels", classes="dialog-hint")

    def values(self) -> dict[str, Any]:
        title = self.query_one("#doc-title", Input).value.strip() or None
        date = self.query_one("#doc-date", Input).value.strip() or None
        claimed_text = self.query_one("#doc-claimed", Input).value.strip()
        claimed = None
        if claimed_text:
            try:
                claimed = int(claimed_text)  # int() reads Persian digits as well
            except ValueError:
                raise ValueError(f"claimed pages must be a number, not {claimed_text!r}") from None
        return {"title": title, "date": date, "claimed_pages": claimed}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            record = self.save(self.values())
        except WorkbenchError as error:
            self.app.notify(error.message, severity="error", title="Document not created")
            return
        except ValueError as error:
            self.app.notify(str(error), severity="error", title="Document not created")
            return
        self.dismiss(record)

    def action_cancel(self) -> None:
        self.dismiss(None)


def document_count(record: dict[str, Any]) -> Text:
    """'actual/claimed' with a loud MISMATCH when the cable's own page count disagrees."""
    claimed = record.get("claimed_pages")
    text = Text(f"{record['actual_pages']}/{claimed if claimed is not None else '?'}")
    if record.get("mismatch"):
        text.append(" MISMATCH", style="bold white on red")
    return text


class DocumentsScreen(Screen[str | None]):
    """Every document of the case; Enter dismisses with its first page, Esc with None."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("enter", "open", "Go to first page"),
        Binding("s", "suggest", "Suggest documents"),
    ]

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__()
        self.records = records

    def compose(self) -> ComposeResult:
        yield Label("", id="docs-summary")
        yield DataTable(id="docs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#docs", DataTable)
        for key, label in (
            ("id", "ID"),
            ("count", "Pages act/claim"),
            ("span", "Span"),
            ("date", "Date"),
            ("jalali", "Jalali"),
            ("title", "Title"),
        ):
            table.add_column(label, key=key)
        self.show(self.records)
        table.focus()

    def show(self, records: list[dict[str, Any]]) -> None:
        """Fill the table (again, after suggestions were accepted)."""
        self.records = records
        table = self.query_one("#docs", DataTable)
        table.clear()
        for record in records:
            span = f"{record['first_page'] or '-'}..{record['last_page'] or '-'}"
            table.add_row(
                record["id"],
                document_count(record),
                span,
                record.get("date_iso") or "",
                record.get("date_jalali") or "",
                for_terminal(record.get("title") or ""),
                key=record["id"],
            )
        mismatches = sum(1 for r in records if r.get("mismatch"))
        summary = f"{len(records)} document(s)"
        if mismatches:
            summary += f" · {mismatches} MISMATCH"
        summary += " · Enter: first page · s: suggest · Esc: back"
        self.query_one("#docs-summary", Label).update(summary)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.query_one("#docs", DataTable).cursor_row
        if 0 <= row < len(self.records) and self.records[row]["first_page"]:
            self.dismiss(self.records[row]["first_page"])

    def action_close(self) -> None:
        self.dismiss(None)

    def action_suggest(self) -> None:
        self.app.suggest_documents(self)  # type: ignore[attr-defined]


class SuggestionsScreen(ModalScreen[bool]):
    """Proposed documents; y accepts them all, Esc/n leaves the case untouched."""

    BINDINGS = [
        Binding("y", "accept", "Accept all"),
        Binding("n", "cancel", "Cancel"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, suggestions: list[dict[str, Any]]) -> None:
        super().__init__()
        self.suggestions = suggestions

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 1), expand=True)
        table.add_column("Span", no_wrap=True)
        table.add_column("N", justify="right")
        table.add_column("Claim", justify="right")
        table.add_column("Date", no_wrap=True)
        table.add_column("Title / reason", overflow="fold")
        for s in self.suggestions:
            pages = s["page_ids"]
            claimed = s.get("claimed_pages")
            table.add_row(
                f"{pages[0]}..{pages[-1]}",
                str(len(pages)),
                "" if claimed is None else str(claimed),
                (s.get("date") or "")[:10],
                for_terminal(s.get("title") or "") + f"  ({s.get('reason') or ''})",
            )
        with Vertical(classes="dialog search-dialog"):
            yield Label(
                f"{len(self.suggestions)} suggested document(s) for pages in none",
                classes="dialog-title",
            )
            with VerticalScroll():
                yield Static(table)
            yield Label("y accepts all · n or Esc cancels", classes="dialog-hint")

    def action_accept(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


EXPORT_NAMES = {
    "csv": "pages.csv",
    "jsonl": "review-log.jsonl",
    "report": "report.html",
    "manifest": "manifest.csv",
}


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Pick a format (Enter moves to the path), edit the path, Enter exports."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder
        self.fmt = "csv"

    def default_path(self, fmt: str) -> str:
        return str(Path(self.folder) / EXPORT_NAMES[fmt])

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export the verification record", classes="dialog-title")
            yield OptionList(
                Option("csv       one row per page", id="csv"),
                Option("jsonl     the full hash-chained review log", id="jsonl"),
                Option("report    readable HTML for editors", id="report"),
                Option("manifest  OPT-like page manifest with document breaks", id="manifest"),
                id="export-format",
            )
            yield Label("File")
            yield Input(value=self.default_path("csv"), id="export-path")
            hint = "↑↓ format · Enter: to the path · Enter again exports"
            yield Label(hint, classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one("#export-format", OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        path = self.query_one("#export-path", Input)
        if path.value in {self.default_path(f) for f in EXPORT_NAMES} or not path.value:
            path.value = self.default_path(event.option.id or "csv")
        self.fmt = event.option.id or "csv"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#export-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss((self.fmt, event.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)
