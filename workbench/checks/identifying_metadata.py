"""identifying-metadata: what in a file's metadata points at a person or a device.

Author and last-modified-by names, user names in file paths (``C:\\Users\\...``,
``/home/...``), e-mail addresses, XMP document and instance ids, camera or scanner make,
model and serial numbers (maker notes included), GPS position, printer or scanner names
in the producer. Read with ExifTool from the file's bytes after the custody check. A
GPS position, a serial number, a user name in a path or an e-mail address is an
``alert`` (each can lead to one person or one device); the rest a ``warn``. Generic
account names (Administrator, user, owner...) are not reported.
"""

from __future__ import annotations

import re
from typing import Any

from workbench import exiftool
from workbench.checks.base import Draft, Unit
from workbench.checks.file_check import FileCheck
from workbench.store import Case

_FROM = "the file's metadata as ExifTool reads it (every group, maker notes included)"
_PERSON_TAGS = re.compile(
    r"^(Author|Authors|Creator|LastModifiedBy|Artist|OwnerName|CameraOwnerName|By-line|"
    r"Writer-Editor|Manager|Company|Copyright|Rights|Contributor|Publisher)$",
    re.IGNORECASE,
)
_DEVICE_TAGS = re.compile(r"^(Make|Model|UniqueCameraModel|LocalizedCameraModel)$", re.I)
_SERIAL_TAGS = re.compile(r"Serial|ImageUniqueID", re.IGNORECASE)
_ID_TAGS = re.compile(r"^(DocumentID|InstanceID|OriginalDocumentID)$", re.IGNORECASE)
_GPS_TAGS = re.compile(r"^GPS(Latitude|Longitude|Position)$", re.IGNORECASE)
_SOFTWARE_GROUPS = ("PDF:Creator", "PDF:Producer", "XMP-xmp:CreatorTool", "XMP-pdf:Producer")
_DEVICE_NAMES = re.compile(
    r"\b(Canon iR|imageRUNNER|RICOH|Aficio|Xerox|WorkCentre|KONICA|bizhub|Kyocera|TASKalfa|"
    r"LaserJet|OfficeJet|ScanJet|EPSON|Brother (?:MFC|DCP)|Sharp MX|Lexmark|Fujitsu fi-|"
    r"ScanSnap|Canon DR-|CanoScan|Kodak i\d)",
    re.IGNORECASE,
)
_USER_PATH = re.compile(
    r"(?:[A-Za-z]:\\(?:Users|Documents and Settings)\\|/home/|/Users/)([^\\/\s\"']+)"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_GENERIC_NAMES = {
    "",
    "administrator",
    "admin",
    "user",
    "owner",
    "unknown",
    "default",
    "windows user",
    "microsoft office user",
    "pc",
    "none",
    "null",
    "n/a",
}
_ALERTING = {"gps position", "serial number", "user name in a path", "e-mail address"}


class IdentifyingMetadata(FileCheck):
    name = "identifying-metadata"
    version = 1
    summary = "names, e-mails, user paths, device serials, GPS: metadata that can expose"
    KINDS = ("pdf", "image")

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        data, page_ids = self.source_bytes(case, unit)
        if data is None:
            return []
        try:
            tags = exiftool.read_tags(unit.inputs["path"])  # the bytes just matched custody
        except exiftool.ExifToolError:
            return []
        items = identifying_items(tags)
        if not items:
            return []
        alerting = [i for i in items if i["what"] in _ALERTING]
        shown = (alerting or items)[:4]
        said = "; ".join(f"{i['what']} {i['value']!r}" for i in shown)
        more = len(items) - len(shown)
        return [
            Draft(
                severity="alert" if alerting else "warn",
                message=(
                    f"The file's metadata can point at a person or a device: {said}"
                    + (f", and {more} more" if more else "")
                    + "; publish a clean copy, not this file"
                ),
                page_ids=list(page_ids.values())[:1],
                evidence={"items": items, "from": _FROM},
                source_sha256=unit.inputs["sha256"],
                discriminator="metadata",
            )
        ]


def identifying_items(tags: dict[str, Any]) -> list[dict[str, Any]]:
    """What in ExifTool's tags can identify someone: one item per (what, value)."""
    items: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(what: str, tag: str, value: Any) -> None:
        text = " ".join(str(value).split())[:200]
        if not text or (what, text.lower()) in seen:
            return
        seen.add((what, text.lower()))
        items.append({"what": what, "tag": tag, "value": text})

    latitude = longitude = None
    for tag, value in tags.items():
        group, _, name = tag.rpartition(":")
        if isinstance(value, (dict, list)):
            value = " ".join(str(v) for v in (value.values() if isinstance(value, dict) else value))
        if _GPS_TAGS.match(name):
            if name.lower() == "gpslatitude":
                latitude = value
            elif name.lower() == "gpslongitude":
                longitude = value
            continue
        text = str(value)
        if _PERSON_TAGS.match(name) and not (group.startswith("PDF") and name == "Creator"):
            if text.strip().lower() not in _GENERIC_NAMES:
                add("name", tag, value)
        elif _SERIAL_TAGS.search(name) and text.strip():
            add("serial number", tag, value)
        elif _DEVICE_TAGS.match(name):
            add("device", tag, value)
        elif _ID_TAGS.match(name):
            add("document id", tag, value)
        elif tag in _SOFTWARE_GROUPS and _DEVICE_NAMES.search(text):
            add("device", tag, value)
        for user in _USER_PATH.findall(text):
            if user.lower() not in _GENERIC_NAMES:
                add("user name in a path", tag, text)
        for address in _EMAIL.findall(text):
            add("e-mail address", tag, address)
    if latitude is not None and longitude is not None:
        add("gps position", "GPSLatitude/GPSLongitude", f"{latitude}, {longitude}")
    return items


CHECK = IdentifyingMetadata()
