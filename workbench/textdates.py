"""Find dates and "page X of Y" markers in page text, and convert between calendars.

Why: a cable's written date and its footer ("صفحه ۲ از ۵") are what a journalist checks
first when verifying a page, and the trove mixes three calendars and three digit scripts.
This module is called at ingest for every page, so it is standard library only and uses
precompiled regexes that run on the original text (spans need no mapping back) and start
with a character class so the engine skips ahead fast: a 3,000-character cable page with a
few dates takes about 0.15 ms, a page dense with dates well under 1 ms.

Date forms found by :func:`find_dates` (digits may be ASCII, Persian ۰-۹ or Arabic-Indic ٠-٩;
ي/ى = ی, ك = ک, ة/ۀ = ه, أ/إ/آ = ا; ZWNJ, tatweel and harakat may appear inside names):

* Gregorian: ``2014-08-03``, ``2014/08/03``, ``2014.08.03`` (year 1900-2199);
  ``3 August 2014``, ``3 Aug 2014``, ``03 Aug. 2014``, ``3rd August 2014``,
  ``3rd of August 2014``, ``August 3, 2014``, ``Aug 3 2014``; day-first with Persian or
  Arabic month names (``۳ اوت ۲۰۱۴``, ``٣ أغسطس ٢٠١٤``); ``03.08.2014`` is always
  day.month.year.  ``03/08/2014`` and ``03-08-2014`` are ambiguous (US vs EU order) and
  are NOT taken unless the order is forced: a first number > 12 means D/M/Y, a second
  number > 12 means M/D/Y, and equal numbers (``03/03/2014``) read the same either way.
* Jalali (Solar Hijri): numeric Y/M/D with year 1300-1419 and ``/``, ``-`` or ``.``
  (``1393/05/12``, ``۱۳۹۳-۰۵-۱۲``, ``1393/5/12``); the bidi-reversed D/M/Y form
  ``12/05/1393`` (year last, 1300-1419) that text extraction of RTL lines produces;
  named months ``۱۲ مرداد ۱۳۹۳``, ``۱۲ مرداد ماه ۱۳۹۳``, ``۱۲ مردادماه سال ۱۳۹۳``.  Named
  months (even ``دی``, ``مهر``, ``تیر``) are only taken with a day number before and a
  4-digit year after.  A following ``ه.ش`` / ``هـ.ش`` / ``ش`` / ``هجری شمسی`` is included.
* Hijri qamari: named months in Persian/Arabic spelling (``۷ شوال ۱۴۳۵``, ``ذی‌الحجه``,
  ``ربيع الأول`` ...) and English transliteration (``7 Shawwal 1435 AH``); numeric
  ``1435/10/07`` or ``07/10/1435`` ONLY when a qamari suffix follows (``ه.ق``, ``هـ.ق``,
  ``ه‍.ق``, ``ق``, ``هـ``, ``هجری قمری``, ``AH``).  The suffix is part of the span.
* A weekday written right before a date (``سه‌شنبه ۱۲ مرداد ۱۳۹۳``, ``الأحد``,
  ``Sunday, 3 August 2014``) is part of the span, together with the comma after it.

Not found on purpose: two-digit years (``۹۳/۵/۱۲``), month-year without a day, dates
written in words, dates split over more than one line break between two parts (one
break is allowed: PDF text layers break Persian lines at digits), ambiguous numeric
D/M/Y vs M/D/Y.

Calendars:

* Jalali uses the 33-year arithmetic rule (leap when ``year % 33`` is one of
  1, 5, 9, 13, 17, 22, 26, 30), the rule jdatetime/khayyam and Iranian software use.
  It matches the official astronomical calendar for 1178-1633 SH (1399 and 1403 are leap).
  The 2820-year (Birashk) rule is NOT used: it wrongly makes 1404 leap instead of 1403.
* Hijri qamari uses the Umm al-Qura calendar for 1300-1500 AH (1882-2077): the month
  lengths below were generated from ICU's ``islamic-umalqura`` calendar and cross-checked
  day by day against Java's ``HijrahChronology``; they agree exactly.  Umm al-Qura is what
  most reference tables use.  Iran's official lunar calendar is set by moon sighting, so an
  Iranian document may be one day off any algorithm (e.g. Eid al-Fitr 1435 was 28 July 2014
  in Umm al-Qura and 29 July in Iran): treat a Hijri-derived ISO date as ±1 day.  Outside
  1300-1500 AH the tabular (arithmetical, civil-epoch) calendar is used, which is ±1-2 days.
  Day 30 is accepted in every month, because an observed month can have 30 days where the
  table has 29; it then maps to the day after the 29th.
"""

from __future__ import annotations

import bisect
import datetime
import re
from dataclasses import dataclass

from workbench.errors import DateParseError

__all__ = [
    "FoundDate",
    "PageMarker",
    "find_dates",
    "find_page_marker",
    "gregorian_to_hijri",
    "gregorian_to_jalali",
    "hijri_to_gregorian",
    "is_jalali_leap",
    "jalali_to_gregorian",
    "parse_user_date",
    "to_ascii_digits",
]


@dataclass(frozen=True)
class FoundDate:
    """A date written in page text; ``original == text[start:end]``."""

    start: int
    end: int
    original: str
    calendar: str  # "gregorian" | "jalali" | "hijri"
    iso: str  # the Gregorian date, YYYY-MM-DD


@dataclass(frozen=True)
class PageMarker:
    """A "page X of Y" footer/header; ``original == text[start:end]``."""

    number: int
    total: int
    start: int
    end: int
    original: str


# --------------------------------------------------------------------------- digits


_DIGITS: dict[int, int] = {}
for _i in range(10):
    _DIGITS[0x06F0 + _i] = ord("0") + _i  # Persian ۰-۹
    _DIGITS[0x0660 + _i] = ord("0") + _i  # Arabic-Indic ٠-٩


def to_ascii_digits(text: str) -> str:
    """Turn Persian (U+06F0..) and Arabic-Indic (U+0660..) digits into 0-9; length kept."""
    return text.translate(_DIGITS)


# Letter variants that mean the same in a month or page word (Arabic vs Persian keyboard).
_LETTER_VARIANTS = {
    "\u06cc": "\u06cc\u064a\u0649",  # ی ي ى
    "\u06a9": "\u06a9\u0643",  # ک ك
    "\u0647": "\u0647\u0629\u06c0\u06d5",  # ه ة ۀ ە
    "\u0627": "\u0627\u0623\u0625\u0622\u0671",  # ا أ إ آ ٱ
}
_FOLD: dict[int, int] = dict(_DIGITS)
for _canon, _variants in _LETTER_VARIANTS.items():
    for _v in _variants:
        _FOLD[ord(_v)] = ord(_canon)


def _fold(text: str) -> str:
    """Fold letter variants and digits to one spelling (for names, not for spans)."""
    return text.translate(_FOLD)


# --------------------------------------------------------------------------- Jalali

_JALALI_LEAP_REMAINDERS = frozenset({1, 5, 9, 13, 17, 22, 26, 30})
# _LEAPS_BEFORE[r]: leap years among remainders 0..r-1 of a 33-year cycle.
_LEAPS_BEFORE = [sum(1 for x in _JALALI_LEAP_REMAINDERS if x < r) for r in range(34)]


def is_jalali_leap(year: int) -> bool:
    """True when Esfand of ``year`` has 30 days (33-year arithmetic rule)."""
    return year % 33 in _JALALI_LEAP_REMAINDERS


def _jalali_days_before(year: int) -> int:
    return 365 * year + 8 * (year // 33) + _LEAPS_BEFORE[year % 33]


# Anchor: 1 Farvardin 1393 = 2014-03-21.
_JALALI_OFFSET = datetime.date(2014, 3, 21).toordinal() - _jalali_days_before(1393)


def _jalali_year_start(year: int) -> int:
    return _jalali_days_before(year) + _JALALI_OFFSET


def _jalali_month_length(year: int, month: int) -> int:
    if month <= 6:
        return 31
    if month <= 11:
        return 30
    return 30 if is_jalali_leap(year) else 29


def jalali_to_gregorian(year: int, month: int, day: int) -> datetime.date:
    """Jalali (Solar Hijri) date to Gregorian; ValueError if it does not exist."""
    if not 1 <= year <= 9377:
        raise ValueError(f"Jalali year {year} out of range")
    if not 1 <= month <= 12:
        raise ValueError(f"Jalali month {month} out of range 1-12")
    if not 1 <= day <= _jalali_month_length(year, month):
        raise ValueError(f"Jalali day {day} out of range for {year}/{month:02d}")
    doy = (month - 1) * 31 if month <= 7 else 186 + (month - 7) * 30
    return datetime.date.fromordinal(_jalali_year_start(year) + doy + day - 1)


def gregorian_to_jalali(d: datetime.date) -> tuple[int, int, int]:
    """Gregorian date to Jalali (year, month, day)."""
    ordinal = d.toordinal()
    year = d.year - 621
    if ordinal < _jalali_year_start(year):
        year -= 1
    doy = ordinal - _jalali_year_start(year)
    if doy < 186:
        return year, doy // 31 + 1, doy % 31 + 1
    doy -= 186
    return year, doy // 30 + 7, doy % 30 + 1


# --------------------------------------------------------------------------- Hijri

# Umm al-Qura month lengths, 1300-1500 AH: three hex digits per year, bit (m-1) set when
# month m has 30 days.  Generated from ICU ``islamic-umalqura`` (Node Intl), verified
# against Java ``HijrahChronology`` for every day; 1 Muharram 1300 = 1882-11-12.
_UQ_FIRST_YEAR = 1300
_UQ_LAST_YEAR = 1500
_UQ_FIRST_DAY = datetime.date(1882, 11, 12)
_UQ_BITS = (
    "5552ab9372b657636cb55aaa95649e95d2ba5b53aab4ba9652e2ad56db5a752f25e8ad16"
    "a56ab56b4da9b92b2564ba9b35a6d95d4da5d4aa955369752f46e96d46a953525d4bd9ba"
    "3b4b69b2aa554ada5d2da6d9eaae94d2ac564aea6d56ad55d4aa9352ba5b53a6b5ea9d52"
    "d29a554ad56daea6e4ed1da2aaa95a2da5b9bb27646c95552ab4dbaba5b4da9d52aa592d"
    "26d8ed2daad5aa5a4b4979372b6975d69d52c9592b25b4db9d55d2da5d4aa9554daad3aa"
    "bd2bc4b89a9552d5adb6a6d4dc9d92aa69562ae56d36ab55aaa94d49d95d2ba5b55aad55"
    "a9a92e26e55dada6d46a5b27a4d4ad56db5a754f49e92d26a563566b5baab92b2568ba9b"
    "55aada5b4da9b52a9a536276575af26d46a95552ad4bd9ba574b69b52a9552da5d4daad9"
    "6b2e95e2ac9692eaad56ad65d4a"
)


def _build_uq_month_starts() -> list[int]:
    starts = [_UQ_FIRST_DAY.toordinal()]
    for i in range(_UQ_LAST_YEAR - _UQ_FIRST_YEAR + 1):
        bits = int(_UQ_BITS[3 * i : 3 * i + 3], 16)
        for m in range(12):
            starts.append(starts[-1] + (30 if bits >> m & 1 else 29))
    return starts  # one extra entry: 1 Muharram of the year after the table


_UQ_MONTH_STARTS = _build_uq_month_starts()
_TABULAR_EPOCH = datetime.date(622, 7, 19).toordinal()  # 1 Muharram 1 AH = 16 July 622 (Julian)


def _tabular_to_ordinal(year: int, month: int, day: int) -> int:
    return (
        day
        + (59 * (month - 1) + 1) // 2
        + (year - 1) * 354
        + (3 + 11 * year) // 30
        + _TABULAR_EPOCH
        - 1
    )


def hijri_to_gregorian(year: int, month: int, day: int) -> datetime.date:
    """Hijri qamari date to Gregorian (Umm al-Qura 1300-1500 AH, tabular outside).

    Day 30 is accepted in every month (observed months may be longer than the table's).
    """
    if year < 1:
        raise ValueError(f"Hijri year {year} out of range")
    if not 1 <= month <= 12:
        raise ValueError(f"Hijri month {month} out of range 1-12")
    if not 1 <= day <= 30:
        raise ValueError(f"Hijri day {day} out of range 1-30")
    if _UQ_FIRST_YEAR <= year <= _UQ_LAST_YEAR:
        index = (year - _UQ_FIRST_YEAR) * 12 + month - 1
        return datetime.date.fromordinal(_UQ_MONTH_STARTS[index] + day - 1)
    return datetime.date.fromordinal(_tabular_to_ordinal(year, month, day))


def gregorian_to_hijri(d: datetime.date) -> tuple[int, int, int]:
    """Gregorian date to Hijri qamari (year, month, day), same calendars as above."""
    ordinal = d.toordinal()
    if _UQ_MONTH_STARTS[0] <= ordinal < _UQ_MONTH_STARTS[-1]:
        index = bisect.bisect_right(_UQ_MONTH_STARTS, ordinal) - 1
        year, month0 = divmod(index, 12)
        return year + _UQ_FIRST_YEAR, month0 + 1, ordinal - _UQ_MONTH_STARTS[index] + 1
    year = (30 * (ordinal - _TABULAR_EPOCH) + 10646) // 10631
    first = _tabular_to_ordinal(year, 1, 1)
    month = min(12, -((-2 * (ordinal - first - 29)) // 59) + 1)
    month = max(1, month)
    return year, month, ordinal - _tabular_to_ordinal(year, month, 1) + 1


# --------------------------------------------------------------------------- patterns
# Patterns run on the original text (no normalised copy), so spans need no mapping back;
# ``\d`` matches ASCII, Persian and Arabic-Indic digits and int() reads all three.
# Each pattern starts with a character class so the regex engine can skip ahead quickly.

_BIDI = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
# Horizontal space (``\\s`` minus line breaks) or a bidi control mark, as one class: fast.
_HSPACE = " \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_H = f"[{_HSPACE}{_BIDI}]"
_JOIN = "[\u064b-\u0655\u0670\u0640\u200c\u200d]*"  # harakat, tatweel, ZWNJ/ZWJ in a word
_GAP = f"[{_HSPACE}{_BIDI}\u200c\u200d\u0640'\u2019-]*"  # where a space may be or not
_NOT_LETTER_AFTER = r"(?![^\W\d_])"
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_SLASH = "/\u2215\u2044"
_DASH = "\\-\u2010\u2011\u2012\u2013\u2212"
_DOT = ".\u066b"


def _name_tokens(name: str) -> list[str]:
    """Regex pieces for one spelling: optional gaps at spaces, ZWNJ/tatweel/harakat."""
    tokens = []
    for ch in _fold(name):
        if ch in " -'\u2019":
            tokens.append(_GAP)
        elif ch in _LETTER_VARIANTS:
            tokens.append(f"[{_LETTER_VARIANTS[ch]}]{_JOIN}")
        elif ord(ch) >= 0x0600:
            tokens.append(re.escape(ch) + _JOIN)
        else:
            tokens.append(re.escape(ch))
    return tokens


def _name_pattern(name: str) -> str:
    return "".join(_name_tokens(name))


def _alternation(names: list[str]) -> str:
    """One regex for many names, as a trie: each position tries only matching branches."""
    trie: dict[str, dict] = {}
    for name in names:
        node = trie
        for token in _name_tokens(name):
            node = node.setdefault(token, {})
        node[""] = {}  # end of a name

    def emit(node: dict[str, dict]) -> str:
        branches = [token + emit(child) for token, child in node.items() if token]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: longest name first

    return "(?:" + emit(trie) + ")"


_KEY_DROP = re.compile(r"[\W_\u0640]")


def _key(name: str) -> str:
    return _KEY_DROP.sub("", _fold(name)).lower()


_GREGORIAN_NAMES = [
    ("January", "Jan", "ژانویه", "ژانویهٔ", "يناير", "کانون الثاني"),
    ("February", "Feb", "فوریه", "فبراير", "شباط"),
    ("March", "Mar", "مارس", "آذار"),
    ("April", "Apr", "آوریل", "أبريل", "ابريل", "نيسان"),
    ("May", "مه", "می", "مايو", "أيار"),
    ("June", "Jun", "ژوئن", "ژوین", "يونيو", "حزيران"),
    ("July", "Jul", "ژوئیه", "ژوییه", "جولای", "يوليو", "تموز"),
    ("August", "Aug", "اوت", "آگوست", "أغسطس", "آب"),
    ("September", "Sep", "Sept", "سپتامبر", "سبتمبر", "أيلول"),
    ("October", "Oct", "اکتبر", "أكتوبر", "تشرين الأول"),
    ("November", "Nov", "نوامبر", "نوفمبر", "تشرين الثاني"),
    ("December", "Dec", "دسامبر", "ديسمبر", "کانون الأول"),
]
_JALALI_NAMES = [
    ("فروردین",),
    ("اردیبهشت",),
    ("خرداد",),
    ("تیر",),
    ("مرداد", "امرداد"),
    ("شهریور",),
    ("مهر",),
    ("آبان",),
    ("آذر",),
    ("دی",),
    ("بهمن",),
    ("اسفند",),
]
_HIJRI_NAMES = [
    ("محرم", "محرم الحرام", "Muharram", "Moharram"),
    ("صفر", "صفر المظفر", "Safar"),
    ("ربیع الاول", "ربیع اول", "ربیع الاولی", "Rabi al-Awwal", "Rabi ul-Awwal", "Rabi I"),
    (
        "ربیع الثانی",
        "ربیع ثانی",
        "ربیع الآخر",
        "ربیع الثانیه",
        "Rabi al-Thani",
        "Rabi al-Akhir",
        "Rabi ul-Sani",
        "Rabi II",
    ),
    ("جمادی الاول", "جمادی الاولی", "جمادی اول", "Jumada al-Awwal", "Jumada al-Ula", "Jumada I"),
    (
        "جمادی الثانی",
        "جمادی الثانیه",
        "جمادی الآخر",
        "جمادی الآخره",
        "جمادی ثانی",
        "Jumada al-Thani",
        "Jumada al-Akhirah",
        "Jumada II",
    ),
    ("رجب", "رجب المرجب", "Rajab"),
    ("شعبان", "شعبان المعظم", "Shaban", "Sha'ban"),
    ("رمضان", "رمضان المبارک", "Ramadan", "Ramazan"),
    ("شوال", "شوال المکرم", "Shawwal", "Shawal"),
    (
        "ذیقعده",
        "ذی القعده",
        "ذو القعده",
        "ذی قعده",
        "Dhu al-Qadah",
        "Dhu al-Qidah",
        "Dhul-Qadah",
        "Dhul-Qidah",
        "Dhu'l-Qa'dah",
        "Zulqadah",
        "Zul-Qadah",
    ),
    (
        "ذیحجه",
        "ذی الحجه",
        "ذو الحجه",
        "ذی حجه",
        "Dhu al-Hijjah",
        "Dhul-Hijjah",
        "Dhu'l-Hijjah",
        "Zulhijjah",
        "Zul-Hijjah",
    ),
]

_MONTH_KEYS: dict[str, tuple[str, int]] = {}
_EN_GREGORIAN: list[str] = []
for _cal, _table in (
    ("gregorian", _GREGORIAN_NAMES),
    ("jalali", _JALALI_NAMES),
    ("hijri", _HIJRI_NAMES),
):
    for _month, _spellings in enumerate(_table, start=1):
        for _s in _spellings:
            _MONTH_KEYS[_key(_s)] = (_cal, _month)
            if _cal == "gregorian" and _s.isascii():
                _EN_GREGORIAN.append(_s)
# "ذوالقعده" etc. written as one word fold to the same key as "ذو القعده".


_ALL_MONTHS = _alternation(
    [s for table in (_GREGORIAN_NAMES, _JALALI_NAMES, _HIJRI_NAMES) for t in table for s in t]
)
_EN_MONTH_KEYS = {_key(s): _MONTH_KEYS[_key(s)] for s in _EN_GREGORIAN}


def _first_letters(names: list[str]) -> str:
    """Character class body of every letter a month name can start with."""
    chars: set[str] = set()
    for name in names:
        first = _fold(name)[0]
        chars.update(_LETTER_VARIANTS.get(first, first) + first.upper() + first.lower())
    return "".join(sorted(chars))


_ALL_MONTH_INITIALS = _first_letters(
    [s for table in (_GREGORIAN_NAMES, _JALALI_NAMES, _HIJRI_NAMES) for t in table for s in t]
)
_EN_MONTH_INITIALS = _first_letters(_EN_GREGORIAN)

_ORDINAL = "(?:[sS][tT]|[nN][dD]|[rR][dD]|[tT][hH])?"
_DAY_FIRST = re.compile(
    # the look-behind sits after the first digit so the pattern starts with a class
    rf"(?P<d>\d(?<![\d{_DOT}]\d)\d?){_ORDINAL}{_H}*\n?{_H}*(?:of{_H}+)?"
    rf"(?=[{_ALL_MONTH_INITIALS}])(?P<m>{_ALL_MONTHS})(?:{_GAP}ماه)?{_NOT_LETTER_AFTER}\.?"
    rf"(?:{_H}|[,،])*\n?(?:{_H}|[,،])*(?:سال{_H}*)?(?P<y>\d{{4}})(?!\d)",
    re.IGNORECASE,
)
# Any 3-9 letter word starting like a month is matched here and checked against the month
# names (and for a letter before it) afterwards: much faster than a long alternation.
_MONTH_FIRST = re.compile(
    rf"(?P<m>[{_EN_MONTH_INITIALS}][A-Za-z]{{2,8}})\.?{_H}+(?P<d>\d{{1,2}}){_ORDINAL}(?![\dA-Za-z])"
    rf"(?:{_H}*,{_H}*|{_H}+)(?P<y>\d{{4}})(?!\d)"
)
_SEPS = f"[{_SLASH}{_DASH}{_DOT}]"
_SEP = rf"{_H}*(?P<s>{_SEPS}){_H}*"
_SEP2 = rf"{_H}*(?P=s){_H}*"
_NUM_TAIL = rf"(?!\d)(?![{_SLASH}{_DOT}]\d)"
_NUM_YMD = re.compile(
    rf"(?P<y>\d(?<![\dA-Za-z]\d)(?<!\d[{_SLASH}{_DOT}]\d)\d{{3}})"
    rf"{_SEP}(?P<m>\d{{1,2}}){_SEP2}(?P<d>\d{{1,2}}){_NUM_TAIL}"
)
_NUM_DMY = re.compile(
    rf"(?P<a>\d(?<![\dA-Za-z]\d)(?<!\d[{_SLASH}{_DOT}]\d)\d?)"
    rf"{_SEP}(?P<b>\d{{1,2}}){_SEP2}(?P<y>\d{{4}}){_NUM_TAIL}"
)

# A suffix ends the word: not followed by a letter, nor by "." and a letter ("ه.ش" is not
# a bare "ه", "ق.ظ" is a time of day).
_SUFFIX_END = r"(?!\.?[^\W\d_])\.?"
_HE = "[\u0647\u0629][\u0640\u200d]*"  # ه with optional tatweel / ZWJ (هـ, ه‍)
_HEJRI = _name_pattern("هجری")
_QAMARI_SUFFIX = re.compile(
    rf"{_H}*(?:{_HE}{_H}?\.?{_H}?ق|{_HEJRI}{_GAP}{_name_pattern('قمری')}|{_HEJRI}"
    rf"|{_name_pattern('قمری')}|ق|{_HE}(?!{_H}?\.?{_H}?ش)|A\.?{_H}?H)" + _SUFFIX_END
)
_SHAMSI_SUFFIX = re.compile(
    rf"{_H}*(?:{_HE}{_H}?\.?{_H}?ش|{_HEJRI}{_GAP}{_name_pattern('شمسی')}"
    rf"|{_name_pattern('شمسی')}|{_name_pattern('خورشیدی')}|ش|S\.?{_H}?H)" + _SUFFIX_END
)
_GREGORIAN_SUFFIX = re.compile(
    rf"{_H}*(?:{_name_pattern('میلادی')}|م|A\.?{_H}?D|C\.?{_H}?E)" + _SUFFIX_END
)
_SUFFIX = {"hijri": _QAMARI_SUFFIX, "jalali": _SHAMSI_SUFFIX, "gregorian": _GREGORIAN_SUFFIX}

_WEEKDAYS = [
    "شنبه",
    "یک شنبه",
    "دو شنبه",
    "سه شنبه",
    "چهار شنبه",
    "پنج شنبه",
    "جمعه",
    "السبت",
    "الأحد",
    "الاثنين",
    "الإثنين",
    "الثلاثاء",
    "الأربعاء",
    "الخميس",
    "الجمعة",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Mon",
    "Tue",
    "Tues",
    "Wed",
    "Thu",
    "Thur",
    "Thurs",
    "Fri",
    "Sat",
    "Sun",
]
_WEEKDAY_KEYS = frozenset(_key(w) for w in _WEEKDAYS)
_WEEKDAY_FIRST_PARTS = frozenset(_key(w.split()[0]) for w in _WEEKDAYS if " " in w)  # "سه"
_WORD_MARKS = frozenset("\u200c\u200d\u0640") | frozenset(map(chr, range(0x064B, 0x0656)))
_HSPACE_CHARS = frozenset(" \t\u00a0\u202f\u200e\u200f")
_WEEKDAY_SEPARATORS = _HSPACE_CHARS | frozenset(",\u060c")

# Between "page X" and "of Y": spaces, or one line break where a footer wrapped
# ("صفحه ۳" / "از ۴" on two lines of a text layer).
_BREAK = rf"{_H}*(?:\n{_H}*)?"
_PAGE_EN = re.compile(
    rf"[Pp](?<![A-Za-z][Pp])(?:[Aa][Gg][Ee]|[Gg]\.?|\.){_H}*:?{_H}*(?P<n>\d{{1,5}}){_BREAK}"
    rf"(?:[Oo][Ff]|/){_H}*(?P<t>\d{{1,5}})(?!\d)"
)
# "ص" first (fast scan); the letter before it is checked in find_page_marker, which
# also lets the Arabic article in "الصفحة" in.
_PAGE_FA = re.compile(
    rf"ص{_JOIN}(?:{_name_pattern('فحه')}(?:{_GAP}[{_LETTER_VARIANTS['ی']}])?)?\.?"
    rf"{_H}*:?{_H}*(?P<n>\d{{1,5}}|[|!lIا]){_BREAK}(?:از|من|/){_H}*(?P<t>\d{{1,5}}|[|!lIا])(?!\d)"
)
# OCR reads the Persian one "۱", a bare vertical stroke, as "|", "!", "l", "I" or alef
# "ا"; in a Persian page marker nothing else can stand there.
_OCR_ONE = str.maketrans({"|": "1", "!": "1", "l": "1", "I": "1", "ا": "1"})

_HAS_YEAR = re.compile(r"\d{4}")
_HAS_LATIN = re.compile(r"[A-Za-z]{3}")

# Year ranges accepted per form: wide enough for archives, narrow enough to drop noise.
_YEARS_GREGORIAN_NAMED = range(1600, 2200)
_YEARS_GREGORIAN_NUMERIC = range(1900, 2200)
_YEARS_JALALI_NAMED = range(1200, 1500)
_YEARS_JALALI_NUMERIC = range(1300, 1420)
_YEARS_HIJRI_NAMED = range(1000, 1600)
_YEARS_HIJRI_NUMERIC = range(1300, 1501)


# --------------------------------------------------------------------------- scanning


@dataclass
class _Candidate:
    start: int
    end: int
    calendar: str
    ymd: tuple[int, int, int]
    problem: str | None = None  # set when the text looks like a date but is not usable
    iso: str | None = None


def _to_date(calendar: str, y: int, m: int, d: int) -> datetime.date:
    if calendar == "jalali":
        return jalali_to_gregorian(y, m, d)
    if calendar == "hijri":
        return hijri_to_gregorian(y, m, d)
    return datetime.date(y, m, d)


def _with_suffix(text: str, calendar: str, end: int) -> int:
    m = _SUFFIX[calendar].match(text, end)
    return m.end() if m else end


_NAMED_YEARS = {
    "gregorian": _YEARS_GREGORIAN_NAMED,
    "jalali": _YEARS_JALALI_NAMED,
    "hijri": _YEARS_HIJRI_NAMED,
}


def _scan(text: str) -> list[_Candidate]:
    """Every date-like match, valid or not (``iso`` is None when not usable)."""
    found: list[_Candidate] = []
    if not _HAS_YEAR.search(text):
        return found

    for m in _DAY_FIRST.finditer(text):
        calendar, month = _MONTH_KEYS.get(_key(m["m"]), ("", 0))
        y = int(m["y"])
        if calendar and y in _NAMED_YEARS[calendar]:
            end = _with_suffix(text, calendar, m.end())
            found.append(_Candidate(m.start(), end, calendar, (y, month, int(m["d"]))))

    if _HAS_LATIN.search(text):
        for m in _MONTH_FIRST.finditer(text):
            calendar, month = _EN_MONTH_KEYS.get(_key(m["m"]), ("", 0))
            y = int(m["y"])
            start = m.start()
            if start and text[start - 1].isascii() and text[start - 1].isalpha():
                continue
            if calendar and y in _YEARS_GREGORIAN_NAMED:
                end = _with_suffix(text, calendar, m.end())
                found.append(_Candidate(m.start(), end, calendar, (y, month, int(m["d"]))))

    for m in _NUM_YMD.finditer(text):
        y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
        qamari = _QAMARI_SUFFIX.match(text, m.end())
        if y in _YEARS_HIJRI_NUMERIC and qamari:
            found.append(_Candidate(m.start(), qamari.end(), "hijri", (y, mo, d)))
        elif y in _YEARS_JALALI_NUMERIC:
            end = _with_suffix(text, "jalali", m.end())
            found.append(_Candidate(m.start(), end, "jalali", (y, mo, d)))
        elif y in _YEARS_GREGORIAN_NUMERIC:
            end = _with_suffix(text, "gregorian", m.end())
            found.append(_Candidate(m.start(), end, "gregorian", (y, mo, d)))

    for m in _NUM_DMY.finditer(text):
        a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
        qamari = _QAMARI_SUFFIX.match(text, m.end())
        if y in _YEARS_HIJRI_NUMERIC and qamari:
            found.append(_Candidate(m.start(), qamari.end(), "hijri", (y, b, a)))
        elif y in _YEARS_JALALI_NUMERIC:
            end = _with_suffix(text, "jalali", m.end())
            found.append(_Candidate(m.start(), end, "jalali", (y, b, a)))
        elif y in _YEARS_GREGORIAN_NUMERIC:
            end = _with_suffix(text, "gregorian", m.end())
            problem = None
            if m["s"] in _DOT or a == b or a > 12:
                ymd = (y, b, a)  # day.month.year
            elif b > 12:
                ymd = (y, a, b)  # month/day/year (US)
            else:
                ymd = (y, b, a)
                problem = "day and month order is ambiguous (US or European?)"
            found.append(_Candidate(m.start(), end, "gregorian", ymd, problem))

    for c in found:
        if c.problem is None:
            try:
                c.iso = _to_date(c.calendar, *c.ymd).isoformat()
            except ValueError as exc:
                c.problem = str(exc) or "no such date"
    return found


def _word_before(text: str, end: int, lo: int) -> int:
    """Start of the word ending at ``end`` (== end when there is none)."""
    j = end
    while j > lo and (text[j - 1].isalpha() or text[j - 1] in _WORD_MARKS):
        j -= 1
    return j


def _weekday_start(text: str, start: int, lo: int) -> int:
    """Where a weekday name written right before ``start`` begins (or ``start``)."""
    k = start
    while k > lo and text[k - 1] in _WEEKDAY_SEPARATORS:
        k -= 1
    dotted = k > lo and text[k - 1] == "."
    k -= dotted
    j = _word_before(text, k, lo)
    if j == k or (j > lo and text[j - 1].isalnum()) or _key(text[j:k]) not in _WEEKDAY_KEYS:
        return start
    if dotted and not (text[j:k].isascii() and k - j <= 5):
        return start  # "Sun. 3 Aug" yes; "... جمعه. ۱۲ مرداد" ends a sentence
    # "سه شنبه" written with a space: take the number word too
    i = j
    while i > lo and text[i - 1] in _HSPACE_CHARS:
        i -= 1
    h = _word_before(text, i, lo)
    if h < i and _key(text[h:i]) in _WEEKDAY_FIRST_PARTS:
        return h
    return j


def _select(text: str, candidates: list[_Candidate]) -> list[_Candidate]:
    """Leftmost-longest non-overlapping valid candidates, weekday prefixes attached."""
    chosen: list[_Candidate] = []
    last_end = 0
    for c in sorted(candidates, key=lambda c: (c.start, -c.end)):
        if c.iso is None or c.start < last_end:
            continue
        c.start = _weekday_start(text, c.start, last_end)
        chosen.append(c)
        last_end = c.end
    return chosen


def find_dates(text: str) -> list[FoundDate]:
    """All valid dates written in ``text``, in order, without overlaps (see module doc)."""
    return [
        FoundDate(c.start, c.end, text[c.start : c.end], c.calendar, c.iso or "")
        for c in _select(text, _scan(text))
    ]


def _is_letter(ch: str) -> bool:
    return ch.isalpha() and ch != "\u0640"


def find_page_marker(text: str) -> PageMarker | None:
    """The last "page X of Y" marker (footers come last); X > Y, X == 0 or Y == 0 ignored."""
    best: tuple[int, int, int, int] | None = None  # start, end, number, total
    for pattern in (_PAGE_EN, _PAGE_FA):
        for m in pattern.finditer(text):
            n, t = int(m["n"].translate(_OCR_ONE)), int(m["t"].translate(_OCR_ONE))
            if t == 0 or n == 0 or n > t:
                continue
            start = m.start()
            if pattern is _PAGE_FA and start and _is_letter(text[start - 1]):
                # "ص" inside a word is not a page word, but "الصفحة" is
                if text[start - 2 : start] != "ال" or (start > 2 and _is_letter(text[start - 3])):
                    continue
                start -= 2
            if best is None or start > best[0]:
                best = (start, m.end(), n, t)
    if best is None:
        return None
    start, end, n, t = best
    return PageMarker(n, t, start, end, text[start:end])


_ACCEPTED_FORMS = (
    "2014-08-03, 3 August 2014, August 3, 2014 (Gregorian); "
    "1393/05/12, ۱۳۹۳/۰۵/۱۲ or 12 مرداد 1393 (Jalali); 7 شوال 1435 (Hijri qamari)"
)


def parse_user_date(text: str) -> tuple[datetime.date, str]:
    """Read a date a reviewer typed; return (Gregorian date, Jalali "YYYY/MM/DD").

    Uses the same recogniser as :func:`find_dates`, so a reviewer can type a date the way
    the document writes it.  Raises DateParseError naming the accepted forms.
    """
    stripped = text.strip()
    candidates = _scan(stripped)
    _select(stripped, candidates)  # attaches a leading weekday to the valid candidates
    whole = sorted(
        (c for c in candidates if c.start == 0 and c.end == len(stripped)),
        key=lambda c: c.iso is None,
    )
    if whole and whole[0].iso is not None:
        d = datetime.date.fromisoformat(whole[0].iso)
        jy, jm, jd = gregorian_to_jalali(d)
        return d, f"{jy:04d}/{jm:02d}/{jd:02d}"
    if whole:
        raise DateParseError(
            f"{stripped!r} is not a usable date: {whole[0].problem}. Accepted forms: "
            f"{_ACCEPTED_FORMS}."
        )
    raise DateParseError(
        f"Could not read {stripped!r} as a date. Accepted forms: {_ACCEPTED_FORMS}."
    )
