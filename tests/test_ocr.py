"""OCR: orientation, deskew, text and confidence on pages rendered here, deterministically.

Pages are drawn with PyMuPDF (HarfBuzz shapes the Persian) from seeded random sentences,
rendered at 300 dpi in grayscale, then turned/tilted with Pillow. A page "turned R" is
rotated R degrees counter-clockwise, so making it upright takes R degrees clockwise:
``OcrResult.rotation`` must be R.

CER bounds below were measured on Tesseract 5.3.0 with Debian bookworm's eng/fas packs
and given head-room: the English pages read at CER 0.000 in every orientation and skew
(plain Tesseract: 0.89 on the page turned 90 or 180); the Persian half page at 0.004
upright and upside down (plain Tesseract upside down: 0.76); the sparse page at 0.000
(plain Tesseract: 0.91-0.93).
"""

from __future__ import annotations

import os
import random
import shutil

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from workbench import ocr
from workbench.errors import OcrError
from workbench.quality import character_error_rate, edit_distance, normalize_for_cer

NASKH = "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf"

_EN_VOCABULARY = """the ministry report council budget transfer account signed meeting director
office security contract payment company minister letter confidential document approved
committee province river network shipment oil export bank during after before official
record secret funds general staff request order decision project central agency public
private month year week day evening morning foreign domestic trade market price value
number total amount received sent department regional local national court judge case
file evidence witness"""
EN_WORDS = _EN_VOCABULARY.split()

_FA_VOCABULARY = """وزارت کشور گزارش جلسه مدیر دفتر امنیت قرارداد پرداخت شرکت وزیر نامه محرمانه
سند تصویب کمیته استان رودخانه محموله نفت صادرات بانک پس از قبل رسمی پرونده سری بودجه
اعتبار کارکنان درخواست دستور تصمیم طرح مرکزی سازمان عمومی خصوصی ماه سال هفته روز عصر
صبح خارجی داخلی تجارت بازار قیمت ارزش شماره مجموع مبلغ دریافت ارسال اداره منطقه محلی
ملی دادگاه قاضی شاهد مدرک تهران اصفهان شیراز"""
FA_WORDS = _FA_VOCABULARY.split()

SPARSE_EN = ["Ministry of Interior", "Confidential report on the oil shipment", "Signed"]

# Measured bounds (see module docstring), with head-room.
CER_EN = 0.02
CER_FA = 0.05


# --------------------------------------------------------------------------- helpers


def _need(*langs: str) -> None:
    """Skip (not fail) where Tesseract or a language pack is missing on this machine."""
    if shutil.which("tesseract") is None:
        pytest.skip("Tesseract is not installed (apt-get install tesseract-ocr)")
    installed = ocr.available_languages()
    for lang in langs:
        if lang not in installed:
            pytest.skip(f"Tesseract language {lang!r} is not installed")


def _paragraphs(words: list[str], n_words: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    sentences, current = [], []
    for _ in range(n_words):
        current.append(rnd.choice(words))
        if len(current) >= rnd.randint(6, 14):
            sentences.append(" ".join(current) + ".")
            current = []
    if current:
        sentences.append(" ".join(current) + ".")
    return [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]


def _render(
    paragraphs: list[str],
    *,
    rtl: bool = False,
    font_size: float = 11,
    size: tuple[float, float] = (595, 842),
) -> Image.Image:
    """Paragraphs laid out by PyMuPDF on a page of ``size`` points, at 300 dpi, grayscale."""
    page = pymupdf.open().new_page(width=size[0], height=size[1])
    if rtl:
        # Noto Naskh from the system when present; MuPDF's built-in Noto Naskh otherwise.
        archive, face = None, ""
        if os.path.exists(NASKH):
            archive = pymupdf.Archive(os.path.dirname(NASKH))
            face = f"@font-face {{font-family: naskh; src: url({os.path.basename(NASKH)});}} "
        css = face + (
            f"* {{font-family: naskh; font-size: {font_size}pt;}} "
            "p {direction: rtl; text-align: right;}"
        )
        html = "".join(f'<p dir="rtl">{p}</p>' for p in paragraphs)
    else:
        archive = None
        css = f"* {{font-family: sans-serif; font-size: {font_size}pt;}}"
        html = "".join(f"<p>{p}</p>" for p in paragraphs)
    rect = pymupdf.Rect(45, 45, size[0] - 45, size[1] - 45)
    spare, _ = page.insert_htmlbox(rect, html, css=css, archive=archive, scale_low=1)
    assert spare >= 0, "test text does not fit the page"
    pix = page.get_pixmap(dpi=300, colorspace=pymupdf.csGRAY)
    return Image.frombytes("L", (pix.width, pix.height), pix.samples)


def _turned(image: Image.Image, clockwise_fix: int) -> Image.Image:
    """The page as scanned when it needs ``clockwise_fix`` degrees clockwise to be upright."""
    return image.rotate(clockwise_fix, expand=True)


def _tilted(image: Image.Image, ccw_degrees: float) -> Image.Image:
    return image.rotate(ccw_degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)


# Half an A4 page of 11 pt English (~1,500 characters): dense enough for OSD, half the
# OCR time of a full page.
EN_HALF = _paragraphs(EN_WORDS, 200, seed=1)
FA_HALF = _paragraphs(FA_WORDS, 160, seed=2)


@pytest.fixture(scope="module")
def english_page() -> Image.Image:
    return _render(EN_HALF, size=(595, 421))


@pytest.fixture(scope="module")
def persian_page() -> Image.Image:
    return _render(FA_HALF, rtl=True, font_size=13, size=(595, 421))


@pytest.fixture(scope="module")
def sparse_page() -> Image.Image:
    return _render(SPARSE_EN, font_size=12)


# --------------------------------------------------------------------------- orientation


@pytest.mark.slow
@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_dense_english_any_orientation(english_page: Image.Image, turn: int) -> None:
    _need("eng")
    result = ocr.recognize(_turned(english_page, turn), "eng")
    assert result.rotation == turn
    assert result.orientation_method == "trial"  # decided by reading a few lines
    assert result.skew == 0.0
    assert character_error_rate("\n".join(EN_HALF), result.text) < CER_EN
    assert result.confidence is not None and result.confidence > 85
    assert result.word_count == pytest.approx(200, abs=10)
    assert result.lang == "eng"
    assert result.engine == f"tesseract {ocr.tesseract_version()}"


@pytest.mark.parametrize("turn", [180, 90])
def test_sparse_page_is_put_upright(sparse_page: Image.Image, turn: int) -> None:
    """Three short lines: too little for OSD (it gives up or guesses with confidence < 4),
    the case OCRmyPDF's --rotate-pages leaves upside down. The trial must fix it."""
    _need("eng")
    result = ocr.recognize(_turned(sparse_page, turn), "eng")
    assert result.rotation == turn
    assert result.orientation_method == "trial"
    assert character_error_rate("\n".join(SPARSE_EN), result.text) < CER_EN


@pytest.mark.slow
@pytest.mark.parametrize("tilt", [2.5, -2.0])
def test_skew_is_corrected(english_page: Image.Image, tilt: float) -> None:
    """A page scanned tilted ``tilt`` degrees counter-clockwise is turned back clockwise."""
    _need("eng")
    result = ocr.recognize(_tilted(english_page, tilt), "eng")
    assert abs(result.skew - tilt) < 0.5
    assert result.rotation == 0
    assert character_error_rate("\n".join(EN_HALF), result.text) < CER_EN


@pytest.mark.parametrize(("turn", "tilt"), [(0, 2.5), (90, -2.0), (180, 1.0)])
def test_the_full_read_gets_the_page_upright_and_straight(
    english_page: Image.Image, turn: int, tilt: float
) -> None:
    """``_deskewed`` (OpenCV's warp) turns the scan back: measured again, the lines lie
    flat; nothing of the page is cut off and the new corners are paper."""
    scan = _turned(_tilted(english_page, tilt), turn)
    page = ocr._deskewed(scan, turn, tilt)
    mask = ocr._ink_mask(ocr._downscale(page, ocr.SKEW_LONG_SIDE))
    assert mask is not None
    layout = ocr._measure_layout(mask)
    assert layout.skew == 0.0  # under MIN_SKEW: nothing left to straighten
    assert page.width >= english_page.width and page.height >= english_page.height
    assert page.getpixel((0, 0)) == 255 and page.getpixel((page.width - 1, page.height - 1)) == 255
    ink = sum(ocr._ink_mask(english_page).histogram()[255:])
    assert sum(ocr._ink_mask(page).histogram()[255:]) == pytest.approx(ink, rel=0.05)
    assert ocr._deskewed(english_page, 0, 0.0) is english_page  # nothing to do


def test_skewed_sparse_page_upside_down(sparse_page: Image.Image) -> None:
    _need("eng")
    result = ocr.recognize(_turned(_tilted(sparse_page, 2.0), 180), "eng")
    assert result.rotation == 180
    assert abs(result.skew - 2.0) < 0.5
    assert character_error_rate("\n".join(SPARSE_EN), result.text) < CER_EN


@pytest.mark.slow
@pytest.mark.parametrize("turn", [0, 180])
def test_persian_page(persian_page: Image.Image, turn: int) -> None:
    """Asked for fas+eng, a Persian page is read with fas alone (the trial's script)."""
    _need("fas", "eng")
    result = ocr.recognize(_turned(persian_page, turn), "fas+eng")
    assert result.rotation == turn
    assert result.orientation_method in ("osd", "trial")
    assert result.lang == "fas"
    assert character_error_rate("\n".join(FA_HALF), result.text) < CER_FA


def test_trial_reads_every_turn_in_one_run(
    sparse_page: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The candidate turns share one Tesseract run, and each word counts for its own turn."""
    _need("eng")
    runs = []
    real_run = ocr._run
    monkeypatch.setattr(ocr, "_run", lambda *a, **k: runs.append(k) or real_run(*a, **k))
    page = _turned(sparse_page, 180)
    gray = ocr._to_gray(page)
    mask = ocr._ink_mask(ocr._downscale(gray, ocr.SKEW_LONG_SIDE))
    layout = ocr._measure_layout(mask)
    trial = ocr._trial(gray, mask, layout, [0, 90, 180, 270], "eng", ocr._Deadline(60))
    assert len(runs) == 1
    assert trial.best() == 180 and trial.conclusive()
    assert trial.scores[180] >= 3 * max(trial.scores[r] for r in (0, 90, 270))
    assert ocr.dominant_script(trial.texts[180]) == "Latin"


@pytest.mark.slow
def test_osd_decides_when_the_trial_reads_nothing(
    english_page: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback: a trial that finds no readable words leaves the turn to OSD."""
    _need("eng", "osd")
    nothing = ocr._Trial(scores={r: 0.0 for r in ocr._ROTATIONS}, texts={})
    monkeypatch.setattr(ocr, "_trial", lambda *args, **kwargs: nothing)
    result = ocr.recognize(_turned(english_page, 90), "eng")
    assert result.orientation_method == "osd"
    assert result.rotation == 90
    assert character_error_rate("\n".join(EN_HALF), result.text) < CER_EN


def test_plain_tesseract_fails_upside_down(persian_page: Image.Image) -> None:
    """Why orientation matters: without it an upside-down page reads as garbage."""
    _need("fas")
    text = ocr._rebuild_text(ocr._run(_turned(persian_page, 180), "fas", 3, ocr._Deadline(60)))[0]
    assert character_error_rate("\n".join(FA_HALF), text) > 0.5


# --------------------------------------------------------------------------- edge cases


def test_blank_page() -> None:
    _need("eng")
    result = ocr.recognize(Image.new("L", (1240, 1754), 255), "eng")
    assert result.text == ""
    assert result.confidence is None
    assert result.word_count == 0
    assert result.orientation_method == "none"
    assert result.rotation == 0 and result.skew == 0.0


def test_speckled_blank_page_does_not_crash() -> None:
    _need("eng")
    rnd = random.Random(3)
    image = Image.new("L", (1240, 1754), 250)
    for _ in range(40):
        x, y = rnd.randrange(1200), rnd.randrange(1700)
        image.paste(0, (x, y, x + 3, y + 3))
    result = ocr.recognize(image, "eng")
    assert result.rotation in (0, 90, 180, 270)
    assert result.word_count <= 3


def test_color_and_transparent_input_is_read() -> None:
    _need("eng")
    page = _render(["Confidential report on the oil shipment"], font_size=14, size=(420, 160))
    rgba = page.convert("RGBA")
    rgba.putalpha(255)
    result = ocr.recognize(rgba, "eng")
    assert "oil shipment" in result.text
    assert ocr._to_gray(Image.new("RGBA", (4, 4), (0, 0, 0, 0))).getpixel((0, 0)) == 255
    assert ocr._to_gray(Image.new("I;16", (4, 4), 65535)).getpixel((0, 0)) == 255


def test_timeout_raises_ocr_error(english_page: Image.Image) -> None:
    _need("eng")
    with pytest.raises(OcrError, match="did not finish"):
        ocr.recognize(english_page, "eng", timeout=0.01)


def test_tesseract_failure_raises_ocr_error() -> None:
    _need("eng")
    with pytest.raises(OcrError, match="Tesseract could not load the language data 'xyz'"):
        ocr._run(Image.new("L", (50, 50), 255), "xyz", 3, ocr._Deadline(30))


def test_missing_tesseract_raises_ocr_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "TESSERACT_PROGRAM", "/nonexistent/tesseract")
    ocr._installed.cache_clear()
    ocr.tesseract_version.cache_clear()
    try:
        with pytest.raises(OcrError, match="apt-get install tesseract-ocr"):
            ocr.available_languages()
        with pytest.raises(OcrError, match="not installed"):
            ocr.tesseract_version()
        with pytest.raises(OcrError, match="not installed"):
            ocr.recognize(Image.new("L", (9, 9)), "eng")
    finally:
        ocr._installed.cache_clear()
        ocr.tesseract_version.cache_clear()


def test_the_engine_reads_the_system_language_packs_in_process() -> None:
    """One engine per language set, kept loaded; the version recorded with each page is
    the library's that reads it, and it reads the packs `tesseract --list-langs` lists."""
    _need("eng")
    import tesserocr

    folder, installed = ocr._installed()
    assert "eng" in installed and os.path.isfile(os.path.join(folder, "eng.traineddata"))
    assert ocr.tesseract_version() == tesserocr.PyTessBaseAPI.Version().split()[0]
    image = Image.new("L", (400, 120), 255)
    ImageDraw.Draw(image).text((20, 30), "HELLO", fill=0, font=ImageFont.load_default(size=48))
    first = ocr._run(image, "eng", 7, ocr._Deadline(30))
    engine = ocr._engines["eng"]
    again = ocr._run(image, "eng", 7, ocr._Deadline(30))
    assert ocr._engines["eng"] is engine  # loaded once
    assert first == again and "HELLO" in first["text"]
    assert engine.GetDatapath().rstrip("/") == folder.rstrip("/")


# --------------------------------------------------------------------------- install


def test_check_languages_names_the_missing_pack() -> None:
    _need("eng")
    with pytest.raises(OcrError) as info:
        ocr.check_languages("xyz")
    assert "'xyz'" in info.value.message
    assert "apt-get install tesseract-ocr-xyz" in info.value.message
    with pytest.raises(OcrError, match="tesseract-ocr-chi-sim"):
        ocr.check_languages("eng+chi_sim")
    with pytest.raises(OcrError, match="not valid"):
        ocr.check_languages("eng+")
    ocr.check_languages("eng")  # installed: no error


def test_recognize_checks_languages_first() -> None:
    _need("eng")
    with pytest.raises(OcrError, match="tesseract-ocr-xyz"):
        ocr.recognize(Image.new("L", (10, 10), 255), "eng+xyz")


def test_version_and_threads() -> None:
    _need("eng")
    assert ocr.tesseract_version()[0].isdigit()
    assert {"eng"} <= ocr.available_languages()
    assert os.environ["OMP_THREAD_LIMIT"] == "1"


# --------------------------------------------------------------------------- quality


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("abc", "abc", 0.0),
        ("abc", "abd", 1 / 3),
        ("kitten", "sitting", 3 / 6),
        ("abc", "", 1.0),
        ("ab", "abcd", 1.0),
        ("a", "xyz", 3.0),
        ("", "", 0.0),
        ("", "noise", 1.0),
        ("a  b\n\nc\t", " a b c", 0.0),  # layout is not an error
        ("\ufefb", "\u0644\u0627", 0.0),  # Arabic ligature presentation form, NFKC
        ("ｆｕｌｌ", "full", 0.0),  # full-width Latin, NFKC
        ("سند محرمانه", "سند محرمانه", 0.0),
        ("سند محرمانه", "سید محرمانه", 1 / 11),
    ],
)
def test_character_error_rate(reference: str, hypothesis: str, expected: float) -> None:
    assert character_error_rate(reference, hypothesis) == pytest.approx(expected)


def test_normalize_for_cer() -> None:
    assert normalize_for_cer("  one\n two\t\tthree \u00a0") == "one two three"


def _naive_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        new = [i]
        for j, cb in enumerate(b, 1):
            new.append(min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (ca != cb)))
        row = new
    return row[-1]


def test_edit_distance_matches_textbook_dp() -> None:
    rnd = random.Random(7)
    for _ in range(1500):
        a = "".join(rnd.choice("ab cس") for _ in range(rnd.randint(0, 12)))
        b = "".join(rnd.choice("ab cس") for _ in range(rnd.randint(0, 12)))
        assert edit_distance(a, b) == _naive_distance(a, b), (a, b)
    a = "".join(rnd.choice("abcdefgh ") for _ in range(200))
    b = "".join(rnd.choice("abcdefgh ") for _ in range(180))
    assert edit_distance(a, b) == _naive_distance(a, b)


def test_cer_is_fast_on_full_pages() -> None:
    import time

    rnd = random.Random(11)
    a = "".join(rnd.choice("abcdefghij ") for _ in range(3000))
    b = "".join(rnd.choice("abcdefghij ") for _ in range(3000))
    start = time.perf_counter()
    character_error_rate(a, b)
    assert time.perf_counter() - start < 0.5  # measured ~5 ms; the naive DP takes ~1.2 s
