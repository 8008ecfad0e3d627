"""File and page metadata: what a verifier checks to tell a genuine document from a fake.

Producer and creator tools, creation dates, fonts (embedded or not), page sizes, image
EXIF. Each fact is extracted here and only here; the pipeline stores what this returns.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ElementTree
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the ingest's main process only needs fonts_of_file
    import pymupdf
    from PIL import Image

_PDF_DATE_RE = re.compile(
    r"^D?:?(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?P<tz>[Zz]|[+\-]\d{2}'?\d{0,2}'?)?"
)

# The raw XMP packet kept in the case is cut at this many bytes (UTF-8): a hostile file
# can carry megabytes of it. The dates and tools are read from the whole packet when it
# is no larger than MAX_PARSED_XMP_BYTES.
MAX_RAW_XMP_BYTES = 64 * 1024
MAX_PARSED_XMP_BYTES = 8 * 1024 * 1024
_XMP_DATE_TAGS = ("CreateDate", "ModifyDate", "MetadataDate")
_XMP_TOOL_TAGS = ("CreatorTool", "Producer")
_EXIF_WANTED = {
    "DateTime",
    "DateTimeOriginal",
    "DateTimeDigitized",
    "Make",
    "Model",
    "Software",
    "Artist",
    "ImageDescription",
}


def pdf_date_to_iso(value: str | None) -> str | None:
    """Turn a PDF date (``D:20140803120000+04'30'``) into ISO 8601, or None if unreadable."""
    if not value:
        return None
    match = _PDF_DATE_RE.match(value.strip())
    if not match:
        return None
    parts = match.groupdict()
    year = parts["y"]
    month, day = parts["mo"] or "01", parts["d"] or "01"
    hour, minute, second = parts["h"] or "00", parts["mi"] or "00", parts["s"] or "00"
    if not ("01" <= month <= "12" and "01" <= day <= "31" and hour <= "23" and minute <= "59"):
        return None
    iso = f"{year}-{month}-{day}T{hour}:{minute}:{second}"
    tz = parts["tz"]
    if tz:
        if tz in "Zz":
            iso += "Z"
        else:
            digits = tz.replace("'", "")
            iso += f"{digits[:3]}:{(digits[3:5] or '00')}"
    return iso


def pdf_file_metadata(doc: pymupdf.Document) -> dict[str, Any]:
    """Document-level facts of an opened (and, if needed, authenticated) PDF."""
    info = doc.metadata or {}
    result: dict[str, Any] = {
        "format": "pdf",
        "pdf_version": (info.get("format") or "").replace("PDF ", "") or None,
        "page_count": doc.page_count,
        "encryption": info.get("encryption"),
        "info": {
            key: info.get(key) or None
            for key in ("title", "author", "subject", "keywords", "creator", "producer")
        },
    }
    result["info"]["creation_date"] = pdf_date_to_iso(info.get("creationDate"))
    result["info"]["modification_date"] = pdf_date_to_iso(info.get("modDate"))
    result["info"]["creation_date_raw"] = info.get("creationDate") or None
    result["info"]["modification_date_raw"] = info.get("modDate") or None
    try:
        xmp = doc.get_xml_metadata() or ""
    except Exception as error:  # MuPDF raises plain RuntimeError on broken XMP streams
        xmp = ""
        result["xmp_error"] = str(error)
    result["xmp"] = parse_xmp(xmp) if xmp.strip() else None
    return result


def parse_xmp(raw: str) -> dict[str, Any]:
    """Keep the raw XMP packet (its first 64 KB) and pull out its dates and tool names.

    A cut packet says so: ``raw_truncated`` and ``raw_bytes`` (the packet's full size).
    """
    encoded = raw.strip().encode("utf-8", "surrogatepass")
    found: dict[str, Any] = {"raw": raw, "dates": {}, "tools": {}}
    if len(encoded) > MAX_RAW_XMP_BYTES:
        found["raw"] = encoded[:MAX_RAW_XMP_BYTES].decode("utf-8", "ignore")
        found["raw_truncated"] = True
        found["raw_bytes"] = len(encoded)
    if len(encoded) > MAX_PARSED_XMP_BYTES:
        found["parse_error"] = f"not parsed: {len(encoded)} bytes (limit {MAX_PARSED_XMP_BYTES})"
        return found
    try:
        root = ElementTree.fromstring(encoded)
    except ElementTree.ParseError as error:
        found["parse_error"] = str(error)
        return found
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        for name, value in [(local, element.text)] + [
            (attr.rsplit("}", 1)[-1], val) for attr, val in element.attrib.items()
        ]:
            value = (value or "").strip()
            if not value:
                continue
            if name in _XMP_DATE_TAGS:
                found["dates"][name] = value
            elif name in _XMP_TOOL_TAGS:
                found["tools"][name] = value
    return found


def image_file_metadata(image: Image.Image) -> dict[str, Any]:
    """Pixel size, dpi, frame count and EXIF of an opened (not yet decoded) image."""
    dpi = image.info.get("dpi")
    result: dict[str, Any] = {
        "format": (image.format or "").lower() or None,
        "width_px": image.width,
        "height_px": image.height,
        "mode": image.mode,
        "dpi": [round(float(v), 2) for v in dpi] if dpi else None,
        "frames": getattr(image, "n_frames", 1),
        "exif": image_exif(image),
    }
    return result


def image_exif(image: Image.Image) -> dict[str, str]:
    from PIL import ExifTags

    try:
        exif = image.getexif()
    except Exception:  # Pillow raises assorted errors on malformed EXIF blocks
        return {}
    values: dict[str, str] = {}
    tags = dict(exif.items())
    # a broken Exif sub-IFD: keep what the main IFD gave
    with contextlib.suppress(Exception):
        tags.update(exif.get_ifd(ExifTags.IFD.Exif).items())
    for tag, value in tags.items():
        name = ExifTags.TAGS.get(tag)
        if name in _EXIF_WANTED:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            values[name] = str(value).strip("\x00 ")
    return values


def pdf_page_metadata(page: pymupdf.Page) -> dict[str, Any]:
    """Size, rotation, fonts and images of one PDF page."""
    fonts = []
    for xref, ext, font_type, basefont, _name, encoding, *_ in page.get_fonts(full=True):
        fonts.append(
            {
                "name": basefont,
                "type": font_type,
                "embedded": ext not in ("n/a", ""),
                "encoding": encoding or None,
                "xref": xref,
            }
        )
    images = []
    for (
        xref,
        _smask,
        width,
        height,
        bpc,
        colorspace,
        _alt,
        _name,
        image_filter,
        *_,
    ) in page.get_images(full=True):
        images.append(
            {
                "xref": xref,
                "width_px": width,
                "height_px": height,
                "bits": bpc,
                "colorspace": colorspace,
                "filter": image_filter or None,
            }
        )
    return {
        "width_pt": round(page.rect.width, 2),
        "height_pt": round(page.rect.height, 2),
        "rotation": page.rotation,
        "fonts": fonts,
        "images": images,
    }


def text_facts(text: str) -> dict[str, Any]:
    """The page marker and dates written in a page's text, ready to store."""
    from workbench import textdates

    marker = textdates.find_page_marker(text)
    dates = [
        {
            "start": d.start,
            "end": d.end,
            "original": d.original,
            "calendar": d.calendar,
            "iso": d.iso,
        }
        for d in textdates.find_dates(text)
    ]
    facts: dict[str, Any] = {"dates": dates}
    if marker is not None:
        facts["marker_number"] = marker.number
        facts["marker_total"] = marker.total
        facts["marker_text"] = marker.original
    return facts


def fonts_of_file(page_metadata: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distinct fonts over a file's pages (by name and embedding), for the file summary."""
    seen: dict[tuple[str, bool], dict[str, Any]] = {}
    for meta in page_metadata:
        for font in meta.get("fonts", ()):
            key = (font["name"], font["embedded"])
            seen.setdefault(key, {k: font[k] for k in ("name", "type", "embedded")})
    return sorted(seen.values(), key=lambda f: (f["name"], f["embedded"]))
