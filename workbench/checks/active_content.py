"""active-content: what a PDF would do when opened, beyond showing pages.

JavaScript, launch actions, actions on open or close (of the file or a page), forms that
submit somewhere, media, XFA forms, and scripts kept where nothing triggers them. A
JavaScript, launch or submit action, or anything that fires when the file is opened, is
an ``alert``; the rest a ``warn``. An /OpenAction that only jumps to a page, and links
that are only followed when clicked, are not active content. The app warns before it
opens such a file in the system viewer.
"""

from __future__ import annotations

from workbench import pdfsafety
from workbench.checks.base import Draft, Unit
from workbench.checks.file_check import FileCheck
from workbench.store import Case

_DANGEROUS = {"JavaScript", "Launch", "SubmitForm", "ImportData"}
_FROM = "the PDF's catalog, pages, annotations and form fields, read with pikepdf (qpdf)"


class ActiveContent(FileCheck):
    name = "active-content"
    version = 1
    summary = "JavaScript, launch and submit actions, actions on open: what opening the file does"

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        data, page_ids = self.source_bytes(case, unit)
        if data is None:
            return []
        items = self.structure(data, pdfsafety.active_content)
        if not items:
            return []
        alert = any(i["action"] in _DANGEROUS or i.get("automatic") for i in items)
        opening = [i for i in items if i.get("automatic")]
        first = (opening or items)[0]
        what = f"{first['does']} ({first['action']}, {first['where']})"
        when = "when the file is opened" if opening else "when a reader uses a link or field"
        pages = sorted({i["page"] for i in items if i["page"]})
        return [
            Draft(
                severity="alert" if alert else "warn",
                message=(
                    f"The file carries active content: it {what} {when}"
                    + (f", and {len(items) - 1} more action(s)" if len(items) > 1 else "")
                    + "; open it only in a safe viewer"
                ),
                page_ids=[page_ids[p] for p in pages if p in page_ids]
                or list(page_ids.values())[:1],
                evidence={"actions": items, "from": _FROM},
                source_sha256=unit.inputs["sha256"],
                discriminator="actions",
            )
        ]


CHECK = ActiveContent()
