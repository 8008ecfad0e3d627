"""Ingest of the generated fixture trove: counts, text, dates, markers, OCR quality, dedupe."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from tests.conftest import PAGE_KEYS, needs_tesseract
from workbench import views
from workbench.pipeline import ingest
from workbench.quality import character_error_rate
from workbench.store import Case

pytestmark = needs_tesseract

# Measured on the small trove (seed 1): mean CER eng 0.004, fas 0.08, the fas figure
# dominated by one sparse page where Tesseract's layout analysis drops a whole line
# (CER 0.29). Persian page markers: 7 of 8 read right (Tesseract reads one "۳" as "۲").
# A regression past these bounds means OCR got worse, not noise.
MAX_MEAN_CER = {"eng": 0.02, "fas": 0.10}
MIN_MARKER_SHARE_ON_SCANS = 0.75


def _pages_by_key(case_dir: Path) -> dict[tuple[str, int], dict]:
    with Case.open(case_dir) as case:
        records = {}
        for row in views.page_records(case):
            records[(row["source_path"], row["page_number"])] = views.page_detail(
                case, row["page_id"]
            )
    return records


def test_every_ground_truth_page_is_ingested_once(ingested_small_trove, small_trove, ground_truth):
    case_dir, report = ingested_small_trove
    assert report.failures == []
    pages = _pages_by_key(case_dir)
    expected = {
        (str(small_trove / f["path"]), p["page_number"])
        for f in ground_truth["files"]
        for p in f["pages"]
    }
    assert set(pages) == expected
    assert len(pages) == ground_truth["total_pages"]
    ids = [p["page_id"] for p in pages.values()]
    assert sorted(ids) == [f"WB-{n:06d}" for n in range(1, len(ids) + 1)]


def test_text_source_follows_file_kind(ingested_small_trove, small_trove, ground_truth):
    case_dir, _ = ingested_small_trove
    pages = _pages_by_key(case_dir)
    for f in ground_truth["files"]:
        for p in f["pages"]:
            page = pages[(str(small_trove / f["path"]), p["page_number"])]
            expected = "layer" if f["kind"] == "born_digital" else "ocr"
            assert page["text_source"] == expected, (f["path"], p["page_number"])
            assert len(page["page_sha256"]) == 64
            if expected == "ocr":
                assert page["ocr"]["engine"].startswith("tesseract")
                # asked for fas+eng, each page is read in its own script's language
                assert page["ocr"]["lang"] == p["lang"]
                assert page["ocr_confidence"] is not None


def test_dates_and_markers_equal_ground_truth_on_born_digital_pages(
    ingested_small_trove, small_trove, ground_truth
):
    case_dir, _ = ingested_small_trove
    pages = _pages_by_key(case_dir)
    checked = 0
    for f in ground_truth["files"]:
        if f["kind"] != "born_digital":
            continue
        for p in f["pages"]:
            page = pages[(str(small_trove / f["path"]), p["page_number"])]
            found = [(d["iso"], d["calendar"]) for d in page["dates"]]
            assert found == [(d["iso"], d["calendar"]) for d in p["dates"]], page["page_id"]
            marker = page["page_marker"]
            assert (marker["number"], marker["total"]) == (
                p["marker"]["number"],
                p["marker"]["total"],
            )
            checked += 1
    assert checked >= 10


def test_scanned_pages_are_put_upright_and_read(ingested_small_trove, small_trove, ground_truth):
    case_dir, _ = ingested_small_trove
    pages = _pages_by_key(case_dir)
    errors: dict[str, list[float]] = {"eng": [], "fas": []}
    markers_right = markers_total = 0
    for f in ground_truth["files"]:
        if f["kind"] == "born_digital":
            continue
        for p in f["pages"]:
            page = pages[(str(small_trove / f["path"]), p["page_number"])]
            # ground truth: how far the content was turned clockwise; workbench records
            # how far it turned the image clockwise to put it upright
            upright = (360 - p["rotation"]) % 360
            assert page["ocr"]["rotation"] == upright, (f["path"], p["page_number"])
            errors[p["lang"]].append(character_error_rate(p["text"], page["text"]))
            markers_total += 1
            marker = page["page_marker"]
            if marker and (marker["number"], marker["total"]) == (
                p["marker"]["number"],
                p["marker"]["total"],
            ):
                markers_right += 1
    for lang, values in errors.items():
        assert values, f"the small trove has no scanned {lang} pages"
        mean = sum(values) / len(values)
        assert mean <= MAX_MEAN_CER[lang], f"{lang} mean CER {mean:.3f} over {values}"
    assert markers_right >= markers_total * MIN_MARKER_SHARE_ON_SCANS


def test_file_metadata_is_recorded(ingested_small_trove):
    case_dir, _ = ingested_small_trove
    with Case.open(case_dir) as case:
        records = views.source_records(case)
        pdfs = [s for s in case.sources() if s.kind == "pdf"]
        images = [s for s in case.sources() if s.kind == "image"]
    assert all(r["status"] == "ingested" for r in records)
    assert pdfs and images
    born = [s for s in pdfs if s.metadata["info"]["producer"]]
    assert born, "no PDF producer recorded"
    assert all(s.metadata["pdf_version"] for s in pdfs)
    assert any(s.metadata["info"]["creation_date"] for s in pdfs)
    assert any(s.metadata["fonts"] for s in pdfs)
    assert all(s.metadata["width_px"] > 0 for s in images)
    assert any(s.metadata["exif"].get("Model") for s in images)


def test_reingest_adds_nothing_and_a_copy_is_a_duplicate(small_trove, tmp_path):
    born = sorted((small_trove / "born_digital").rglob("*.pdf"))[:3]
    case_dir = tmp_path / "case"
    with Case.open(case_dir, create=True) as case:
        first = ingest(case, [str(p) for p in born], jobs=1)
        assert first.files_ingested == 3
        pages_before = case.counts()["pages"]
        copy = tmp_path / "renamed copy.bin"
        shutil.copy(born[0], copy)
        again = ingest(case, [str(p) for p in born] + [str(copy)], jobs=1)
        assert again.files_ingested == 0
        assert again.files_already == 3
        assert again.files_duplicate == 1
        assert case.counts()["pages"] == pages_before
        third = ingest(case, [str(copy)], jobs=1)
        assert third.files_duplicate == 1
        records = views.source_records(case)
    duplicates = [r for r in records if r["status"] == "duplicate"]
    assert len(duplicates) == 1
    assert duplicates[0]["duplicate_of"] == str(born[0])


def test_two_copies_in_one_run_ingest_once(small_trove, tmp_path):
    source = sorted((small_trove / "born_digital").rglob("*.pdf"))[0]
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    shutil.copy(source, a)
    shutil.copy(source, b)
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(a), str(b)], jobs=1)
        statuses = Counter(s.status for s in case.sources())
    assert report.files_ingested == 1 and report.files_duplicate == 1
    assert statuses == {"ingested": 1, "duplicate": 1}


def test_pages_json_has_the_documented_keys(ingested_small_trove):
    case_dir, _ = ingested_small_trove
    with Case.open(case_dir) as case:
        record = next(views.page_records(case))
    assert set(record) >= PAGE_KEYS
    json.dumps(record)


def test_a_file_changed_during_ingest_is_not_committed(small_trove, tmp_path):
    """Custody: pages read from a file that changed after it was hashed are not stored."""
    from workbench.pipeline import IngestObserver

    source = sorted((small_trove / "born_digital").rglob("*.pdf"))[0]
    target = tmp_path / "moving.pdf"
    shutil.copy(source, target)

    class TamperOnFirstPage(IngestObserver):
        done = False

        def page_done(self, pages_done: int, total_pages: int) -> None:
            if not self.done:
                with open(target, "ab") as handle:
                    handle.write(b"\n% appended after hashing\n")
                self.done = True

    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(target)], jobs=1, observer=TamperOnFirstPage())
        assert case.counts()["pages"] == 0
        [source_row] = case.sources()
    assert report.failures == [(str(target), source_row.error)]
    assert "changed while it was being ingested" in source_row.error
    assert source_row.status == "failed"


def test_reocr_replaces_the_reading_and_logs_it(small_trove, tmp_path):
    from workbench import index, review
    from workbench.pipeline import reocr_page

    english = sorted((small_trove / "born_digital").rglob("*.pdf"))[0]  # an English bundle
    with Case.open(tmp_path / "case", create=True) as case:
        ingest(case, [str(english)], jobs=1)
        before = views.page_detail(case, "WB-000001")
        after = reocr_page(case, "WB-000001", "eng", reviewer="alice")
        events = list(review.iter_events(case))
        index.sync(case)
        word = max(before["text"].split(), key=len)
        found = [h.record["page_id"] for h in index.search(case, f'"{word}"', limit=50).hits]
    assert before["text_source"] == "layer"
    assert after["text_source"] == "ocr" and after["ocr"]["lang"] == "eng"
    assert character_error_rate(before["text"], after["text"]) < 0.05
    assert [(d["iso"]) for d in after["dates"]] == [(d["iso"]) for d in before["dates"]]
    [event] = events
    assert event["kind"] == "reocr" and event["payload"]["previous_text_source"] == "layer"
    assert review.verify_chain(events).ok
    assert "WB-000001" in found


def test_pages_are_indexed_while_the_workers_read(small_trove, tmp_path, monkeypatch):
    """The feeder thread indexes committed pages in batches during the run; the final
    sync takes the rest, so every page is searchable and none is indexed twice."""
    from workbench import index, pipeline

    monkeypatch.setattr(pipeline, "FEED_PAGES", 3)
    monkeypatch.setattr(index, "SYNC_BATCH", 4)
    synced: list[int] = []
    real_sync = index.sync

    def counting_sync(case, **kwargs):
        done = real_sync(case, **kwargs)
        synced.append(done)
        return done

    monkeypatch.setattr(index, "sync", counting_sync)
    with Case.open(tmp_path / "case", create=True) as case:
        report = ingest(case, [str(small_trove / "born_digital")], jobs=2)
        assert report.pages_added > 8 and report.index_problem is None
        assert report.pages_indexed == report.pages_added == sum(synced)
        assert len([n for n in synced if n]) > 1  # more than the one final sync
        assert index.pending(case) == 0
        total = index.search(case, "lang:fas OR lang:eng", limit=1).total
        assert total == case.counts()["pages"]


def test_the_gil_switch_interval_is_short_during_the_page_loop_and_restored(monkeypatch):
    """The page loop's SQLite calls must not wait 5 ms each for the index feeder to hand
    the GIL back (pipeline._quick_thread_switches); ingests in two threads of one
    process (the app) leave the interval as it was when the last one ends."""
    import sys

    from workbench import pipeline

    before = sys.getswitchinterval()
    short = min(before, pipeline.SWITCH_INTERVAL)
    first, second = pipeline._quick_thread_switches(), pipeline._quick_thread_switches()
    first.__enter__()
    assert sys.getswitchinterval() == short
    second.__enter__()
    first.__exit__(None, None, None)  # the first ingest ends while the second runs
    assert sys.getswitchinterval() == short
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before
