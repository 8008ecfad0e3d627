"""bad-redaction: text still under black boxes is found, on real files (x-ray's test
PDFs in ../shared/corpus/safety/) and on planted ones, and nothing is reported for boxes
that hide nothing, boxes under visible text, boxes that only touch text or redactions
really applied. The finding never carries the hidden text; ``show --hidden`` prints it,
``show`` masks it."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS, needs_corpus
from workbench import findings, redaction
from workbench.cli import main
from workbench.pipeline import ingest
from workbench.store import Case

PLANTED = [
    "bad_redaction.pdf",
    "box_in_text_colour.pdf",
    "clean_redaction_empty_box.pdf",
    "clean_redaction_under_text.pdf",
    "clean_redaction_touching.pdf",
    "clean_redaction_applied.pdf",
]
REAL = [
    "safety/xray-rectangles_yes_2.pdf",
    "safety/xray-rect_ordering_1.23.pdf",
    "safety/xray-no_bad_redactions.2.1.pdf",
]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    from fixtures.anomalies import generate_anomaly_trove

    out = tmp_path_factory.mktemp("redactions")
    truth = json.loads(generate_anomaly_trove(out).read_text(encoding="utf-8"))
    return out / "anomalies", [a for a in truth["anomalies"] if a["check"] == "bad-redaction"]


@pytest.fixture(scope="module")
def checked(planted, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list]]:
    """The planted files (and x-ray's, when the corpus is here) ingested and checked."""
    folder, _ = planted
    paths = [str(folder / name) for name in PLANTED]
    if CORPUS.is_dir():
        paths += [str(CORPUS / name) for name in REAL]
    case_dir = tmp_path_factory.mktemp("redaction-case") / "case"
    with Case.open(case_dir, create=True) as case:
        report = ingest(case, paths, lang="eng", jobs=1)
        assert report.ok, report.failures
        findings.run_checks(case, ["bad-redaction"])
        names = {s.sha256: Path(s.path).name for s in case.sources()}
        by_file: dict[str, list] = {Path(p).name: [] for p in paths}
        for record in findings.finding_records(case):
            by_file[names[record["source_sha256"]]].append(record)
    return case_dir, by_file


def _show(case_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["show", *args], env={"WORKBENCH_CASE": str(case_dir)}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_planted_bad_redactions_are_alerts_without_the_text(planted, checked) -> None:
    _, truth = planted
    _, by_file = checked
    assert len(truth) == 2
    for anomaly in truth:
        (found,) = by_file[Path(anomaly["file"]).name]
        assert found["check"] == "bad-redaction" and found["severity"] == "alert"
        characters = anomaly["evidence"]["characters"]
        assert found["evidence"]["characters"] == characters
        assert found["message"].startswith(f"{characters} characters of text still under a")
        assert "on page 1" in found["message"]
        (box,) = found["evidence"]["boxes"]
        assert box["how"] == anomaly["evidence"]["boxes"][0]["how"]
        assert box["colour"] == "#000000" and len(box["rect"]) == 4
        assert box["lines"] and sum(line["characters"] for line in box["lines"]) == characters
        dumped = json.dumps(found)
        for word in anomaly["hidden_words"]:
            assert word not in dumped


@pytest.mark.parametrize("name", [n for n in PLANTED if n.startswith("clean_")])
def test_harmless_boxes_give_nothing(checked, name) -> None:
    _, by_file = checked
    assert by_file[name] == []


@needs_corpus
def test_xray_file_with_text_under_a_box(checked) -> None:
    _, by_file = checked
    (found,) = by_file["xray-rectangles_yes_2.pdf"]
    assert found["severity"] == "alert" and found["evidence"]["page"] == 1
    assert found["evidence"]["characters"] == 3  # "def" of "abcdefghi", black on black
    assert found["evidence"]["boxes"][0]["how"] == "text in the box's colour"
    assert "def" not in json.dumps(found)


@needs_corpus
@pytest.mark.parametrize("name", ["xray-rect_ordering_1.23.pdf", "xray-no_bad_redactions.2.1.pdf"])
def test_xray_files_whose_boxes_hide_nothing(checked, name) -> None:
    _, by_file = checked
    assert by_file[name] == []


def test_show_masks_and_hidden_prints(planted, checked) -> None:
    case_dir, by_file = checked
    _, truth = planted
    anomaly = next(a for a in truth if a["file"].endswith("/bad_redaction.pdf"))
    (found,) = by_file["bad_redaction.pdf"]
    page_id = found["page_ids"][0]
    words = anomaly["hidden_words"]

    shown = _show(case_dir, page_id)
    assert redaction.MASK * len(words[0]) in shown
    assert not any(word in shown for word in words)
    as_json = json.loads(_show(case_dir, page_id, "--json"))
    assert "hidden_text" not in as_json
    assert not any(word in json.dumps(as_json, ensure_ascii=False) for word in words)

    revealed = _show(case_dir, page_id, "--hidden")
    characters = anomaly["evidence"]["characters"]
    assert f"HIDDEN TEXT    {characters} characters under 1 box," in revealed
    assert f"HIDDEN: {' '.join(words)}" in revealed
    assert revealed.count(words[0]) == 1  # only in the labelled section, masked in the text
    hidden_json = json.loads(_show(case_dir, page_id, "--hidden", "--json"))
    (box,) = hidden_json["hidden_text"]
    assert box["text"] == " ".join(words) and box["characters"] == characters


def test_show_hidden_on_a_page_without_boxes(checked) -> None:
    case_dir, by_file = checked
    with Case.open(case_dir) as case:
        page_id = next(
            r["page_id"] for r in case.page_rows() if r["source_path"].endswith("applied.pdf")
        )
    assert "hidden text    none under boxes on this page" in _show(case_dir, page_id, "--hidden")
    assert json.loads(_show(case_dir, page_id, "--hidden", "--json"))["hidden_text"] == []


def test_a_flagged_page_whose_file_changed_is_withheld(planted, checked, tmp_path) -> None:
    """Without the file the hidden characters cannot be located: the text is withheld,
    and --hidden fails with the custody error (exit 3)."""
    import shutil

    case_dir, by_file = checked
    copy = tmp_path / "case"
    shutil.copytree(case_dir, copy)
    folder, truth = planted
    (found,) = by_file["box_in_text_colour.pdf"]
    words = next(a for a in truth if a["file"].endswith("colour.pdf"))["hidden_words"]
    source = folder / "box_in_text_colour.pdf"
    kept = source.read_bytes()
    try:
        source.write_bytes(kept + b"\n% changed\n")
        shown = _show(copy, found["page_ids"][0])
        assert "[page text withheld" in shown
        assert not any(word in shown for word in words)
        result = CliRunner().invoke(
            main, ["show", found["page_ids"][0], "--hidden"], env={"WORKBENCH_CASE": str(copy)}
        )
        assert result.exit_code == 3 and "changed since it was ingested" in result.output
    finally:
        source.write_bytes(kept)


def _page_with(draw) -> bytes:  # type: ignore[no-untyped-def]
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    draw(page)
    return doc.tobytes()


def _words(page: pymupdf.Page, colour=(0, 0, 0)) -> None:  # type: ignore[no-untyped-def]
    page.insert_text((40, 100), "Ambassador Karimi met the source", fontsize=12, color=colour)


BOX = pymupdf.Rect(38, 86, 146, 105)  # over "Ambassador Karimi"


@pytest.mark.parametrize(
    ("name", "draw", "hidden"),
    [
        ("box over text", lambda p: (_words(p), p.draw_rect(BOX, color=None, fill=(0, 0, 0))), 16),
        (
            "navy box over grey text",
            lambda p: (_words(p, (0.3, 0.3, 0.3)), p.draw_rect(BOX, color=None, fill=(0, 0, 0.3))),
            16,
        ),
        (
            "black box under black text",
            lambda p: (p.draw_rect(BOX, color=None, fill=(0, 0, 0)), _words(p)),
            16,
        ),
        (
            "black box under white text",
            lambda p: (p.draw_rect(BOX, color=None, fill=(0, 0, 0)), _words(p, (1, 1, 1))),
            0,
        ),
        (
            "half-transparent box",
            lambda p: (_words(p), p.draw_rect(BOX, color=None, fill=(0, 0, 0), fill_opacity=0.5)),
            0,
        ),
        (
            "yellow box over text (a highlight)",
            lambda p: (_words(p), p.draw_rect(BOX, color=None, fill=(1, 1, 0))),
            0,
        ),
        (
            "white box over text (layout, not a redaction)",
            lambda p: (_words(p), p.draw_rect(BOX, color=None, fill=(1, 1, 1))),
            0,
        ),
        (
            "box touching the line from below",
            lambda p: (
                _words(p),
                p.draw_rect(pymupdf.Rect(38, 100, 146, 112), color=None, fill=(0, 0, 0)),
            ),
            0,
        ),
        (
            "box over a placeholder XXXX",
            lambda p: (
                p.insert_text((40, 100), "XXXXXXXX", fontsize=12),
                p.draw_rect(BOX, color=None, fill=(0, 0, 0)),
            ),
            0,
        ),
        (
            "text drawn over the box in red",
            lambda p: (p.draw_rect(BOX, color=None, fill=(0, 0, 0)), _words(p, (1, 0, 0))),
            0,
        ),
    ],
)
def test_rules_on_drawn_pages(name, draw, hidden) -> None:
    found = dict(redaction.scan(_page_with(draw), [1]))
    covers = found.get(1, [])
    assert sum(c.characters for c in covers) == hidden, name


def _annotation(page: pymupdf.Page, kind: str) -> None:
    if kind == "square":
        annot = page.add_rect_annot(BOX)
        annot.set_colors(stroke=(0, 0, 0), fill=(0, 0, 0))
    else:
        annot = page.add_highlight_annot(BOX)
        annot.set_colors(stroke=(0, 0, 0))
    annot.update()


@pytest.mark.parametrize("kind", ["square", "highlight"])
def test_black_annotations_over_text(kind: str) -> None:
    """A black rectangle comment or a black highlight over words (a reader's way to
    "redact"): drawn after the page's content, so over its text."""
    data = _page_with(lambda p: (_words(p), _annotation(p, kind)))
    (number, covers), *_ = redaction.scan(data, [1])
    assert covers[0].text == "Ambassador Karimi"


def test_a_box_inside_a_form_xobject_is_seen() -> None:
    """Pages placed as forms (show_pdf_page) keep their boxes out of the page's own
    content stream; the cheap scan must look inside the forms it draws."""
    inner = pymupdf.open(
        stream=_page_with(lambda p: (_words(p), p.draw_rect(BOX, color=None, fill=(0, 0, 0))))
    )
    outer = pymupdf.open()
    outer.new_page(width=300, height=200).show_pdf_page(pymupdf.Rect(0, 0, 300, 200), inner, 0)
    data = outer.tobytes()
    with pymupdf.open(stream=data) as doc:
        assert "re" not in doc[0].read_contents().decode("latin-1").split()
    (number, covers), *_ = redaction.scan(data, [1])
    assert number == 1 and covers[0].text == "Ambassador Karimi"


def test_pages_without_fills_are_skipped_cheaply(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_drawings(page):  # type: ignore[no-untyped-def]
        raise AssertionError("a page with nothing filled was listed for drawings")

    monkeypatch.setattr(redaction, "boxes", no_drawings)
    assert list(redaction.scan(_page_with(_words), [1])) == []


def test_generated_born_digital_pages_give_nothing(small_trove: Path) -> None:
    files = sorted((small_trove / "born_digital").rglob("*.pdf"))
    assert files
    for path in files:
        with pymupdf.open(path) as doc:
            pages = list(range(1, doc.page_count + 1))
        assert list(redaction.scan(path.read_bytes(), pages)) == [], path.name


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_pages(rotation: int) -> None:
    """The render is rotated, the drawings and characters are not: the box's pixels
    must be looked up where the rotated page shows them."""

    def draw(page: pymupdf.Page) -> None:
        _words(page)
        page.draw_rect(BOX, color=None, fill=(0, 0, 0))
        page.set_rotation(rotation)

    (number, covers), *_ = redaction.scan(_page_with(draw), [1])
    assert covers[0].text == "Ambassador Karimi"


def test_what_the_render_shows_decides() -> None:
    """Characters under a box but drawn again in white on top of it are on show (the
    pixels of the box area are not one colour): nothing is reported."""

    def draw(page: pymupdf.Page) -> None:
        _words(page)
        page.draw_rect(BOX, color=None, fill=(0, 0, 0))
        _words(page, (1, 1, 1))

    assert list(redaction.scan(_page_with(draw), [1])) == []


def test_persian_words_are_masked_and_revealed_as_letters(planted) -> None:
    """A box over a Persian word of a generated cable: masked in the text layer as ingest
    reads it, and revealed as letters (not the presentation forms the PDF draws)."""
    import unicodedata

    from workbench import readers

    folder, _ = planted
    with pymupdf.open(folder / "clean_2.pdf") as doc:  # a Persian cable
        page = doc[0]
        word = next(w for w in page.get_text("words") if len(w[4]) >= 4 and w[4].isalpha())
        page.draw_rect(pymupdf.Rect(word[:4]) + (-1, -1, 1, 1), color=None, fill=(0, 0, 0))
        data = doc.tobytes()
    covers, masked = redaction.page_covers(data, 1)
    letters = unicodedata.normalize("NFKC", word[4])
    assert [c.text for c in covers] == [letters]
    with pymupdf.open(stream=data) as doc:
        stored = readers._clean_text(doc[0].get_text("text"))
    assert masked is not None and len(masked) == len(stored)
    assert letters not in masked and redaction.MASK * len(letters) in masked
    assert masked.replace(redaction.MASK * len(letters), letters, 1) == stored


@pytest.mark.parametrize(
    ("content", "fills"),
    [
        (b"0 0 10 10 re f/GS1 gs", True),  # a name may follow an operator directly
        (b"re\nf*\n", True),
        (b"q 1 0 0 RG 0 0 5 5 re B Q", True),
        (b"0 g 1 1 m 2 2 l h b*", True),
        (b"BT /F1 12 Tf [(f)-20(of)] TJ <0f> Tj ET", False),
        (b"q /Fm0 Do Q", False),
    ],
)
def test_the_cheap_scan_finds_fill_operators(content: bytes, fills: bool) -> None:
    assert bool(redaction._FILL_OPERATOR.search(content)) is fills
