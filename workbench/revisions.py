"""Earlier versions of a PDF kept inside it: incremental updates, and what each changed.

Why: a PDF editor may save a change by appending it to the file (an incremental update)
instead of rewriting it, so the file still holds every earlier version: the bytes up to
each earlier end-of-file marker are a complete PDF of their own. For a verifier that is
evidence: the file was edited after it was first saved, and here is what it said before.

A revision ends at ``startxref N %%EOF`` where N points back into the file. Two traps:
a linearized ("fast web view") file has a first-page section ending in its own
``%%EOF`` (its ``startxref`` is 0, or the section lies inside the length the
linearization dictionary declares), which is not a revision; and ``%%EOF`` may appear
inside binary stream data, which the ``startxref`` check rules out.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import pymupdf

from workbench import readers  # MuPDF set quiet there; its error wording reused
from workbench.errors import SourceError, UsageError
from workbench.store import Case

_REVISION_END = re.compile(rb"startxref\s+(\d+)\s+%%EOF[ \t]*(?:\r\n|\r|\n)?")
_LINEARIZED = re.compile(rb"/Linearized\s+[\d.]+.*?/L\s+(\d+)", re.DOTALL)
MAX_WORDS_SHOWN = 40
_METADATA_NAMES = {
    "modDate": "modification date",
    "creationDate": "creation date",
    "xmp_sha256": "XMP metadata",
    "format": "PDF version",
}


@dataclass
class PageChange:
    """How one page's text differs from the revision before."""

    page_number: int
    removed: list[str]
    added: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"page_number": self.page_number, "removed": self.removed, "added": self.added}


@dataclass
class Revision:
    """One version of the file: its bytes (a prefix of the file) and what it changed."""

    number: int
    end: int  # the revision is the file's bytes [0, end)
    sha256: str
    page_count: int | None
    readable: bool = True
    problem: str | None = None
    pages_added: list[int] = field(default_factory=list)
    pages_removed: list[int] = field(default_factory=list)
    text_changes: list[PageChange] = field(default_factory=list)
    metadata_changes: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def changed_anything(self) -> bool:
        return bool(
            self.pages_added or self.pages_removed or self.text_changes or self.metadata_changes
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.number,
            "bytes": self.end,
            "sha256": self.sha256,
            "page_count": self.page_count,
            "readable": self.readable,
            "problem": self.problem,
            "pages_added": self.pages_added,
            "pages_removed": self.pages_removed,
            "text_changes": [c.as_json() for c in self.text_changes],
            "metadata_changes": self.metadata_changes,
        }


def revision_ends(data: bytes) -> list[int]:
    """Byte offsets at which each revision ends; the last is always the whole file."""
    ends = []
    for match in _REVISION_END.finditer(data):
        pointer = int(match.group(1))
        if 0 < pointer < match.start():
            ends.append(match.end())
    linearized = _LINEARIZED.search(data[:4096])
    if linearized and ends:
        declared = int(linearized.group(1))
        # the first-page section ends well inside the declared length: not a revision
        ends = [end for end in ends if end >= declared - 64] or ends[-1:]
    if ends and len(data) - ends[-1] < 1024:
        ends[-1] = len(data)  # a stray newline after the last marker belongs to it
    else:
        ends.append(len(data))  # no marker at the end: the whole file is the last version
    return ends


def _read(data: bytes) -> tuple[int, list[str], dict[str, Any]]:
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        if doc.needs_pass:
            raise SourceError("", "encrypted: its revisions need the password")
        texts = [page.get_text("text") for page in doc]
        metadata = {k: v for k, v in (doc.metadata or {}).items() if v}
        try:
            xmp = doc.get_xml_metadata() or ""
        except Exception:  # noqa: BLE001 - a broken XMP stream is a fact, not a failure
            xmp = "(unreadable)"
        if xmp:
            metadata["xmp_sha256"] = hashlib.sha256(xmp.encode("utf-8", "replace")).hexdigest()
        return len(texts), texts, metadata


def _words_diff(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.split(), after.split()
    removed: list[str] = []
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed.extend(old[i1:i2])
        if tag in ("replace", "insert"):
            added.extend(new[j1:j2])
    return removed[:MAX_WORDS_SHOWN], added[:MAX_WORDS_SHOWN]


def analyse(data: bytes) -> list[Revision]:
    """Every revision of a PDF's bytes, each compared with the one before it."""
    revisions: list[Revision] = []
    previous: tuple[int, list[str], dict[str, Any]] | None = None
    for number, end in enumerate(revision_ends(data), start=1):
        chunk = data[:end]
        revision = Revision(
            number=number, end=end, sha256=hashlib.sha256(chunk).hexdigest(), page_count=None
        )
        revisions.append(revision)
        try:
            current = _read(chunk)
        except SourceError as error:
            revision.readable, revision.problem = False, error.reason
            continue
        except Exception as error:  # noqa: BLE001 - MuPDF: a damaged earlier revision
            revision.readable, revision.problem = False, readers._mupdf_reason(error)
            continue
        revision.page_count = current[0]
        if previous is not None:
            _compare(previous, current, revision)
        previous = current
    return revisions


def _compare(
    before: tuple[int, list[str], dict[str, Any]],
    after: tuple[int, list[str], dict[str, Any]],
    revision: Revision,
) -> None:
    old_count, old_texts, old_meta = before
    new_count, new_texts, new_meta = after
    revision.pages_added = list(range(old_count + 1, new_count + 1))
    revision.pages_removed = list(range(new_count + 1, old_count + 1))
    for index in range(min(old_count, new_count)):
        if old_texts[index] != new_texts[index]:
            removed, added = _words_diff(old_texts[index], new_texts[index])
            revision.text_changes.append(PageChange(index + 1, removed, added))
    for key in sorted(set(old_meta) | set(new_meta)):
        if old_meta.get(key) != new_meta.get(key):
            revision.metadata_changes[key] = [old_meta.get(key), new_meta.get(key)]


def describe(revisions: list[Revision]) -> str:
    """One sentence: how many updates, and what they changed."""
    parts = []
    for revision in revisions[1:]:
        if not revision.readable:
            parts.append(f"revision {revision.number} cannot be read ({revision.problem})")
            continue
        said = []
        for change in revision.text_changes:
            words = []
            if change.removed:
                words.append("removed " + _quote(change.removed))
            if change.added:
                words.append("added " + _quote(change.added))
            said.append(f"page {change.page_number}: " + (", ".join(words) or "layout changed"))
        if revision.pages_added:
            said.append(f"added page(s) {', '.join(map(str, revision.pages_added))}")
        if revision.pages_removed:
            said.append(f"removed page(s) {', '.join(map(str, revision.pages_removed))}")
        if revision.metadata_changes and not said:
            names = [_METADATA_NAMES.get(k, k) for k in revision.metadata_changes]
            said.append("changed the " + ", ".join(names))
        parts.append(
            f"revision {revision.number} "
            + (
                "; ".join(said)
                or "changed no page text or metadata (annotations, forms or a signature, perhaps)"
            )
        )
    return "; ".join(parts)


def _quote(words: list[str], limit: int = 8) -> str:
    text = " ".join(words[:limit]) + (" ..." if len(words) > limit else "")
    return f"'{text}'"


def read_verified(path: str, sha256: str) -> bytes | None:
    """The file's bytes if they still match its custody hash, else None."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def source_revisions(case: Case, spec: str) -> tuple[str, list[Revision], bytes]:
    """The revisions of one ingested PDF named by a page id, its path or its SHA-256."""
    spec = spec.strip()
    row = case.db.execute(
        "SELECT s.path, s.sha256, s.kind FROM sources s JOIN pages p ON p.source_id = s.id"
        " WHERE p.page_id = ?",
        (spec.upper(),),
    ).fetchone()
    if row is None:
        row = case.db.execute(
            "SELECT path, sha256, kind FROM sources WHERE status = 'ingested'"
            " AND (path = ? OR sha256 = ? OR (length(?) >= 8 AND sha256 LIKE ? || '%'))",
            (os.path.abspath(spec), spec.lower(), spec, spec.lower()),
        ).fetchone()
    if row is None:
        raise UsageError(
            f"{spec!r} is not a page id, the path of an ingested file or a file's SHA-256"
        )
    if row["kind"] != "pdf":
        raise UsageError(f"{row['path']} is an image: only PDFs keep revisions")
    data = read_verified(row["path"], row["sha256"])
    if data is None:
        if not os.path.exists(row["path"]):
            raise SourceError(row["path"], "the file is no longer at this path")
        raise SourceError(
            row["path"], "changed since it was ingested (its SHA-256 no longer matches)"
        )
    return row["path"], analyse(data), data
