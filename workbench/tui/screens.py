"""Modal screens: reviewer name, note prompt, search, help."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

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
