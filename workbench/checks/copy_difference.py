"""copy-difference: two copies of one page whose texts differ in a few words.

This is how an altered copy shows up, or a "canary" copy made different for each
recipient to find who leaked it (which could expose the source if published). For each
pair of near-duplicate pages (workbench.similarity) the texts are aligned word by word
(rapidfuzz) and the differing stretches listed. When a copy was read by OCR, a word
that differs only as OCR misreads do (most of its letters the same) is not counted.
Two text layers differing in a few words is an ``alert``; with an OCR copy, or a copy
read with warnings (a damaged file MuPDF repaired), a ``warn``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from workbench import similarity
from workbench.analysis import normalize
from workbench.checks.base import Check, Draft, Unit
from workbench.store import Case

MAX_DIFFERING_WORDS = 12
MAX_DIFFERING_SHARE = 0.10
# character similarity at or above which two words are one word misread ("bumed" and
# "burned": OCR reads "rn" as "m")
OCR_ALIKE = 0.6
CONTEXT_WORDS = 4
_HYPHENATED = re.compile(r"(\w)[-\u00ad]\s*\n\s*(\w)")
_FROM = "the two pages' texts aligned word by word (normalised: case, letter forms, digits)"


class CopyDifference(Check):
    name = "copy-difference"
    version = 1
    summary = "copies of one page whose texts differ in a few words (altered or canary copies)"

    def units(self, case: Case) -> Iterator[Unit]:
        pairs, basis = similarity.near_duplicates(case)
        for pair in pairs:
            if pair.text_similarity is None or pair.text_similarity >= 1.0:
                continue
            yield Unit(
                f"pair:{pair.first}:{pair.second}",
                {"pages": [[pair.first, basis[pair.first]], [pair.second, basis[pair.second]]]},
            )

    def run(self, case: Case, unit: Unit) -> list[Draft]:
        first, second = (page for page, _ in unit.inputs["pages"])
        rows = case.page_rows_by_id([first, second])
        ocr = "ocr" in (rows[first]["text_source"], rows[second]["text_source"])
        # a copy the PDF engine had to repair, or read with warnings, may show misread text
        damaged = bool(rows[first]["error"] or rows[second]["error"])
        differences, words = differing_words(
            rows[first]["text"], rows[second]["text"], ocr=ocr or damaged
        )
        counted = sum(max(len(d["first"].split()), len(d["second"].split())) for d in differences)
        if (
            not differences
            or counted > max(MAX_DIFFERING_WORDS, 0)
            or counted > (MAX_DIFFERING_SHARE * words)
        ):
            return []
        shown = ", ".join(
            f"'{d['first'] or '-'}' / '{d['second'] or '-'}'" for d in differences[:6]
        )
        return [
            Draft(
                severity="warn" if ocr or damaged else "alert",
                message=(
                    f"{first} and {second} are copies of one page that differ in {counted} "
                    f"word{'s' if counted != 1 else ''}: {shown}"
                    + (" (one copy read by OCR)" if ocr else "")
                    + (" (a copy carries read warnings: it may be damaged)" if damaged else "")
                ),
                page_ids=[first, second],
                evidence={
                    "differences": differences,
                    "text_sources": [rows[first]["text_source"], rows[second]["text_source"]],
                    "sources": [rows[first]["source_path"], rows[second]["source_path"]],
                    "from": _FROM,
                },
                source_sha256=(
                    rows[first]["source_sha256"]
                    if rows[first]["source_sha256"] == rows[second]["source_sha256"]
                    else None
                ),
                discriminator="differences",
            )
        ]


def differing_words(
    first: str, second: str, *, ocr: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """The stretches where two texts differ, aligned, with a little context each; and the
    number of words in the longer text."""
    from rapidfuzz.distance import Levenshtein

    a, b = _words(first), _words(second)
    differences = []
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(a, b).as_list():
        if tag == "equal":
            continue
        left, right = a[i1:i2], b[j1:j2]
        at_edge = i1 == 0 or i2 == len(a)
        if at_edge and all(w.isdigit() for w in left + right):
            continue  # a page number in a header or footer: copies sit at other pages
        if ocr and _misread(left, right):
            continue
        if not any(w.isalnum() or len(w) > 1 for w in left + right):
            continue  # punctuation only
        differences.append(
            {
                "first": " ".join(left),
                "second": " ".join(right),
                "position": i1,
                "context": " ".join(a[max(i1 - CONTEXT_WORDS, 0) : i1])
                + " [...] "
                + " ".join(a[i2 : i2 + CONTEXT_WORDS]),
            }
        )
    return differences, max(len(a), len(b))


def _words(text: str) -> list[str]:
    """Normalised words, with words hyphenated over a line break joined again (two
    copies typeset in other widths break other words)."""
    return normalize(_HYPHENATED.sub(r"\1\2", text)).split()


def _misread(left: list[str], right: list[str]) -> bool:
    """Same number of words, each pair alike letter by letter: OCR noise, not an edit."""
    from rapidfuzz.distance import Levenshtein

    return len(left) == len(right) and all(
        Levenshtein.normalized_similarity(x, y) >= OCR_ALIKE
        for x, y in zip(left, right, strict=True)
    )


CHECK = CopyDifference()
