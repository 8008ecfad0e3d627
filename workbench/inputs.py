"""Input files as the ingest's main process sees them, without parsing them.

Why a module of its own: the coordinator of an ingest hashes files, sniffs their first
bytes, walks folders and describes the jobs its workers run; it never parses a file
(workbench.readers does, in the workers). Importing readers means importing PyMuPDF,
Pillow and the date patterns (about 0.25 s), which the coordinator paid before its
workers could even start. workbench.readers names everything here too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import metadata
from workbench.errors import SourceError

# Time Tesseract may take on one page (all its runs together); past it the page is an
# OCR error, retried by the next run. The ingest's per-job time limit allows for it.
OCR_TIMEOUT = 600.0
# Library warnings kept per page: distinct messages, each cut to this length.
MAX_WARNINGS = 5
MAX_WARNING_CHARS = 300

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """A message from a library or a file made safe to print and store: no control
    characters (a hostile file could put terminal escapes in a name MuPDF repeats) and
    no lone surrogates (they cannot be written as UTF-8)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub("?", text)


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class PageJob:
    """One page to analyse, small enough to send to a worker process."""

    path: str
    kind: str  # "pdf" | "image"
    page_index: int  # 0-based
    password: str | None
    lang: str
    force_ocr: bool = False  # re-OCR a page even when its text layer is usable


@dataclass(frozen=True, eq=False)
class SourceBytes:
    """A file's content, sent with its jobs to workers that cannot read the coordinator's
    disk (a Dask cluster). ``sha256`` is the custody hash of exactly these bytes; the
    path stays the file's name in every message, as in a local run."""

    sha256: str
    content: bytes


def identify(path: str | os.PathLike[str]) -> str:
    """ "pdf" or "image" from the file's first bytes; else SourceError saying what it is."""
    with open(path, "rb") as handle:
        head = handle.read(2048)
    if not head:
        raise SourceError(str(path), "empty file (0 bytes)")
    if b"%PDF-" in head[:1024]:
        return "pdf"
    for magic, _name in _IMAGE_MAGIC:
        if head.startswith(magic):
            return "image"
    if head[4:12] in (b"ftypavif", b"ftypheic") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    raise SourceError(str(path), f"not a PDF or an image ({_describe_unknown(head)})")


def _describe_unknown(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "looks like a ZIP archive or Office file: unpack or convert it to PDF first"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "looks like an old Office document: convert it to PDF first"
    if re.search(rb"\d+\s+\d+\s+obj\b|%PDF|\btrailer\b|\bxref\b", head):
        return "a damaged PDF fragment without a valid %PDF- header"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary content"
    return "looks like plain text"


class PageReadError(Exception):
    """A page of a file cannot be read at all: the whole file is reported as failed."""


OCR_FAILED = "OCR failed: "  # how a page's error starts when its OCR is to be retried


def expand_paths(paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files under the given paths, recursively and sorted; plus paths that do not exist."""
    files: list[str] = []
    missing: list[tuple[str, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for folder, subfolders, names in os.walk(path, followlinks=False):
                subfolders.sort()
                for name in sorted(names):
                    if name in _JUNK_NAMES or name.startswith("._"):
                        continue
                    full = Path(folder) / name
                    if full.is_file():
                        files.append(os.path.abspath(full))
        elif path.is_file():
            files.append(os.path.abspath(path))
        elif path.exists():
            missing.append((os.path.abspath(path), "not a regular file or folder"))
        else:
            missing.append((os.path.abspath(path), "no such file or folder"))
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    return unique, missing


def page_without_ocr(pending: dict[str, Any], reason: str) -> dict[str, Any]:
    """The page a job had read up to its OCR (``pending``, as the phase hook got it), kept
    without text when Tesseract crashed or hung in the worker: the same as a page whose
    OCR failed in the worker, so the next ingest reads it again."""
    page = dict(pending, text="", text_source="none", error=f"{OCR_FAILED}{reason}")
    page["warnings"] = list(page.get("warnings", ()))
    page.update(metadata.text_facts(""))
    return page
