"""hidden-content: what a PDF holds that its pages do not show.

Comments and other annotations (with their authors), attached files, layers switched
off, filled-in form fields, and text drawn where nobody sees it: invisible text (except
an OCR layer over a scanned image), white text on white, text outside the page, text
under 1 pt. Any of it would go out with the file if it were published as it is, and may
name or identify the source: ``warn``, with what was found and where; form values and
comments without text are ``info``.
"""

from __future__ import annotations

from typing import Any

from workbench import pdfsafety
from workbench.checks.base import Draft, Unit, layer_page_numbers
from workbench.checks.file_check import FileCheck
from workbench.store import Case

_FROM = "the PDF's structure (pikepdf) and the text as drawn on each page (PyMuPDF)"


class HiddenContent(FileCheck):
    name = "hidden-content"
    version = 1
    summary = "comments, attachments, hidden layers, form values, invisible or white text"

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        data, page_ids = self.source_bytes(case, unit)
        if data is None:
            return []
        items = self.structure(data, pdfsafety.hidden_structure)
        layer_pages = layer_page_numbers(case, unit.inputs["sha256"])
        items += pdfsafety.hidden_text(data, layer_pages)
        drafts = []
        for what, group in _by_kind(items).items():
            pages = sorted({i["page"] for i in group if i["page"]})
            drafts.append(
                Draft(
                    severity="info" if what in ("form value", "unchecked page") else "warn",
                    message=_message(what, group),
                    page_ids=[page_ids[p] for p in pages if p in page_ids]
                    or list(page_ids.values())[:1],
                    evidence={"items": group, "from": _FROM},
                    source_sha256=unit.inputs["sha256"],
                    discriminator=what,
                )
            )
        return drafts


def _by_kind(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        found.setdefault(item["what"], []).append(item)
    return found


def _message(what: str, group: list[dict[str, Any]]) -> str:
    count = len(group)
    if what == "attachment":
        names = ", ".join(repr(i["name"]) for i in group[:3] if i["name"])
        return f"The file has {count} attached file(s) that its pages do not show: {names}"
    if what == "comment":
        authors = sorted({i["author"] for i in group if i["author"]})
        said = f" by {', '.join(repr(a) for a in authors[:3])}" if authors else ""
        return f"The file has {count} comment(s) or annotation(s){said}, not part of the page"
    if what == "hidden layer":
        names = ", ".join(repr(i["name"]) for i in group[:3] if i["name"])
        return f"The file has {count} layer(s) switched off, not shown: {names}"
    if what == "form value":
        return f"{count} form field(s) are filled in: " + ", ".join(
            f"{i['field']}={i['value']!r}" for i in group[:3]
        )
    if what == "unchecked page":
        return f"{count} page(s) could not be drawn to look for hidden text"
    hows = sorted({i["how"] for i in group})
    characters = sum(i["characters"] for i in group)
    return f"{characters} characters of text nobody sees on the page: " + "; ".join(hows)


CHECK = HiddenContent()
