"""odd-page: a page unlike the rest of its document or file.

A page inserted into a genuine document often gives itself away by how it was made
rather than what it says: another paper size or orientation, fonts no other page uses,
or (on scans) another scanner resolution or colour mode. For each document (pages a
reviewer grouped) and each file that holds one document (its pages not in a document;
a file whose page markers start over holds several cables, which may rightly differ),
every page is compared with the others; a page is odd in a respect when all the
other pages agree and it does not. Units of fewer than three pages are not judged:
with two pages there is no "rest".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from workbench import documents
from workbench.checks.base import Check, Draft, Unit
from workbench.checks.page_sequence import Marked, segments
from workbench.store import Case

MIN_PAGES = 3
SIZE_TOLERANCE = 0.02  # 2% of a side: rounding between tools, not another paper
DPI_TOLERANCE = 0.05
_SUBSET = re.compile(r"^[A-Z]{6}\+")
_STYLE = re.compile(
    r"(?:[-,\s]+(?:Bold|Italic|Oblique|Regular|Roman|Medium|Light|Semi[Bb]old|Black|Heavy|"
    r"Book|Condensed|Narrow)+|(?:PS)?MT|PS)$"
)
# Faces a page uses for a few symbols (bullets, maths, arrows): not a sign of another source.
_SYMBOLS = re.compile(
    r"symbol|dingbat|wingding|webding|math|MT ?Extra|Marlett|OpenSymbol", re.IGNORECASE
)
_FROM_PAGES = "the page's size, fonts and images, read at ingest"
_PAPER = {
    (595, 842): "A4",
    (612, 792): "Letter",
    (612, 1008): "Legal",
    (842, 1191): "A3",
    (420, 595): "A5",
}


def font_family(name: str) -> str:
    """``ABCDEF+Calibri-Bold`` -> ``Calibri``: the family, as a reader would name it."""
    base = _SUBSET.sub("", name or "")
    previous = None
    while previous != base:
        previous, base = base, _STYLE.sub("", base).strip()
    return base or (name or "")


def _page_features(row: Any) -> dict[str, Any]:
    meta = json.loads(row["metadata"] or "{}")
    width, height = (
        meta.get("width_pt") or row["width_pt"],
        meta.get("height_pt") or row["height_pt"],
    )
    # the size is as shown (MuPDF applies /Rotate); a sideways scan that OCR turned
    # upright is read upright, so it counts as upright here too
    if (row["ocr_rotation"] or 0) % 180 == 90:
        width, height = height, width
    features: dict[str, Any] = {
        "page_id": row["page_id"],
        "size": [round(width or 0, 1), round(height or 0, 1)],
        "fonts": sorted({font_family(f.get("name", "")) for f in meta.get("fonts", ())} - {""}),
        "scan": None,
    }
    scan = _scan_features(meta, width or 0, height or 0)
    if scan is not None:
        features["scan"] = scan
    return features


def _scan_features(meta: dict[str, Any], width: float, height: float) -> dict[str, Any] | None:
    """Resolution and colour of a scanned page: its one big image, or the image file."""
    if "width_px" in meta:  # a page of an image file
        dpi = meta.get("dpi") or [None]
        return {"dpi": round(float(dpi[0]), 0) if dpi[0] else None, "colour": meta.get("mode")}
    images = meta.get("images") or []
    if len(images) != 1 or not width:
        return None
    image = images[0]
    # the longer sides of image and page, so a rotated placement gives the same figure
    return {
        "dpi": round(max(image["width_px"], image["height_px"]) * 72 / max(width, height), 0),
        "colour": f"{image.get('colorspace')}/{image.get('bits')}",
    }


def _paper(size: list[float]) -> str:
    width, height = size
    orientation = "landscape" if width > height else "portrait"
    for (w, h), name in _PAPER.items():
        if _close(min(width, height), w, SIZE_TOLERANCE) and _close(
            max(width, height), h, SIZE_TOLERANCE
        ):
            return f"{orientation} {name} ({width:g} x {height:g} pt)"
    return f"{orientation} {width:g} x {height:g} pt"


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1)


class OddPage(Check):
    name = "odd-page"
    version = 1
    summary = "a page whose size, orientation, fonts or scan settings differ from its document's"

    def units(self, case: Case) -> Iterator[Unit]:
        rows_by_id: dict[str, Any] = {}
        by_source: dict[str, list[dict[str, Any]]] = {}
        markers: dict[str, list[Marked]] = {}
        for row in case.db.execute(
            "SELECT p.page_id, p.width_pt, p.height_pt, p.metadata, p.ocr_rotation, s.sha256,"
            " p.marker_number, p.marker_total, p.text_source, r.document_id"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            " LEFT JOIN page_review r ON r.page_row = p.id ORDER BY p.id"
        ):
            if row["document_id"] is not None:
                rows_by_id[row["page_id"]] = row
                continue
            by_source.setdefault(row["sha256"], []).append(_page_features(row))
            if row["marker_number"] is not None:
                markers.setdefault(row["sha256"], []).append(
                    Marked(row["page_id"], row["marker_number"], row["marker_total"], "")
                )
        for sha256, pages in by_source.items():
            # a file that holds several cables (its markers start over) is no one
            # document: its pages may rightly differ; grouped into documents they are judged
            if len(pages) >= MIN_PAGES and len(segments(markers.get(sha256, []))) <= 1:
                yield Unit(f"source:{sha256}", {"sha256": sha256, "pages": pages})
        if not rows_by_id:
            return
        for record in documents.document_records(case):
            pages = [_page_features(rows_by_id[p]) for p in record["page_ids"] if p in rows_by_id]
            if len(pages) >= MIN_PAGES:
                yield Unit(
                    f"document:{record['id']}",
                    {"id": record["id"], "title": record["title"], "pages": pages},
                )

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        inputs = unit.inputs
        pages = inputs["pages"]
        if "sha256" in inputs:
            where, source = "its file", inputs["sha256"]
        else:
            where, source = f"document {inputs['id']}", None
        drafts = _sizes(pages, where) + _fonts(pages, where) + _scans(pages, where)
        for draft in drafts:
            draft.source_sha256 = source
        return drafts


def _odd_ones(values: list[Any], same: Any) -> list[int]:
    """Indexes of pages unlike all the others, when all the others agree."""
    odd = []
    for index, value in enumerate(values):
        others = [v for i, v in enumerate(values) if i != index]
        if all(same(others[0], other) for other in others) and not same(value, others[0]):
            odd.append(index)
    return odd


def _sizes(pages: list[dict[str, Any]], where: str) -> list[Draft]:
    def same(a: list[float], b: list[float]) -> bool:
        return _close(a[0], b[0], SIZE_TOLERANCE) and _close(a[1], b[1], SIZE_TOLERANCE)

    sizes = [p["size"] for p in pages]
    drafts = []
    for index in _odd_ones(sizes, same):
        page = pages[index]
        usual = sizes[1 if index == 0 else 0]
        drafts.append(
            Draft(
                severity="warn",
                message=(
                    f"{page['page_id']} is {_paper(page['size'])} while the other "
                    f"{len(pages) - 1} pages of {where} are {_paper(usual)}"
                ),
                page_ids=[page["page_id"]],
                evidence={
                    "page_size_pt": page["size"],
                    "others_size_pt": usual,
                    "from": _FROM_PAGES,
                },
                discriminator=f"size:{page['page_id']}",
            )
        )
    return drafts


def _fonts(pages: list[dict[str, Any]], where: str) -> list[Draft]:
    text_fonts = [[f for f in p["fonts"] if not _SYMBOLS.search(f)] for p in pages]
    with_fonts = [(p, fonts) for p, fonts in zip(pages, text_fonts, strict=True) if fonts]
    if len(with_fonts) < MIN_PAGES:
        return []
    drafts = []
    for page, fonts in with_fonts:
        others = sorted({f for p, own in with_fonts if p is not page for f in own})
        if set(fonts) & set(others):
            continue  # a title or a table in another face is normal; no shared face is not
        drafts.append(
            Draft(
                severity="warn",
                message=(
                    f"{page['page_id']} is set in {', '.join(fonts)}, which no other page of "
                    f"{where} uses; they are set in {', '.join(others[:4])}"
                    + (" and others" if len(others) > 4 else "")
                ),
                page_ids=[page["page_id"]],
                evidence={
                    "fonts": page["fonts"],
                    "others_use": others,
                    "from": _FROM_PAGES,
                },
                discriminator=f"fonts:{page['page_id']}",
            )
        )
    return drafts


def _scans(pages: list[dict[str, Any]], where: str) -> list[Draft]:
    scanned = [p for p in pages if p["scan"]]
    if len(scanned) < MIN_PAGES or len(scanned) != len(pages):
        return []

    def same_dpi(a: float, b: float) -> bool:
        return _close(a, b, DPI_TOLERANCE)

    def same_colour(a: str, b: str) -> bool:
        return a == b

    drafts = []
    for key, same in (("dpi", same_dpi), ("colour", same_colour)):
        values = [p["scan"][key] for p in scanned]
        if any(v is None for v in values):
            continue
        for index in _odd_ones(values, same):
            page = scanned[index]
            usual = values[1 if index == 0 else 0]
            if key == "dpi":
                what = f"was scanned at {values[index]:g} dpi"
                rest = f"were scanned at {usual:g} dpi"
            else:
                what, rest = f"is in colour mode {values[index]}", f"are in {usual}"
            drafts.append(
                Draft(
                    severity="warn",
                    message=(
                        f"{page['page_id']} {what} while the other {len(scanned) - 1} pages "
                        f"of {where} {rest}"
                    ),
                    page_ids=[page["page_id"]],
                    evidence={key: values[index], f"others_{key}": usual, "from": _FROM_PAGES},
                    discriminator=f"{key}:{page['page_id']}",
                )
            )
    return drafts


CHECK = OddPage()
