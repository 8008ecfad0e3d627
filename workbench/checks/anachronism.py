"""anachronism: a file made with software, a font or a PDF version that did not exist yet
on the date the document claims.

What is compared, per source file (all read at ingest, nothing re-read from the file):
- the names the file carries: PDF Info Creator/Producer, XMP CreatorTool/Producer, EXIF
  Software, the fonts its pages use (subset prefixes such as ``ABCDEF+`` stripped) and its
  PDF version;
- each name against the rules of ``workbench/data/release_dates.csv`` (one row per item,
  with its first public release, the source of that date, and a regular expression for
  the name as it appears in real files). When several rules match one name, every one of
  them is a true lower bound (``LibreOffice`` and ``LibreOffice 7.2`` both match
  ``LibreOffice 7.2``), so the latest date wins;
- the date the document claims, in this order of preference: the latest date written in
  its text (a document cannot be older than the last date it names), the date of a
  grouped document holding its pages, its own creation date (PDF Info, XMP, EXIF; the
  latest of them). The finding says which one it used. For a scanned file (pages read
  by OCR) only its own creation date counts: the scan is made after the paper it shows,
  so the paper's dates say nothing of the scanner's software.

Severity: ``alert`` when the claimed date is more than ``MARGIN`` (31 days, for release
candidates, time zones and month-only release dates) before the item's first release and
the file's own creation date, if it has one, is too. When the text or document date is
too early but the file itself was created after the release, the file may be a later copy
or conversion of an older paper (a 2010 court filing re-saved in 2021): that is a
``warn``, saying so. Nothing otherwise.

The data file's SHA-256 is part of every unit's inputs, so a new data file re-checks
every file. The fonts' own version strings and dates (readable with fontTools) are not
used: that would mean opening the files again at check time, and subsetters rewrite the
dates anyway.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from workbench.checks.base import Check, Draft, Unit, source_pages
from workbench.store import Case

DATA_FILE = "data/release_dates.csv"
MARGIN = datetime.timedelta(days=31)
KINDS = ("software", "font", "pdf-version", "pdf-feature")
_SUBSET_RE = re.compile(r"^[A-Z]{6}\+")
# how a finding's message names the item ({name}: the rule's name, {found}: as in the file)
_KIND_WORDS = {
    "font": ("Set in {name}, a font first released in {year}", "font"),
    "software": ("Made with {found}{name}, first released in {year}", "software"),
    "pdf-version": ("Written as {name}, a PDF version first published in {year}", "PDF version"),
    "pdf-feature": ("Uses {name}, a PDF feature first published in {year}", "PDF feature"),
}


@dataclass(frozen=True)
class Rule:
    """One row of the data file."""

    kind: str
    name: str
    first_release: datetime.date
    pattern: re.Pattern[str]
    examples: tuple[str, ...]
    source: str
    notes: str

    def matches(self, raw: str) -> bool:
        return bool(self.pattern.search(clean_name(raw)))


def clean_name(raw: str) -> str:
    """A name as the rules see it: a font's subset prefix (``ABCDEF+``) taken off."""
    return _SUBSET_RE.sub("", raw.strip())


def data_bytes() -> bytes:
    """The release-date data file as shipped with the package."""
    return resources.files("workbench").joinpath(DATA_FILE).read_bytes()


@lru_cache(maxsize=1)
def _rules_for(digest: str, raw: bytes) -> tuple[Rule, ...]:
    rules = []
    for line, row in enumerate(csv.DictReader(io.StringIO(raw.decode("utf-8"))), start=2):
        try:
            rules.append(
                Rule(
                    kind=row["kind"].strip(),
                    name=row["name"].strip(),
                    first_release=datetime.date.fromisoformat(row["first_release"].strip()),
                    pattern=re.compile(row["match"], re.IGNORECASE),
                    examples=tuple(e for e in row["examples"].split("|") if e.strip()),
                    source=row["source"].strip(),
                    notes=(row.get("notes") or "").strip(),
                )
            )
        except (KeyError, ValueError, re.error) as error:
            raise ValueError(f"{DATA_FILE} line {line}: {error}") from error
    return tuple(rules)


def load_rules() -> tuple[Rule, ...]:
    """Every rule of the data file (a ValueError naming the line if one is broken)."""
    raw = data_bytes()
    return _rules_for(hashlib.sha256(raw).hexdigest(), raw)


def best_rule(rules: tuple[Rule, ...], kind: str, raw: str) -> Rule | None:
    """The matching rule of this kind with the latest first release (all are true bounds)."""
    found = [r for r in rules if r.kind == kind and r.matches(raw)]
    return max(found, key=lambda r: (r.first_release, r.name)) if found else None


def _day(value: Any) -> datetime.date | None:
    """The calendar day of an ISO, PDF-converted or EXIF date; None when unreadable."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    text = value[:10].replace(":", "-")
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        return None
    return day if day.year >= 1980 else None  # zeroed clocks say nothing


def _spoken(day: datetime.date) -> str:
    return f"{day.day} {day:%B %Y}"


class Anachronism(Check):
    name = "anachronism"
    version = 1
    summary = "software, fonts or PDF versions released after the date the document claims"

    def units(self, case: Case) -> Iterator[Unit]:
        raw = data_bytes()
        data_sha256 = hashlib.sha256(raw).hexdigest()
        text_dates: dict[int, list[Any]] = {}
        for source_id, iso, original, page_number in case.db.execute(
            "SELECT p.source_id, d.iso, d.original, p.page_number FROM page_dates d"
            " JOIN pages p ON p.id = d.page_row ORDER BY p.source_id, d.iso, p.page_number"
        ):
            text_dates[source_id] = [iso, original, page_number]  # the latest, kept last
        doc_dates: dict[int, list[Any]] = {}
        for source_id, doc_id, iso in case.db.execute(
            "SELECT DISTINCT p.source_id, d.id, d.date_iso FROM page_review r"
            " JOIN pages p ON p.id = r.page_row JOIN documents d ON d.id = r.document_id"
            " WHERE d.date_iso IS NOT NULL ORDER BY p.source_id, d.date_iso, d.id"
        ):
            doc_dates[source_id] = [iso, doc_id]
        fonts: dict[int, dict[str, set[int]]] = {}
        scanned: set[int] = set()
        for source_id, page_number, text_source, metadata in case.db.execute(
            "SELECT source_id, page_number, text_source, metadata FROM pages"
        ):
            if text_source == "ocr":
                scanned.add(source_id)
            for font in json.loads(metadata or "{}").get("fonts") or []:
                name = (font.get("name") or "").strip()
                if name:
                    fonts.setdefault(source_id, {}).setdefault(name, set()).add(page_number)
        for row in case.db.execute(
            "SELECT id, sha256, metadata FROM sources WHERE status = 'ingested' ORDER BY id"
        ):
            meta = json.loads(row["metadata"] or "{}")
            info = meta.get("info") or {}
            xmp = meta.get("xmp") or {}
            exif = meta.get("exif") or {}
            names = [
                [field, value]
                for field, value in (
                    ("Info Creator", info.get("creator")),
                    ("Info Producer", info.get("producer")),
                    ("XMP CreatorTool", (xmp.get("tools") or {}).get("CreatorTool")),
                    ("XMP Producer", (xmp.get("tools") or {}).get("Producer")),
                    ("EXIF Software", exif.get("Software")),
                )
                if isinstance(value, str) and value.strip()
            ]
            created = {
                field: value
                for field, value in (
                    ("Info CreationDate", info.get("creation_date")),
                    ("XMP CreateDate", (xmp.get("dates") or {}).get("CreateDate")),
                    ("EXIF DateTimeOriginal", exif.get("DateTimeOriginal")),
                    ("EXIF DateTime", exif.get("DateTime")),
                )
                if _day(value) is not None
            }
            yield Unit(
                f"source:{row['sha256']}",
                {
                    "sha256": row["sha256"],
                    "names": names,
                    "fonts": {
                        name: sorted(pages) for name, pages in fonts.get(row["id"], {}).items()
                    },
                    "pdf_version": meta.get("pdf_version"),
                    # a scan is made after the paper it shows: its text's dates and its
                    # document's date say nothing of the tools that made the file
                    "scanned": row["id"] in scanned,
                    "text_date": None if row["id"] in scanned else text_dates.get(row["id"]),
                    "document_date": None if row["id"] in scanned else doc_dates.get(row["id"]),
                    "created": created,
                    "data_sha256": data_sha256,
                },
            )

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        inputs = unit.inputs
        claim = _claim(inputs)
        if claim is None:
            return []
        rules = load_rules()
        found: dict[str, tuple[Rule, list[dict[str, Any]]]] = {}

        def note(rule: Rule | None, where: dict[str, Any]) -> None:
            if rule is not None:
                found.setdefault(rule.name, (rule, []))[1].append(where)

        for field, value in inputs["names"]:
            note(best_rule(rules, "software", value), {"field": field, "value": value})
        for font, pages in sorted(inputs["fonts"].items()):
            note(
                best_rule(rules, "font", font),
                {"field": "font", "value": font, "pages": pages},
            )
        version = inputs.get("pdf_version")
        if isinstance(version, str) and version:
            where = {"field": "PDF version", "value": version}
            note(best_rule(rules, "pdf-version", version), where)

        all_pages = _page_ids(case, inputs["sha256"])
        drafts = []
        for rule, where in sorted(found.values(), key=lambda item: item[0].name):
            draft = _judge(rule, where, claim, inputs, all_pages)
            if draft is not None:
                drafts.append(draft)
        return drafts


def _claim(inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The date the document claims, and where it says so (see the module docstring)."""
    text = inputs.get("text_date")
    if text and _day(text[0]):
        iso, original, page_number = text
        return {
            "date": iso[:10],
            "from": "text",
            "field": f"page {page_number} text",
            "value": original,
            "says": "in its text",
        }
    document = inputs.get("document_date")
    if document and _day(document[0]):
        iso, doc_id = document
        return {
            "date": iso[:10],
            "from": "document",
            "field": f"document {doc_id} date",
            "value": iso,
            "says": f"as document {doc_id}",
        }
    created = _latest_created(inputs)
    if created is not None:
        field, value = created
        return {
            "date": str(_day(value)),
            "from": "metadata",
            "field": field,
            "value": value,
            "says": "in its metadata",
        }
    return None


def _latest_created(inputs: dict[str, Any]) -> tuple[str, str] | None:
    dated = [(field, value) for field, value in inputs["created"].items() if _day(value)]
    if not dated:
        return None
    return max(dated, key=lambda item: (_day(item[1]), item[0]))


def _judge(
    rule: Rule,
    where: list[dict[str, Any]],
    claim: dict[str, Any],
    inputs: dict[str, Any],
    all_pages: list[tuple[int, str]],
) -> Draft | None:
    claimed = datetime.date.fromisoformat(claim["date"])
    if claimed >= rule.first_release - MARGIN:
        return None
    created = _latest_created(inputs)
    made_after = (
        claim["from"] != "metadata"
        and created is not None
        and _day(created[1]) is not None
        and _day(created[1]) >= rule.first_release - MARGIN  # type: ignore[operator]
    )
    template, noun = _KIND_WORDS[rule.kind]
    found = clean_name(where[0]["value"])
    name = rule.name
    if rule.kind == "software":  # "Microsoft® Word 2016 (Microsoft Office 2016)"
        name = "" if rule.name.lower() in found.lower() else f" ({rule.name})"
    lead = template.format(name=name, found=found, year=rule.first_release.year)
    if made_after:
        assert created is not None
        severity = "warn"
        message = (
            f"{lead}, but dated {_spoken(claimed)} {claim['says']}; the file itself was "
            f"created on {_spoken(_day(created[1]))} (a later copy or conversion?)"  # type: ignore[arg-type]
        )
    else:
        severity = "alert"
        also = ""
        if claim["from"] != "metadata" and created is not None:
            also = " and metadata"
        message = f"{lead}, but dated {_spoken(claimed)} {claim['says']}{also}"
    font_pages = sorted({n for w in where for n in w.get("pages", [])})
    if rule.kind == "font" and font_pages:
        page_ids = [pid for number, pid in all_pages if number in font_pages]
    else:
        page_ids = [pid for _number, pid in all_pages]
    evidence: dict[str, Any] = {
        "item": {
            "name": rule.name,
            "kind": rule.kind,
            "first_release": rule.first_release.isoformat(),
            "source": rule.source,
            "notes": rule.notes,
            "rule": rule.pattern.pattern,
        },
        "found_in": where,
        "claimed": {k: claim[k] for k in ("date", "from", "field", "value")},
        "created": {"field": created[0], "value": created[1]} if created else None,
        "margin_days": MARGIN.days,
        "data_file": {"path": f"workbench/{DATA_FILE}", "sha256": inputs["data_sha256"]},
        "what": f"{noun} named in the file's metadata, matched against the release-date data file",
    }
    return Draft(
        severity=severity,
        message=message,
        page_ids=page_ids,
        evidence=evidence,
        source_sha256=inputs["sha256"],
        discriminator=f"{rule.kind}:{rule.name}",
    )


def _page_ids(case: Case, sha256: str) -> list[tuple[int, str]]:
    return list(source_pages(case, sha256).items())


CHECK = Anachronism()
