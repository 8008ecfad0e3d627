"""Text still present under redaction boxes: a black box drawn over words that are
still in the file (selectable, searchable, extractable by anyone who gets the PDF).

Why: newspapers have published PDFs whose black boxes still had the names underneath.
The method is the one the Free Law Project's x-ray documents (written again here for
current PyMuPDF; x-ray itself pins an old one):

1. Candidate boxes: filled, fully opaque, dark drawings on the page, taken per
   rectangle (a multi-line redaction is several rectangles in one drawing; its outer
   box would wrongly cover the visible words beside it), more than 4 pt each way.
2. A character is hidden by a box when it was drawn *before* the box (the content
   stream's drawing order, ``seqno``), or in the box's own colour (black on black), and
   most of its box (``MOST``) lies under that box. Invisible text (render mode 3) only
   counts when drawn before the box: over it, it is an OCR layer of what shows.
3. The page is rendered and the area of those characters under each box must be one
   dark colour: text drawn over the box, another drawing or an image in front, a clip
   path that hides the box, all show up as pixels of another colour, and nothing is
   reported.
4. Placeholders are not secrets: a box whose characters are one letter or digit, or
   one character repeated (``XXXX``), or none readable (no letters or digits, U+FFFD),
   is left out.

Boxes that hide nothing, boxes under visible text, boxes that only touch text and
redactions that were really applied (the text removed) give nothing. Only pages whose
content can fill a path are looked at closely; the test (``may_fill``) is a scan of
the page's content streams, much cheaper than listing its drawings.

The hidden text itself stays inside this module's results: the check stores counts and
positions, and only ``workbench show PAGE --hidden`` prints the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymupdf

MOST = 0.6  # share of a character's box that must lie under the redaction box
MIN_SIDE = 4.0  # pt: thinner filled shapes are rules and borders, not boxes
DARK = 100  # highest luminance (0-255) of a box that is a redaction
SAME_COLOUR = 0.1  # largest difference per channel (0-1) for "the box's colour"
UNIFORM = 24  # largest spread per channel (0-255) of the pixels over hidden characters
MAX_RENDER_PIXELS = 8_000_000
MASK = "█"
# What MuPDF raises on a damaged file or page (its own errors are not RuntimeErrors).
MUPDF_ERRORS = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)

# A path-filling operator (f, F, f*, B, B*, b, b*) as a token of its own: after
# whitespace or the end of an operand, before whitespace or the start of the next token.
_FILL_OPERATOR = re.compile(rb"(?<![^\s\]>)])(?:f\*?|F|B\*?|b\*?)(?![^\s/\[<(%])")
_READABLE = re.compile(r"\w")
_REFERENCE = re.compile(r"(\d+) \d+ R")


@dataclass
class Box:
    """One opaque dark filled rectangle of the page, with its drawing order and colour."""

    rect: pymupdf.Rect
    seqno: int
    fill: tuple[float, float, float]


@dataclass
class HiddenLine:
    """Hidden characters of one line under one box (position, count and the text)."""

    rect: pymupdf.Rect
    text: str = ""
    origins: list[tuple[float, float, str]] = field(default_factory=list)
    last: pymupdf.Rect = field(default_factory=pymupdf.Rect)

    @property
    def characters(self) -> int:
        return sum(1 for c in self.text if not c.isspace())


@dataclass
class Cover:
    """A box with text still under it."""

    box: Box
    how: str
    lines: list[HiddenLine]

    @property
    def characters(self) -> int:
        return sum(line.characters for line in self.lines)

    @property
    def text(self) -> str:
        """The hidden text, lines joined by spaces, letters as the page text has them
        (Arabic presentation forms and ligatures turned back into letters)."""
        from workbench import readers

        return readers._clean_text(" ".join(line.text.strip() for line in self.lines))

    def evidence(self) -> dict[str, Any]:
        """Where and how much, never what: the positions and counts of the characters."""
        return {
            "rect": _rounded(self.box.rect),
            "colour": _hex(self.box.fill),
            "how": self.how,
            "characters": self.characters,
            "lines": [
                {"rect": _rounded(line.rect), "characters": line.characters} for line in self.lines
            ],
        }


def _rounded(rect: pymupdf.Rect) -> list[float]:
    return [round(v, 1) for v in (rect.x0, rect.y0, rect.x1, rect.y1)]


def _hex(colour: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in colour[:3])


def luminance(colour: tuple[float, ...]) -> float:
    """Perceived brightness on 0-255 (ITU-R BT.601), as x-ray uses to tell a redaction
    (black, dark grey, navy) from a design element (teal bar, yellow highlight)."""
    r, g, b = (colour + (0.0, 0.0, 0.0))[:3]
    return 255 * (0.299 * r + 0.587 * g + 0.114 * b)


def _rgb(colour: Any) -> tuple[float, float, float] | None:
    """A drawing's or span's colour as RGB 0-1 (grey and CMYK converted), or None."""
    if colour is None:
        return None
    if isinstance(colour, int):  # sRGB integer, as some spans give it
        return ((colour >> 16 & 255) / 255, (colour >> 8 & 255) / 255, (colour & 255) / 255)
    values = tuple(float(c) for c in colour)
    if len(values) == 1:
        return (values[0],) * 3  # type: ignore[return-value]
    if len(values) == 4:
        c, m, y, k = values
        return ((1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k))
    if len(values) == 3:
        return values  # type: ignore[return-value]
    return None


def _forms_fill(doc: pymupdf.Document, holder: int, cache: dict[int, bool], depth: int = 0) -> bool:
    """Does a form XObject that the object ``holder`` (a page or a form) draws fill a
    path, directly or through forms it draws in turn? ``cache`` keeps the answer per form
    for the whole document (pages share their letterhead forms)."""
    kind, value = doc.xref_get_key(holder, "Resources/XObject")
    if kind == "xref":
        value = doc.xref_object(int(value.split()[0]), compressed=True)
    elif kind != "dict":
        return False
    for xref in map(int, _REFERENCE.findall(value)):
        if xref not in cache:
            cache[xref] = False  # a form drawing itself: stop there
            if doc.xref_get_key(xref, "Subtype") == ("name", "/Form"):
                stream = doc.xref_stream(xref) or b""
                cache[xref] = bool(_FILL_OPERATOR.search(stream)) or (
                    depth < 8 and _forms_fill(doc, xref, cache, depth + 1)
                )
        if cache[xref]:
            return True
    return False


def may_fill(page: pymupdf.Page, forms: dict[int, bool]) -> bool:
    """Can anything on the page be a filled box? False only when the page's content
    stream and the forms it draws have no path-filling operator and the page has no
    annotations. Much cheaper than listing the page's drawings."""
    if page.first_annot is not None:
        return True
    if _FILL_OPERATOR.search(page.read_contents()):
        return True
    doc = page.parent
    if doc.xref_get_key(page.xref, "Resources")[0] == "null":
        return True  # resources inherited from the page tree: look at the drawings
    return _forms_fill(doc, page.xref, forms)


def boxes(page: pymupdf.Page) -> list[Box]:
    """The page's opaque, dark, filled rectangles big enough to hide text."""
    found: list[Box] = []
    for drawing in page.get_drawings():
        fill = _rgb(drawing.get("fill"))
        opacity = drawing.get("fill_opacity")
        if fill is None or opacity is None or opacity < 0.999 or luminance(fill) > DARK:
            continue
        rects = [pymupdf.Rect(item[1]) for item in drawing["items"] if item[0] == "re"]
        rects += [
            pymupdf.Quad(item[1]).rect
            for item in drawing["items"]
            if item[0] == "qu" and pymupdf.Quad(item[1]).is_rectangular
        ]
        if not rects:  # a rounded box drawn with lines and curves: its outline's box
            rects = [pymupdf.Rect(drawing["rect"])]
        for rect in rects:
            rect.normalize()
            if rect.width > MIN_SIDE and rect.height > MIN_SIDE:
                found.append(Box(rect, drawing["seqno"], fill))
    return found


def _hiding_box(
    char_rect: pymupdf.Rect, seqno: int, colour: Any, invisible: bool, candidates: list[Box]
) -> tuple[Box, str] | None:
    """The topmost box that hides a character, and how; None when none does."""
    area = abs(char_rect)
    if area <= 0:
        return None
    best: tuple[Box, str] | None = None
    for box in candidates:
        if box.seqno > seqno:
            how = "text drawn before the box"
        elif not invisible and colour is not None and _same(colour, box.fill):
            how = "text in the box's colour"
        else:
            continue
        if abs(char_rect & box.rect) / area < MOST:
            continue
        if best is None or box.seqno > best[0].seqno:
            best = (box, how)
    return best


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(abs(x - y) <= SAME_COLOUR for x, y in zip(a[:3], b[:3], strict=False))


def covered(page: pymupdf.Page) -> list[Cover]:
    """Every box on the page with readable text still under it (the x-ray method)."""
    candidates = boxes(page)
    if not candidates:
        return []
    hidden: dict[int, tuple[Box, str, list[tuple[pymupdf.Rect, str, Any]]]] = {}
    for span in page.get_texttrace():
        span_rect = pymupdf.Rect(span["bbox"])
        near = [b for b in candidates if b.rect.intersects(span_rect)]
        if not near:
            continue
        invisible = span.get("type") == 3 or span.get("opacity", 1) == 0
        colour = _rgb(span.get("color"))
        for ucs, _glyph, origin, bbox in span["chars"]:
            character = chr(ucs) if ucs >= 0 else "\ufffd"
            if character.isspace():
                continue
            found = _hiding_box(pymupdf.Rect(bbox), span["seqno"], colour, invisible, near)
            if found is None:
                continue
            box, how = found
            entry = hidden.setdefault(id(box), (box, how, []))
            entry[2].append((pymupdf.Rect(bbox), character, origin))
    if not hidden:
        return []
    covers = [_cover(box, how, chars) for box, how, chars in hidden.values()]
    covers = [c for c in covers if _readable(c.text)]
    if not covers:
        return []
    return _seen_as_boxes(page, covers)


def _cover(box: Box, how: str, chars: list[tuple[pymupdf.Rect, str, Any]]) -> Cover:
    """The box's hidden characters grouped into lines by baseline, top to bottom, each
    in the order the file draws them (so right-to-left text stays in reading order)."""
    lines: list[HiddenLine] = []
    for rect, character, origin in chars:
        line = next(
            (ln for ln in lines if abs(ln.origins[-1][1] - origin[1]) <= rect.height / 2), None
        )
        if line is None:
            line = HiddenLine(pymupdf.Rect(rect))
            lines.append(line)
        else:
            last = line.last
            gap = max(rect.x0 - last.x1, last.x0 - rect.x1)
            if gap > rect.height * 0.1:
                line.text += " "  # a gap as wide as a space: another word
            line.rect |= rect
        line.text += character
        line.last = pymupdf.Rect(rect)
        line.origins.append((origin[0], origin[1], character))
    lines.sort(key=lambda ln: ln.origins[0][1])
    return Cover(box, how, lines)


def _readable(text: str) -> bool:
    """Letters or digits, more than one distinct: not a placeholder (X, XXXX, ----)."""
    letters = [c for c in text if _READABLE.match(c) and c != "\ufffd"]
    return len(set(letters)) >= 2


def _seen_as_boxes(page: pymupdf.Page, covers: list[Cover]) -> list[Cover]:
    """Keep the covers whose hidden characters' area renders as one dark colour."""
    area = abs(page.rect) or 1.0
    zoom = min(2.0, (MAX_RENDER_PIXELS / area) ** 0.5)
    pixmap = page.get_pixmap(
        matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False
    )
    kept = []
    for cover in covers:
        region = pymupdf.Rect()
        for line in cover.lines:
            region |= line.rect
        region &= cover.box.rect
        region = (region * page.rotation_matrix * pymupdf.Matrix(zoom, zoom)).normalize()
        values = _interior(pixmap, region)
        if values is None:
            continue
        low, high = values
        spread = max(h - lo for lo, h in zip(low, high, strict=True))
        if spread <= UNIFORM and luminance(tuple(h / 255 for h in high)) <= DARK:
            kept.append(cover)
    return kept


def _interior(pixmap: pymupdf.Pixmap, rect: pymupdf.Rect) -> tuple[list[int], list[int]] | None:
    """Per-channel lowest and highest value of the pixels inside ``rect`` (its edge
    pixels left out: they mix the box with what is beside it); None when empty."""
    x0, y0 = max(int(rect.x0) + 1, 0), max(int(rect.y0) + 1, 0)
    x1, y1 = min(int(rect.x1) - 1, pixmap.width), min(int(rect.y1) - 1, pixmap.height)
    if x1 <= x0 or y1 <= y0:
        x0, y0 = max(int(rect.x0), 0), max(int(rect.y0), 0)
        x1, y1 = min(int(rect.x1) + 1, pixmap.width), min(int(rect.y1) + 1, pixmap.height)
        if x1 <= x0 or y1 <= y0:
            return None
    n, stride, samples = pixmap.n, pixmap.stride, pixmap.samples
    low, high = [255] * n, [0] * n
    for y in range(y0, y1):
        row = samples[y * stride + x0 * n : y * stride + x1 * n]
        for channel in range(n):
            values = row[channel::n]
            low[channel] = min(low[channel], min(values))
            high[channel] = max(high[channel], max(values))
    return low, high


def scan(data: bytes, pages: list[int]) -> Iterator[tuple[int, list[Cover] | str]]:
    """Each given page (1-based) with text under boxes: (number, covers); a page that
    cannot be drawn: (number, reason). Pages with nothing hidden are not yielded."""
    from workbench import readers

    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except MUPDF_ERRORS:  # MuPDF cannot parse it: ingest said so already
        return
    with doc:
        if doc.needs_pass:
            return
        forms: dict[int, bool] = {}
        for number in pages:
            if not 1 <= number <= doc.page_count:
                continue
            try:
                page = doc[number - 1]
                if not may_fill(page, forms):
                    continue
                found = covered(page)
            except MUPDF_ERRORS as error:  # a page MuPDF cannot draw
                yield number, readers._mupdf_reason(error)
                continue
            if found:
                yield number, found


def masked_layer_text(page: pymupdf.Page, covers: list[Cover]) -> str | None:
    """The page's text layer as ingest extracts it, each hidden character replaced by
    ``MASK``; None when a hidden line cannot be matched to the extracted text (then the
    caller must not print the text at all)."""
    from workbench import readers

    hidden = {
        (round(x, 1), round(y, 1), c) for cover in covers for line in cover.lines
        for x, y, c in line.origins
    }  # fmt: skip
    structured: list[tuple[str, str]] = []  # (line text, line text masked)
    wanted = 0
    for block in page.get_text("rawdict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]:
        for line in block.get("lines", []):
            plain, masked = [], []
            for span in line["spans"]:
                for char in span["chars"]:
                    x, y = char["origin"]
                    plain.append(char["c"])
                    masked.append(
                        MASK if (round(x, 1), round(y, 1), char["c"]) in hidden else char["c"]
                    )
            structured.append(("".join(plain), "".join(masked)))
            wanted += structured[-1][0] != structured[-1][1]
    out: list[str] = []
    position, matched = 0, 0
    for text_line in page.get_text("text").split("\n"):
        replacement = text_line
        for index in range(position, len(structured)):
            if structured[index][0] == text_line and text_line:
                replacement = structured[index][1]
                matched += replacement != text_line
                position = index + 1
                break
        out.append(replacement)
    if matched < wanted:
        return None
    return readers._clean_text("\n".join(out))


def page_covers(data: bytes, number: int) -> tuple[list[Cover], str | None]:
    """One page's covers and its masked text layer (see ``masked_layer_text``)."""
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        if doc.needs_pass or not 1 <= number <= doc.page_count:
            return [], None
        page = doc[number - 1]
        found = covered(page)
        return found, masked_layer_text(page, found) if found else None
