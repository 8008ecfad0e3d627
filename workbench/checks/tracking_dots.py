"""tracking-dots: the grid of faint yellow dots a colour laser printer adds to each page.

Why: most colour laser printers and copiers print a Machine Identification Code on every
page, a repeated pattern of yellow dots about 0.1 mm across on a grid of 0.5-2 mm that
encodes the printer's serial number and the time of printing. A colour scan of such a
page keeps them, and publishing it can lead to the printer and so to the person who
printed the page. One ``alert`` per page with a dot grid: publish a greyscale copy with
the paper whitened (``workbench export --format safe-pdf``), never the colour scan.

Method (after TU Dresden's DEDA, ``libdeda/extract_yd.py``): on colour pixels only, at
the image's own resolution (a dot is 1-3 pixels at 300-600 dpi: never downsampled),
printed ink is masked (dark or strongly saturated pixels, widened by about 0.6 mm, since
scanners and JPEG leave coloured fringes around it); a pixel is a dot candidate when it
is bright and more yellow (``min(R, G) - B``) than its surroundings by well above the
image's noise; small connected groups of such pixels give dot centres. The grid is
found from the offsets between nearby dots: on a grid every offset is a whole number of
grid steps, so the offsets pile up on the grid's points; the shortest step near each
axis gives the grid (refined by least squares over every offset), and the grid counts
only when most pairs of dots sit at grid offsets (a random scatter of yellow specks,
a highlighter stroke or a stamp does not) and most dots are on it.

Greyscale images and pages without an image are skipped before the file is read: the
pages' image modes and colour spaces were recorded at ingest.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.checks.base import Draft, Unit
from workbench.checks.file_check import FileCheck
from workbench.store import Case

_FROM = (
    "the page's image pixels at their own resolution: yellow filter after masking ink, "
    "dot centres, a fitted grid (after TU Dresden's DEDA)"
)
# Pillow modes and PDF colour spaces that can hold colour (anything else is grey)
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "P", "PA", "YCbCr", "LAB", "HSV")
GREY_SPACES = ("DeviceGray", "CalGray")
MIN_IMAGE_SIDE = 300  # pixels: a smaller image (a logo, an icon) cannot show a grid
MIN_DPI, MAX_DPI = 100, 2400  # an image shown at another scale is not a scan of the page

MM_PER_INCH = 25.4
MIN_PERIOD_MM = 0.35  # grid steps looked for: printers use 0.5-1.5 mm (DEDA: 0.02-0.05 in)
MAX_PERIOD_MM = 2.6
REACH_PERIODS = 1.6  # offsets between dots are looked at up to this many longest steps
INK_GUARD_MM = 0.6  # how far around ink no dot is believed (coloured fringes)
BACKGROUND_MM = 1.5  # the surroundings a dot must be more yellow than
MAX_DOT_MM = 0.45  # a dot is smaller than this across
DOT_BLUR_MM = 0.06  # the yellow channel is smoothed over about this (a sigma)
MIN_CONTRAST = 6.0  # a dot is at least this much yellower than its surroundings (0-255)
NOISE_FACTOR = 5.0  # ...and this many times the image's noise
DARK = 180  # brightest channel below this: ink, not paper
STRIP = 768  # rows analysed at a time (bounded memory on a 600 dpi page)
MAX_FIT_DOTS = 40_000

# what makes a grid
MIN_GRID_DOTS = 60
MIN_PAIR_SCORE = 0.5  # share of nearby dot pairs at grid offsets, above chance
MIN_ON_GRID = 0.5  # share of the dots found that are on the grid
MIN_DOTS_PER_SQUARE_INCH = 5.0  # on the grid, over the paper not covered by ink
GRID_TOLERANCE = 0.2  # of a grid step (JPEG moves a dot's centre by up to a pixel)


@dataclass(frozen=True)
class DotGrid:
    """A grid of yellow dots found on one image."""

    period_mm: tuple[float, float]  # along x, along y
    period_px: tuple[float, float]
    angle_deg: float  # the grid's turn against the image's rows
    dots: int  # dots on the grid
    candidates: int  # yellow dots found, on the grid or not
    on_grid: float  # dots / candidates
    pair_score: float  # share of nearby pairs at grid offsets, above chance (0-1)
    confidence: float
    dpi: tuple[float, float]
    dots_per_square_inch: float

    def evidence(self) -> dict[str, Any]:
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}


class TrackingDots(FileCheck):
    name = "tracking-dots"
    version = 1
    summary = "the yellow dot grid of a colour laser printer on colour scans"
    KINDS = ("pdf", "image")

    def units(self, case: Case) -> Iterator[Unit]:
        """Each file, with the pages that can hold colour pixels (none: nothing is read)."""
        colour = colour_pages(case)
        for unit in super().units(case):
            unit.inputs["colour_pages"] = colour.get(unit.inputs["sha256"], [])
            yield unit

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        wanted = unit.inputs.get("colour_pages") or []
        if not wanted:
            return []
        data, page_ids = self.source_bytes(case, unit)
        if data is None:
            return []
        drafts = []
        for number, grid in page_grids(data, unit.inputs["kind"], wanted):
            if number not in page_ids:
                continue
            px, py = grid.period_mm
            drafts.append(
                Draft(
                    severity="alert",
                    message=(
                        f"Yellow tracking dots: a grid of {grid.dots:,} dots every "
                        f"{px:.2f} x {py:.2f} mm (confidence {grid.confidence:.2f}), as colour "
                        "laser printers print their serial number and the time of printing; "
                        "publish a greyscale copy with the paper whitened, not this scan"
                    ),
                    page_ids=[page_ids[number]],
                    evidence={"grid": grid.evidence(), "from": _FROM},
                    source_sha256=unit.inputs["sha256"],
                    discriminator=f"page {number}",
                )
            )
        return drafts


def colour_pages(case: Case) -> dict[str, list[int]]:
    """Page numbers, per file hash, whose recorded image mode or image colour space can
    hold colour (ICC-based spaces are looked at again in the file: they may be grey)."""
    modes = ",".join("?" * len(COLOUR_MODES))
    greys = ",".join("?" * len(GREY_SPACES))
    found: dict[str, list[int]] = {}
    for sha256, number in case.db.execute(
        "SELECT s.sha256, p.page_number FROM pages p JOIN sources s ON s.id = p.source_id"
        " WHERE s.status = 'ingested' AND s.kind IN ('pdf', 'image') AND ("
        f" json_extract(p.metadata, '$.mode') IN ({modes})"
        " OR EXISTS (SELECT 1 FROM json_each(p.metadata, '$.images') i"
        f"  WHERE json_extract(i.value, '$.colorspace') NOT IN ({greys})"
        "   AND (json_extract(i.value, '$.bits') > 1"
        "        OR json_extract(i.value, '$.colorspace') = 'Indexed')"
        "   AND min(json_extract(i.value, '$.width_px'),"
        f"          json_extract(i.value, '$.height_px')) >= {MIN_IMAGE_SIDE}))"
        " ORDER BY s.id, p.page_number",
        (*COLOUR_MODES, *GREY_SPACES),
    ):
        found.setdefault(sha256, []).append(number)
    return found


def page_grids(data: bytes, kind: str, pages: list[int]) -> Iterator[tuple[int, DotGrid]]:
    """(page number, grid) for each of ``pages`` whose colour pixels show a dot grid."""
    if kind == "image":
        yield from _image_grids(data, pages)
    else:
        yield from _pdf_grids(data, pages)


def _image_grids(data: bytes, pages: list[int]) -> Iterator[tuple[int, DotGrid]]:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
    except (OSError, ValueError, Image.DecompressionBombError):
        return
    with image:
        for number in pages:
            try:
                image.seek(number - 1)
                if image.mode not in COLOUR_MODES or min(image.size) < MIN_IMAGE_SIDE:
                    continue
                dpi = _image_dpi(image.info.get("dpi"))
                rgb = np.asarray(image.convert("RGB"))
            except (OSError, ValueError, EOFError, SyntaxError):
                continue  # a frame that cannot be decoded: ingest said so already
            grid = find_dot_grid(rgb, dpi)
            if grid is not None:
                yield number, grid


def _image_dpi(value: Any) -> tuple[float, float]:
    """The image's resolution; 300 dpi (a scanner's usual) when it says none."""
    try:
        x, y = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return (300.0, 300.0)
    if not (MIN_DPI <= x <= MAX_DPI and MIN_DPI <= y <= MAX_DPI):
        return (300.0, 300.0)
    return (x, y)


def _pdf_grids(data: bytes, pages: list[int]) -> Iterator[tuple[int, DotGrid]]:
    import pymupdf

    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except _mupdf_errors():  # beyond repair: ingest said so already
        return
    with doc:
        if doc.needs_pass and not doc.authenticate(""):
            return  # the case does not keep passwords
        seen: dict[tuple[int, int, int], DotGrid | None] = {}
        for number in pages:
            if not 1 <= number <= doc.page_count:
                continue
            best: DotGrid | None = None
            try:
                page = doc[number - 1]
                # the images that can hold colour, from their dictionaries (no decoding)
                colour: dict[tuple[int, int], set[int]] = {}
                for xref, _smask, width, height, *_ in page.get_images(full=True):
                    if _may_be_colour(doc, xref):
                        colour.setdefault((width, height), set()).add(xref)
                if not colour:
                    continue
                # where they are shown; asking MuPDF for their xrefs would decode and hash
                # every image, so an image is known by its size unless two share one
                ambiguous = any(len(xrefs) > 1 for xrefs in colour.values())
                infos = page.get_image_info(xrefs=ambiguous)
            except _mupdf_errors():  # a page MuPDF cannot read: ingest said so already
                continue
            for info in infos:
                if not ambiguous:
                    xrefs = colour.get((info.get("width", 0), info.get("height", 0)))
                    if not xrefs:
                        continue
                    info = {**info, "xref": next(iter(xrefs))}
                grid = _pdf_image_grid(doc, info, seen)
                if grid is not None and (best is None or grid.dots > best.dots):
                    best = grid
            if best is not None:
                yield number, best


def _pdf_image_grid(
    doc: Any, info: dict[str, Any], seen: dict[tuple[int, int, int], DotGrid | None]
) -> DotGrid | None:
    """The grid on one placed image (an image shown at one size is looked at once)."""
    import pymupdf

    xref = info.get("xref") or 0
    width, height = info.get("width", 0), info.get("height", 0)
    if xref <= 0 or min(width, height) < MIN_IMAGE_SIDE:
        return None
    a, b, c, d = (info.get("transform") or (0, 0, 0, 0))[:4]
    shown_w, shown_h = math.hypot(a, b), math.hypot(c, d)  # points
    if shown_w <= 0 or shown_h <= 0:
        return None
    dpi = (width * 72 / shown_w, height * 72 / shown_h)
    if not all(MIN_DPI <= v <= MAX_DPI for v in dpi):
        return None  # a thumbnail or a stretched image: its millimetres mean nothing
    key = (xref, round(dpi[0]), round(dpi[1]))
    if key in seen:
        return seen[key]
    grid = None
    try:
        if not _may_be_colour(doc, xref):
            return None
        pix = pymupdf.Pixmap(doc, xref)
        if pix.colorspace is not None and pix.colorspace.n >= 3:
            if pix.colorspace.n != 3 or "RGB" not in pix.colorspace.name:  # CMYK, Lab
                pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
            if pix.alpha:
                pix = pymupdf.Pixmap(pix, 0)
            rgb = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, 3)
            grid = find_dot_grid(rgb, dpi)
    except _mupdf_errors():  # an image that cannot be decoded
        grid = None
    seen[key] = grid
    return grid


def _mupdf_errors() -> tuple[type[Exception], ...]:
    """What MuPDF raises on a damaged file: Python errors, and its own error classes
    (a cycle in the page tree is not a RuntimeError)."""
    import pymupdf

    return (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)


def _may_be_colour(doc: Any, xref: int) -> bool:
    """Whether an image XObject's colour space can hold colour, from its dictionary (no
    decoding): DeviceGray, CalGray, an ICC profile with one component, a stencil mask
    and a 1-bit image are grey."""
    kind, value = doc.xref_get_key(xref, "ImageMask")
    if value == "true":
        return False
    kind, value = doc.xref_get_key(xref, "ColorSpace")
    if kind == "xref":  # an indirect colour space: its own object holds the array
        value = doc.xref_object(int(value.split()[0]), compressed=True)
    text = value.strip()
    if text.lstrip("[").startswith(("/DeviceGray", "/CalGray", "/G ")) or text == "/G":
        return False
    if text.lstrip("[").startswith("/ICCBased"):
        reference = text.lstrip("[").removeprefix("/ICCBased").split()
        if reference and reference[0].isdigit():
            _, n = doc.xref_get_key(int(reference[0]), "N")
            return n != "1"
    if not text.lstrip("[").startswith(("/Indexed", "/I ")):
        _, bits = doc.xref_get_key(xref, "BitsPerComponent")
        if bits == "1":
            return False
    return True


# ----- the image analysis ------------------------------------------------------------


def find_dot_grid(rgb: np.ndarray, dpi: tuple[float, float]) -> DotGrid | None:
    """The yellow dot grid on an RGB image (height x width x 3, uint8) at ``dpi``, or None."""
    if not _enough_yellow(rgb):
        return None
    points, free_px = yellow_dots(rgb, dpi)
    free_square_inches = free_px / (dpi[0] * dpi[1])
    return fit_grid(points, dpi, free_square_inches)


def _enough_yellow(rgb: np.ndarray) -> bool:
    """Whether enough pixels are yellow at all to hold a grid: a grey page stored in colour
    (a scanner's colour JPEG of black print on white) is let go after one pass."""
    yellow = 0
    for top in range(0, rgb.shape[0], STRIP):
        block = rgb[top : top + STRIP]
        least = np.minimum(block[..., 0], block[..., 1])
        yellow += int(np.count_nonzero(np.subtract(least, block[..., 2], dtype=np.int16) > 8))
        if yellow >= MIN_GRID_DOTS:
            return True
    return False


def yellow_dots(rgb: np.ndarray, dpi: tuple[float, float]) -> tuple[np.ndarray, int]:
    """Centres (x, y in pixels) of small spots yellower than their surroundings, away from
    ink; and how many pixels were free of ink (where dots could be seen)."""
    from scipy import ndimage

    px_per_mm = (dpi[0] + dpi[1]) / 2 / MM_PER_INCH
    guard = max(1, round(INK_GUARD_MM * px_per_mm))
    window = max(5, round(BACKGROUND_MM * px_per_mm) | 1)
    max_side = max(2, math.ceil(MAX_DOT_MM * px_per_mm))
    max_area = max(3, round(max_side * max_side * 0.8))
    blur = max(0.6, DOT_BLUR_MM * px_per_mm)
    margin = guard + window + max_side
    height = rgb.shape[0]
    found: list[np.ndarray] = []
    free_px = 0
    eight = np.ones((3, 3), dtype=bool)
    for top in range(0, height, STRIP):
        low, high = max(0, top - margin), min(height, top + STRIP + margin)
        block = rgb[low:high].astype(np.int16)
        red, green, blue = block[..., 0], block[..., 1], block[..., 2]
        brightest = np.maximum(np.maximum(red, green), blue)
        darkest = np.minimum(np.minimum(red, green), blue)
        del block
        # ink: dark, or saturated beyond a pale dot (DEDA: saturation <= 120/255)
        ink = (brightest < DARK) | (2 * (brightest - darkest) > brightest)
        ink = ndimage.maximum_filter(ink.view(np.uint8), size=2 * guard + 1).view(bool)
        yellowness = (np.minimum(red, green) - blue).astype(np.float32)
        # a dot is 1-3 pixels and JPEG keeps colour at half resolution: smoothing over
        # about a dot's size joins its pieces and evens out the noise
        contrast = ndimage.gaussian_filter(yellowness, blur) - ndimage.uniform_filter(
            yellowness, size=window
        )
        free = ~ink
        core = slice(top - low, top - low + min(STRIP, height - top))
        free_px += int(np.count_nonzero(free[core]))
        sample = contrast[::3, ::3][free[::3, ::3]]
        if sample.size < 100:
            continue
        centre = float(np.median(sample))
        noise = 1.4826 * float(np.median(np.abs(sample - centre)))
        threshold = centre + max(MIN_CONTRAST, NOISE_FACTOR * noise)
        spots = (contrast > threshold) & free & (brightest >= DARK + 20)
        labels, count = ndimage.label(spots, structure=eight)
        if count == 0:
            continue
        ys, xs = np.nonzero(labels)
        which = labels[ys, xs]
        weight = contrast[ys, xs] - centre
        size = np.bincount(which, minlength=count + 1)
        total = np.bincount(which, weight, minlength=count + 1)
        cx = np.bincount(which, weight * xs, minlength=count + 1)
        cy = np.bincount(which, weight * ys, minlength=count + 1)
        order = np.argsort(which, kind="stable")
        starts = np.searchsorted(which[order], np.arange(1, count + 1))
        x_span = np.maximum.reduceat(xs[order], starts) - np.minimum.reduceat(xs[order], starts)
        y_span = np.maximum.reduceat(ys[order], starts) - np.minimum.reduceat(ys[order], starts)
        size, total, cx, cy = size[1:], total[1:], cx[1:], cy[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            cx, cy = cx / total, cy / total
        keep = (
            (size <= max_area)
            & (x_span < max_side)
            & (y_span < max_side)
            & (total > 0)
            & (cy >= core.start)
            & (cy < core.stop)
        )
        found.append(np.column_stack([cx[keep], cy[keep] + low]))
    points = np.concatenate(found) if found else np.zeros((0, 2))
    return points, free_px


def fit_grid(
    points: np.ndarray, dpi: tuple[float, float], free_square_inches: float
) -> DotGrid | None:
    """The grid most dot pairs agree on, if the dots make one (else None)."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    count = len(points)
    if count < MIN_GRID_DOTS:
        return None
    if count > MAX_FIT_DOTS:  # deterministic thinning: every k-th dot in page order
        points = points[:: math.ceil(count / MAX_FIT_DOTS)]
    px_per_mm = (dpi[0] + dpi[1]) / 2 / MM_PER_INCH
    shortest, longest = MIN_PERIOD_MM * px_per_mm, MAX_PERIOD_MM * px_per_mm
    reach = REACH_PERIODS * longest
    pairs = cKDTree(points).query_pairs(reach, output_type="ndarray")
    if len(pairs) < MIN_GRID_DOTS:
        return None
    offsets = points[pairs[:, 1]] - points[pairs[:, 0]]
    both = np.concatenate([offsets, -offsets])
    step = max(0.25, px_per_mm / 24)
    bins = int(math.ceil(reach / step))
    edges = np.linspace(-bins * step, bins * step, 2 * bins + 1)
    histogram, _, _ = np.histogram2d(both[:, 0], both[:, 1], bins=(edges, edges))
    histogram = ndimage.gaussian_filter(histogram, 1.0)
    centres = (edges[:-1] + edges[1:]) / 2
    gx, gy = np.meshgrid(centres, centres, indexing="ij")
    radius = np.hypot(gx, gy)
    inside = (radius >= shortest) & (radius <= reach)
    background = float(np.median(histogram[inside]))
    peaks = (
        (histogram == ndimage.maximum_filter(histogram, size=5))
        & inside
        & (histogram > background + 6 * math.sqrt(background + 1) + 2)
    )
    px, py = gx[peaks], gy[peaks]
    a = _shortest(px, py, along_x=True, longest=longest)
    b = _shortest(px, py, along_x=False, longest=longest)
    if a is None or b is None:
        return None
    basis = np.array([a, b])  # rows: the two steps
    tolerance = GRID_TOLERANCE * min(np.hypot(*a), np.hypot(*b))
    for _ in range(3):  # least squares over every offset near a grid point
        steps = np.rint(offsets @ np.linalg.inv(basis))
        near = np.hypot(*(offsets - steps @ basis).T) < tolerance
        near &= np.any(steps != 0, axis=1)
        if np.count_nonzero(near) < 2 * MIN_GRID_DOTS:
            return None
        basis = np.linalg.lstsq(steps[near], offsets[near], rcond=None)[0]
    steps = np.rint(offsets @ np.linalg.inv(basis))
    near = np.hypot(*(offsets - steps @ basis).T) < tolerance
    near &= np.any(steps != 0, axis=1)
    cell = abs(float(np.linalg.det(basis)))
    chance = min(0.99, math.pi * tolerance**2 / cell)
    pair_score = max(0.0, (np.count_nonzero(near) / len(offsets) - chance) / (1 - chance))
    pair_score = float(pair_score)
    on_grid_mask = np.zeros(len(points), dtype=bool)
    on_grid_mask[pairs[near].ravel()] = True
    dots = int(np.count_nonzero(on_grid_mask))
    on_grid = dots / len(points)
    scale = len(points) / count  # when thinned, the dots counted stand for more
    density = dots / scale / max(free_square_inches, 1e-6)
    period_x, period_y = float(np.hypot(*basis[0])), float(np.hypot(*basis[1]))
    if (
        dots < MIN_GRID_DOTS
        or pair_score < MIN_PAIR_SCORE
        or on_grid < MIN_ON_GRID
        or density < MIN_DOTS_PER_SQUARE_INCH
        or not shortest <= min(period_x, period_y) <= max(period_x, period_y) <= longest
    ):
        return None
    angle = math.degrees(math.atan2(basis[0][1], basis[0][0]))
    confidence = round(float(min(pair_score, 1.0) * min(on_grid / 0.8, 1.0)), 2)
    return DotGrid(
        period_mm=(
            round(period_x / (dpi[0] / MM_PER_INCH), 3),
            round(period_y / (dpi[1] / MM_PER_INCH), 3),
        ),
        period_px=(round(period_x, 2), round(period_y, 2)),
        angle_deg=round(angle, 2),
        dots=round(dots / scale),
        candidates=count,
        on_grid=round(on_grid, 3),
        pair_score=round(pair_score, 3),
        confidence=confidence,
        dpi=(round(dpi[0], 1), round(dpi[1], 1)),
        dots_per_square_inch=round(density, 1),
    )


def _shortest(
    xs: np.ndarray, ys: np.ndarray, *, along_x: bool, longest: float
) -> tuple[float, float] | None:
    """The shortest peak offset within 35 degrees of the x (or y) axis, pointing along it."""
    along, across = (xs, ys) if along_x else (ys, xs)
    pick = (along > 0) & (np.abs(across) <= math.tan(math.radians(35)) * along)
    pick &= np.hypot(xs, ys) <= longest
    if not np.any(pick):
        return None
    lengths = np.hypot(xs[pick], ys[pick])
    i = int(np.argmin(lengths))
    return float(xs[pick][i]), float(ys[pick][i])


CHECK = TrackingDots()
