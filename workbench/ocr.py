"""Page OCR with Tesseract: put the page upright, straighten it, read it once.

Leaked troves are scanned in a hurry: pages come in turned 90/180/270 degrees and a few
degrees crooked, and plain Tesseract reads an upside-down page as garbage. So each page
goes through three cheap steps on a downscaled copy before the one full OCR pass:

1. deskew: projection-profile search for the small angle (up to +-5 degrees) that makes
   the text lines sharpest, tried with the lines horizontal and vertical;
2. orientation: Tesseract OSD where it is confident; otherwise (sparse pages, stamps,
   headers, where OSD guesses or gives up) a trial: OCR a small crop at each candidate
   rotation and keep the one that reads as confident words;
3. full OCR with ``image_to_data``: text and word confidences from one Tesseract run.

Tesseract runs single-threaded (``OMP_THREAD_LIMIT=1``, set at import): workbench runs a
pool of single-threaded workers, and OpenMP inside Tesseract on a busy machine made a
dense page 7x slower (10.1 s vs 1.36 s measured on 2 cores).

Nothing here opens a network connection: Tesseract is a local subprocess.
"""

from __future__ import annotations

import os

# Before anything can start Tesseract: pytesseract passes os.environ to the subprocess.
os.environ["OMP_THREAD_LIMIT"] = "1"

import functools  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from array import array  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytesseract  # noqa: E402
from PIL import Image  # noqa: E402

from workbench.errors import OcrError  # noqa: E402

__all__ = [
    "OcrResult",
    "available_languages",
    "check_languages",
    "recognize",
    "tesseract_version",
]

# --- Tunables (each measured on synthetic A4 pages at 300 dpi; see tests/test_ocr.py) ---

#: Height (px) of the dense band of a text line (about the x-height) in the working copy
#: used for OSD and trials: what 11 pt text measures at 150 dpi. Above OSD's 10 px
#: minimum glyph height for most glyphs, and OSD/trial OCR cost little. At two thirds of
#: it (11 pt at 100 dpi) OSD returned wrong rotations with confidence up to 10.
WORK_XHEIGHT = 13
#: Enlarge small text at most this much for OSD/trials (a 100 dpi fax of 9 pt text).
MAX_UPSCALE = 2.0
#: Pixel cap of the working copy, whatever the text size.
MAX_WORK_PIXELS = 6_000_000
#: Long side of the working copy when no text size could be measured.
WORK_LONG_SIDE = 1800
#: Long side of the binarised copy used for the deskew search (~65 dpi for A4).
SKEW_LONG_SIDE = 800
#: Largest skew searched, degrees. Beyond that a page is a photo, not a crooked scan.
MAX_SKEW = 5.0
#: Skews smaller than this are not corrected: Tesseract does not care, and resampling
#: blurs the glyphs slightly.
MIN_SKEW = 0.2
#: A skew is only corrected when the line profile at the best angle is at least this much
#: sharper than at 0 degrees. Straight pages measure ~1.00-1.01; 1 degree of skew on a
#: dense page already gives > 1.3.
SKEW_GAIN = 1.05
#: Deskew only when the inked extent along the lines is at least this many line heights.
MIN_LINE_ASPECT = 12
#: OSD "Orientation confidence" at or above which OSD is trusted without a trial. It is a
#: log-likelihood margin summed over up to 250 glyphs, so it grows with the amount of text.
#: Measured with the working copy scaled by text size: dense pages 11-38 and always right;
#: pages of ~40 words 3-13, always right; 1-4 lines 1.5-6 or "Too few characters". Wrong
#: answers came at 0.5-2 and, on 9 pt text at 110 dpi before scaling by text size, at
#: 9.2-10.0. Tesseract's own auto-rotation margin is 7 (min_orientation_margin),
#: OCRmyPDF's default 14; 10 clears every wrong answer seen, and the pages it sends to the
#: trial have little text, so their trial is cheap.
OSD_MIN_CONFIDENCE = 10.0
#: Side of the square crop (working-copy pixels) OCRed at each orientation in a trial.
#: Large enough for several lines of body text in any orientation, small enough that four
#: psm-6 passes on it cost less than OSD on a dense page.
TRIAL_WINDOW = 400
#: A trial only overrides the prior (OSD's weak guess, else upright) when its best
#: orientation scores this many times the prior's score.
TRIAL_MARGIN = 1.3
#: Below this trial score nothing readable was found in any orientation: the page stays
#: as it is and is reported "none". 1.0 is one two-letter word at confidence 75; a lone
#: three-letter Persian stamp word scores 1.8-2.2 upright and 0 in the other three turns.
TRIAL_MIN_SCORE = 1.0
#: Ratio of line-profile sharpness between the two axes above which the text lines are
#: taken to be horizontal (or vertical) for sure, and the trial only tries 2 rotations.
AXIS_RATIO = 1.5

_ROTATIONS = (0, 90, 180, 270)

#: Tesseract languages written in Arabic script. When a case asks for several languages
#: across scripts ("fas+eng"), each page is read with only the languages of its own
#: script: measured on the fixture scans, "fas" alone read Persian pages at CER 0.005-0.044
#: where "fas+eng" gave 0.031-0.070 (Persian words and digits turned into Latin letters),
#: and 30-40% faster.
ARABIC_SCRIPT_LANGS = frozenset({"fas", "ara", "urd", "pus", "snd", "uig", "kur_ara"})
#: OSD "Script confidence" at or above which OSD's script is used to pick the languages.
OSD_MIN_SCRIPT_CONFIDENCE = 5.0
#: Without OSD (sparse pages), the page is re-read with one script's languages when at
#: least this share of its letters are of that script.
SCRIPT_LETTER_SHARE = 0.9


@dataclass(frozen=True)
class OcrResult:
    """What one page OCR produced, and what was done to the image first.

    ``rotation`` and ``skew`` are both degrees CLOCKWISE that the page image was turned
    before the final OCR; a positive skew means the scan was tilted counter-clockwise.
    """

    text: str
    confidence: float | None
    word_count: int
    rotation: int
    skew: float
    orientation_method: str
    lang: str
    engine: str


# --------------------------------------------------------------------------- install


@functools.lru_cache(maxsize=1)
def tesseract_version() -> str:
    """Version of the installed Tesseract, e.g. ``"5.3.0"`` (recorded with every page)."""
    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise OcrError(_NOT_INSTALLED) from exc
    except SystemExit as exc:  # pytesseract exits on a version string it cannot parse
        raise OcrError(f"Tesseract is installed but its version is not usable: {exc}") from exc


@functools.lru_cache(maxsize=1)
def available_languages() -> frozenset[str]:
    """Language packs Tesseract can load (``tesseract --list-langs``), e.g. eng, fas, osd."""
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise OcrError(_NOT_INSTALLED) from exc


_NOT_INSTALLED = (
    "Tesseract OCR is not installed (the 'tesseract' program was not found). "
    "Install it with: sudo apt-get install tesseract-ocr"
)


def _apt_package(code: str) -> str:
    """Debian/Ubuntu package holding a Tesseract language (chi_sim -> tesseract-ocr-chi-sim)."""
    return "tesseract-ocr-" + code.lower().replace("_", "-").replace("/", "-")


def check_languages(lang: str) -> None:
    """Fail early, with the fix, if a language in ``lang`` (e.g. ``"fas+eng"``) is missing.

    Tesseract's own message for a missing pack is a wall of text printed per page; a
    journalist needs one line saying which package to install.
    """
    codes = [code.strip() for code in lang.split("+")]
    if not lang.strip() or any(not code for code in codes):
        raise OcrError(
            f"OCR language {lang!r} is not valid: use Tesseract codes joined by '+', "
            "e.g. 'fas+eng'."
        )
    installed = available_languages()
    missing = [code for code in codes if code not in installed]
    if not missing:
        return
    packages = " ".join(_apt_package(code) for code in missing)
    names = ", ".join(repr(code) for code in missing)
    have = ", ".join(sorted(installed - {"osd"})) or "none"
    raise OcrError(
        f"Tesseract has no language pack for {names} (installed: {have}). "
        f"Install it with: sudo apt-get install {packages}"
    )


# --------------------------------------------------------------------------- running


class _Deadline:
    """One time budget for all Tesseract runs of a page (OSD, trials, full OCR)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise OcrError(self.message())
        return left

    def message(self) -> str:
        return (
            f"Tesseract did not finish this page within {self.seconds:g} s and was stopped. "
            "The page may be damaged or rendered too large; retry with a lower render "
            "resolution or a longer timeout."
        )


def _run(call, image: Image.Image, deadline: _Deadline, **kwargs):
    """Run one pytesseract call on ``image``; every failure becomes an OcrError.

    The image goes to Tesseract as an uncompressed TIFF: pytesseract would write a PNG,
    and deflating a 35 Mpx page costs ~0.4 s for nothing.
    """
    with tempfile.TemporaryDirectory(prefix="workbench-ocr-") as tmp:
        path = os.path.join(tmp, "page.tif")
        # compression="raw": a source TIFF's own settings (Group 4 for 1-bit scans) ride
        # along in image.info and cannot encode 8-bit pixels
        image.save(path, format="TIFF", compression="raw")
        try:
            return call(path, timeout=deadline.remaining(), **kwargs)
        except RuntimeError as exc:  # pytesseract's timeout (it kills the process)
            if "timeout" in str(exc).lower():
                raise OcrError(deadline.message()) from exc
            raise OcrError(f"Tesseract failed on this page: {exc}") from exc
        except pytesseract.TesseractNotFoundError as exc:
            raise OcrError(_NOT_INSTALLED) from exc
        except pytesseract.TesseractError as exc:
            raise OcrError(f"Tesseract failed on this page: {exc.message}".strip()) from exc
        except OSError as exc:
            raise OcrError(f"Could not run Tesseract: {exc}") from exc


# --------------------------------------------------------------------------- images


def _to_gray(image: Image.Image) -> Image.Image:
    """8-bit grayscale; transparency becomes white paper, 16-bit scans are scaled down."""
    mode = image.mode
    if mode == "L":
        return image
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        paper.alpha_composite(rgba)
        return paper.convert("L")
    if mode.startswith("I;16") or mode == "I":
        return image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    return image.convert("L")


def _downscale(image: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def _otsu_threshold(gray: Image.Image) -> int | None:
    """Otsu's global threshold, or None when the image has no contrast (a blank page)."""
    hist = gray.histogram()
    total = sum(hist)
    lo = next(i for i, n in enumerate(hist) if n)
    hi = 255 - next(i for i, n in enumerate(reversed(hist)) if n)
    if hi - lo < 40:
        return None
    sum_all = sum(i * n for i, n in enumerate(hist))
    weight_b = sum_b = 0
    best_t, best_var = lo, -1.0
    for t in range(256):
        weight_b += hist[t]
        if weight_b == 0:
            continue
        weight_f = total - weight_b
        if weight_f == 0:
            break
        sum_b += t * hist[t]
        mean_b = sum_b / weight_b
        mean_f = (sum_all - sum_b) / weight_f
        var = weight_b * weight_f * (mean_b - mean_f) ** 2
        if var > best_var:
            best_var, best_t = var, t
    return best_t


def _ink_mask(gray: Image.Image) -> Image.Image | None:
    """Ink = 255, paper = 0; None for a blank page (no contrast, or almost no ink)."""
    threshold = _otsu_threshold(gray)
    if threshold is None:
        return None
    mask = gray.point(lambda value: 255 if value <= threshold else 0)
    ink = mask.histogram()[255]
    # Less than 0.003% ink (a few specks; one short word is ~0.015%), or more than half
    # (a photo, a black scan).
    if ink < 0.00003 * mask.width * mask.height or ink > 0.5 * mask.width * mask.height:
        return None
    return mask


# --------------------------------------------------------------------------- deskew


def _row_profile(mask_f: Image.Image, angle: float) -> list[float]:
    """Ink per row after turning the mask ``angle`` degrees counter-clockwise."""
    turned = mask_f.rotate(angle, resample=Image.Resampling.NEAREST, expand=True)
    column = turned.resize((1, turned.height), Image.Resampling.BOX)
    return array("f", column.tobytes()).tolist()  # mode F: native 32-bit floats


def _sharpness(rows: list[float]) -> float:
    """How sharply ink falls into rows: 1 + squared coefficient of variation of the rows.

    Computed between the first and last inked row, as N * sum(r^2) / (sum r)^2. Straight
    text lines give tall peaks and empty gaps, hence a high value; scale-free, so the two
    axes of a page compare fairly.
    """
    first = next((i for i, v in enumerate(rows) if v > 0), None)
    if first is None:
        return 0.0
    last = len(rows) - next(i for i, v in enumerate(reversed(rows)) if v > 0)
    rows = rows[first:last]
    total = sum(rows)
    return len(rows) * sum(v * v for v in rows) / (total * total)


def _line_height(rows: list[float]) -> float | None:
    """Median height (in rows) of the bands of ink in a straight profile: the text size."""
    peak = max(rows, default=0)
    if peak <= 0:
        return None
    runs, run = [], 0
    for value in rows:
        if value > 0.1 * peak:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    runs = [r for r in runs if r >= 2] or runs
    runs.sort()
    return float(runs[len(runs) // 2]) if runs else None


def _best_angle(mask_f: Image.Image) -> tuple[float, float, float, list[float]]:
    """Search the CCW angle that makes rows sharpest: coarse 0.5 degree steps, then 0.1.

    Returns (angle, sharpness there, sharpness at 0, row profile at the angle).
    """
    rows = _row_profile(mask_f, 0.0)
    at_zero = _sharpness(rows)
    best_angle, best, best_rows = 0.0, at_zero, rows
    steps = round(MAX_SKEW / 0.5)
    coarse = [k * 0.5 for k in range(-steps, steps + 1) if k]
    for angles in (coarse, None):
        if angles is None:  # fine pass around the coarse winner
            center = best_angle
            angles = [round(center + k * 0.1, 2) for k in range(-4, 5) if k]
            angles = [a for a in angles if abs(a) <= MAX_SKEW]
        for angle in angles:
            rows = _row_profile(mask_f, angle)
            value = _sharpness(rows)
            if value > best:
                best_angle, best, best_rows = angle, value, rows
    return best_angle, best, at_zero, best_rows


@dataclass(frozen=True)
class _Layout:
    skew: float  # degrees clockwise to apply (0.0 when not worth it)
    axis: str | None  # "horizontal"/"vertical" when the text lines clearly run that way
    line_height: float | None  # height of a line of text, in mask pixels


def _measure_layout(mask: Image.Image) -> _Layout:
    """Skew angle, line direction and text size from projection profiles of the ink mask.

    Both axes are searched (the page may be turned 90 degrees): the axis whose best
    profile is sharper is the direction of the text lines, and its best angle is the
    skew (a small rotation commutes with the quarter turns applied later).
    """
    mask_f = mask.convert("F")
    h_angle, h_best, h_zero, h_rows = _best_angle(mask_f)
    v_angle, v_best, v_zero, v_rows = _best_angle(mask_f.transpose(Image.Transpose.ROTATE_90))
    if h_best >= v_best:
        angle, best, zero, rows = h_angle, h_best, h_zero, h_rows
    else:
        angle, best, zero, rows = v_angle, v_best, v_zero, v_rows
    axis = None
    if h_best >= AXIS_RATIO * v_best:
        axis = "horizontal"
    elif v_best >= AXIS_RATIO * h_best:
        axis = "vertical"
    line_height = _line_height(rows)
    box = mask.getbbox()
    extent = 0 if box is None else (box[2] - box[0] if h_best >= v_best else box[3] - box[1])
    skew = 0.0
    if (
        abs(angle) >= MIN_SKEW
        and best >= SKEW_GAIN * zero
        # A profile only measures skew along lines much longer than they are high: on a
        # lone word or stamp it "finds" 2-3 degrees on a straight page.
        and line_height is not None
        and extent >= MIN_LINE_ASPECT * line_height
    ):
        skew = -angle  # the search angle is PIL's counter-clockwise; record clockwise
    return _Layout(skew=skew, axis=axis, line_height=line_height)


def _work_scale(gray: Image.Image, small: Image.Image, layout: _Layout) -> float:
    """Scale of the copy used for OSD and trials: text lines about WORK_XHEIGHT high.

    Scaling by text size, not page size: OSD ignores glyphs under 10 px and returned
    confident wrong answers (conf 9-10) on 9 pt text scanned at 110 dpi, and right ones
    (conf 12-15) on the same page enlarged 1.5-2x.
    """
    if layout.line_height is None:
        scale = WORK_LONG_SIDE / max(gray.size)
    else:
        full_line = layout.line_height * max(gray.size) / max(small.size)
        scale = WORK_XHEIGHT / full_line
    scale = min(scale, MAX_UPSCALE, math.sqrt(MAX_WORK_PIXELS / (gray.width * gray.height)))
    return scale


def _scaled(image: Image.Image, scale: float) -> Image.Image:
    if abs(scale - 1) < 0.02:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if scale < 1:
        return image.resize(size, Image.Resampling.BOX)
    return image.resize(size, Image.Resampling.BICUBIC)


def _turn(image: Image.Image, clockwise: float, fill: int = 255) -> Image.Image:
    """Turn ``image`` clockwise by ``clockwise`` degrees; new corners get ``fill`` (paper)."""
    clockwise %= 360
    if clockwise == 0:
        return image
    if clockwise in (90, 180, 270):  # lossless and fast
        return image.transpose(
            {
                90: Image.Transpose.ROTATE_270,
                180: Image.Transpose.ROTATE_180,
                270: Image.Transpose.ROTATE_90,
            }[int(clockwise)]
        )
    return image.rotate(-clockwise, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


# --------------------------------------------------------------------------- orientation


@dataclass(frozen=True)
class _Osd:
    rotation: int  # degrees clockwise to make the page upright
    confidence: float
    script: str
    script_confidence: float


def _osd(work: Image.Image, deadline: _Deadline) -> _Osd | None:
    """Tesseract OSD on the working copy; None when it cannot decide (too few glyphs)."""
    try:
        text = _run(pytesseract.image_to_osd, work, deadline, config="--psm 0")
    except OcrError as exc:
        if exc.message == deadline.message():
            raise
        return None  # "Too few characters", or an image OSD cannot use: try orientations
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    try:
        rotation = int(values["Rotate"]) % 360
        confidence = float(values["Orientation confidence"])
    except (KeyError, ValueError):
        return None
    if rotation not in _ROTATIONS:
        return None
    try:
        script_confidence = float(values.get("Script confidence", "0"))
    except ValueError:
        script_confidence = 0.0
    return _Osd(rotation, confidence, values.get("Script", ""), script_confidence)


def _trial_score(data: dict) -> float:
    """Letters read with high confidence: sum of letters x (conf - 50) / 50 per word.

    Only words with at least two letters count, and only the confidence above 50: a
    page read the wrong way round yields many one- and two-character fragments ('2', '=',
    'Aq') at confidence 40-70, while the right way gives whole words at 85-96. Measured
    on a 3-line page: upright ~55, upside down ~7, sideways ~2-5.
    """
    score = 0.0
    for word, conf in zip(data["text"], data["conf"], strict=False):
        conf = float(conf)
        if conf <= 50:
            continue
        letters = sum(char.isalpha() for char in word)
        if letters >= 2:
            score += letters * (conf - 50) / 50
    return score


def _trial_crop(work: Image.Image, mask: Image.Image) -> Image.Image:
    """The part of the working copy worth OCRing in a trial: the inked area, at most a
    TRIAL_WINDOW square placed where the ink is densest."""
    scale = work.width / mask.width
    box = mask.getbbox()
    if box is None:
        return work
    pad = 4
    left, top, right, bottom = (
        max(0, round((box[0] - pad) * scale)),
        max(0, round((box[1] - pad) * scale)),
        min(work.width, round((box[2] + pad) * scale)),
        min(work.height, round((box[3] + pad) * scale)),
    )
    side = TRIAL_WINDOW
    if right - left <= side and bottom - top <= side:
        return work.crop((left, top, right, bottom))
    # Slide a window over a grid of half-window steps; keep the one with most ink, but
    # not a solid block (a photo or a black bar reads as nothing in any orientation).
    best_box, best_ink = None, -1.0
    xs = _grid(left, right, side)
    ys = _grid(top, bottom, side)
    for y in ys:
        for x in xs:
            cell = mask.crop(
                (
                    int(x / scale),
                    int(y / scale),
                    int((x + side) / scale),
                    int((y + side) / scale),
                )
            )
            ink = cell.histogram()[255] / max(1, cell.width * cell.height)
            if ink < 0.35 and ink > best_ink:
                best_ink, best_box = ink, (x, y, x + side, y + side)
    if best_box is None:
        best_box = (left, top, left + side, top + side)
    return work.crop(best_box)


def _grid(start: int, stop: int, side: int) -> list[int]:
    if stop - start <= side:
        return [start]
    count = math.ceil((stop - start - side) / (side / 2)) + 1
    step = (stop - start - side) / (count - 1)
    return [round(start + i * step) for i in range(count)]


def _orient(
    work: Image.Image,
    mask: Image.Image,
    layout: _Layout,
    lang: str,
    deadline: _Deadline,
) -> tuple[int, str, _Osd | None]:
    """Decide the clockwise quarter turn that makes the (deskewed) working copy upright.

    Also returns OSD's answer (or None), whose script guess picks the OCR languages.
    """
    osd = _osd(work, deadline) if "osd" in available_languages() else None
    if osd is not None and osd.confidence >= OSD_MIN_CONFIDENCE:
        return osd.rotation, "osd", osd

    if layout.axis == "horizontal":
        candidates = [0, 180]
    elif layout.axis == "vertical":
        candidates = [90, 270]
    else:
        candidates = list(_ROTATIONS)
    prior = osd.rotation if osd is not None and osd.rotation in candidates else candidates[0]

    crop = _trial_crop(work, mask)
    if osd is not None and osd.script_confidence >= OSD_MIN_SCRIPT_CONFIDENCE:
        lang = languages_for_script(lang, osd.script)  # fewer models: a faster trial
    scores = {}
    for rotation in candidates:
        data = _run(
            pytesseract.image_to_data,
            _turn(crop, rotation),
            deadline,
            lang=lang,
            config="--psm 6",  # one block: psm 3 would find sideways lines and read them
            output_type=pytesseract.Output.DICT,
        )
        scores[rotation] = _trial_score(data)
    best = max(candidates, key=lambda rotation: scores[rotation])
    if scores[best] < TRIAL_MIN_SCORE:
        return 0, "none", osd
    if best != prior and scores[best] < TRIAL_MARGIN * scores[prior]:
        best = prior
    return best, "trial", osd


# --------------------------------------------------------------------------- recognize


def _rebuild_text(data: dict) -> tuple[str, list[float]]:
    """Text with line and paragraph breaks from image_to_data rows, and word confidences.

    Rows come in reading order (right to left for Persian); a new line starts at each new
    (block, paragraph, line) and a blank line separates paragraphs, as Tesseract's own
    text output does.
    """
    paragraphs: list[list[list[str]]] = []
    confidences: list[float] = []
    last_par = last_line = None
    for i, word in enumerate(data["text"]):
        word = word.strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        par = (data["page_num"][i], data["block_num"][i], data["par_num"][i])
        line = (*par, data["line_num"][i])
        if par != last_par:
            paragraphs.append([])
            last_par = par
            last_line = None
        if line != last_line:
            paragraphs[-1].append([])
            last_line = line
        paragraphs[-1][-1].append(word)
        confidences.append(conf)
    text = "\n\n".join("\n".join(" ".join(words) for words in lines) for lines in paragraphs)
    return text, confidences


def recognize(image: Image.Image, lang: str = "eng", *, timeout: float = 600) -> OcrResult:
    """OCR one page image: upright it, deskew it, then read it with one Tesseract pass.

    ``lang`` is Tesseract's ``-l`` value (``"fas+eng"``). ``timeout`` bounds all the
    Tesseract runs for this page together; past it, OcrError. The caller keeps images
    to ~40 Mpx; the orientation and deskew steps work on small copies whatever the size.
    """
    check_languages(lang)
    engine = f"tesseract {tesseract_version()}"
    deadline = _Deadline(timeout)

    gray = _to_gray(image)
    small = _downscale(gray, SKEW_LONG_SIDE)
    mask = _ink_mask(small)
    rotation, skew, method = 0, 0.0, "none"
    osd: _Osd | None = None
    if mask is not None:
        layout = _measure_layout(mask)
        skew = layout.skew
        work = _turn(_scaled(gray, _work_scale(gray, small, layout)), skew)
        work_mask = (
            mask.rotate(-skew, resample=Image.Resampling.NEAREST, expand=True) if skew else mask
        )
        rotation, method, osd = _orient(work, work_mask, layout, lang, deadline)

    upright = _turn(gray, rotation + skew)
    script_known = osd is not None and osd.script_confidence >= OSD_MIN_SCRIPT_CONFIDENCE
    used = languages_for_script(lang, osd.script) if script_known else lang
    text, confidences = _read(upright, used, deadline)
    if not script_known and "+" in lang:
        script = dominant_script(text)
        narrowed = languages_for_script(lang, script) if script else lang
        if narrowed != lang:
            text, confidences = _read(upright, narrowed, deadline)
            used = narrowed
    return OcrResult(
        text=text,
        confidence=sum(confidences) / len(confidences) if confidences else None,
        word_count=len(confidences),
        rotation=rotation,
        skew=round(skew, 2),
        orientation_method=method,
        lang=used,
        engine=engine,
    )


def _read(image: Image.Image, lang: str, deadline: _Deadline) -> tuple[str, list[float]]:
    """The one full OCR pass: text with line structure, and word confidences."""
    data = _run(
        pytesseract.image_to_data,
        image,
        deadline,
        lang=lang,
        config="--psm 3",
        output_type=pytesseract.Output.DICT,
    )
    return _rebuild_text(data)


def languages_for_script(lang: str, script: str) -> str:
    """The part of a multi-language request written in ``script`` ("Arabic" or "Latin").

    Returns ``lang`` unchanged when the request has no language of that script, or only
    languages of that script.
    """
    parts = [p for p in lang.split("+") if p]
    if script == "Arabic":
        subset = [p for p in parts if p in ARABIC_SCRIPT_LANGS]
    elif script == "Latin":
        subset = [p for p in parts if p not in ARABIC_SCRIPT_LANGS]
    else:
        return lang
    return "+".join(subset) if subset else lang


def dominant_script(text: str) -> str | None:
    """ "Arabic" or "Latin" when at least SCRIPT_LETTER_SHARE of the letters are of it."""
    arabic = latin = 0
    for char in text:
        if not char.isalpha():
            continue
        if "\u0600" <= char <= "\u06ff" or "\ufb50" <= char <= "\ufeff":
            arabic += 1
        elif char.isascii() or "\u00c0" <= char <= "\u024f":
            latin += 1
    letters = arabic + latin
    if letters < 3:
        return None
    if arabic >= SCRIPT_LETTER_SHARE * letters:
        return "Arabic"
    if latin >= SCRIPT_LETTER_SHARE * letters:
        return "Latin"
    return None
