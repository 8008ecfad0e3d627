"""Reading input files: what kind a file is (by content), opening it safely, one page at a time.

During an ingest the main process only hashes a file and sniffs its first bytes
(:func:`identify`, defined in workbench.inputs, which that process imports instead of
this module); everything that parses untrusted bytes with MuPDF or Pillow (opening,
counting pages, metadata, pages) runs in the worker processes (:func:`open_for_ingest`,
:func:`read_file_metadata`, :func:`analyse_page`), so a crash there costs one file. The
work items are small and picklable and each worker opens files itself.

The libraries' own warnings (Python ``warnings``, MuPDF's warning buffer, PyMuPDF's
messages, which go to stdout by default) are collected per job and returned as the job's
``warnings``: the ingest reports them as ``warning: PATH: ...`` lines and stores them with
the page, instead of letting them reach the terminal unformatted.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import re
import threading
import unicodedata
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any

import pymupdf
from PIL import Image, ImageFile, ImageOps

from workbench import inputs, metadata
from workbench.errors import CustodyError, OcrError, SourceError
from workbench.hashing import sha256_file  # kept here too: check_custody and callers use it

# What the coordinator needs of input files lives in workbench.inputs (no PyMuPDF or
# Pillow there, so the ingest's main process never loads them); named here as before.
from workbench.inputs import (  # noqa: F401
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    OCR_FAILED,
    OCR_TIMEOUT,
    PageJob,
    PageReadError,
    SourceBytes,
    expand_paths,
    identify,
    page_without_ocr,
    printable,
)

# The perceptual hash of each page (near-duplicates) is computed from this many pixels
# on the longer side (workbench.similarity.IMAGE_SIDE).
VISUAL_HASH_SIDE = 256
# Pages are OCR'd at 300 dpi, but never at more than this many pixels: a poster-size page
# at 300 dpi would be gigapixels. 36 Mpx is an A2 sheet at 300 dpi. Every render of a PDF
# page (fingerprint, OCR, the app's page image) goes through ``render_page``, which picks
# the scale from the page's size before MuPDF allocates anything.
OCR_DPI = 300
MAX_RENDER_PIXELS = 36_000_000
# ... and no side longer than this (a 1 x 10,000,000 pt strip stays a usable image).
MAX_RENDER_SIDE = 32_000
# Version 1 of the page fingerprint: the page rendered at this fixed resolution (RGB).
FINGERPRINT_DPI = 72
# The fingerprint new pages get; README.md ("What a page fingerprint is") says what each
# version hashes. Stored per page in ``pages.fingerprint_version``.
FINGERPRINT_VERSION = 2
# Images declaring more pixels than this are refused before decoding (decompression bombs).
MAX_IMAGE_PIXELS = 250_000_000
# A text layer shorter than this (non-space characters) on a page mostly covered by
# images is a scan with a stray layer (a stamp, a page number): OCR it instead.
MIN_LAYER_CHARS_ON_SCAN = 200
SCAN_IMAGE_COVERAGE = 0.5
# A text layer with this share of unmapped or private-use glyphs is unusable.
MAX_GARBAGE_SHARE = 0.10

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


class _MessageSink:
    """Where PyMuPDF's own messages go (by default it prints them to stdout)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=50)

    def write(self, text: str) -> None:
        text = text.strip()
        if text:
            self.lines.append(text)

    def flush(self) -> None:
        pass


_pymupdf_messages = _MessageSink()
pymupdf.set_messages(stream=_pymupdf_messages)

# Set in worker processes: told when a page job starts OCR, so the ingest's time limit
# for the job allows for Tesseract's own (OCR_TIMEOUT). With "ocr" comes the page as
# read so far (everything but its text): Tesseract runs inside the worker, and when it
# crashes or hangs there the pool still records the page, as an OCR failure
# (``page_without_ocr``), instead of failing the whole file.
phase_hook: Callable[..., None] | None = None


@contextlib.contextmanager
def library_warnings(into: list[str]) -> Iterator[None]:
    """Collect what MuPDF, PyMuPDF and Pillow warn about during the block into ``into``."""
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    _pymupdf_messages.lines.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            found: list[str] = []
            for item in caught:
                origin = item.filename.replace(os.sep, "/")
                library = "Pillow" if "/PIL/" in origin else item.category.__name__
                found.append(f"{library}: {item.message}")
            mupdf = pymupdf.TOOLS.mupdf_warnings(reset=True) or ""
            lines = [line.strip() for line in mupdf.splitlines() if line.strip()]
            lines += list(_pymupdf_messages.lines)
            _pymupdf_messages.lines.clear()
            if lines:
                found.append("MuPDF: " + "; ".join(dict.fromkeys(lines)))
            for message in dict.fromkeys(found):
                if len(into) >= MAX_WARNINGS:
                    break
                message = re.sub(r"\s+", " ", printable(message)).strip()
                if len(message) > MAX_WARNING_CHARS:
                    message = message[: MAX_WARNING_CHARS - 1] + "…"
                into.append(message)


def _forget_library_warnings() -> None:
    """Drop what was warned so far in this job (e.g. the repair of a file on opening,
    which the open job already reported once)."""
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    _pymupdf_messages.lines.clear()


def _openable(path: str, data: SourceBytes | None) -> Any:
    """What MuPDF or Pillow opens: the path, or the bytes that came with the job."""
    return path if data is None else io.BytesIO(data.content)


def open_pdf(
    path: str, passwords: tuple[str, ...] = (), data: SourceBytes | None = None
) -> tuple[pymupdf.Document, str | None]:
    """Open a PDF (from ``data`` when given, else the path), trying each password;
    returns the document and the password that worked."""
    try:
        if data is None:
            doc = pymupdf.open(path, filetype="pdf")
        else:
            doc = pymupdf.open(stream=data.content, filetype="pdf")
    except Exception as error:  # MuPDF reports every parse failure as a plain exception
        raise SourceError(path, f"cannot be read as a PDF ({_mupdf_reason(error)})") from None
    used: str | None = None
    if doc.needs_pass:
        for candidate in passwords:
            if doc.authenticate(candidate):
                used = candidate
                break
        else:
            doc.close()
            if passwords:
                reason = f"encrypted: none of the {len(passwords)} password(s) given opens it"
            else:
                reason = "encrypted: it needs a password (give it with --password)"
            raise SourceError(path, reason)
    if doc.page_count == 0:
        repaired = doc.is_repaired
        doc.close()
        if repaired:
            raise SourceError(
                path, "damaged: no page could be recovered (truncated or broken file)"
            )
        raise SourceError(path, "the PDF has no pages")
    return doc, used


def open_image(path: str, data: SourceBytes | None = None) -> Image.Image:
    """Open an image lazily and refuse decompression bombs before any pixel is decoded.

    Every frame is checked (a multi-page TIFF can hide a huge frame behind a tiny
    first one); looking at a frame's size reads its header only. The image is returned
    on its first frame. ``data``: the file's bytes, when they came with the job.
    """
    try:
        image = Image.open(_openable(path, data))
    except Image.DecompressionBombError as error:
        raise SourceError(path, f"refused: {error}") from None
    except Exception as error:  # Pillow raises many types for broken files
        raise SourceError(path, f"cannot be read as an image ({error})") from None
    try:
        # a TIFF's frames each have their own size (read from its header, no decoding);
        # other formats' frames share the first one's canvas (and seeking a GIF decodes)
        frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
        for frame in range(frames):
            if frame:
                image.seek(frame)
            _check_frame_size(path, image, frame, frames)
        if frames > 1:
            image.seek(0)
    except SourceError:
        image.close()
        raise
    except Exception as error:  # a damaged frame header: Pillow raises many types
        image.close()
        raise SourceError(path, f"cannot be read as an image ({error})") from None
    return image


def _check_frame_size(path: str, image: Image.Image, frame: int, frames: int) -> None:
    pixels = image.width * image.height
    which = f"frame {frame + 1} declares" if frames > 1 else "the image declares"
    if pixels > MAX_IMAGE_PIXELS:
        raise SourceError(
            path,
            f"refused: {which} {image.width}x{image.height} pixels "
            f"({pixels / 1e6:.0f} megapixels, limit {MAX_IMAGE_PIXELS / 1e6:.0f}): "
            "probably a decompression bomb",
        )
    if pixels == 0:
        raise SourceError(path, f"{which} no pixels" if frames > 1 else "the image has no pixels")


def open_for_ingest(
    path: str, kind: str, passwords: tuple[str, ...] = (), data: SourceBytes | None = None
) -> dict[str, Any]:
    """Worker job: open a file, find the password that opens it, count its pages.

    Returns ``page_count``, ``password`` (the one that worked, or None) and ``warnings``;
    raises SourceError when the file cannot be ingested.
    """
    found: list[str] = []
    used: str | None = None
    with library_warnings(found):
        if kind == "pdf":
            doc, used = open_pdf(path, passwords, data)
            try:
                count = doc.page_count
            finally:
                doc.close()
        else:
            with open_image(path, data) as image:
                count = getattr(image, "n_frames", 1)
    return {"page_count": count, "password": used, "warnings": found}


def read_file_metadata(
    path: str, kind: str, password: str | None, data: SourceBytes | None = None
) -> dict[str, Any]:
    """Worker job: the file-level metadata (PDF info and XMP, or image size and EXIF)."""
    found: list[str] = []
    with library_warnings(found):
        if kind == "pdf":
            doc = _cached_pdf(path, password, data)
            _forget_library_warnings()
            result = metadata.pdf_file_metadata(doc)
        else:
            with open_image(path, data) as image:
                _forget_library_warnings()
                result = metadata.image_file_metadata(image)
    return {"metadata": result, "warnings": found}


def _mupdf_reason(error: Exception) -> str:
    """MuPDF's message without the file name it repeats, on one short line."""
    text = printable(str(error)).strip() or type(error).__name__
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"^code=\d+: ", "", text)
    text = re.sub(r"Failed to open file '.*' as type pdf\.?", "MuPDF cannot parse it", text)
    # the same failure on bytes sent with the job (a cluster worker)
    text = re.sub(r"^Failed to open stream\.?$", "MuPDF cannot parse it", text)
    return text[:200]


# ----- page analysis (runs in worker processes) -------------------------------------

_open_documents: OrderedDict[tuple[str, str | None, str | None], pymupdf.Document] = OrderedDict()


def _cached_pdf(
    path: str, password: str | None, data: SourceBytes | None = None
) -> pymupdf.Document:
    """Workers keep the last few PDFs open: consecutive pages of one file are the norm.
    (Bytes sent with the job are told apart by their hash, not only by the path.)"""
    key = (path, password, None if data is None else data.sha256)
    doc = _open_documents.get(key)
    if doc is None:
        doc, _ = open_pdf(path, (password,) if password is not None else (), data)
        _open_documents[key] = doc
        while len(_open_documents) > 3:
            _, old = _open_documents.popitem(last=False)
            old.close()
    else:
        _open_documents.move_to_end(key)
    return doc


def analyse_page(job: PageJob, data: SourceBytes | None = None) -> dict[str, Any]:
    """Text, provenance, fingerprint, metadata, dates and marker of one page.

    ``error`` is set when OCR failed on the page (the page is kept, without text, and
    the next ingest retries it); ``warnings`` lists what the libraries warned about
    (damaged data, repairs), for the reviewer. ``data``: the file's bytes, when they
    came with the job (a cluster worker); else the file is read from ``job.path``.
    """
    analyse = _analyse_pdf_page if job.kind == "pdf" else _analyse_image_page
    found: list[str] = []
    with library_warnings(found):
        page_result = analyse(job, data)
    page_result["warnings"] = page_result.get("warnings", []) + found
    page_result["page_number"] = job.page_index + 1
    page_result.update(metadata.text_facts(page_result["text"]))
    return page_result


def _analyse_pdf_page(job: PageJob, data: SourceBytes | None = None) -> dict[str, Any]:
    try:
        doc = _cached_pdf(job.path, job.password, data)
        _forget_library_warnings()
        page = doc.load_page(job.page_index)
        page_meta = metadata.pdf_page_metadata(page)
        layer_text = page.get_text("text")
        fingerprint = page_fingerprint(page)
        page_meta["image_hash"] = _rendered_visual_hash(page)
    except SourceError:
        raise
    except Exception as error:  # MuPDF: broken page tree, bad content stream, ...
        raise PageReadError(
            f"page {job.page_index + 1} cannot be read ({_mupdf_reason(error)})"
        ) from None
    result: dict[str, Any] = {
        "page_sha256": fingerprint,
        "fingerprint_version": FINGERPRINT_VERSION,
        "width_pt": page_meta["width_pt"],
        "height_pt": page_meta["height_pt"],
        "metadata": page_meta,
    }
    # The images' share of the page decides only for a short text layer (a scan's stray
    # words), and measuring it extracts the page a second time: done only then.
    short = len("".join(layer_text.split())) < MIN_LAYER_CHARS_ON_SCAN  # non-space chars
    coverage = _image_coverage(page) if short else 0.0
    if not job.force_ocr and text_layer_usable(layer_text, coverage):
        result.update(text=_clean_text(layer_text), text_source="layer")
        return result
    if layer_text.strip():
        page_meta["unused_text_layer"] = layer_text[:2000]
    try:
        image = render_for_ocr(page)
    except Exception as error:  # noqa: BLE001 - any render failure is a page read failure
        raise PageReadError(
            f"page {job.page_index + 1} cannot be rendered ({_mupdf_reason(error)})"
        ) from None
    result.update(_ocr(image, job.lang, result, job.page_index))
    return result


@contextlib.contextmanager
def _damaged_data_allowed() -> Iterator[None]:
    """Let Pillow keep what decodes of a truncated or damaged image (only for our open:
    the flag is global, and worker processes run one job at a time)."""
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def _decode_frame(
    path: str, page_index: int, data: SourceBytes | None = None
) -> tuple[Image.Image, Any, str | None]:
    """The frame's pixels, the image's dpi, and what was damaged when only part decodes.

    A scan truncated in transfer or with a damaged stretch is decoded as far as it goes
    (as MuPDF recovers a damaged PDF); the page then says so.
    """
    damage: str | None = None
    for tolerant in (False, True):
        with (
            open_image(path, data) as image,
            _damaged_data_allowed() if tolerant else contextlib.nullcontext(),
        ):
            image.seek(page_index)
            dpi = image.info.get("dpi") or (OCR_DPI, OCR_DPI)
            try:
                frame = ImageOps.exif_transpose(image) if page_index == 0 else image.copy()
                frame.load()
            except (OSError, SyntaxError, ValueError, EOFError) as error:
                if tolerant:
                    raise OSError(damage or str(error)) from None
                damage = str(error) or type(error).__name__
                continue
        if damage is not None:
            damage = printable(f"damaged image: only part of it could be decoded ({damage})")
        return frame, dpi, damage
    raise AssertionError("unreachable")


def _analyse_image_page(job: PageJob, data: SourceBytes | None = None) -> dict[str, Any]:
    try:
        frame, dpi, damage = _decode_frame(job.path, job.page_index, data)
        fingerprint = _pixel_digest(frame)
        gray = frame.convert("L")
        gray.info.clear()  # TIFF compression settings must not follow the pixels
    except SourceError:
        raise
    except Exception as error:  # Pillow: truncated data, bad frame, ...
        raise PageReadError(f"frame {job.page_index + 1} cannot be decoded ({error})") from None
    try:
        dpi_x, dpi_y = float(dpi[0]) or OCR_DPI, float(dpi[1]) or OCR_DPI
    except (TypeError, ValueError, IndexError):
        dpi_x = dpi_y = OCR_DPI
    result: dict[str, Any] = {
        "page_sha256": fingerprint,
        "fingerprint_version": FINGERPRINT_VERSION,  # images: the same in versions 1 and 2
        "width_pt": round(frame.width * 72 / dpi_x, 2),
        "height_pt": round(frame.height * 72 / dpi_y, 2),
        "metadata": {
            "width_px": frame.width,
            "height_px": frame.height,
            "mode": frame.mode,
            "dpi": [dpi_x, dpi_y],
        },
        "warnings": [damage] if damage else [],
    }
    result["metadata"]["image_hash"] = _visual_hash(gray)
    result.update(
        _ocr(_to_ocr_resolution(gray, min(dpi_x, dpi_y)), job.lang, result, job.page_index)
    )
    return result


def _visual_hash(image: Image.Image) -> str:
    """The page's perceptual hash (hex), computed here where the page is already open, so
    the near-duplicate check never opens the file again (see workbench.similarity)."""
    from workbench import perceptual  # not similarity: that one loads the search analyzer

    return f"{perceptual.image_hash(image):064x}"


def _rendered_visual_hash(page: pymupdf.Page) -> str:
    """A PDF page's perceptual hash (hex), from a grey render already at the hash's size.

    (Not drawn from the display list ``get_text`` could share: MuPDF's text of a page
    run from a display list differs in its blank lines on some real PDFs.)
    """
    from workbench import perceptual

    pixmap = render_page(page, gray=True, max_side=VISUAL_HASH_SIDE)
    return f"{perceptual.reduced_hash(_pixmap_image(pixmap)):064x}"


def _pixmap_image(pixmap: pymupdf.Pixmap) -> Image.Image:
    return Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)


def _pixel_digest(frame: Image.Image) -> str:
    """An image page's fingerprint: SHA-256 of ``MODE:WxH:`` and the decoded pixels.

    Hashed in strips of whole rows (the same bytes as ``tobytes()``), so a big scan is
    not copied whole a second time just to be hashed.
    """
    digest = hashlib.sha256(f"{frame.mode}:{frame.width}x{frame.height}:".encode())
    rows = max(1, (4 << 20) // max(frame.width * len(frame.getbands()), 1))
    for top in range(0, frame.height, rows):
        digest.update(frame.crop((0, top, frame.width, min(top + rows, frame.height))).tobytes())
    return digest.hexdigest()


def _ocr(image: Image.Image, lang: str, pending: dict[str, Any], page_index: int) -> dict[str, Any]:
    """The OCR fields of a page; ``pending``: the page so far, told to the phase hook."""
    from workbench import ocr  # imported here: the main process never needs Tesseract

    if phase_hook is not None:
        phase_hook("ocr", dict(pending, page_number=page_index + 1))
    try:
        found = ocr.recognize(image, lang, timeout=inputs.OCR_TIMEOUT)  # read when used
    except OcrError as error:  # the page is kept without text; the next ingest retries it
        return {"text": "", "text_source": "none", "error": f"{OCR_FAILED}{error}"}
    text = _clean_text(found.text)
    return {
        "text": text,
        "text_source": "ocr" if text.strip() else "none",
        "ocr_engine": found.engine,
        "ocr_lang": found.lang,
        "ocr_confidence": None if found.confidence is None else round(found.confidence, 2),
        "ocr_rotation": found.rotation,
        "ocr_skew": round(found.skew, 2),
        "orientation_method": found.orientation_method,
    }


# Unmapped glyphs (U+FFFD), private-use codes and control characters in a text layer.
_GARBAGE = re.compile("[\ufffd\ue000-\uf8ff\x00-\x1f]")


def text_layer_usable(text: str, image_coverage: float) -> bool:
    """Is a PDF text layer real text worth keeping instead of OCR?

    (Counted with ``str.split`` and a regex, not character by character in Python:
    ``split`` drops exactly the characters ``isspace`` calls whitespace.)
    """
    visible = "".join(text.split())
    if not visible:
        return False
    garbage = len(_GARBAGE.findall(visible))
    if garbage / len(visible) > MAX_GARBAGE_SHARE:
        return False
    return not (image_coverage >= SCAN_IMAGE_COVERAGE and len(visible) < MIN_LAYER_CHARS_ON_SCAN)


def _image_coverage(page: pymupdf.Page) -> float:
    area = abs(page.rect) or 1.0
    covered = 0.0
    for info in page.get_image_info():
        rect = pymupdf.Rect(info["bbox"]) & page.rect
        covered += abs(rect)
    return min(covered / area, 1.0)


# ----- the one capped render of a PDF page ------------------------------------------------


def render_size(
    page: pymupdf.Page,
    *,
    dpi: float = OCR_DPI,
    max_pixels: int = MAX_RENDER_PIXELS,
    max_side: int = MAX_RENDER_SIDE,
) -> tuple[int, int]:
    """The pixel size ``render_page`` gives for these arguments (nothing is rendered)."""
    zoom = _capped_zoom(page, dpi, max_pixels, max_side)
    box = (page.rect * pymupdf.Matrix(zoom, zoom)).irect
    return box.width, box.height


def render_page(
    page: pymupdf.Page,
    *,
    dpi: float = OCR_DPI,
    gray: bool = False,
    max_pixels: int = MAX_RENDER_PIXELS,
    max_side: int = MAX_RENDER_SIDE,
    annots: bool = True,
) -> pymupdf.Pixmap:
    """The page rendered at ``dpi``, lowered first so the pixmap fits the caps.

    The scale is chosen from ``page.rect`` before MuPDF renders, so no render ever
    allocates more than ``max_pixels`` pixels. ``page.rect`` is the page as shown: its
    /Rotate and /UserUnit (a 14,400-unit page with /UserUnit 10 is 144,000 pt) are
    applied, and MuPDF's render honours both. ``annots=False`` leaves annotations and
    form fields out (the safe export draws only the page).
    """
    zoom = _capped_zoom(page, dpi, max_pixels, max_side)
    colorspace = pymupdf.csGRAY if gray else pymupdf.csRGB
    return page.get_pixmap(
        matrix=pymupdf.Matrix(zoom, zoom), colorspace=colorspace, alpha=False, annots=annots
    )


def _capped_zoom(page: pymupdf.Page, dpi: float, max_pixels: int, max_side: int) -> float:
    rect = page.rect
    width, height = max(rect.width, 1e-3), max(rect.height, 1e-3)
    zoom = min(dpi / 72, math.sqrt(max_pixels / (width * height)), max_side / max(width, height))
    # MuPDF rounds the page's box outwards: shrink until the rounded size fits too
    for _ in range(64):
        box = (rect * pymupdf.Matrix(zoom, zoom)).irect
        if box.width * box.height <= max_pixels and max(box.width, box.height) <= max_side:
            break
        zoom *= 0.995
    return zoom


def render_for_ocr(page: pymupdf.Page, dpi: int = OCR_DPI) -> Image.Image:
    """Render a PDF page to grayscale at OCR resolution, capped in pixels."""
    pixmap = render_page(page, dpi=dpi, gray=True)
    return Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)


# ----- the page fingerprint -------------------------------------------------------------


def page_fingerprint(page: pymupdf.Page, version: int = FINGERPRINT_VERSION) -> str:
    """The SHA-256 that identifies what a PDF page shows, by fingerprint ``version``.

    Version 1 hashed the page's pixels at 72 dpi (RGB): about half the CPU of a
    born-digital ingest, and a render whose size grew with the page. Version 2 hashes
    everything MuPDF draws the page from (see ``_content_fingerprint``): a cost bounded
    by the bytes of the page's objects, whatever its size in points, and independent of
    the rasteriser. Kept: a page stored with version 1 is recomputed with version 1.
    """
    if version == 1:
        return _pixel_fingerprint_v1(page)
    if version == 2:
        return _content_fingerprint(page)
    raise ValueError(f"unknown page fingerprint version {version}")


def _pixel_fingerprint_v1(page: pymupdf.Page) -> str:
    """Version 1, as ingested before: 72 dpi RGB, or scaled to the cap when larger.

    Same pixels as the old code, but the size is known before rendering, so the
    72 dpi render of a poster page is never attempted.
    """
    box = page.rect.irect  # the 72 dpi pixmap's size (zoom 1)
    zoom = 1.0
    if box.width * box.height > MAX_RENDER_PIXELS:
        zoom = math.sqrt(MAX_RENDER_PIXELS / (box.width * box.height))
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    header = f"{pixmap.width}x{pixmap.height}x{pixmap.n}:".encode()
    return hashlib.sha256(header + pixmap.samples).hexdigest()


# An indirect reference outside a string, in MuPDF's serialisation of an object (strings
# are written with '(' ')' '\' escaped, or in hex).
_OBJECT_TOKENS = re.compile(
    r"\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|(?<![\d.+-])(\d+) (\d+) R(?![A-Za-z0-9_])", re.S
)
_INHERITED_KEYS = ("Resources", "MediaBox", "CropBox", "Rotate")
_MAX_OBJECT_DEPTH = 200


def _content_fingerprint(page: pymupdf.Page) -> str:
    """Version 2: a Merkle hash of every PDF object the page is drawn from.

    Hashed, as text: the fingerprint version; the page's size as shown (/UserUnit and
    /Rotate applied); the page object with its inherited /Resources, /MediaBox,
    /CropBox and /Rotate; the document's optional-content settings (/OCProperties) and
    the form defaults MuPDF uses to draw fields without appearances (/AcroForm /DR,
    /DA, /Q, /NeedAppearances). Each object is MuPDF's serialisation of it with every
    reference replaced by the hash of the object referred to, and each stream's bytes
    as stored (undecoded) hashed with it; references to other pages and to the page
    tree are written as ``@page`` (a link's target is not what the page shows), and a
    reference back to an object being hashed as ``@cycle``. What the page shows can
    only change if one of these bytes changes, so a visible change changes the hash;
    object numbers and file layout do not enter it.
    """
    doc = page.parent
    hasher = _ObjectHasher.of(doc)
    rect = page.rect
    page_text = hasher.text(page.xref)
    lines = [
        "workbench-page-fingerprint-2",
        f"size {rect.width:.4f} {rect.height:.4f} rotation {page.rotation}",
        "page " + hasher.digest(page.xref),
    ]
    for key in _INHERITED_KEYS:
        if not re.search(rf"/{key}(?![A-Za-z0-9_#])", page_text):
            value = hasher.inherited(page.xref, key)
            lines.append(f"inherited /{key} " + hasher.value(value))
    lines.extend(hasher.document_lines())
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


_PAGE_TYPE = re.compile(r"/Type\s*/Pages?(?![A-Za-z0-9_#])")


class _ObjectHasher:
    """Digests of one document's objects, kept for the document's life (one per document).

    A digest that depends on where the walk entered a cycle is not kept, so a page's
    fingerprint never depends on which pages a worker hashed before it.
    """

    def __init__(self, doc: pymupdf.Document) -> None:
        self.doc = doc
        self.length = doc.xref_length()
        self.digests: dict[int, str] = {}
        self.texts: dict[int, str] = {}
        self.pages: set[int] = set()  # objects of type Page or Pages
        self.inherited_values: dict[tuple[int, str], str] = {}
        self.document: list[str] | None = None
        self.stack: list[int] = []

    @classmethod
    def of(cls, doc: pymupdf.Document) -> _ObjectHasher:
        hasher = getattr(doc, "_workbench_hasher", None)
        if hasher is None:
            hasher = cls(doc)
            doc._workbench_hasher = hasher  # type: ignore[attr-defined]
        return hasher

    def text(self, xref: int) -> str:
        """MuPDF's serialisation of an object (not kept once its digest is known)."""
        text = self.texts.get(xref)
        if text is None:
            try:
                text = self.doc.xref_object(xref, compressed=True)
            except Exception:  # noqa: BLE001 - a damaged object: MuPDF raises plain errors
                text = "(unreadable object)"
            self.texts[xref] = text
            if _PAGE_TYPE.search(text):
                self.pages.add(xref)
        return text

    def digest(self, xref: int) -> str:
        digest, _ = self._digest(xref)
        return digest

    def value(self, text: str) -> str:
        """A direct value (as MuPDF prints it) with its references replaced by digests."""
        rewritten, _ = self._rewrite(text)
        return rewritten

    def inherited(self, xref: int, key: str) -> str:
        """An inheritable page attribute's value from the page tree, or 'null'."""
        seen = {xref}
        while True:
            kind, parent = self.doc.xref_get_key(xref, "Parent")
            if kind != "xref":
                return "null"
            xref = int(parent.split()[0])
            if xref in seen:
                return "null"
            seen.add(xref)
            cached = self.inherited_values.get((xref, key))
            if cached is None:
                cached = self.inherited_values[(xref, key)] = self.doc.xref_get_key(xref, key)[1]
            if cached != "null":
                return cached

    def document_lines(self) -> list[str]:
        """What every page of the document is drawn with: layers, form-field defaults."""
        if self.document is None:
            lines = []
            catalog = self.doc.pdf_catalog()
            for key in ("OCProperties", "AcroForm/DR", "AcroForm/DA", "AcroForm/Q"):
                kind, found = self.doc.xref_get_key(catalog, key)
                if kind != "null":
                    lines.append(f"/{key} " + self.value(found))
            if self.doc.xref_get_key(catalog, "AcroForm/NeedAppearances")[1] == "true":
                lines.append("/AcroForm/NeedAppearances true")
            self.document = lines
        return self.document

    def _digest(self, xref: int) -> tuple[str, int]:
        """(digest, lowest stack position a reference inside reached back to)."""
        if xref in self.digests:
            return self.digests[xref], len(self.stack)
        position = len(self.stack)
        self.stack.append(xref)
        try:
            rewritten, reach = self._rewrite(self.text(xref))
            digest = hashlib.sha256(b"obj\n" + rewritten.encode("utf-8", "surrogatepass"))
            try:
                stream = self.doc.xref_stream_raw(xref)  # None: not a stream
            except Exception:  # noqa: BLE001 - an unreadable stream is hashed as such
                stream = b"unreadable stream"
            if stream is not None:
                digest.update(b"\nstream\n" + stream)
        finally:
            self.stack.pop()
        hexdigest = digest.hexdigest()
        if reach >= position:  # no reference back above this object: context-free
            self.digests[xref] = hexdigest
            self.texts.pop(xref, None)
        return hexdigest, min(reach, position)

    def _rewrite(self, text: str) -> tuple[str, int]:
        reach = len(self.stack)
        if " R" not in text:
            return text, reach

        def replace(match: re.Match[str]) -> str:
            nonlocal reach
            if match.group(1) is None:
                return match.group(0)  # a string
            target = int(match.group(1))
            if not 0 < target < self.length:
                return "null"
            if target not in self.digests:
                self.text(target)  # learns whether it is a page
            if target in self.pages:  # this page too (an annotation's /P): no other walk
                return "@page"
            if target in self.stack:
                reach = min(reach, self.stack.index(target))
                return "@cycle"
            if len(self.stack) >= _MAX_OBJECT_DEPTH:
                return "@deep"
            digest, inner = self._digest(target)
            reach = min(reach, inner)
            return "@" + digest

        return _OBJECT_TOKENS.sub(replace, text), reach


def _to_ocr_resolution(image: Image.Image, dpi: float) -> Image.Image:
    """Scale a scan taken below 300 dpi up to it (at most 2x), within the pixel cap.

    Measured on the fixture scans at 200 dpi: Persian page markers and digits read
    wrong at 200 dpi read right once enlarged to 300.
    """
    scale = min(OCR_DPI / dpi, 2.0) if 0 < dpi < OCR_DPI * 0.9 else 1.0
    pixels = image.width * image.height * scale * scale
    if pixels > MAX_RENDER_PIXELS:
        scale = math.sqrt(MAX_RENDER_PIXELS / (image.width * image.height))
    if abs(scale - 1.0) < 0.05:
        return image
    size = (max(int(image.width * scale), 1), max(int(image.height * scale), 1))
    # a big shrink: box-reduce by a whole factor first (cheap, little memory), as
    # Pillow's thumbnail does, then resample the rest
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


_PRESENTATION_FORMS = re.compile("[\ufb00-\ufdff\ufe70-\ufeff]+")
_ODD_SPACES = ("\u00a0", "\u202f", "\u2007")  # become plain spaces


def _clean_text(text: str) -> str:
    """Readable, searchable page text with the line structure kept.

    PDF text layers often carry Arabic presentation forms (positional glyph codes,
    U+FB50-U+FEFF) and Latin ligatures instead of letters; NFKC on just those turns
    them back into the letters a reader and a search expect. No-break spaces become
    spaces. Everything else is kept as the page has it.
    """
    text = text.replace("\x00", "")
    for space in _ODD_SPACES:  # str.replace skips in C what str.translate looks up per char
        text = text.replace(space, " ")
    text = _PRESENTATION_FORMS.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip("\n")


def render_page_image(
    path: str, kind: str, page_number: int, *, max_side: int = 1600
) -> Image.Image:
    """The page as an RGB image no larger than ``max_side`` pixels, for viewing.

    PDF pages go through the one capped render; images are decoded no larger than
    needed (JPEG at 1/2, 1/4 or 1/8 scale in the decoder, others box-reduced). The
    caller checks the file's custody first (``check_custody``). Raises SourceError when
    the file is gone, changed kind, or needs a password (the case does not keep
    passwords).
    """
    if not os.path.exists(path):
        raise SourceError(path, "the file is no longer at this path")
    if kind == "pdf":
        try:
            doc = pymupdf.open(path, filetype="pdf")
        except Exception as error:  # MuPDF: anything unreadable
            raise SourceError(path, f"cannot be read as a PDF ({_mupdf_reason(error)})") from None
        with doc:
            if doc.needs_pass:
                raise SourceError(path, "encrypted: the page image needs the password")
            page = doc.load_page(page_number - 1)
            longest = max(page.rect.width, page.rect.height) or 1
            zoom = min(max_side / longest, 4.0)
            pixmap = render_page(page, dpi=zoom * 72, max_side=max_side)
            return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
    with open_image(path) as image:
        image.seek(page_number - 1)
        # the JPEG decoder scales down by 2, 4 or 8 while keeping the view's size
        ratio = min(max_side / max(image.width, image.height), 1.0)
        image.draft(None, (max(int(image.width * ratio), 1), max(int(image.height * ratio), 1)))
        frame = ImageOps.exif_transpose(image) if page_number == 1 else image.copy()
        if frame.mode not in ("RGB", "L"):
            frame = frame.convert("L" if frame.mode in ("1", "I", "I;16", "F") else "RGB")
        frame.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return frame.convert("RGB") if frame.mode != "RGB" else frame


# ----- custody: is the file at the path still the one ingested? ------------------------

_CUSTODY_CACHE_SIZE = 256
_custody_cache: OrderedDict[tuple[str, int, int, int, int], str] = OrderedDict()
_custody_lock = threading.Lock()


def check_custody(path: str, recorded_sha256: str | None) -> str:
    """The file's SHA-256, after checking it is the one ingested; else CustodyError.

    Re-OCR and the app read a page's file again long after the ingest: whatever is at
    the path now may not be what was ingested. The hash is cached per (path, size,
    mtime, inode, ctime) within the process, so the app does not re-hash a big file
    for every page it shows; any write to the file changes the key.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise SourceError(path, "the file is no longer at this path") from None
    except OSError as error:
        raise SourceError(path, f"cannot be read ({error.strerror})") from None
    key = (path, stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    with _custody_lock:  # the app checks from several worker threads
        digest = _custody_cache.get(key)
        if digest is not None:
            _custody_cache.move_to_end(key)
    if digest is None:
        try:
            digest, _ = sha256_file(path)
        except OSError as error:
            raise SourceError(path, f"cannot be read ({error.strerror})") from None
        with _custody_lock:
            _custody_cache[key] = digest
            while len(_custody_cache) > _CUSTODY_CACHE_SIZE:
                _custody_cache.popitem(last=False)
    if recorded_sha256 is not None and digest != recorded_sha256:
        raise CustodyError(path, recorded_sha256, digest)
    return digest
