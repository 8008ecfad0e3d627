"""Start-up: each command imports what it needs when it needs it (issue #15, item 1).

Why: every command pays for what ``workbench.cli`` imports, ``--help`` included, and a
journalist scripting ``mark`` over 500 pages pays it 500 times. These tests look at the
modules a real process has loaded, never at a clock (speed is measured by
``make bench``, bench/startup.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import subprocess_env

# The heavy libraries no everyday command may import unless it uses them.
HEAVY = (
    "fitz",
    "pymupdf",
    "whoosh",
    "textual",
    "PIL",
    "numpy",
    "imagehash",
    "datasketch",
    "rapidfuzz",
    "pikepdf",
    "tesserocr",
)
# Run a command in a fresh interpreter, then write the names of its loaded modules.
_RUN = """
import json, sys
from workbench.cli import main
status = 0
try:
    main(sys.argv[2:], prog_name="workbench")
except SystemExit as exit:
    status = exit.code or 0
with open(sys.argv[1], "w") as out:
    json.dump({"status": status, "modules": sorted(sys.modules)}, out)
"""


def _heavy_loaded(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} & set(HEAVY)


def _loaded_by(tmp_path: Path, *args: str) -> set[str]:
    """The heavy top-level packages a fresh process loaded to run ``workbench ARGS``."""
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(report), *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.exists(), done.stderr
    result = json.loads(report.read_text())
    assert result["status"] == 0, done.stderr
    return _heavy_loaded(result["modules"])


@pytest.fixture(scope="module")
def two_page_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A case with one born-digital PDF of two pages (no OCR: fast), checked for bad
    redactions as `workbench ingest` does (else `show` must read the file to mask)."""
    import pymupdf

    from workbench import findings
    from workbench.pipeline import ingest
    from workbench.store import Case

    folder = tmp_path_factory.mktemp("startup")
    pdf = pymupdf.open()
    for text in ("The oil minister met the courier.", "Exports rose in 2014."):
        pdf.new_page().insert_text((72, 72), text)
    pdf.save(folder / "memo.pdf")
    with Case.open(folder / "case", create=True) as case:
        report = ingest(case, [str(folder / "memo.pdf")], jobs=1)
        findings.run_checks(case, ["bad-redaction"])
    assert report.pages_added == 2
    return folder / "case"


def test_importing_the_cli_loads_no_heavy_library(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, workbench.cli; print(json.dumps(sorted(sys.modules)))",
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert _heavy_loaded(json.loads(done.stdout)) == set()


def test_help_loads_no_heavy_library(tmp_path: Path) -> None:
    assert _loaded_by(tmp_path, "--help") == set()
    assert _loaded_by(tmp_path, "mark", "--help") == set()


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("show", "WB-000001"),
        ("pages",),
        ("findings",),
        ("export", "--format", "csv", "-o", "{tmp}/pages.csv"),
    ],
    ids=lambda args: args[0],
)
def test_reading_commands_load_no_heavy_library(
    two_page_case: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    args = tuple(arg.replace("{tmp}", str(tmp_path)) for arg in args)
    assert _loaded_by(tmp_path, "--case", str(two_page_case), *args) == set()


def test_mark_loads_nothing_heavy_and_search_only_the_index(
    two_page_case: Path, tmp_path: Path
) -> None:
    """mark leaves its pages queued for the index (no Whoosh); the next search brings the
    index up to date and finds the new status."""
    case = ["--case", str(two_page_case)]
    marked = _loaded_by(tmp_path, *case, "mark", "WB-000002", "--status", "verified",
                        "--reviewer", "tester")  # fmt: skip
    assert marked == set()
    assert _loaded_by(tmp_path, *case, "search", "oil") == {"whoosh"}
    found = subprocess.run(
        [sys.executable, "-m", "workbench", *case, "search", "status:verified"],
        env=subprocess_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "WB-000002" in found.stdout
    noted = _loaded_by(tmp_path, *case, "note", "WB-000001", "seen", "--reviewer", "tester")
    assert noted == {"whoosh"}


def test_the_kept_combining_mark_table_is_the_computed_one() -> None:
    from workbench import analysis, unicode_marks

    if unicodedata.unidata_version != unicode_marks.UNICODE_VERSION:
        pytest.skip(
            f"this Python has Unicode {unicodedata.unidata_version}; the table is for "
            f"{unicode_marks.UNICODE_VERSION} (and is not used here)"
        )
    assert analysis._mark_ranges() == unicode_marks.MARKS
    assert analysis._MARKS == unicode_marks.MARKS
