"""Text normalisation and the Whoosh analyzer for page text (English, Persian, Arabic).

Why: page text comes from PDF text layers and Tesseract OCR, so one word turns up as
``كتاب`` on one page and ``کتاب`` on the next, with ZWNJ, tatweel, harakat, presentation
forms and three digit scripts mixed in.  A search that misses half the pages because of a
ي/ی mismatch is worse than none, so the index and every query go through the same
:func:`normalize`:

1. Unicode NFKC: presentation forms (U+FB50-U+FEFF) become letters, ``ﬁ`` becomes ``fi``,
   ``ﷲ`` becomes ``الله``, full-width ``Ａ`` becomes ``A``.
2. Persian/Arabic letter folding (done *before* any decomposition, so Arabic letters are
   never blindly NFD-decomposed): ي ى ئ -> ی; ك -> ک; ة ۀ -> ه (and ``هٔ`` -> ``ه`` because
   U+0654 is removed); أ إ ٱ آ -> ا; ؤ -> و.  Removed: tatweel U+0640, harakat U+064B-U+065F,
   U+0670, Quranic marks U+06D6-U+06ED, bidi/format marks (U+200E, U+200F, U+061C,
   U+202A-U+202E, U+2066-U+2069, U+FEFF), ZWNJ U+200C, ZWJ U+200D and soft hyphen U+00AD.
3. Digits: Persian ۰-۹ and Arabic-Indic ٠-٩ -> ASCII 0-9.
4. Case folding (``str.casefold``: ``Straße`` -> ``strasse``) and accent stripping: NFD, drop
   the combining diacritics (U+0300-U+036F and the other "combining diacritical marks"
   blocks), NFC again; ``ø ł đ ħ ı æ œ ð þ`` are folded by table because they have no
   decomposition.  ``café`` == ``cafe``, ``Müller`` == ``muller``.
5. Persian word joining, so ``می‌رود`` / ``میرود`` / ``می رود`` and ``کتاب‌ها`` / ``کتابها`` /
   ``کتاب ها`` are the same word:

   * ZWNJ is removed everywhere (rule 2), which joins the two halves of a word;
   * a whole token ``می`` or ``نمی`` is joined to the next word when only spaces/tabs
     (or a ZWNJ) separate them and the next word starts with an Arabic-script letter;
   * a whole token ``ها``, ``های``, ``هایی``, ``هایم``, ``هایت``, ``هایش``, ``هایمان``,
     ``هایتان``, ``هایشان``, ``تر`` or ``ترین`` is joined to the previous word when only
     spaces/tabs separate them and that word ends in an Arabic-script letter.  ``هادی``
     or ``ترس`` are not particles (the particle must be a whole token).

   Known false joins (harmless for recall because text and queries join alike, but the
   separate word can then no longer be found on its own): the noun ``می`` (wine) and the
   month ``می`` (May: ``ماه می گذشته`` -> ``ماه میگذشته``); ``نمی`` meaning "some damp";
   Arabic ``مي`` (the name May/Mai: ``مي زيادة`` -> ``میزیاده``); the adjective ``تر`` (wet:
   ``خاک تر`` -> ``خاکتر``); the interjections ``ها`` / ``های``; Arabic ``ها`` in ``ها هو``.
   A ZWNJ used by mistake *between* two words joins them.  Line breaks never join: a
   ``می`` at the end of a line stays separate from the verb on the next line.

Other limits: ``ھ`` (U+06BE) and ``ە`` (U+06D5) are not folded to ``ه``; Urdu ``ۂ``/``ۓ``
lose their hamza like Persian letters do; Cyrillic ``й`` folds to ``и`` (accent
stripping); RTL text that a PDF extractor wrote in visual (reversed) order is not repaired;
``.``/``٫`` inside a number splits it (``3.14`` -> ``3``, ``14``), ``_`` does not
(``cables_2014`` is one token).

:func:`normalize` is the fast path (whole-string ``unicodedata`` calls, ``str.replace``
and precompiled regexes; no per-character Python): a 3,000-character Persian page takes
about 0.2 ms, an English one 0.03 ms.  :func:`normalize_with_offsets` gives the same string
plus, for every normalised character, the index of the original character it came from; it
works cluster by cluster (a base character with its combining marks and removed format
characters), linear but about 10x slower, so the tokenizer only uses it when Whoosh asks
for character offsets (highlighting, phrase queries).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from whoosh.analysis import Analyzer, CompositeAnalyzer, Token, Tokenizer
from whoosh.compat import dumps as _pickle
from whoosh.formats import Positions
from whoosh.system import pack_uint as _pack_uint

from workbench.unicode_marks import MARKS
from workbench.unicode_marks import UNICODE_VERSION as MARKS_UNICODE_VERSION

__all__ = [
    "NormalizedPositions",
    "NormalizingTokenizer",
    "PAIR_SEPARATOR",
    "WordPairPositions",
    "normalize",
    "normalize_query",
    "normalize_with_offsets",
    "original_span",
    "page_text_analyzer",
    "word_spans",
]

# ----- translation tables ------------------------------------------------------------------

_YEH = "\u06cc"  # ی Farsi yeh
_KEHEH = "\u06a9"  # ک keheh
_HEH = "\u0647"  # ه
_ALEF = "\u0627"  # ا
_WAW = "\u0648"  # و

# Characters deleted outright (step 2): tatweel, harakat, Quranic marks, bidi and other
# invisible format characters.  ZWNJ/ZWJ/soft hyphen are deleted too, which joins words.
_BIDI_MARKS = (
    "\u200e\u200f\u061c\ufeff"  # LRM, RLM, ALM, BOM/ZWNBSP
    "\u202a\u202b\u202c\u202d\u202e"  # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"  # LRI RLI FSI PDI
)
_REMOVED = (
    ["\u0640"]
    + [chr(c) for c in range(0x064B, 0x0660)]
    + ["\u0670"]
    + [chr(c) for c in range(0x06D6, 0x06EE)]
    + list(_BIDI_MARKS)
    + ["\u200c", "\u200d", "\u00ad"]  # ZWNJ, ZWJ, soft hyphen
)

_BIDI_SET = frozenset(_BIDI_MARKS)

_ARABIC_MAP: dict[str, str] = {
    "\u064a": _YEH,  # ي Arabic yeh
    "\u0649": _YEH,  # ى alef maksura
    "\u0626": _YEH,  # ئ yeh with hamza
    "\u0643": _KEHEH,  # ك Arabic kaf
    "\u0629": _HEH,  # ة teh marbuta
    "\u06c0": _HEH,  # ۀ heh with yeh above
    "\u0623": _ALEF,  # أ
    "\u0625": _ALEF,  # إ
    "\u0671": _ALEF,  # ٱ alef wasla
    "\u0622": _ALEF,  # آ
    "\u0624": _WAW,  # ؤ
}
for _i in range(10):
    _ARABIC_MAP[chr(0x06F0 + _i)] = str(_i)  # Persian digits
    _ARABIC_MAP[chr(0x0660 + _i)] = str(_i)  # Arabic-Indic digits

# Step 4, applied after casefold + NFD: drop combining diacritics (Latin, Greek, Cyrillic
# accents; Arabic marks that NFD of Urdu letters such as ۂ can produce) and fold a few
# letters that have no Unicode decomposition.
_STRIPPED_MARKS = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u064b-\u065f\u0670\u06d6-\u06ed"
)
_LATIN_MAP = {
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ħ": "h",
    "ı": "i",
    "æ": "ae",
    "œ": "oe",
    "ð": "d",
    "þ": "th",
}

# Not str.translate: it looks every character up in a dict (~50 ns each, 0.15 ms a page);
# regex deletion and a chain of str.replace calls skip untouched text in C.
_REMOVED_RE = re.compile("[" + "".join(_REMOVED) + "]+")
_ARABIC_ITEMS = tuple(_ARABIC_MAP.items())
_STRIP_RE = re.compile(f"[{_STRIPPED_MARKS}]+")
_LATIN_RE = re.compile("[" + "".join(_LATIN_MAP) + "]")


def _latin_letter(match: re.Match[str]) -> str:
    return _LATIN_MAP[match.group()]


def _mark_ranges() -> str:
    """A regex class body for every combining mark (category M or non-zero combining class).

    Why: such characters belong to the character before them (for clustering in
    :func:`normalize_with_offsets`) and to the word they sit in (for the tokenizer, so
    Devanagari or Hebrew words are not cut at each vowel sign).  Computed (about 20 ms)
    rather than hard-coded per Unicode version; :mod:`workbench.unicode_marks` keeps the
    result for the version of the Python the project runs on.
    """
    chars = [
        c
        for rng in (range(0x0300, 0x20000), range(0xE0100, 0xE01F0))
        for c in rng
        if unicodedata.category(chr(c))[0] == "M" or unicodedata.combining(chr(c))
    ]
    parts = []
    start = prev = chars[0]
    for c in chars[1:] + [-1]:
        if c != prev + 1:
            parts.append(
                re.escape(chr(start))
                if start == prev
                else f"{re.escape(chr(start))}-{re.escape(chr(prev))}"
            )
            start = c
        prev = c
    return "".join(parts)


# Computed once per Unicode version: the table is read when it was made from this one.
_MARKS = MARKS if unicodedata.unidata_version == MARKS_UNICODE_VERSION else _mark_ranges()
# Characters that never start a cluster: marks, Hangul medial/final jamo and half-width
# voiced marks (they compose with the character before them under NFKC), and everything
# step 2 deletes (so a deleted character can never separate two characters that compose).
_ATTACHED = (
    _MARKS
    + "\u1160-\u11ff\uff9e\uff9f"
    + "".join(re.escape(ch) for ch in _REMOVED if not unicodedata.category(ch).startswith("M"))
)

# Arabic-script letters after normalisation (no digits, punctuation or marks).
_AR = "\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06fc\u06ff\u0750-\u077f\u08a0-\u08c9"
# The match starts with the literal می (fast to find) and holds the separator to delete;
# the lookbehinds make می / نمی a whole token.
_PREFIX_RE = re.compile(
    "\u0645\u06cc(?:(?<=^\u0645\u06cc)|(?<=\\W\u0645\u06cc)|(?<=^\u0646\u0645\u06cc)"
    f"|(?<=\\W\u0646\u0645\u06cc))[ \\t]+(?=[{_AR}])"
)
_SUFFIXES = (
    "ها",
    "های",
    "هایی",
    "هایم",
    "هایت",
    "هایش",
    "هایمان",
    "هایتان",
    "هایشان",
    "تر",
    "ترین",
)
_SUFFIX_RE = re.compile(
    f"(?<=[{_AR}])[ \\t]+(?=(?:{'|'.join(sorted(_SUFFIXES, key=len, reverse=True))})(?!\\w))"
)

# A token: a run of word characters (letters of any script, digits, underscore) and the
# combining marks that remain after normalisation.
_TOKEN_RE = re.compile(f"\\w+(?:[{_MARKS}]+\\w*)*")


# ----- normalisation -----------------------------------------------------------------------


def _fold(text: str) -> str:
    """Steps 1-4 (everything except the word joins); context-free within a cluster."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text.casefold()
    text = _REMOVED_RE.sub("", text)
    for old, new in _ARABIC_ITEMS:
        text = text.replace(old, new)
    text = text.casefold()
    if text.isascii():
        return text
    text = _STRIP_RE.sub("", unicodedata.normalize("NFD", text))
    text = _LATIN_RE.sub(_latin_letter, text)
    return unicodedata.normalize("NFC", text)


def normalize(text: str) -> str:
    """Normalise text for indexing or searching (see the module docstring for the rules).

    Why: index and queries must agree on one spelling of every word, whatever mix of
    Arabic/Persian letter forms, digit scripts, ZWNJ and accents the source used.
    """
    text = _fold(text)
    text = _PREFIX_RE.sub("\u0645\u06cc", text)
    return _SUFFIX_RE.sub("", text)


def _simple_chars() -> tuple[str, dict[int, str]]:
    """Characters that fold to exactly one character on their own, and that table.

    Why: in a run of them (not followed by a mark or deleted character, which would join
    the last one's cluster) every character is its own cluster, so
    :func:`normalize_with_offsets` folds the run with one ``str.translate`` and maps
    offsets one to one, instead of looping over clusters in Python (ASCII, Latin-1,
    Latin Extended, Arabic/Persian letters and digits: nearly every page).
    """
    attached = re.compile(f"[{_ATTACHED}]")
    chars = []
    table: dict[int, str] = {}
    for code in (*range(0x20, 0x250), *range(0x0600, 0x0700), 0x09, 0x0A, 0x0D):
        ch = chr(code)
        if attached.match(ch) or unicodedata.category(ch).startswith("C") and ch not in "\t\n\r":
            continue
        folded = _fold(ch)
        if len(folded) != 1:
            continue
        chars.append(ch)
        if folded != ch:
            table[code] = folded
    return "".join(re.escape(ch) for ch in chars), table


_SIMPLE, _SIMPLE_TABLE = _simple_chars()
# A run of simple characters not followed by one that attaches to the run's last one
# (backtracking leaves that last character to the cluster path), else one cluster.
_RUN_OR_CLUSTER_RE = re.compile(
    f"(?P<run>[{_SIMPLE}]+(?![{_ATTACHED}]))|[^{_ATTACHED}]?[{_ATTACHED}]*", re.DOTALL
)

_PIECE_CACHE: dict[str, str] = {}
_PIECE_CACHE_MAX = 100_000


def _delete_spans(
    text: str, offsets: list[int], spans: list[tuple[int, int]]
) -> tuple[str, list[int]]:
    parts: list[str] = []
    new_offsets: list[int] = []
    prev = 0
    for start, end in spans:
        parts.append(text[prev:start])
        new_offsets.extend(offsets[prev:start])
        prev = end
    parts.append(text[prev:])
    new_offsets.extend(offsets[prev:])
    return "".join(parts), new_offsets


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Return ``(normalize(text), offsets)``; ``offsets[i]`` is where normalised char i came from.

    Why: the index holds normalised words but the journalist sees the original page, so
    highlighting needs the original span of each word.  Every output character maps to the
    start of the original cluster (base character + its marks/format characters) that
    produced it, so offsets never decrease; use :func:`original_span` to map a token.
    """
    pieces: list[str] = []
    offsets: list[int] = []
    cache = _PIECE_CACHE
    table = _SIMPLE_TABLE
    for match in _RUN_OR_CLUSTER_RE.finditer(text):
        run = match.group("run")
        if run is not None:
            pieces.append(run.translate(table))
            offsets.extend(range(match.start(), match.end()))
            continue
        cluster = match.group()
        if not cluster:
            continue
        piece = cache.get(cluster)
        if piece is None:
            piece = _fold(cluster)
            if len(cache) >= _PIECE_CACHE_MAX:
                cache.clear()
            cache[cluster] = piece
        if piece:
            pieces.append(piece)
            start = match.start()
            if len(piece) == 1:
                offsets.append(start)
            else:
                offsets.extend([start] * len(piece))
    norm = "".join(pieces)
    spans = [(m.start() + 2, m.end()) for m in _PREFIX_RE.finditer(norm)]
    if spans:
        norm, offsets = _delete_spans(norm, offsets, spans)
    spans = [m.span() for m in _SUFFIX_RE.finditer(norm)]
    if spans:
        norm, offsets = _delete_spans(norm, offsets, spans)
    return norm, offsets


def original_span(
    offsets: list[int], start: int, end: int, original_length: int
) -> tuple[int, int]:
    """Map the normalised span ``[start, end)`` to ``[orig_start, orig_end)`` in the original.

    Why: a highlight must cover the whole original word, including ZWNJ, diacritics or
    tatweel that normalisation removed from inside or after it, and the space a ``می``/``ها``
    join removed.  The end is the origin of the next normalised character that comes from a
    later original character (or ``original_length``), so characters deleted right after
    the word (trailing harakat, ZWNJ, bidi marks) are included; whitespace never is.
    """
    count = len(offsets)
    if start >= end or start >= count:
        pos = offsets[start] if start < count else original_length
        return pos, pos
    last = offsets[end - 1]
    j = end
    while j < count and offsets[j] == last:
        j += 1  # still inside the expansion of one original character (ﷺ, ﬁ, ß)
    return offsets[start], offsets[j] if j < count else original_length


# ----- Whoosh ------------------------------------------------------------------------------


def _token_span(
    value: str, offsets: list[int], start: int, end: int, length: int
) -> tuple[int, int]:
    ostart, oend = original_span(offsets, start, end, length)
    while value[oend - 1] in _BIDI_SET:
        oend -= 1  # keep a trailing bidi mark out of the highlight
    return ostart, oend


def word_spans(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Original ``(start, end)`` of every token of ``text`` whose normalised form is in ``words``.

    Why: search highlights need the spans of a few words on a page; this is what the
    tokenizer gives with ``chars=True`` for those words, without a Token per word.
    """
    if not words:
        return []
    norm, offsets = normalize_with_offsets(text)
    length = len(text)
    return [
        _token_span(text, offsets, start, end, length) for start, end in _word_tokens(norm, words)
    ]


_WORDS_RE_CACHE: dict[frozenset[str], re.Pattern[str]] = {}
_MARK_RE = re.compile(f"[{_MARKS}]")
_WORD_CHAR_RE = re.compile(r"\w")


def _word_tokens(norm: str, words: set[str]) -> list[tuple[int, int]]:
    """Spans of the tokens of normalised text that are in ``words``, found by a regex.

    Why: the words of one query are few; searching for them directly is far cheaper
    than walking every token of the page. A candidate counts only if it is a whole
    token, as ``_TOKEN_RE.finditer`` would cut it: nothing token-like follows it, and
    before it there is no word character (marks before it count only if a word
    character precedes them: leading marks belong to no token).
    """
    key = frozenset(words)
    pattern = _WORDS_RE_CACHE.get(key)
    if pattern is None:
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        pattern = re.compile(f"(?<!\\w)(?:{alternatives})(?![\\w{_MARKS}])")
        if len(_WORDS_RE_CACHE) > 256:
            _WORDS_RE_CACHE.clear()
        _WORDS_RE_CACHE[key] = pattern
    spans = []
    for match in pattern.finditer(norm):
        start = match.start()
        before = start - 1
        while before >= 0 and _MARK_RE.match(norm, before):
            before -= 1
        if 0 <= before < start - 1 and _WORD_CHAR_RE.match(norm, before):
            continue  # marks inside a token that started earlier
        spans.append((start, match.end()))
    return spans


class NormalizingTokenizer(Tokenizer):
    """Whoosh tokenizer: words of the normalised text, with ORIGINAL character offsets.

    Why: Whoosh stores the original page text and re-tokenizes it to highlight hits, so the
    token text must be the normalised word (to match the index) while ``startchar`` /
    ``endchar`` must point into the original text.  Tokens are runs of Unicode word
    characters, so ``1393/05/12`` gives ``1393``, ``05``, ``12``.  A bidi mark right after
    a word is left out of its span (it would otherwise end up inside the highlight tag).
    Keyword arguments follow :class:`whoosh.analysis.RegexTokenizer`; ``tokenize=False``
    yields the whole normalised value (Whoosh uses it for wildcard, fuzzy and range terms).
    Holds no state, so schemas pickled into an index stay loadable.
    """

    def __eq__(self, other: object) -> bool:
        return other is not None and self.__class__ is other.__class__

    def __hash__(self) -> int:
        return hash(self.__class__)

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: object,
    ) -> Iterator[Token]:
        assert isinstance(value, str), f"{value!r} is not unicode"
        t = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            t.original = value
            t.text = normalize(value)
            t.boost = 1.0
            if positions:
                t.pos = start_pos
            if chars:
                t.startchar = start_char
                t.endchar = start_char + len(value)
            yield t
            return

        offsets: list[int] | None = None
        if chars or keeporiginal:
            norm, offsets = normalize_with_offsets(value)
        else:
            norm = normalize(value)
        length = len(value)
        for pos, match in enumerate(_TOKEN_RE.finditer(norm)):
            t.text = match.group()
            t.boost = 1.0
            t.stopped = False
            if offsets is not None:
                ostart, oend = _token_span(value, offsets, match.start(), match.end(), length)
                if keeporiginal:
                    t.original = value[ostart:oend]
                if chars:
                    t.startchar = start_char + ostart
                    t.endchar = start_char + oend
            if positions:
                t.pos = start_pos + pos
            yield t


class NormalizedPositions(Positions):
    """Whoosh's phrase-capable postings format, with a direct path for our own analyzer.

    Why: indexing calls ``word_values`` once per page and field; going through Token
    objects one word at a time cost about a third of the indexing time. With the page
    analyzer the words are exactly ``_TOKEN_RE`` over :func:`normalize` (that is what
    :class:`NormalizingTokenizer` yields without character offsets), so they are taken
    in one ``findall``. Any other analyzer or option takes Whoosh's own path.
    """

    def word_values(self, value, analyzer, **kwargs):  # type: ignore[no-untyped-def]
        if not _is_page_analyzer(analyzer) or set(kwargs) - {"mode"}:
            yield from super().word_values(value, analyzer, **kwargs)
            return
        yield from _position_postings(_TOKEN_RE.findall(normalize(value)), self.field_boost)


def _position_postings(terms: list[str], boost: float):  # type: ignore[no-untyped-def]
    """Whoosh's (term, frequency, weight, encoded positions) for terms at positions 0, 1, ..."""
    positions: dict[str, list[int]] = {}
    for pos, term in enumerate(terms):
        found = positions.get(term)
        if found is None:
            positions[term] = [pos]
        else:
            found.append(pos)
    for term, poslist in positions.items():
        count = len(poslist)
        if count > 1:  # Whoosh stores position deltas
            poslist = [b - a for a, b in zip([0, *poslist], poslist, strict=False)]
        yield term, count, float(count) * boost, _pack_uint(count) + _pickle(poslist, 2)


# Joins the two words of a pair term: tokens never hold a space.
PAIR_SEPARATOR = " "


class WordPairPositions(Positions):
    """Postings of adjacent word pairs (shingles), at the position of the pair's first word.

    Why: a phrase query otherwise intersects its words (each on tens of thousands of pages
    at 100,000 pages) and reads their positions on every page having them all. The pair
    ``"crude oil"`` is one term here, so a two-word phrase is one posting list, and a
    longer one is its pairs at consecutive positions (exactly the pages where the words
    are adjacent in order: pair i at p, pair i+1 at p+1). The words are the page
    analyzer's own tokens (:func:`normalize` then ``_TOKEN_RE``), so Persian/Arabic folding,
    ZWNJ joins and line breaks treat pairs exactly as they treat the text field's
    positions. Only the page analyzer is supported: the field is filled from page text.
    """

    def word_values(self, value, analyzer, **kwargs):  # type: ignore[no-untyped-def]
        words = _TOKEN_RE.findall(normalize(value))
        # pair i (words i and i+1) at position i
        pairs = [a + PAIR_SEPARATOR + b for a, b in zip(words, words[1:], strict=False)]
        yield from _position_postings(pairs, self.field_boost)


def _is_page_analyzer(analyzer: object) -> bool:
    return (
        isinstance(analyzer, CompositeAnalyzer)
        and len(analyzer.items) == 1
        and type(analyzer.items[0]) is NormalizingTokenizer
    )


def page_text_analyzer() -> Analyzer:
    """The analyzer for page text: normalising tokenizer, no stop words, no stemming.

    Why: journalists search exact phrases and names; stemming or stop words would make
    ``"exact phrase"`` queries match text that does not contain the phrase.
    """
    return CompositeAnalyzer(NormalizingTokenizer())


# ----- queries -----------------------------------------------------------------------------

_OPERATORS = r"(?:(?<=\s)(?:AND|OR|ANDNOT|ANDMAYBE)(?=\s))|(?:(?:^|(?<=[\s()]))NOT(?=\s))"
_QUERY_SYNTAX_RE = re.compile(
    rf"""
      (?P<phrase>"[^"]*")                      # "a phrase" (slop ~N follows as plain text)
    | (?P<range>[\[{{][^\]}}]*[\]}}])          # [a TO b] / {{a TO b}}
    | (?P<field>(?<![\w"])(?:[A-Za-z_][A-Za-z0-9_]*|\*):)  # field name (ASCII, as typed)
    | (?P<op>{_OPERATORS})                     # operators where Whoosh sees them
    """,
    re.VERBOSE,
)
_WORD_RE = re.compile(r"\S+")


def _normalize_range(body: str) -> str:
    return _WORD_RE.sub(lambda m: m.group() if m.group() == "TO" else normalize(m.group()), body)


def normalize_query(query: str) -> str:
    """Normalise the terms of a Whoosh query string but keep its syntax.

    Why: Whoosh splits queries at spaces before the analyzer runs (so ``می رود`` must be
    joined here), and wildcard, prefix and fuzzy terms skip the tokenizing step, so
    ``Café*`` / ``كتاب*`` / ``۱۳۹۳*`` must arrive as ``cafe*`` / ``کتاب*`` / ``1393*``.  Kept
    as typed: the operators AND OR NOT ANDNOT ANDMAYBE (uppercase, where Whoosh treats them
    as operators), ``TO`` in ranges, ASCII field names before ``:``, quotes, brackets,
    parentheses and ``* ? ~ ^`` (normalisation never changes these ASCII characters).
    Phrases and ranges are normalised inside; no join crosses an operator, a field name, a
    quote or a range.
    """
    out: list[str] = []
    prev = 0
    for match in _QUERY_SYNTAX_RE.finditer(query):
        if match.start() > prev:
            out.append(normalize(query[prev : match.start()]))
        kind = match.lastgroup
        token = match.group()
        if kind == "phrase":
            out.append('"' + normalize(token[1:-1]) + '"')
        elif kind == "range":
            out.append(token[0] + _normalize_range(token[1:-1]) + token[-1])
        else:
            out.append(token)
        prev = match.end()
    if prev < len(query):
        out.append(normalize(query[prev:]))
    return "".join(out)


# Keep the module's import-time helpers out of the namespace.
del _i
