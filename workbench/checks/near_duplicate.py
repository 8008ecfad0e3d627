"""near-duplicate: pages that show the same page (printed and scanned again, cropped,
at another resolution, from another source).

Pairs come from workbench.similarity (MinHash/LSH over the text, a perceptual image
hash for pages with little text), so a 100,000-page case is checked without comparing
every pair. Linked pairs form clusters; one finding per cluster. Copies in different
files are a ``warn`` (the same page reached the trove twice: which is the original?);
copies within one file an ``info``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench import similarity
from workbench.checks.base import Check, Draft, Unit
from workbench.store import Case

_FROM = (
    "page texts compared character by character after normalising (candidates from "
    "MinHash/LSH over word pairs), and a 256-bit perceptual hash of each page image"
)


class NearDuplicate(Check):
    name = "near-duplicate"
    version = 1
    summary = "pages that show the same page: rescanned, cropped, from another source"

    def units(self, case: Case) -> Iterator[Unit]:
        pairs, basis = similarity.near_duplicates(case)
        for members in similarity.clusters(pairs):
            inside = set(members)
            yield Unit(
                f"cluster:{members[0]}",
                {
                    "pages": [[page, basis[page]] for page in members],
                    "pairs": [p.as_json() for p in pairs if p.first in inside],
                },
            )

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        pages = [page for page, _ in unit.inputs["pages"]]
        rows = case.page_rows_by_id(pages)
        members = [
            {
                "page_id": page,
                "source": rows[page]["source_path"],
                "source_sha256": rows[page]["source_sha256"],
                "page_number": rows[page]["page_number"],
                "text_source": rows[page]["text_source"],
            }
            for page in pages
        ]
        files = {m["source_sha256"] for m in members}
        alike = _how_alike(unit.inputs["pairs"])
        if len(pages) == 2:
            who = f"{pages[0]} and {pages[1]} show the same page"
        else:
            who = f"{len(pages)} pages show the same page: {', '.join(pages)}"
        where = f"copies in {len(files)} files" if len(files) > 1 else "both in one file"
        if len(files) == 1 and len(pages) > 2:
            where = "all in one file"
        return [
            Draft(
                severity="warn" if len(files) > 1 else "info",
                message=f"{who} ({alike}): {where}",
                page_ids=pages,
                evidence={"pages": members, "pairs": unit.inputs["pairs"], "from": _FROM},
                source_sha256=next(iter(files)) if len(files) == 1 else None,
                discriminator="cluster",
            )
        ]


def _how_alike(pairs: list[dict[str, Any]]) -> str:
    """Which measure says the pages are the same, in words."""
    by_text = [
        p["text_similarity"]
        for p in pairs
        if p["text_similarity"] is not None and p["text_similarity"] >= similarity.TEXT_THRESHOLD
    ]
    if len(by_text) == len(pairs):
        low, high = min(by_text), max(by_text)
        return f"texts {low:.0%} alike" if low == high else f"texts {low:.0%}-{high:.0%} alike"
    distance = max(p["image_distance"] for p in pairs if p["image_distance"] is not None)
    said = f"the images look the same, {distance} of 256 hash bits apart"
    texts = [p["text_similarity"] for p in pairs if p["text_similarity"] is not None]
    if texts and min(texts) < similarity.TEXT_THRESHOLD:
        said += f"; their texts only {min(texts):.0%} alike, OCR may have misread one"
    return said


CHECK = NearDuplicate()
