"""bad-redaction: text still in the file under a black box drawn over it.

A box drawn over words hides them on screen and on paper, but the words stay in the
PDF: anyone who selects, copies or extracts the text reads them. Published, that can
name the very person the box was meant to protect, so it is an ``alert``, one per page.
The finding says how many characters and where (the boxes and the lines under them),
never the hidden text itself: ``workbench show PAGE --hidden`` prints that on request.
Only pages read from their text layer are looked at (a scanned page's text came from
OCR of what shows); the method is in :mod:`workbench.redaction`.
"""

from __future__ import annotations

from workbench import redaction
from workbench.checks.base import Draft, Unit, layer_page_numbers
from workbench.checks.file_check import FileCheck
from workbench.store import Case

_FROM = "the page's drawings, its text in drawing order and a render of the boxes (PyMuPDF)"


class BadRedaction(FileCheck):
    name = "bad-redaction"
    version = 1
    summary = "text still in the file under black redaction boxes"

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        data, page_ids = self.source_bytes(case, unit)
        if data is None:
            return []
        layer_pages = layer_page_numbers(case, unit.inputs["sha256"])
        drafts = []
        for number, found in redaction.scan(data, layer_pages):
            if number not in page_ids:
                continue
            if isinstance(found, str):
                drafts.append(
                    Draft(
                        severity="info",
                        message=f"page {number} could not be drawn to look for text under "
                        f"boxes ({found})",
                        page_ids=[page_ids[number]],
                        evidence={"page": number, "reason": found, "from": _FROM},
                        source_sha256=unit.inputs["sha256"],
                        discriminator=f"unchecked {number}",
                    )
                )
                continue
            drafts.append(
                Draft(
                    severity="alert",
                    message=message(number, found),
                    page_ids=[page_ids[number]],
                    evidence={
                        "page": number,
                        "characters": sum(c.characters for c in found),
                        "boxes": [c.evidence() for c in found],
                        "from": _FROM,
                        "see": f"workbench show {page_ids[number]} --hidden",
                    },
                    source_sha256=unit.inputs["sha256"],
                    discriminator=str(number),
                )
            )
        return drafts


def message(number: int, covers: list[redaction.Cover]) -> str:
    """'12 characters of text still under 2 black boxes on page 3'."""
    characters = sum(c.characters for c in covers)
    black = all(redaction.luminance(c.box.fill) < 40 for c in covers)
    count = len(covers)
    colour = "black" if black else "dark"
    boxes = f"a {colour} box" if count == 1 else f"{count} {colour} boxes"
    return (
        f"{characters} character{'s' if characters != 1 else ''} of text still under "
        f"{boxes} on page {number}: selectable and extractable by anyone with the file"
    )


CHECK = BadRedaction()
