"""The release-date data file of the anachronism check: every row sourced, dated, and
matching the names it is meant for (and no other item's names with a wrong date)."""

from __future__ import annotations

import csv
import datetime
import io
import re

import pytest

from workbench.checks import anachronism

FIELDS = ("kind", "name", "first_release", "match", "examples", "source", "notes")


def _rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(anachronism.data_bytes().decode("utf-8"))))


def test_the_file_has_its_columns_and_enough_rows() -> None:
    reader = csv.DictReader(io.StringIO(anachronism.data_bytes().decode("utf-8")))
    assert tuple(reader.fieldnames or ()) == FIELDS
    rows = list(reader)
    assert len(rows) >= 60
    names = [row["name"] for row in rows]
    assert len(names) == len(set(names)), "two rows with one name"


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["name"])
def test_every_row_is_sourced_dated_and_valid(row: dict[str, str]) -> None:
    assert row["kind"] in anachronism.KINDS
    assert row["name"].strip()
    sources = [s.strip() for s in row["source"].split(";") if s.strip()]
    assert sources, "a row without a source"
    for source in sources:
        assert re.match(r"^https?://\S+", source), f"not a URL: {source!r}"
    day = datetime.date.fromisoformat(row["first_release"])
    assert datetime.date(1990, 1, 1) <= day <= datetime.date.today()
    re.compile(row["match"], re.IGNORECASE)
    assert [e for e in row["examples"].split("|") if e.strip()], "a row without an example"


def test_each_rule_matches_all_its_examples() -> None:
    for rule in anachronism.load_rules():
        for example in rule.examples:
            assert rule.matches(example), f"{rule.name}: {rule.pattern.pattern} misses {example!r}"


def test_no_rule_gives_another_items_names_a_later_date() -> None:
    """A rule may match another item's name only if its date is no later (a true, weaker
    bound: 'LibreOffice' matches 'LibreOffice 7.2'); a later date would be wrong."""
    rules = anachronism.load_rules()
    for rule in rules:
        for other in rules:
            if other is rule or other.kind != rule.kind:
                continue
            for example in other.examples:
                if rule.matches(example):
                    assert rule.first_release <= other.first_release, (
                        f"{rule.name} ({rule.first_release}) matches {example!r} of "
                        f"{other.name} ({other.first_release})"
                    )


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("software", "Microsoft® Word 2010", "Microsoft Office 2010"),
        ("software", "Microsoft® Word 2016", "Microsoft Office 2016"),
        ("software", "Microsoft Word - budget 2016.docx", None),
        (
            "software",
            "Acrobat Distiller 10.1.8 (Windows)",
            "Adobe Acrobat X (Distiller/PDFMaker 10)",
        ),
        ("software", "Acrobat PDFMaker 11 pour Word", None),
        ("software", "LibreOffice 7.2", "LibreOffice 7.2"),
        ("software", "LibreOffice 7.3", "LibreOffice (any version)"),
        ("software", "GPL Ghostscript 10.02.0", "Ghostscript 10.02"),
        (
            "software",
            "macOS Version 10.15.7 (Build 19H2) Quartz PDFContext",
            "macOS Quartz PDFContext (any version)",
        ),
        ("software", "Mac OS X 10.5.8 Quartz PDFContext", "Mac OS X 10.5 Quartz PDFContext"),
        ("font", "ABCDEF+Calibri", "Calibri"),
        ("font", "ABCDEF+Calibri-Light", "Calibri"),
        ("font", "ABCDEF+Vazirmatn-Regular", "Vazir"),
        ("font", "BNazanin", None),
        ("font", "TimesNewRomanPSMT", None),
        ("pdf-version", "1.5", "PDF 1.5"),
        ("pdf-version", "1.50", None),
    ],
)
def test_real_names_get_the_right_item(kind: str, raw: str, expected: str | None) -> None:
    rule = anachronism.best_rule(anachronism.load_rules(), kind, raw)
    assert (rule.name if rule else None) == expected


def test_the_data_file_is_package_data() -> None:
    """It is read through importlib.resources, so an installed workbench finds it too."""
    from importlib import resources

    assert resources.files("workbench").joinpath(anachronism.DATA_FILE).is_file()
