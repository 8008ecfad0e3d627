"""What every check is: a name, a version, the units it looks at, and what it finds.

Why it is shaped this way: a check reads the case (never the files again, unless it must)
and looks at *units*: a source file, a document, a cluster of pages. Each unit comes with
its inputs, the facts the check's verdict depends on; the runner hashes them with the
check's version and runs the check on a unit only when that hash changed since the last
run. So a re-run after adding files checks only the new units, and a finding stays until
its inputs change. Checks are deterministic: the same inputs give the same findings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workbench.store import Case

SEVERITIES = ("info", "warn", "alert")


@dataclass(frozen=True)
class Unit:
    """One thing a check looks at. ``key`` is stable across runs (e.g. ``source:<sha256>``);
    ``inputs`` is JSON-able and holds everything the verdict depends on."""

    key: str
    inputs: Any


@dataclass
class Draft:
    """A finding as a check produces it; the runner gives it its id and stores it.

    ``discriminator`` tells apart several findings of one check on one unit (e.g. the
    number of the missing page); together with the check and unit it makes the id, so a
    finding keeps its id (and a reviewer's dismissal) across runs.
    """

    severity: str
    message: str
    page_ids: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)
    source_sha256: str | None = None
    discriminator: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")


class Check:
    """Base of every check; subclasses set ``name``, ``version`` and ``summary``."""

    name: ClassVar[str]
    version: ClassVar[int]
    summary: ClassVar[str]

    def units(self, case: Case) -> Iterable[Unit]:
        """Every unit of the case this check looks at, with its inputs."""
        raise NotImplementedError

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        """The findings on one unit (an empty list when all is well)."""
        raise NotImplementedError


def source_pages(case: Case, sha256: str) -> dict[int, str]:
    """An ingested file's page ids by page number, in page order."""
    return {
        row[0]: row[1]
        for row in case.db.execute(
            "SELECT p.page_number, p.page_id FROM pages p JOIN sources s ON s.id = p.source_id"
            " WHERE s.sha256 = ? AND s.status = 'ingested' ORDER BY p.page_number",
            (sha256,),
        )
    }


def canonical(value: Any) -> str:
    """The JSON text hashed for inputs and finding content: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def layer_page_numbers(case: Case, sha256: str) -> list[int]:
    """An ingested file's page numbers whose text came from its own text layer, in order."""
    return [
        row[0]
        for row in case.db.execute(
            "SELECT p.page_number FROM pages p JOIN sources s ON s.id = p.source_id"
            " WHERE s.sha256 = ? AND s.status = 'ingested' AND p.text_source = 'layer'"
            " ORDER BY p.page_number",
            (sha256,),
        )
    ]
