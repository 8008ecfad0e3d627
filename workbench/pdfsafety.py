"""What a PDF carries besides what its pages show: actions, scripts, attachments, layers,
comments, form values, and text a reader cannot see.

Why: a leaked PDF can run JavaScript, start programs or call a server when opened (it
can attack the newsroom, or tell someone it was opened), and it can hide text, comments
with their authors' names, attached files or switched-off layers that would expose the
source if the file were published as it is. This module reads the structure with
pikepdf (qpdf) and the drawn text with PyMuPDF; the checks ``active-content`` and
``hidden-content`` turn what it finds into findings.

Every item is a plain dict: ``what`` (a short kind), ``where`` (how to find it in the
file: ``page 3 annotation 2 /A``), ``page`` (1-based, or None for the whole file) and
details. Nothing here writes or executes anything.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pikepdf

from workbench import readers  # MuPDF's console messages are silenced there

# qpdf's warnings about a damaged file ("Pages tree includes non-dictionary object")
# reach Python's logging, whose last-resort handler would print them bare on stderr; the
# damage was reported at ingest (MuPDF's warnings on the page), so they are not repeated.
logging.getLogger("pikepdf").addHandler(logging.NullHandler())

# Action types and what they do when they fire.
_ACTION_RISK = {
    "/JavaScript": "runs JavaScript",
    "/Launch": "starts a program or opens a file on the computer",
    "/SubmitForm": "sends form data to an address",
    "/ImportData": "imports data from a file",
    "/URI": "opens a web address",
    "/GoToR": "opens another PDF file",
    "/GoToE": "opens an embedded or remote file",
    "/RichMediaExecute": "runs embedded media (Flash)",
    "/Rendition": "plays embedded media",
    "/Movie": "plays a movie",
    "/Sound": "plays a sound",
}
# Triggers that fire without the reader doing anything but open or close the file/page.
_ON_OPEN = {"/OpenAction", "/Names/JavaScript"}
_AA_AUTOMATIC = {"/O", "/C", "/WC", "/WS", "/DS", "/WP", "/DP", "/PO", "/PC", "/PV", "/PI"}
_MEDIA_ANNOTS = {"/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"}
_SILENT_ANNOTS = {"/Link", "/Widget", "/Popup"}
MAX_EXCERPT = 300
# What opening a file for its structure may raise: a password we do not keep, damage.
UNREADABLE = (pikepdf.PasswordError, pikepdf.PdfError)
MAX_ITEMS = 50


def _text(value: Any, limit: int = MAX_EXCERPT) -> str | None:
    if value is None:
        return None
    if isinstance(value, pikepdf.Stream):
        raw = value.read_bytes()
        text = raw.decode("utf-8", "replace")
    elif isinstance(value, pikepdf.String):
        text = str(value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _actions(action: Any, where: str, seen: set[tuple[int, int]]) -> Iterator[dict[str, Any]]:
    """An action and the ones chained after it with /Next."""
    if isinstance(action, pikepdf.Array):
        for index, item in enumerate(action):
            yield from _actions(item, f"{where}[{index}]", seen)
        return
    if not isinstance(action, pikepdf.Dictionary):
        return
    if action.is_indirect:
        if action.objgen in seen:
            return
        seen.add(action.objgen)
    kind = action.get("/S")
    kind = str(kind) if kind is not None else None
    if kind in _ACTION_RISK:
        item: dict[str, Any] = {"action": kind[1:], "does": _ACTION_RISK[kind], "where": where}
        if kind == "/JavaScript":
            item["script"] = _text(action.get("/JS"))
        elif kind == "/URI":
            item["address"] = _text(action.get("/URI"))
        elif kind in ("/SubmitForm", "/ImportData", "/GoToR", "/GoToE", "/Launch"):
            target = action.get("/F") or action.get("/Win")
            if isinstance(target, pikepdf.Dictionary):
                target = target.get("/F") or target.get("/UF") or target.get("/FS")
            item["address"] = _text(target)
        yield item
    if "/Next" in action:
        yield from _actions(action["/Next"], f"{where} /Next", seen)


def _additional(aa: Any, where: str, seen: set[tuple[int, int]]) -> Iterator[dict[str, Any]]:
    if not isinstance(aa, pikepdf.Dictionary):
        return
    for trigger in aa:
        for item in _actions(aa[trigger], f"{where} /AA {trigger}", seen):
            item["automatic"] = trigger in _AA_AUTOMATIC
            yield item


def active_content(pdf: pikepdf.Pdf) -> list[dict[str, Any]]:
    """Every action that does more than move within the document, with its trigger."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    root = pdf.Root
    opening = root.get("/OpenAction")
    if opening is not None:
        for item in _actions(opening, "/OpenAction", seen):
            item["automatic"] = True
            found.append(item)
    found.extend(_additional(root.get("/AA"), "document", seen))
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names:
        tree = pikepdf.NameTree(names["/JavaScript"])
        for name, action in tree.items():
            for item in _actions(action, f"/Names/JavaScript {name!r}", seen):
                item["automatic"] = True
                found.append(item)
    form = root.get("/AcroForm")
    if isinstance(form, pikepdf.Dictionary) and "/XFA" in form:
        found.append(
            {
                "action": "XFA",
                "does": "carries an XFA form, which can hold scripts",
                "where": "/AcroForm /XFA",
                "automatic": False,
            }
        )
    for number, page in enumerate(pdf.pages, start=1):
        for item in _additional(page.obj.get("/AA"), f"page {number}", seen):
            item["page"] = number
            found.append(item)
        for index, annot in enumerate(page.obj.get("/Annots") or [], start=1):
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            where = f"page {number} annotation {index}"
            for item in _actions(annot.get("/A"), f"{where} /A", seen):
                item.update(page=number, automatic=False)
                if item["action"] != "URI":  # a link is only followed when clicked
                    found.append(item)
            for item in _additional(annot.get("/AA"), where, seen):
                item["page"] = number
                found.append(item)
            subtype = str(annot.get("/Subtype"))
            if subtype in _MEDIA_ANNOTS:
                found.append(
                    {
                        "action": subtype[1:],
                        "does": "embeds media that a reader may play",
                        "where": where,
                        "page": number,
                        "automatic": False,
                    }
                )
    # scripts no trigger above reaches: kept for a reason the file does not show
    for obj in pdf.objects:
        if (
            isinstance(obj, pikepdf.Dictionary)
            and obj.objgen not in seen
            and (str(obj.get("/S")) == "/JavaScript" or "/JS" in obj)
        ):
            seen.add(obj.objgen)
            found.append(
                {
                    "action": "JavaScript",
                    "does": "carries JavaScript that nothing visible triggers",
                    "where": f"object {obj.objgen[0]} {obj.objgen[1]} R",
                    "script": _text(obj.get("/JS")),
                    "automatic": False,
                }
            )
    for item in found:
        item.setdefault("page", None)
    return found[:MAX_ITEMS]


def hidden_structure(pdf: pikepdf.Pdf) -> list[dict[str, Any]]:
    """Comments, attachments, hidden layers and filled-in form fields."""
    found: list[dict[str, Any]] = []
    names = pdf.Root.get("/Names")
    if isinstance(names, pikepdf.Dictionary) and "/EmbeddedFiles" in names:
        for name, spec in pikepdf.NameTree(names["/EmbeddedFiles"]).items():
            found.append(_attachment(spec, name, "/Names/EmbeddedFiles", None))
    for number, page in enumerate(pdf.pages, start=1):
        for index, annot in enumerate(page.obj.get("/Annots") or [], start=1):
            if not isinstance(annot, pikepdf.Dictionary):
                continue
            subtype = str(annot.get("/Subtype"))
            where = f"page {number} annotation {index}"
            if subtype == "/FileAttachment":
                found.append(_attachment(annot.get("/FS"), None, where, number))
            elif subtype not in _SILENT_ANNOTS and subtype not in _MEDIA_ANNOTS:
                found.append(
                    {
                        "what": "comment",
                        "kind": subtype.lstrip("/"),
                        "author": _text(annot.get("/T"), 120),
                        "text": _text(annot.get("/Contents")),
                        "date": _text(annot.get("/M"), 40),
                        "where": where,
                        "page": number,
                    }
                )
    properties = pdf.Root.get("/OCProperties")
    if isinstance(properties, pikepdf.Dictionary):
        default = properties.get("/D") or pikepdf.Dictionary()
        off = list(default.get("/OFF") or [])
        if str(default.get("/BaseState")) == "/OFF":
            on = {g.objgen for g in default.get("/ON") or [] if g.is_indirect}
            off += [
                g for g in properties.get("/OCGs") or [] if g.is_indirect and g.objgen not in on
            ]
        for group in off:
            found.append(
                {
                    "what": "hidden layer",
                    "name": _text(group.get("/Name"), 120)
                    if isinstance(group, pikepdf.Dictionary)
                    else None,
                    "where": "/OCProperties /D /OFF",
                    "page": None,
                }
            )
    form = pdf.Root.get("/AcroForm")
    if isinstance(form, pikepdf.Dictionary):
        for field, name in _fields(form.get("/Fields") or [], ""):
            value = field.get("/V")
            if value is None or str(value) in ("", "/Off"):
                continue
            found.append(
                {
                    "what": "form value",
                    "field": name,
                    "value": _text(value, 200),
                    "where": "/AcroForm /Fields",
                    "page": None,
                }
            )
    return found[:MAX_ITEMS]


def _fields(fields: Any, prefix: str, depth: int = 0) -> Iterator[tuple[Any, str]]:
    if depth > 20:
        return
    for field in fields:
        if not isinstance(field, pikepdf.Dictionary):
            continue
        name = prefix + (
            ("." if prefix else "") + _text(field.get("/T"), 80) if "/T" in field else ""
        )
        if "/Kids" in field and "/V" not in field:
            yield from _fields(field["/Kids"], name, depth + 1)
        else:
            yield field, name


def _attachment(spec: Any, name: Any, where: str, page: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"what": "attachment", "where": where, "page": page, "name": None}
    if isinstance(spec, pikepdf.Dictionary):
        item["name"] = _text(spec.get("/UF") or spec.get("/F") or name, 200)
        files = spec.get("/EF")
        stream = files.get("/F") if isinstance(files, pikepdf.Dictionary) else None
        if isinstance(stream, pikepdf.Stream):
            params = stream.get("/Params") or {}
            size = params.get("/Size") if isinstance(params, pikepdf.Dictionary) else None
            item["bytes"] = int(size) if size is not None else None
            item["type"] = _text(stream.get("/Subtype"), 80)
    elif name is not None:
        item["name"] = _text(name, 200)
    return item


def hidden_text(data: bytes, pages: list[int]) -> list[dict[str, Any]]:
    """Text drawn where no reader sees it, on the given (1-based, born-digital) pages:
    invisible render mode (not over a scanned image, where it is an OCR layer), white
    text on white, text outside the page, text too small to read."""
    import pymupdf

    found: list[dict[str, Any]] = []
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except (RuntimeError, ValueError):  # MuPDF cannot parse it: ingest said so already
        return found
    with doc:
        for number in pages:
            if not 1 <= number <= doc.page_count or doc.needs_pass:
                continue
            try:
                found.extend(_hidden_on_page(doc[number - 1], number))
            except (RuntimeError, ValueError) as error:  # a page MuPDF cannot draw
                found.append(
                    {
                        "what": "unchecked page",
                        "reason": readers._mupdf_reason(error),
                        "where": f"page {number}",
                        "page": number,
                    }
                )
    return found[:MAX_ITEMS]


def _hidden_on_page(page: Any, number: int) -> list[dict[str, Any]]:
    import pymupdf

    visible_area = page.rect
    # where the page's images are: asked only when invisible text turns up (MuPDF
    # extracts the page's text again to answer, half of this check's time on a page)
    images: list[Any] | None = None
    kinds: dict[str, list[str]] = {}
    white_spans = []
    for span in page.get_texttrace():
        box = pymupdf.Rect(span["bbox"])
        if not box.intersects(visible_area):
            how = "outside the page"
        elif span["type"] == 3 or span.get("opacity", 1) == 0:
            how = "invisible (render mode 3)"
        elif span["size"] < 1.0:
            how = "too small to read (under 1 pt)"
        elif all(c >= 0.95 for c in (span.get("color") or (0, 0, 0))[:3]):
            how = "white"
        else:
            continue  # drawn to be read: its characters are not looked at
        text = "".join(chr(c[0]) for c in span["chars"]).strip()
        if not text:
            continue
        if how == "white":
            white_spans.append((box, text))
            continue
        if how.startswith("invisible"):
            if images is None:
                images = [pymupdf.Rect(info["bbox"]) for info in page.get_image_info()]
            if any(image.contains(box) or image.intersects(box) for image in images):
                continue  # an OCR layer over a scanned image
        kinds.setdefault(how, []).append(text)
    if white_spans:
        pixmap = page.get_pixmap(dpi=36, colorspace=pymupdf.csGRAY, alpha=False)
        scale = 36 / 72
        for box, text in white_spans:
            clip = (box & visible_area) * pymupdf.Matrix(scale, scale)
            values = _pixels(pixmap, clip)
            if values and min(values) >= 240:  # nothing darker under it: white on white
                kinds.setdefault("white on a white background", []).append(text)
    return [
        {
            "what": "hidden text",
            "how": how,
            "characters": sum(len(t) for t in texts),
            "excerpt": _text(" ".join(texts), 200),
            "where": f"page {number}",
            "page": number,
        }
        for how, texts in kinds.items()
    ]


def _pixels(pixmap: Any, rect: Any) -> list[int]:
    x0, y0 = max(int(rect.x0), 0), max(int(rect.y0), 0)
    x1, y1 = min(int(rect.x1) + 1, pixmap.width), min(int(rect.y1) + 1, pixmap.height)
    samples = pixmap.samples
    return [samples[y * pixmap.stride + x] for y in range(y0, y1) for x in range(x0, x1)]


def open_pdf(data: bytes) -> pikepdf.Pdf:
    """Open PDF bytes with pikepdf (qpdf), for reading structure only."""
    return pikepdf.open(io.BytesIO(data))
