"""The findings pane: what the checks found on the page shown, with the evidence.

One widget with its own state (the page shown, its findings) that talks upward with
messages: Enter on a finding asks the app to jump to the other page it names
(``JumpRequested``); the app's dismiss key asks for the highlighted finding
(:meth:`FindingsPane.highlighted`). It never touches the case itself.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench.tui.render import for_terminal

SEVERITY_STYLE = {"alert": "bold red", "warn": "bold yellow", "info": "dim"}
SEVERITY_MARK = {"alert": "!! ", "warn": "!  ", "info": "·  "}


class FindingsPane(Vertical):
    """Findings of one page: a list, and the evidence of the highlighted one."""

    class JumpRequested(Message):
        """Enter on a finding: show the other page it is about."""

        def __init__(self, page_id: str) -> None:
            super().__init__()
            self.page_id = page_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_id: str | None = None
        self.records: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield OptionList(id="finding-list")
        with VerticalScroll(id="finding-evidence-scroll"):
            yield Static("", id="finding-evidence")

    def show(self, page_id: str | None, records: list[dict[str, Any]]) -> None:
        """Show the findings of a page (open ones first, then dismissed)."""
        self.page_id = page_id
        self.records = sorted(records, key=lambda r: (r["dismissed"], _rank(r["severity"])))
        options = self.query_one("#finding-list", OptionList)
        options.clear_options()
        for record in self.records:
            options.add_option(Option(_line(record), id=record["finding_id"]))
        if self.records:
            options.highlighted = 0
            self._show_evidence(self.records[0])
        else:
            message = "No findings on this page." if page_id else ""
            self.query_one("#finding-evidence", Static).update(Text(message, style="dim"))

    def highlighted(self) -> dict[str, Any] | None:
        """The finding under the cursor (the first when the list was never moved)."""
        index = self.query_one("#finding-list", OptionList).highlighted
        if index is None or not 0 <= index < len(self.records):
            return self.records[0] if self.records else None
        return self.records[index]

    def open_count(self) -> int:
        return sum(not r["dismissed"] for r in self.records)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if 0 <= event.option_index < len(self.records):
            self._show_evidence(self.records[event.option_index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if not 0 <= event.option_index < len(self.records):
            return
        others = [p for p in self.records[event.option_index]["page_ids"] if p != self.page_id]
        if others:
            self.post_message(self.JumpRequested(others[0]))

    def _show_evidence(self, record: dict[str, Any]) -> None:
        pages = ", ".join(record["page_ids"])
        lines = [
            Text.assemble(
                (f"{record['severity'].upper()} ", SEVERITY_STYLE.get(record["severity"], "")),
                (record["check"], "bold"),
                (f"  {record['finding_id']}", "dim"),
                ("  dismissed" if record["dismissed"] else "", "italic"),
            ),
            Text(for_terminal(record["message"])),
            Text(f"pages: {pages}", style="cyan"),
            Text("Enter: go to the other page · z: dismiss with a note", style="dim"),
            Text(""),
            Text(
                for_terminal(json.dumps(record["evidence"], ensure_ascii=False, indent=1)[:6000]),
                style="dim",
            ),
        ]
        self.query_one("#finding-evidence", Static).update(Group(*lines))


def _rank(severity: str) -> int:
    return {"alert": 0, "warn": 1, "info": 2}.get(severity, 3)


def _line(record: dict[str, Any]) -> Text:
    style = "dim strike" if record["dismissed"] else SEVERITY_STYLE.get(record["severity"], "")
    return Text.assemble(
        (SEVERITY_MARK.get(record["severity"], "  "), style),
        (f"{record['check']}: ", "bold" if not record["dismissed"] else "dim"),
        (for_terminal(record["message"]), "dim" if record["dismissed"] else ""),
    )
