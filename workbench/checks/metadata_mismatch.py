"""metadata-mismatch: a file's own dates contradict each other or the world.

What is compared, per source file (all read at ingest, nothing re-read from the file):
- modified before created (PDF Info, XMP, EXIF);
- PDF Info and XMP giving different creation or modification times;
- created after the file reached the case (a date in the future of its own ingest);
- time-zone offsets that differ between the file's own dates by more than daylight
  saving time does;
- a creation date years away from the dates written in the file's text. A scan is made
  after the paper it shows, so for OCR'd files only a creation date *before* the text's
  dates counts.

Times without a time zone are compared with 14 hours of slack (any zone on Earth), so a
writer that drops the zone is not taken for a forger.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from workbench.checks.base import Check, Draft, Unit, source_pages
from workbench.store import Case

ANY_ZONE = timedelta(hours=14)
SAME_MOMENT = timedelta(minutes=2)
YEARS_AWAY = 2
DAYLIGHT_SAVING = timedelta(hours=1)
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})[-:](?P<mo>\d{2})[-:](?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


class Moment:
    """A file date: when it says, and whether it says in which time zone."""

    def __init__(self, label: str, raw: str, when: datetime, offset: timedelta | None) -> None:
        self.label = label
        self.raw = raw
        self.when = when  # UTC when the zone is known, else the local wall time
        self.offset = offset

    def as_evidence(self) -> dict[str, Any]:
        return {"field": self.label, "value": self.raw}


def parse_moment(label: str, raw: Any) -> Moment | None:
    """Read ISO 8601, PDF (converted at ingest) and EXIF (``2014:08:03 12:00:00``) dates."""
    if not isinstance(raw, str):
        return None
    match = _DATE_RE.match(raw.strip())
    if not match:
        return None
    parts = match.groupdict()
    try:
        local = datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
        )
    except ValueError:
        return None
    if local.year < 1980:  # zeroed EXIF clocks and PDF placeholders say nothing
        return None
    tz = parts["tz"]
    if tz is None:
        return Moment(label, raw, local, None)
    if tz == "Z":
        offset = timedelta(0)
    else:
        digits = tz.replace(":", "")
        sign = -1 if digits[0] == "-" else 1
        offset = sign * timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
    return Moment(label, raw, local - offset, offset)


def apart(first: Moment, second: Moment) -> timedelta:
    """How far apart two moments surely are (the zone slack taken off when one lacks it)."""
    gap = abs(first.when - second.when)
    if first.offset is None or second.offset is None:
        return max(gap - ANY_ZONE, timedelta(0))
    return gap


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _day(moment: Moment) -> str:
    return moment.raw[:10].replace(":", "-")


class MetadataMismatch(Check):
    name = "metadata-mismatch"
    version = 1
    summary = "file dates that contradict each other, the ingest time or the text's dates"

    def units(self, case: Case) -> Iterator[Unit]:
        text_dates: dict[int, list[str]] = {}
        ocr_pages: dict[int, int] = {}
        for source_id, iso in case.db.execute(
            "SELECT p.source_id, d.iso FROM page_dates d"
            " JOIN pages p ON p.id = d.page_row ORDER BY p.source_id, d.iso"
        ):
            text_dates.setdefault(source_id, []).append(iso)
        for source_id, count in case.db.execute(
            "SELECT source_id, count(*) FROM pages WHERE text_source = 'ocr' GROUP BY source_id"
        ):
            ocr_pages[source_id] = count
        for row in case.db.execute(
            "SELECT id, sha256, kind, metadata, recorded_at FROM sources"
            " WHERE status = 'ingested' ORDER BY id"
        ):
            meta = json.loads(row["metadata"] or "{}")
            info = meta.get("info") or {}
            xmp = (meta.get("xmp") or {}).get("dates") or {}
            exif = meta.get("exif") or {}
            dates = {
                "Info CreationDate": info.get("creation_date"),
                "Info ModDate": info.get("modification_date"),
                "XMP CreateDate": xmp.get("CreateDate"),
                "XMP ModifyDate": xmp.get("ModifyDate"),
                "XMP MetadataDate": xmp.get("MetadataDate"),
                "EXIF DateTimeOriginal": exif.get("DateTimeOriginal"),
                "EXIF DateTimeDigitized": exif.get("DateTimeDigitized"),
                "EXIF DateTime": exif.get("DateTime"),
            }
            dates = {k: v for k, v in dates.items() if v}
            if not dates:
                continue
            yield Unit(
                f"source:{row['sha256']}",
                {
                    "sha256": row["sha256"],
                    "dates": dates,
                    "ingested_at": row["recorded_at"],
                    "text_dates": text_dates.get(row["id"], []),
                    "scanned": ocr_pages.get(row["id"], 0) > 0,
                },
            )

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        inputs = unit.inputs
        moments = {
            label: moment
            for label, raw in inputs["dates"].items()
            if (moment := parse_moment(label, raw)) is not None
        }
        drafts: list[Draft] = []
        drafts.extend(_modified_before_created(moments))
        drafts.extend(_info_vs_xmp(moments))
        drafts.extend(_after_ingest(moments, inputs["ingested_at"]))
        drafts.extend(_zones(moments))
        drafts.extend(_far_from_text(moments, inputs["text_dates"], inputs["scanned"]))
        pages = list(source_pages(case, inputs["sha256"]).values()) if drafts else []
        for draft in drafts:
            draft.source_sha256 = inputs["sha256"]
            draft.page_ids = pages
        return drafts


_CREATED_MODIFIED = (
    ("Info CreationDate", "Info ModDate"),
    ("XMP CreateDate", "XMP ModifyDate"),
    ("EXIF DateTimeOriginal", "EXIF DateTime"),
)


def _modified_before_created(moments: dict[str, Moment]) -> list[Draft]:
    drafts = []
    for created_label, modified_label in _CREATED_MODIFIED:
        created, modified = moments.get(created_label), moments.get(modified_label)
        if created is None or modified is None or modified.when >= created.when:
            continue
        if apart(created, modified) <= SAME_MOMENT:
            continue
        drafts.append(
            Draft(
                severity="warn",
                message=(
                    f"Modified before it was created: {modified_label} {modified.raw} is "
                    f"earlier than {created_label} {created.raw}"
                ),
                page_ids=[],
                evidence={
                    "created": created.as_evidence(),
                    "modified": modified.as_evidence(),
                    "from": "the file's own metadata, read at ingest",
                },
                discriminator=f"modified-before-created:{created_label}",
            )
        )
    return drafts


def _info_vs_xmp(moments: dict[str, Moment]) -> list[Draft]:
    drafts = []
    for info_label, xmp_label, what in (
        ("Info CreationDate", "XMP CreateDate", "creation"),
        ("Info ModDate", "XMP ModifyDate", "modification"),
    ):
        info, xmp = moments.get(info_label), moments.get(xmp_label)
        if info is None or xmp is None or apart(info, xmp) <= SAME_MOMENT:
            continue
        drafts.append(
            Draft(
                severity="warn",
                message=(
                    f"The PDF's two records of its {what} time disagree: {info_label} says "
                    f"{info.raw}, {xmp_label} says {xmp.raw} (one was changed without the other)"
                ),
                page_ids=[],
                evidence={
                    "info": info.as_evidence(),
                    "xmp": xmp.as_evidence(),
                    "from": "the PDF's Info dictionary and its XMP packet, read at ingest",
                },
                discriminator=f"info-xmp:{what}",
            )
        )
    return drafts


def _after_ingest(moments: dict[str, Moment], ingested_at: str) -> list[Draft]:
    ingested = parse_moment("ingested", ingested_at)
    if ingested is None:
        return []
    late = [
        m
        for m in moments.values()
        if m.when > ingested.when and apart(m, ingested) > timedelta(days=1)
    ]
    if not late:
        return []
    first = min(late, key=lambda m: m.when)
    return [
        Draft(
            severity="alert",
            message=(
                f"Dated after it reached the case: {first.label} {first.raw} is later than "
                f"the ingest on {ingested_at[:10]}"
            ),
            page_ids=[],
            evidence={
                "dates": [m.as_evidence() for m in late],
                "ingested_at": ingested_at,
                "from": "the file's own metadata, and the time workbench recorded the file",
            },
            discriminator="after-ingest",
        )
    ]


def _zones(moments: dict[str, Moment]) -> list[Draft]:
    zoned = {label: m for label, m in moments.items() if m.offset is not None}
    values = [m.offset for m in zoned.values() if m.offset is not None]
    if not values or max(values) - min(values) <= DAYLIGHT_SAVING:
        return []  # one zone, or one zone's summer and winter time (-08:00 and -07:00)
    offsets = {_offset_text(offset) for offset in values}
    return [
        Draft(
            severity="info",
            message=(
                "The file's dates carry different time zones: "
                + ", ".join(
                    f"{label} {_offset_text(m.offset)}"
                    for label, m in zoned.items()
                    if m.offset is not None
                )
                + " (edited on another machine, or converted)"
            ),
            page_ids=[],
            evidence={
                "dates": [m.as_evidence() for m in zoned.values()],
                "offsets": sorted(offsets),
                "from": "the file's own metadata, read at ingest",
            },
            discriminator="zones",
        )
    ]


def _far_from_text(moments: dict[str, Moment], text_dates: list[str], scanned: bool) -> list[Draft]:
    created = moments.get("Info CreationDate") or moments.get("XMP CreateDate")
    created = created or moments.get("EXIF DateTimeOriginal")
    if created is None or not text_dates:
        return []
    written = sorted(text_dates)
    typical = written[len(written) // 2]
    written_year = int(median(int(d[:4]) for d in written))
    gap = created.when.year - written_year
    if abs(gap) < YEARS_AWAY or (scanned and gap > 0):
        return []
    direction = "before" if gap < 0 else "after"
    return [
        Draft(
            severity="warn",
            message=(
                f"Created {abs(gap)} years {direction} the dates written in it: "
                f"{created.label} {_day(created)}, the text's dates are around {typical}"
            ),
            page_ids=[],
            evidence={
                "created": created.as_evidence(),
                "text_dates": {"count": len(written), "first": written[0], "last": written[-1]},
                "scanned": scanned,
                "from": "the file's metadata, and the dates found in its pages' text at ingest",
            },
            discriminator="far-from-text",
        )
    ]


CHECK = MetadataMismatch()
