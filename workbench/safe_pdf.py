"""The safe export: one PDF that can be published without exposing the source.

Why every page is rebuilt from pixels instead of cleaning the original: a cleaned PDF
keeps whatever the cleaner did not know about (text under a black box, a switched-off
layer, an old revision, an EXIF block inside an embedded image, a font subset named
after the machine that made it). A fresh raster of what the page shows carries none of
it by construction. Each page is drawn without its annotations, made greyscale from
its red and green channels (the yellow dots colour laser printers add show only in
blue, so they turn white) with the paper whitened, encoded again as a JPEG from the
pixels (no EXIF, no ICC profile), and given a text layer from Tesseract's reading of
that same image. The file is written whole (never an incremental update), with no
metadata but the producer, and checked again with pikepdf before it is moved into place.

What each page and file lost is written beside the PDF as ``OUT.safety.json`` (the
newsroom keeps it: it names what was found, which the PDF must not). Pages with an open
``bad-redaction`` or ``tracking-dots`` finding are refused unless forced: the first
means the page itself shows something the source meant to hide only once flattened
wrongly, the second that someone should look at the scan before anything is published.

The untrusted files are opened only in worker processes (as at ingest): a file that
crashes the renderer stops the export with its name, not the program.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.errors import OcrError, SourceError, UsageError, WorkbenchError
from workbench.hashing import sha256_file
from workbench.store import Case

# Pages with an open finding of these checks are refused unless --force.
BLOCKING_CHECKS = ("bad-redaction", "tracking-dots")
# The checks whose findings say what the original carried; listed per page in the report.
SAFETY_CHECKS = (
    "bad-redaction",
    "tracking-dots",
    "hidden-content",
    "active-content",
    "identifying-metadata",
    "revisions",
)
TEXT_MODES = ("ocr", "none")
DEFAULT_DPI = 300
MIN_DPI, MAX_DPI = 72, 600
JPEG_QUALITY = 80
PRODUCER = f"workbench {__version__} safe-pdf"
SAFETY_FORMAT = "workbench-safe-pdf-1"
# How far below the paper's grey a pixel may be and still count as paper (whitened).
PAPER_MARGIN = 28
# A pixel is coloured when its channels differ by more than this; a page is colour
# when more than COLOUR_SHARE of its (sampled) pixels are.
COLOUR_SPREAD = 40
COLOUR_SHARE = 0.0005
OCR_TIMEOUT = 600.0

EVERY_PAGE_LOSES = (
    "the original page content (fonts, drawings, embedded images and their metadata, "
    "the original text layer): the page is a new image of what it shows",
    "annotations, comments, links and form fields (not drawn, not carried)",
    "document information, XMP metadata, attached files, JavaScript and actions, "
    "layers, earlier revisions (the file is written whole, once)",
)


class UnsafePagesError(WorkbenchError):
    """Pages whose publication a finding warns against; refused unless --force."""

    exit_code = 9


@dataclass
class SafeExportReport:
    """What was written and what it left behind; ``safety`` is OUT.safety.json."""

    output: str
    safety_path: str
    pages: int
    safety: dict[str, Any]
    forced: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _PageJob:
    page_id: str
    path: str
    kind: str
    sha256: str
    page_number: int
    dpi: int
    colour: bool
    text: str
    lang: str
    rotation: int
    psm: int


# ----- what to export ---------------------------------------------------------------------


def select_pages(
    case: Case,
    *,
    pages: Iterable[str] = (),
    query: str | None = None,
    document: str | None = None,
) -> list[str]:
    """Page ids to export: ids/ranges, a search, a document, or (none given) all pages."""
    from workbench import review

    given = [spec for spec in pages if spec.strip()]
    if sum(bool(x) for x in (given, query, document)) > 1:
        raise UsageError("give one of --pages, --query and --document, not several")
    if given:
        return review.expand_page_ids(case, given)
    if query:
        from workbench import index

        matched = index.current_matching_page_ids(case, query)
        if not matched:
            raise UsageError(f"no pages match {query!r}: nothing to export")
        return sorted(matched)
    if document:
        from workbench import documents

        return list(documents.document_record(case, document)["page_ids"])
    every = [row[0] for row in case.db.execute("SELECT page_id FROM pages ORDER BY page_id")]
    if not every:
        raise UsageError("the case has no pages: nothing to export")
    return every


def blocking_findings(
    page_ids: list[str], records: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """page id -> its open (not dismissed) findings, of ``records``, that refuse the page."""
    wanted = set(page_ids)
    blocked: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["check"] not in BLOCKING_CHECKS or record["dismissed"]:
            continue
        for page in record["page_ids"]:
            if page in wanted:
                blocked.setdefault(page, []).append(record)
    return blocked


def _unchecked_sources(case: Case, page_ids: list[str]) -> list[str]:
    """Files of these pages that the blocking checks have never looked at."""
    from workbench import checks

    known = [name for name in BLOCKING_CHECKS if name in checks.names()]
    if not known:
        return []
    rows = _page_rows(case, page_ids)
    missing: list[str] = []
    for path, sha256 in sorted({(r["path"], r["sha256"]) for r in rows.values()}):
        for name in known:
            seen = case.db.execute(
                "SELECT 1 FROM check_units WHERE check_name = ? AND unit = ?",
                (name, f"source:{sha256}"),
            ).fetchone()
            if seen is None:
                missing.append(path)
                break
    return missing


def _page_rows(case: Case, page_ids: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for start in range(0, len(page_ids), 500):
        chunk = page_ids[start : start + 500]
        for row in case.db.execute(
            "SELECT p.page_id, p.page_number, p.text, p.text_source, p.ocr_lang,"
            " p.ocr_rotation, p.orientation_method, s.path, s.sha256, s.kind"
            " FROM pages p JOIN sources s ON s.id = p.source_id"
            f" WHERE p.page_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            rows[row["page_id"]] = row
    return rows


def _language(row: Any, case_languages: str) -> str:
    """The page's OCR languages: what read it at ingest, else the case's, narrowed to the
    script of its text layer (a Persian page is not read as English too)."""
    from workbench import ocr

    if row["ocr_lang"]:
        return str(row["ocr_lang"])
    script = ocr.dominant_script(row["text"] or "")
    return ocr.languages_for_script(case_languages, script) if script else case_languages


# ----- the export -------------------------------------------------------------------------


def export_safe_pdf(
    case: Case,
    out_path: str | os.PathLike[str],
    page_ids: list[str],
    *,
    colour: bool = False,
    text: str = "ocr",
    dpi: int = DEFAULT_DPI,
    force: bool = False,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SafeExportReport:
    """Write the safe PDF of ``page_ids`` (in that order) and OUT.safety.json beside it."""
    from workbench import findings, ocr

    if text not in TEXT_MODES:
        raise UsageError(f"--text must be one of {', '.join(TEXT_MODES)}, not {text!r}")
    if not MIN_DPI <= dpi <= MAX_DPI:
        raise UsageError(f"--dpi must be between {MIN_DPI} and {MAX_DPI}")
    out = Path(out_path)
    if out.suffix.lower() != ".pdf":
        raise UsageError(f"{out}: the safe export is a PDF: name the output *.pdf")
    if not case.read_only:  # refusals must rest on current findings
        from workbench import checks

        findings.run_checks(case, [n for n in BLOCKING_CHECKS if n in checks.names()])
    else:
        unchecked = _unchecked_sources(case, page_ids)
        if unchecked and not force:
            raise UnsafePagesError(
                f"{unchecked[0]}: the checks have not looked at this file"
                + (f" (and {len(unchecked) - 1} more)" if len(unchecked) > 1 else "")
                + " and the case is read-only: run 'workbench check' on a writable copy,"
                " or use --force"
            )
    records = findings.finding_records(case)
    blocked = blocking_findings(page_ids, records)
    if blocked and not force:
        raise UnsafePagesError(_refusal(blocked))
    forced = sorted({r["finding_id"] for records in blocked.values() for r in records})

    rows = _page_rows(case, page_ids)
    languages = case.languages
    jobs_list = [
        _PageJob(
            page_id=page_id,
            path=rows[page_id]["path"],
            kind=rows[page_id]["kind"],
            sha256=rows[page_id]["sha256"],
            page_number=rows[page_id]["page_number"],
            dpi=dpi,
            colour=colour,
            text=text,
            lang=_language(rows[page_id], languages),
            rotation=int(rows[page_id]["ocr_rotation"] or 0) % 360,
            psm=7 if (rows[page_id]["orientation_method"] or "").endswith("+line") else 3,
        )
        for page_id in page_ids
    ]
    if text == "ocr":
        for lang in sorted({job.lang for job in jobs_list}):
            ocr.check_languages(lang)
    files = sorted({(job.path, job.sha256, job.kind) for job in jobs_list})
    page_results, file_results = _run_jobs(jobs_list, files, jobs, progress)

    safety = _safety_record(
        out, jobs_list, page_results, file_results, findings.by_page(case, records), colour,
        text, dpi, forced,
    )  # fmt: skip
    _write_pdf(out, jobs_list, page_results, colour)
    safety["output_sha256"] = sha256_file(out)[0]
    safety_path = out.with_name(out.stem + ".safety.json")
    _write_json(safety_path, safety)
    return SafeExportReport(
        output=str(out),
        safety_path=str(safety_path),
        pages=len(jobs_list),
        safety=safety,
        forced=forced,
    )


def _refusal(blocked: dict[str, list[dict[str, Any]]]) -> str:
    shown = []
    for page_id in list(blocked)[:5]:
        names = sorted({r["check"] for r in blocked[page_id]})
        shown.append(f"{page_id} ({', '.join(names)})")
    more = f" and {len(blocked) - 5} more" if len(blocked) > 5 else ""
    return (
        f"refused: {len(blocked)} page(s) have open findings that publishing could expose: "
        f"{', '.join(shown)}{more}; look at them ('workbench findings --page ID'), then dismiss "
        "the finding ('workbench finding dismiss'), leave the page out, or use --force"
    )


def _run_jobs(
    page_jobs: list[_PageJob],
    files: list[tuple[str, str, str]],
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every page and file job, in worker processes; the pages held in order."""
    workers = max(1, min(jobs or os.cpu_count() or 1, len(page_jobs) + len(files)))
    context = multiprocessing.get_context("spawn")
    page_results: dict[str, dict[str, Any]] = {}
    file_results: dict[str, dict[str, Any]] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init)
    try:
        file_futures = {
            sha256: (path, pool.submit(_inventory_file, path, sha256, kind))
            for path, sha256, kind in files
        }
        window = 2 * workers  # pages in flight: the rasters are big
        pending: list[tuple[_PageJob, Future[dict[str, Any]]]] = []
        done = 0
        queue = list(page_jobs)
        while queue or pending:
            while queue and len(pending) < window:
                job = queue.pop(0)
                pending.append((job, pool.submit(_make_page, job)))
            job, future = pending.pop(0)
            page_results[job.page_id] = _result(future, job.path, f"page {job.page_number}")
            done += 1
            if progress is not None:
                progress(done, len(page_jobs))
        for sha256, (path, future) in file_futures.items():
            file_results[sha256] = _result(future, path, "its structure")
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a page stuck in Tesseract is not waited for
            process.kill()
        raise
    pool.shutdown()
    return page_results, file_results


def _result(future: Future[dict[str, Any]], path: str, what: str) -> dict[str, Any]:
    try:
        return future.result()
    except BrokenProcessPool:
        raise SourceError(path, f"reading {what} crashed the renderer; leave it out") from None
    except OcrError as error:
        raise OcrError(f"{path}: {what}: {error}") from None


def _worker_init() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"  # one Tesseract thread per worker process
    from workbench import readers

    readers.library_warnings([]).__enter__()  # MuPDF's messages are not ours to print


# ----- in the worker: one page ------------------------------------------------------------


def _make_page(job: _PageJob) -> dict[str, Any]:
    """The page as a new image (JPEG bytes) and its text layer (a text-only PDF page)."""

    from workbench import readers

    readers.check_custody(job.path, job.sha256)
    if job.kind == "pdf":
        image, size_pt, removed, was_colour = _pdf_page_pixels(job)
    else:
        image, size_pt, removed = _image_page_pixels(job)
        was_colour = _has_colour(image)
    if job.colour:
        shown = image
    else:
        shown = _whitened(_grey(image))
        if was_colour:
            removed.append(
                {
                    "what": "colour",
                    "detail": "the page had colour: made greyscale from red and green with the "
                    "paper whitened, so printer tracking dots (yellow) do not survive",
                }
            )
    shown.info.clear()  # nothing of the original's info (EXIF, ICC, XMP) may follow
    jpeg = _jpeg(shown, job.dpi)
    text_pdf = _text_layer(shown, jpeg, job) if job.text == "ocr" else None
    return {
        "jpeg": jpeg,
        "text_pdf": text_pdf,
        "size_pt": size_pt,
        "pixels": list(shown.size),
        "mode": shown.mode,
        "colour": was_colour,
        "removed": removed,
    }


def _jpeg(image: Any, dpi: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, dpi=(dpi, dpi))
    return buffer.getvalue()


def _pdf_page_pixels(
    job: _PageJob,
) -> tuple[Any, tuple[float, float], list[dict[str, Any]], bool]:
    """The page drawn without annotations, its size in points, what it loses, colour?"""
    import pymupdf
    from PIL import Image

    from workbench import readers

    try:
        doc = pymupdf.open(job.path, filetype="pdf")
    except Exception as error:  # MuPDF: anything unreadable
        raise SourceError(job.path, f"cannot be read as a PDF ({error})") from None
    with doc:
        if doc.needs_pass:
            raise SourceError(job.path, "encrypted: the case does not keep passwords")
        page = doc.load_page(job.page_number - 1)
        removed = _page_inventory(page)
        size_pt = (page.rect.width, page.rect.height)
        if not job.colour and not page.get_images():
            # drawn, not scanned: no printer ever put dots on it, so MuPDF renders it grey
            # (a third of the pixels); a small colour render says whether colour was lost
            small = readers.render_page(page, dpi=24, annots=False)
            small_image = Image.frombytes("RGB", (small.width, small.height), small.samples)
            pixmap = readers.render_page(page, dpi=job.dpi, gray=True, annots=False)
            size = (pixmap.width, pixmap.height)
            grey = Image.frombuffer("L", size, pixmap.samples, "raw", "L", 0, 1)
            return grey, size_pt, removed, _has_colour(small_image)
        pixmap = readers.render_page(page, dpi=job.dpi, annots=False)
        # over a bytes copy of the samples (which the image keeps alive), not a second copy
        size = (pixmap.width, pixmap.height)
        image = Image.frombuffer("RGB", size, pixmap.samples, "raw", "RGB", 0, 1)
        return image, size_pt, removed, _has_colour(image)


def _page_inventory(page: Any) -> list[dict[str, Any]]:
    """What the original page carries that the new one does not (besides the file's)."""
    removed: list[dict[str, Any]] = []
    characters = len("".join(page.get_text("text").split()))
    if characters:
        removed.append(
            {"what": "text layer", "detail": f"{characters} characters of the original text layer"}
        )
    kinds: dict[str, int] = {}
    authors: set[str] = set()
    for annot in page.annots() or []:
        kinds[annot.type[1]] = kinds.get(annot.type[1], 0) + 1
        if annot.info.get("title"):
            authors.add(annot.info["title"])
    links = len([link for link in page.get_links() if link.get("uri")])
    if links:
        kinds["web link"] = links
    if kinds:
        said = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        by = f" by {', '.join(repr(a) for a in sorted(authors)[:3])}" if authors else ""
        removed.append({"what": "annotations", "detail": f"{said}{by}"})
    filled = [w for w in page.widgets() or [] if w.field_value not in (None, "", "Off", False)]
    if filled:
        removed.append({"what": "form fields", "detail": f"{len(filled)} filled-in form field(s)"})
    return removed


def _image_page_pixels(job: _PageJob) -> tuple[Any, tuple[float, float], list[dict[str, Any]]]:
    from PIL import Image

    from workbench import readers

    removed = _image_inventory(job.path) if job.page_number == 1 else []
    try:
        frame, dpi, _damage = readers._decode_frame(job.path, job.page_number - 1)
    except SourceError:
        raise
    except Exception as error:  # Pillow: truncated data, bad frame, ...
        raise SourceError(
            job.path, f"frame {job.page_number} cannot be decoded ({error})"
        ) from None
    try:
        dpi_x = float(dpi[0]) or readers.OCR_DPI
    except (TypeError, ValueError, IndexError):
        dpi_x = readers.OCR_DPI
    image = frame.convert("RGB")
    if dpi_x > job.dpi * 1.1:  # a 600 dpi scan is published at the export's resolution
        scale = job.dpi / dpi_x
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
        dpi_x = job.dpi
    size_pt = (image.width * 72 / dpi_x, image.height * 72 / dpi_x)
    return image, size_pt, removed


def _image_inventory(path: str) -> list[dict[str, Any]]:
    """The image file's metadata blocks (EXIF with its notable tags, XMP, ICC, comments)."""
    from PIL import ExifTags

    from workbench import readers

    removed: list[dict[str, Any]] = []
    with readers.open_image(path) as image:
        exif = image.getexif()
        if exif:
            names = [ExifTags.TAGS.get(tag, str(tag)) for tag in exif]
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
            notable = [n for n in names if n in _NOTABLE_EXIF] + (["GPS position"] if gps else [])
            removed.append(
                {
                    "what": "EXIF",
                    "detail": f"{len(names)} EXIF tag(s)"
                    + (f", among them {', '.join(notable)}" if notable else ""),
                }
            )
        for key, what in (("xmp", "XMP metadata"), ("icc_profile", "ICC colour profile")):
            if image.info.get(key):
                removed.append({"what": what, "detail": f"{len(image.info[key])} bytes"})
        if image.info.get("comment"):
            removed.append({"what": "comment", "detail": "the image file's comment"})
    return removed


_NOTABLE_EXIF = {
    "Make",
    "Model",
    "Software",
    "Artist",
    "Copyright",
    "DateTime",
    "HostComputer",
    "BodySerialNumber",
    "ImageUniqueID",
}


def _has_colour(image: Any) -> bool:
    """Does the page show colour? (sampled: a scan's grey paper has a little chroma)."""
    from PIL import ImageChops

    factor = max(1, min(image.width, image.height) // 400)
    small = image.reduce(factor) if factor > 1 else image  # a box filter: cheap
    red, green, blue = small.split()
    spread = ImageChops.subtract(
        ImageChops.lighter(ImageChops.lighter(red, green), blue),
        ImageChops.darker(ImageChops.darker(red, green), blue),
    )
    histogram = spread.histogram()
    coloured = sum(histogram[COLOUR_SPREAD + 1 :])
    return coloured > COLOUR_SHARE * small.width * small.height


def _grey(image: Any) -> Any:
    """Greyscale from red and green only (a grey image is kept as it is).

    Yellow absorbs blue and little else: without the blue channel a yellow dot is as
    light as the paper. Black, blue and red ink stay dark.
    """
    if image.mode == "L":
        return image
    return image.convert("L", matrix=(0.5, 0.5, 0.0, 0.0))


def _whitened(grey: Any) -> Any:
    """Every pixel within PAPER_MARGIN of the paper's grey made white (the paper is the
    commonest light grey): what is left of dots, scanner noise and paper tint goes."""
    histogram = grey.histogram()
    bright = histogram[128:]
    paper = 128 + max(range(len(bright)), key=bright.__getitem__) if any(bright) else 255
    white_from = max(128, paper - PAPER_MARGIN)
    table = [255 if v >= white_from else round(v * 255 / white_from) for v in range(256)]
    return grey.point(table)


def _text_layer(image: Any, jpeg: bytes, job: _PageJob) -> bytes:
    """Tesseract's text-only PDF of the upright page (invisible text, no image).

    Tesseract is handed the JPEG just made (turned upright first when the page is not):
    no second encoding of the page, and the text is read from exactly what is published.
    """
    from workbench import ocr

    if job.rotation:
        jpeg = _jpeg(ocr._turn(image, job.rotation), job.dpi)
    with tempfile.TemporaryDirectory(prefix="wb-safe-") as folder:
        source = Path(folder) / "page.jpg"
        source.write_bytes(jpeg)
        command = [
            "tesseract", str(source), str(Path(folder) / "text"), "-l", job.lang,
            "--psm", str(job.psm), "--dpi", str(job.dpi), "-c", "textonly_pdf=1", "pdf",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=OCR_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise OcrError(f"Tesseract did not finish in {OCR_TIMEOUT:.0f} s") from None
        except OSError as error:
            raise OcrError(f"Tesseract could not be started ({error.strerror})") from None
        result = Path(folder) / "text.pdf"
        if done.returncode != 0 or not result.exists():
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OcrError(f"Tesseract failed ({said[-1][:200] if said else done.returncode})")
        return result.read_bytes()


# ----- in the worker: one file ------------------------------------------------------------


def _inventory_file(path: str, sha256: str, kind: str) -> dict[str, Any]:
    """What the file carries besides its pages (PDFs): names and kinds, for the report."""
    from workbench import pdfsafety, readers, revisions

    if kind != "pdf":
        readers.check_custody(path, sha256)
        return {"removed": []}
    data = revisions.read_verified(path, sha256)  # read and hashed once: what is inventoried
    if data is None:
        readers.check_custody(path, sha256)  # names a missing or changed file
        raise SourceError(path, "changed while it was being read; try again")
    removed: list[dict[str, Any]] = []
    ends = revisions.revision_ends(data)
    if len(ends) > 1:
        removed.append(
            {"what": "revisions", "detail": f"{len(ends)} revisions (earlier ones not carried)"}
        )
    try:
        with pdfsafety.open_pdf(data) as pdf:
            info = {str(k).lstrip("/"): str(v)[:120] for k, v in pdf.docinfo.items()}
            if info:
                removed.append(
                    {"what": "document information", "detail": ", ".join(sorted(info)), **info}
                )
            xmp = pdf.Root.get("/Metadata")
            if xmp is not None:
                removed.append({"what": "XMP metadata", "detail": "the file's XMP packet"})
            items = [
                {
                    "what": "active content",
                    "where": f"{item['action']}: {item['does']} ({item['where']})",
                    "page": item["page"],
                }
                for item in pdfsafety.active_content(pdf)
            ]
            items += pdfsafety.hidden_structure(pdf)
    except pdfsafety.UNREADABLE as error:
        removed.append({"what": "structure", "detail": f"not readable by qpdf ({error})"})
        items = []
    for item in items:
        entry = {"what": item["what"], "detail": item.get("where", "")}
        for key in ("page", "name", "author", "kind", "field"):
            if item.get(key) is not None:
                entry[key] = item[key]
        removed.append(entry)
    return {"removed": removed}


# ----- writing ----------------------------------------------------------------------------


def _write_pdf(
    out: Path,
    jobs_list: list[_PageJob],
    results: dict[str, dict[str, Any]],
    colour: bool,
) -> None:
    """Assemble the pages into a new PDF, written whole, checked, then moved into place.

    Written with pikepdf object by object, so nothing is in the file that is not put
    there here (PyMuPDF's writer adds its own producer and an ICC profile per image).
    """
    import pikepdf

    pdf = pikepdf.new()
    for job in jobs_list:
        result = results[job.page_id]
        width, height = result["size_pt"]
        pixels_w, pixels_h = result["pixels"]
        page = pdf.add_blank_page(page_size=(width, height))
        image = pikepdf.Stream(
            pdf,
            result["jpeg"],
            Type=pikepdf.Name.XObject,
            Subtype=pikepdf.Name.Image,
            Width=pixels_w,
            Height=pixels_h,
            ColorSpace=pikepdf.Name.DeviceGray if result["mode"] == "L" else pikepdf.Name.DeviceRGB,
            BitsPerComponent=8,
            Filter=pikepdf.Name.DCTDecode,
        )
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        page.Contents = pdf.make_stream(f"q {width:.4f} 0 0 {height:.4f} 0 0 cm /Im0 Do Q".encode())
        if result["text_pdf"]:
            with pikepdf.open(io.BytesIO(result["text_pdf"])) as text_pdf:
                text_page = text_pdf.pages[0]
                # the text was read upright: turned back onto the page as it is shown
                text_page.Rotate = (360 - job.rotation) % 360
                page.add_overlay(text_page, pikepdf.Rectangle(0, 0, width, height))
    pdf.docinfo = pdf.make_indirect(pikepdf.Dictionary(Producer=PRODUCER))
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(handle)
    try:
        pdf.save(
            temporary, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate
        )
        pdf.close()
        problems = verify_output(temporary, colour=colour, pages=len(jobs_list))
        if problems:
            raise WorkbenchError(
                f"{out}: the safe export failed its own check, nothing written: {problems[0]}"
            )
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def verify_output(path: str | os.PathLike[str], *, colour: bool, pages: int) -> list[str]:
    """What in a written safe PDF is not as promised (empty when all is well), read
    back with PyMuPDF, not with the library that wrote it."""
    import pymupdf

    problems: list[str] = []
    data = Path(path).read_bytes()
    if data.count(b"%%EOF") != 1:
        problems.append("more than one revision")
    with pymupdf.open("pdf", data) as doc:
        trailer = doc.pdf_trailer()
        if "/Prev" in trailer:
            problems.append("an incremental update (/Prev)")
        info = {k: v for k, v in doc.metadata.items() if v and k not in ("format", "encryption")}
        if set(info) - {"producer"}:
            problems.append(f"metadata besides the producer: {sorted(set(info) - {'producer'})}")
        if doc.get_xml_metadata():
            problems.append("XMP metadata")
        catalog = doc.pdf_catalog()
        for key in ("Metadata", "Names", "AcroForm", "OpenAction", "AA", "OCProperties", "Info"):
            if doc.xref_get_key(catalog, key)[0] != "null":
                problems.append(f"the catalogue has /{key}")
        if doc.embfile_count():
            problems.append("attached files")
        if doc.page_count != pages:
            problems.append(f"{doc.page_count} pages, not {pages}")
        for page in doc:
            number = page.number + 1
            for key in ("Annots", "AA"):
                if doc.xref_get_key(page.xref, key)[0] != "null":
                    problems.append(f"page {number} has /{key}")
            for image in page.get_images(full=True):
                xref, colourspace, name = image[0], image[5], image[7]
                if doc.xref_get_key(xref, "Filter")[1] != "/DCTDecode":
                    problems.append(f"page {number} image {name} is not a new JPEG")
                if not colour and colourspace != "DeviceGray":
                    problems.append(f"page {number} image {name} is not greyscale")
    return problems


def _safety_record(
    out: Path,
    jobs_list: list[_PageJob],
    page_results: dict[str, dict[str, Any]],
    file_results: dict[str, dict[str, Any]],
    by_page: dict[str, list[dict[str, Any]]],
    colour: bool,
    text: str,
    dpi: int,
    forced: list[str],
) -> dict[str, Any]:
    pages = []
    for number, job in enumerate(jobs_list, start=1):
        result = page_results[job.page_id]
        removed = list(result["removed"])
        removed += [
            {**item, "detail": f"file: {item['detail']}"}
            for item in file_results[job.sha256]["removed"]
            if item.get("page") == job.page_number
        ]
        pages.append(
            {
                "output_page": number,
                "page_id": job.page_id,
                "file": job.path,
                "file_sha256": job.sha256,
                "page_number": job.page_number,
                "colour": result["colour"],
                "removed": removed,
                "findings": [
                    {
                        "finding_id": record["finding_id"],
                        "check": record["check"],
                        "severity": record["severity"],
                        "message": record["message"],
                        "dismissed": bool(record["dismissed"]),
                        "forced": record["finding_id"] in forced,
                    }
                    for record in by_page.get(job.page_id, [])
                    if record["check"] in SAFETY_CHECKS
                ],
            }
        )
    files = []
    for sha256 in dict.fromkeys(job.sha256 for job in jobs_list):
        path = next(job.path for job in jobs_list if job.sha256 == sha256)
        files.append(
            {
                "file": path,
                "sha256": sha256,
                "page_ids": [job.page_id for job in jobs_list if job.sha256 == sha256],
                "removed": [i for i in file_results[sha256]["removed"] if not i.get("page")],
            }
        )
    return {
        "format": SAFETY_FORMAT,
        "output": out.name,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "producer": PRODUCER,
        "options": {
            "colour": colour,
            "text": text,
            "dpi": dpi,
            "forced": bool(forced),
        },
        "tracking_dots": (
            "colour kept: printer tracking dots on colour scans may survive"
            if colour
            else "greyscale with the paper whitened: printer tracking dots do not survive"
        ),
        "every_page_loses": list(EVERY_PAGE_LOSES),
        "forced_past": forced,
        "pages": pages,
        "files": files,
    }


def _write_json(path: Path, record: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(record, stream, ensure_ascii=False, indent=2)
        stream.write("\n")
    os.replace(temporary, path)


def describe(report: SafeExportReport) -> list[str]:
    """Lines for the terminal: what was written, then what was removed, per file and page."""
    safety = report.safety
    options = safety["options"]
    how = (
        "colour kept (tracking dots may survive)"
        if options["colour"]
        else ("greyscale, paper whitened")
    )
    text = "text layer from OCR" if options["text"] == "ocr" else "no text layer"
    lines = [
        f"wrote {report.pages} page(s) to {report.output}: {how}, {text}, {options['dpi']} dpi"
    ]
    for entry in safety["files"]:
        if entry["removed"]:
            said = "; ".join(_said(item) for item in entry["removed"])
            lines.append(f"removed from {entry['file']}: {said}")
    for entry in safety["pages"]:
        items = [i for i in entry["removed"] if i["what"] != "text layer"]
        if items:
            said = "; ".join(_said(item) for item in items)
            lines.append(f"removed from {entry['page_id']}: {said}")
    if report.forced:
        lines.append(
            f"warning: forced past {len(report.forced)} open finding(s): "
            + ", ".join(report.forced[:5])
        )
    lines.append(f"what was removed, per page: {report.safety_path}")
    return lines


def _said(item: dict[str, Any]) -> str:
    return f"{item['what']} ({item['detail']})" if item.get("detail") else item["what"]
