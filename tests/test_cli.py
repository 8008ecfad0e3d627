"""The CLI through click's runner: inspection commands, JSON keys, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PAGE_KEYS, needs_tesseract


@pytest.fixture
def two_files(small_trove: Path) -> list[str]:
    return [str(p) for p in sorted((small_trove / "born_digital").rglob("*.pdf"))[:2]]


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_status_on_a_missing_case_is_one_clean_line(cli):
    result = cli("status")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "no case here" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ingest_then_inspect(cli, two_files):
    result = cli("ingest", *two_files)
    assert result.exit_code == 0, result.stderr
    assert "ingested 2 file(s)" in result.stdout
    assert result.stderr == ""  # not a terminal: no progress bar

    status = json.loads(cli("status", "--json").stdout)
    assert status["sources_ingested"] == 2
    assert status["pages"] == status["pages_by_text_source"]["layer"] > 0

    sources = _json_lines(cli("sources", "--json").stdout)
    assert [s["path"] for s in sources] == two_files
    assert all({"path", "sha256", "pages", "status", "error"} <= set(s) for s in sources)

    pages = _json_lines(cli("pages", "--json").stdout)
    assert len(pages) == status["pages"]
    assert all(set(p) >= PAGE_KEYS for p in pages)
    assert pages[0]["page_id"] == "WB-000001"

    shown = json.loads(cli("show", "wb-000001", "--json").stdout)
    assert set(shown) >= PAGE_KEYS
    assert {"text", "metadata", "page_marker", "dates", "source_metadata"} <= set(shown)
    assert shown["text"]

    human = cli("show", "WB-000001").stdout
    assert "WB-000001" in human and shown["page_sha256"] in human


def test_show_unknown_page_is_a_clean_error(cli, two_files):
    cli("ingest", *two_files, "--quiet")
    result = cli("show", "WB-999999")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: no page 'WB-999999' in this case (ids look like WB-000001)"
    )


def test_prefix_at_creation(cli, two_files):
    assert cli("init", "--prefix", "leak").exit_code == 0
    cli("ingest", two_files[0], "--quiet")
    pages = _json_lines(cli("pages", "--json").stdout)
    assert pages[0]["page_id"] == "LEAK-000001"


@needs_tesseract
def test_unknown_ocr_language_names_the_package(cli, two_files):
    result = cli("ingest", two_files[0], "--lang", "xyz")
    assert result.exit_code == 4
    assert "xyz" in result.stderr and "Traceback" not in result.stderr


def test_quiet_prints_nothing_on_success(cli, two_files):
    result = cli("ingest", *two_files, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
