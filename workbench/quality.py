"""Text-quality measures used to check OCR output against a known reference.

Character error rate (CER) is the number the tests and the benchmarks quote: edit distance
between the reference and the OCR text, divided by the reference length, after both are
normalised so that layout (line breaks, runs of spaces) and Unicode presentation forms
(Arabic/Persian glyph variants, full-width Latin) do not count as errors.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["character_error_rate", "edit_distance", "normalize_for_cer"]

_WHITESPACE = re.compile(r"\s+")


def normalize_for_cer(text: str) -> str:
    """NFKC, collapse every run of whitespace to one space, strip.

    NFKC folds Arabic presentation forms and compatibility characters into the letters a
    reader sees, so a CER counts misread letters rather than encoding accidents.
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute each cost 1).

    Myers/Hyyro bit-parallel algorithm on Python integers: one column of the DP matrix
    is a few big-integer operations, so two unrelated 3,000-character pages take
    milliseconds instead of the ~1.2 s of a plain two-row DP in CPython. The common
    prefix and suffix (most of the text when OCR is good) are stripped first.
    """
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a = a[start:end_a]
    b = b[start:end_b]
    if len(a) > len(b):
        a, b = b, a  # the shorter string is the bit-vector: smaller integers
    m = len(a)
    if m == 0:
        return len(b)

    # peq[c]: bit i set where a[i] == c.
    peq: dict[str, int] = {}
    for i, char in enumerate(a):
        peq[char] = peq.get(char, 0) | (1 << i)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv = mask  # vertical deltas +1 (column 0 of the matrix is 0, 1, 2, ...)
    mv = 0  # vertical deltas -1
    score = m
    for char in b:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & mask  # row 0 grows by one per text character
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance / reference length, after :func:`normalize_for_cer` on both.

    An empty reference gives 0.0 for an empty hypothesis and 1.0 otherwise, so a blank
    page that OCRs to noise still counts as wrong. Values above 1.0 are possible (the
    hypothesis is much longer than the reference).
    """
    ref = normalize_for_cer(reference)
    hyp = normalize_for_cer(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
