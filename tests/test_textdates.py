"""Tests for workbench.textdates: calendar conversions, dates and page markers in text."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from workbench.errors import DateParseError
from workbench.textdates import (
    FoundDate,
    PageMarker,
    find_dates,
    find_page_marker,
    gregorian_to_hijri,
    gregorian_to_jalali,
    hijri_to_gregorian,
    is_jalali_leap,
    jalali_to_gregorian,
    parse_user_date,
    to_ascii_digits,
)

FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
AR = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def fa(s: str) -> str:
    return s.translate(FA)


def ar(s: str) -> str:
    return s.translate(AR)


def only_date(text: str) -> FoundDate:
    found = find_dates(text)
    assert len(found) == 1, found
    d = found[0]
    assert text[d.start : d.end] == d.original
    return d


# --------------------------------------------------------------------------- Jalali

JALALI_TABLE = [
    ((1300, 1, 1), "1921-03-21"),
    ((1354, 12, 30), "1976-03-20"),  # leap year
    ((1357, 10, 11), "1979-01-01"),
    ((1357, 11, 22), "1979-02-11"),
    ((1358, 1, 1), "1979-03-21"),
    ((1370, 1, 1), "1991-03-21"),
    ((1379, 12, 30), "2001-03-20"),  # leap year
    ((1380, 1, 1), "2001-03-21"),
    ((1392, 12, 29), "2014-03-20"),  # last day of a common year
    ((1393, 1, 1), "2014-03-21"),
    ((1393, 5, 12), "2014-08-03"),
    ((1393, 6, 31), "2014-09-22"),  # last 31-day month
    ((1393, 7, 1), "2014-09-23"),
    ((1393, 10, 11), "2015-01-01"),  # Gregorian year boundary
    ((1393, 12, 29), "2015-03-20"),
    ((1394, 1, 1), "2015-03-21"),
    ((1395, 12, 30), "2017-03-20"),  # leap year
    ((1399, 12, 30), "2021-03-20"),  # leap year
    ((1400, 1, 1), "2021-03-21"),
    ((1402, 1, 1), "2023-03-21"),
    ((1403, 1, 1), "2024-03-20"),
    ((1403, 10, 11), "2024-12-31"),
    ((1403, 10, 12), "2025-01-01"),
    ((1403, 12, 30), "2025-03-20"),  # leap year (the 2820-year rule gets this wrong)
    ((1404, 1, 1), "2025-03-21"),
    ((1408, 12, 30), "2030-03-20"),  # leap year
]


@pytest.mark.parametrize(("jalali", "iso"), JALALI_TABLE)
def test_jalali_known_dates(jalali: tuple[int, int, int], iso: str) -> None:
    assert jalali_to_gregorian(*jalali) == dt.date.fromisoformat(iso)
    assert gregorian_to_jalali(dt.date.fromisoformat(iso)) == jalali


def test_jalali_round_trip_every_day_1390_to_1405() -> None:
    previous = None
    count = 0
    for year in range(1390, 1406):
        for month in range(1, 13):
            length = 31 if month <= 6 else 30 if month <= 11 else 30 if is_jalali_leap(year) else 29
            for day in range(1, length + 1):
                g = jalali_to_gregorian(year, month, day)
                assert gregorian_to_jalali(g) == (year, month, day)
                if previous is not None:
                    assert g - previous == dt.timedelta(days=1)  # no gaps, no repeats
                previous = g
                count += 1
    assert count == 16 * 365 + 4  # 1391, 1395, 1399, 1403 are leap


def test_gregorian_to_jalali_round_trip_1900_to_2100() -> None:
    d = dt.date(1900, 1, 1)
    while d < dt.date(2100, 1, 1):
        assert jalali_to_gregorian(*gregorian_to_jalali(d)) == d
        d += dt.timedelta(days=1)


def test_jalali_leap_years() -> None:
    assert [y for y in range(1390, 1411) if is_jalali_leap(y)] == [1391, 1395, 1399, 1403, 1408]


@pytest.mark.parametrize(
    "bad",
    [(1400, 12, 30), (1402, 12, 30), (1393, 13, 1), (1393, 0, 1), (1393, 7, 31), (1393, 1, 32)]
    + [(1393, 1, 0), (0, 1, 1)],
)
def test_jalali_invalid_raises(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        jalali_to_gregorian(*bad)


# --------------------------------------------------------------------------- Hijri

# Umm al-Qura (the official Saudi table most references use).
HIJRI_TABLE = [
    ((1300, 1, 1), "1882-11-12"),
    ((1400, 1, 1), "1979-11-21"),
    ((1435, 9, 1), "2014-06-28"),  # 1 Ramadan
    ((1435, 10, 1), "2014-07-28"),  # 1 Shawwal (Eid al-Fitr)
    ((1435, 10, 7), "2014-08-03"),
    ((1435, 11, 1), "2014-08-27"),
    ((1435, 12, 1), "2014-09-25"),
    ((1436, 1, 1), "2014-10-25"),  # 1 Muharram
    ((1436, 10, 1), "2015-07-17"),
    ((1437, 1, 1), "2015-10-14"),
    ((1441, 9, 1), "2020-04-24"),
    ((1444, 9, 1), "2023-03-23"),
    ((1444, 10, 1), "2023-04-21"),
    ((1445, 9, 1), "2024-03-11"),
    ((1445, 10, 1), "2024-04-10"),
    ((1446, 1, 1), "2024-07-07"),
]


@pytest.mark.parametrize(("hijri", "iso"), HIJRI_TABLE)
def test_hijri_umm_al_qura_known_dates(hijri: tuple[int, int, int], iso: str) -> None:
    assert hijri_to_gregorian(*hijri) == dt.date.fromisoformat(iso)
    assert gregorian_to_hijri(dt.date.fromisoformat(iso)) == hijri


def test_hijri_round_trip_and_month_lengths() -> None:
    d = dt.date(1850, 1, 1)
    previous = None
    while d < dt.date(2100, 1, 1):
        y, m, day = gregorian_to_hijri(d)
        assert 1 <= m <= 12 and 1 <= day <= 30
        assert hijri_to_gregorian(y, m, day) == d
        if previous is not None and (y, m) != previous[:2]:
            assert previous[2] in (29, 30)  # the month that just ended
            assert day == 1
        previous = (y, m, day)
        d += dt.timedelta(days=1)


def test_hijri_year_lengths_in_table() -> None:
    for year in range(1300, 1501):
        days = (hijri_to_gregorian(year + 1, 1, 1) - hijri_to_gregorian(year, 1, 1)).days
        assert days in (354, 355), year


def test_hijri_tabular_outside_table() -> None:
    assert hijri_to_gregorian(1, 1, 1) == dt.date(622, 7, 19)  # 16 July 622 Julian
    # a 30-year cycle of the tabular calendar is exactly 10631 days
    assert (hijri_to_gregorian(1231, 1, 1) - hijri_to_gregorian(1201, 1, 1)).days == 10631
    # no jump at either end of the Umm al-Qura table
    assert abs((hijri_to_gregorian(1501, 1, 1) - dt.date(2077, 11, 17)).days) <= 2
    gap = (hijri_to_gregorian(1300, 1, 1) - hijri_to_gregorian(1299, 12, 1)).days
    assert 28 <= gap <= 31


def test_hijri_day_30_of_a_29_day_month_is_the_next_day() -> None:
    # Dhu al-Qi'dah 1435 has 29 days in Umm al-Qura; an observed calendar may give it 30.
    assert hijri_to_gregorian(1435, 11, 30) == hijri_to_gregorian(1435, 12, 1)


@pytest.mark.parametrize("bad", [(1435, 13, 1), (1435, 0, 1), (1435, 9, 31), (1435, 9, 0)])
def test_hijri_invalid_raises(bad: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        hijri_to_gregorian(*bad)


# --------------------------------------------------------------------------- digits


def test_to_ascii_digits() -> None:
    assert to_ascii_digits("۱۳۹۳/۰۵/۱۲") == "1393/05/12"
    assert to_ascii_digits("١٣٩٣/٠٥/١٢") == "1393/05/12"
    assert to_ascii_digits("صفحه ۲ of ٥, 7") == "صفحه 2 of 5, 7"
    assert to_ascii_digits("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩") == "01234567890123456789"


# --------------------------------------------------------------------------- find_dates

FORMS = [
    # (text, expected original, calendar, iso)
    ("Date: 2014-08-03.", "2014-08-03", "gregorian", "2014-08-03"),
    ("Date: 2014/08/03", "2014/08/03", "gregorian", "2014-08-03"),
    ("sent 3 August 2014 by", "3 August 2014", "gregorian", "2014-08-03"),
    ("sent 3 Aug 2014 by", "3 Aug 2014", "gregorian", "2014-08-03"),
    ("sent 03 Aug. 2014 by", "03 Aug. 2014", "gregorian", "2014-08-03"),
    ("on August 3, 2014 the", "August 3, 2014", "gregorian", "2014-08-03"),
    ("on Aug 3 2014 the", "Aug 3 2014", "gregorian", "2014-08-03"),
    ("the 3rd August 2014 meeting", "3rd August 2014", "gregorian", "2014-08-03"),
    ("dated 03.08.2014 in", "03.08.2014", "gregorian", "2014-08-03"),
    ("dated 13/08/2014 in", "13/08/2014", "gregorian", "2014-08-13"),  # D/M/Y forced
    ("dated 08/13/2014 in", "08/13/2014", "gregorian", "2014-08-13"),  # M/D/Y forced
    ("dated 03/03/2014 in", "03/03/2014", "gregorian", "2014-03-03"),  # same both ways
    ("روز ۳ اوت ۲۰۱۴ در", "۳ اوت ۲۰۱۴", "gregorian", "2014-08-03"),
    ("تاریخ ۱ ژانویه ۲۰۱۵ بود", "۱ ژانویه ۲۰۱۵", "gregorian", "2015-01-01"),
    ("تاریخ ۲۱ مارس ۲۰۱۵ بود", "۲۱ مارس ۲۰۱۵", "gregorian", "2015-03-21"),
    ("في ٣ أغسطس ٢٠١٤م", "٣ أغسطس ٢٠١٤م", "gregorian", "2014-08-03"),
    ("تاریخ: 1393/05/12", "1393/05/12", "jalali", "2014-08-03"),
    ("تاریخ: ۱۳۹۳/۰۵/۱۲", "۱۳۹۳/۰۵/۱۲", "jalali", "2014-08-03"),
    ("تاریخ: ١٣٩٣/٠٥/١٢", "١٣٩٣/٠٥/١٢", "jalali", "2014-08-03"),
    ("تاریخ: 1393/5/12", "1393/5/12", "jalali", "2014-08-03"),
    ("تاریخ: ۱۳۹۳-۰۵-۱۲", "۱۳۹۳-۰۵-۱۲", "jalali", "2014-08-03"),
    ("تاریخ: ۱۲/۰۵/۱۳۹۳", "۱۲/۰۵/۱۳۹۳", "jalali", "2014-08-03"),  # RTL-reversed
    ("تاریخ: ۱۳۹۳/۰۵/۱۲ ه.ش", "۱۳۹۳/۰۵/۱۲ ه.ش", "jalali", "2014-08-03"),  # not a bare "ه"
    ("تاریخ: ۱۳۹۳/۰۵/۱۲ هـ.ش", "۱۳۹۳/۰۵/۱۲ هـ.ش", "jalali", "2014-08-03"),
    ("تاریخ: ۱۳۹۳/۰۵/۱۲ ه. ش", "۱۳۹۳/۰۵/۱۲ ه. ش", "jalali", "2014-08-03"),
    ("تاریخ: 1393/05/12 ق.ظ", "1393/05/12", "jalali", "2014-08-03"),  # ق.ظ is a.m.
    ("مورخ ۱۲ مرداد ۱۳۹۳ ارسال", "۱۲ مرداد ۱۳۹۳", "jalali", "2014-08-03"),
    ("مورخ 12 مرداد 1393 ارسال", "12 مرداد 1393", "jalali", "2014-08-03"),
    ("مورخ ۱۲ امرداد ۱۳۹۳ ارسال", "۱۲ امرداد ۱۳۹۳", "jalali", "2014-08-03"),
    ("مورخ ۱۲ مرداد ماه ۱۳۹۳ ارسال", "۱۲ مرداد ماه ۱۳۹۳", "jalali", "2014-08-03"),
    ("مورخ ۱۲ مردادماه ۱۳۹۳ ارسال", "۱۲ مردادماه ۱۳۹۳", "jalali", "2014-08-03"),
    ("در سه‌شنبه ۱۲ مرداد ۱۳۹۳ ارسال", "سه‌شنبه ۱۲ مرداد ۱۳۹۳", "jalali", "2014-08-03"),
    ("در یکشنبه، ۱۲ مرداد ۱۳۹۳ ه.ش ارسال", "یکشنبه، ۱۲ مرداد ۱۳۹۳ ه.ش", "jalali", "2014-08-03"),
    ("جلسه ۱۱ دی ۱۳۹۳ برگزار", "۱۱ دی ۱۳۹۳", "jalali", "2015-01-01"),
    ("جلسه ۱ مهر ۱۳۹۳ برگزار", "۱ مهر ۱۳۹۳", "jalali", "2014-09-23"),
    ("جلسه ۳۱ تیر ۱۳۹۳ برگزار", "۳۱ تیر ۱۳۹۳", "jalali", "2014-07-22"),
    ("جلسه ۳۰ اسفند ۱۳۹۹ برگزار", "۳۰ اسفند ۱۳۹۹", "jalali", "2021-03-20"),
    ("مورخ ۷ شوال ۱۴۳۵ ارسال", "۷ شوال ۱۴۳۵", "hijri", "2014-08-03"),
    ("مورخ ۷ شوال ۱۴۳۵ ه\u200d.ق ارسال", "۷ شوال ۱۴۳۵ ه\u200d.ق", "hijri", "2014-08-03"),
    ("مورخ ۷ شوال ۱۴۳۵ ه.ق ارسال", "۷ شوال ۱۴۳۵ ه.ق", "hijri", "2014-08-03"),
    ("مورخ ۷ شوال ۱۴۳۵ هـ.ق ارسال", "۷ شوال ۱۴۳۵ هـ.ق", "hijri", "2014-08-03"),
    ("مورخ ۷ شوال ۱۴۳۵ ق ارسال", "۷ شوال ۱۴۳۵ ق", "hijri", "2014-08-03"),
    ("في ٧ شوال ١٤٣٥هـ", "٧ شوال ١٤٣٥هـ", "hijri", "2014-08-03"),
    ("مورخ ۱ رمضان ۱۴۳۵ ارسال", "۱ رمضان ۱۴۳۵", "hijri", "2014-06-28"),
    ("مورخ ۱ محرم ۱۴۳۶ ارسال", "۱ محرم ۱۴۳۶", "hijri", "2014-10-25"),
    ("مورخ ۱ صفر ۱۴۳۶ ارسال", "۱ صفر ۱۴۳۶", "hijri", "2014-11-23"),
    ("مورخ ۱ ربیع‌الاول ۱۴۳۶ ارسال", "۱ ربیع‌الاول ۱۴۳۶", "hijri", "2014-12-23"),
    ("مورخ ۱ ربیع الاول ۱۴۳۶ ارسال", "۱ ربیع الاول ۱۴۳۶", "hijri", "2014-12-23"),
    ("في ١ ربيع الأول ١٤٣٦", "١ ربيع الأول ١٤٣٦", "hijri", "2014-12-23"),
    ("مورخ ۱ ربیع‌الثانی ۱۴۳۶ ارسال", "۱ ربیع‌الثانی ۱۴۳۶", "hijri", "2015-01-21"),
    ("مورخ ۱ ربیع‌الآخر ۱۴۳۶ ارسال", "۱ ربیع‌الآخر ۱۴۳۶", "hijri", "2015-01-21"),
    ("مورخ ۱ جمادی‌الاول ۱۴۳۶ ارسال", "۱ جمادی‌الاول ۱۴۳۶", "hijri", "2015-02-20"),
    ("مورخ ۱ جمادی الاولی ۱۴۳۶ ارسال", "۱ جمادی الاولی ۱۴۳۶", "hijri", "2015-02-20"),
    ("مورخ ۱ جمادی‌الثانی ۱۴۳۶ ارسال", "۱ جمادی‌الثانی ۱۴۳۶", "hijri", "2015-03-21"),
    ("مورخ ۱ جمادی الآخره ۱۴۳۶ ارسال", "۱ جمادی الآخره ۱۴۳۶", "hijri", "2015-03-21"),
    ("مورخ ۱ رجب ۱۴۳۶ ارسال", "۱ رجب ۱۴۳۶", "hijri", "2015-04-20"),
    ("مورخ ۱ شعبان ۱۴۳۶ ارسال", "۱ شعبان ۱۴۳۶", "hijri", "2015-05-19"),
    ("مورخ ۱ ذیقعده ۱۴۳۵ ارسال", "۱ ذیقعده ۱۴۳۵", "hijri", "2014-08-27"),
    ("مورخ ۱ ذی‌القعده ۱۴۳۵ ارسال", "۱ ذی‌القعده ۱۴۳۵", "hijri", "2014-08-27"),
    ("مورخ ۱ ذوالقعده ۱۴۳۵ ارسال", "۱ ذوالقعده ۱۴۳۵", "hijri", "2014-08-27"),
    ("مورخ ۱۰ ذیحجه ۱۴۳۵ ارسال", "۱۰ ذیحجه ۱۴۳۵", "hijri", "2014-10-04"),
    ("مورخ ۱۰ ذی‌الحجه ۱۴۳۵ ارسال", "۱۰ ذی‌الحجه ۱۴۳۵", "hijri", "2014-10-04"),
    ("مورخ ۱۰ ذوالحجه ۱۴۳۵ ارسال", "۱۰ ذوالحجه ۱۴۳۵", "hijri", "2014-10-04"),
    ("مورخ 1435/10/07 ه.ق ارسال", "1435/10/07 ه.ق", "hijri", "2014-08-03"),
    ("مورخ ۱۴۳۵/۱۰/۰۷ ق ارسال", "۱۴۳۵/۱۰/۰۷ ق", "hijri", "2014-08-03"),
    ("في ٠٧/١٠/١٤٣٥هـ", "٠٧/١٠/١٤٣٥هـ", "hijri", "2014-08-03"),
    ("مورخ ۱۴۳۵/۱۰/۰۷ هجری قمری", "۱۴۳۵/۱۰/۰۷ هجری قمری", "hijri", "2014-08-03"),
    ("dated 1435/10/07 A.H. in", "1435/10/07 A.H.", "hijri", "2014-08-03"),
    ("مورخ ۷ شوال ۱۴۳۵ هیئت", "۷ شوال ۱۴۳۵", "hijri", "2014-08-03"),  # word, not suffix
    ("dated 7 Shawwal 1435 AH in", "7 Shawwal 1435 AH", "hijri", "2014-08-03"),
    ("dated 1 Muharram 1436 in", "1 Muharram 1436", "hijri", "2014-10-25"),
    ("dated 10 Dhul-Hijjah 1435 in", "10 Dhul-Hijjah 1435", "hijri", "2014-10-04"),
    ("on Sunday, 3 August 2014 the", "Sunday, 3 August 2014", "gregorian", "2014-08-03"),
    ("on Sunday, August 3, 2014 the", "Sunday, August 3, 2014", "gregorian", "2014-08-03"),
]


@pytest.mark.parametrize(("text", "original", "calendar", "iso"), FORMS)
def test_find_dates_forms(text: str, original: str, calendar: str, iso: str) -> None:
    d = only_date(text)
    assert (d.original, d.calendar, d.iso) == (original, calendar, iso)
    assert d.start == text.index(original)
    assert d.end == d.start + len(original)


@pytest.mark.parametrize("script", [str, fa, ar], ids=["ascii", "persian", "arabic-indic"])
@pytest.mark.parametrize(
    ("template", "calendar", "iso"),
    [
        ("1393/05/12", "jalali", "2014-08-03"),
        ("1393-5-12", "jalali", "2014-08-03"),
        ("12 مرداد 1393", "jalali", "2014-08-03"),
        ("7 شوال 1435", "hijri", "2014-08-03"),
        ("1435/10/07 ه.ق", "hijri", "2014-08-03"),
        ("2014-08-03", "gregorian", "2014-08-03"),
        ("3 اوت 2014", "gregorian", "2014-08-03"),
    ],
)
def test_digit_scripts(
    script: Callable[[str], str], template: str, calendar: str, iso: str
) -> None:
    written = script(template)
    text = f"متن قبل {written} متن بعد"
    d = only_date(text)
    assert (d.original, d.calendar, d.iso) == (written, calendar, iso)


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("۱۲ ارديبهشت ۱۳۹۳", "2014-05-02"),  # Arabic yeh
        ("۱ فروردين ۱۳۹۳", "2014-03-21"),
        ("۵ دي ۱۳۹۳", "2014-12-26"),
        ("۱۲ مـرداد ۱۳۹۳", "2014-08-03"),  # tatweel
        ("۱۰ ذي‌الحجة ۱۴۳۵", "2014-10-04"),  # Arabic yeh and teh marbuta
        ("۱۰ ذی الحجه ۱۴۳۵", "2014-10-04"),  # space instead of ZWNJ
        ("۱ رمضان المبارك ۱۴۳۵", "2014-06-28"),  # Arabic kaf
        ("يكشنبه ۱۲ مرداد ۱۳۹۳", "2014-08-03"),  # Arabic yeh and kaf in the weekday
        ("٣ أكتوبر ٢٠١٤", "2014-10-03"),
        ("۳ ژوئیه ۲۰۱۴", "2014-07-03"),
    ],
)
def test_letter_variants(written: str, iso: str) -> None:
    d = only_date(f"در تاریخ {written} نوشته شد")
    assert (d.original, d.iso) == (written, iso)


@pytest.mark.parametrize(
    "text",
    [
        "دی ماه امسال هوا سرد بود",
        "دی",
        "او مهر تأیید زد و رفت",
        "۳ مهر را زد",
        "تیر خلاص",
        "شماره تلفن 021-8812-3456 است",
        "شماره تلفن ۰۲۱-۸۸۱۲-۳۴۵۶ است",
        "سال 1393 بود",
        "۱۳۹۳",
        "version v2.14.2014 released",
        "1435/10/07",  # qamari-looking numbers without a qamari suffix
        "03/08/2014",  # ambiguous US/EU order
        "۱۲ مرداد",  # no year
        "August 2014",  # no day
        "1393/05",
        "ref 12345/1393/05/12",
        "رمضان ۱۴۳۵",
        "۱۲ مرداد ۲۰۱۴",  # Jalali month with a Gregorian year
        "ابعاد 3.5.2",
    ],
)
def test_false_positives(text: str) -> None:
    assert find_dates(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "1400/12/30",
        "۱۴۰۰/۱۲/۳۰",
        "30 February 2014",
        "2014-02-29",
        "1393/13/01",
        "1393/00/10",
        "31 مهر 1393",
        "۳۰ اسفند ۱۴۰۰",
        "32 مرداد 1393",
        "31 شوال 1435",
        "2014-13-01",
        "32.01.2014",
    ],
)
def test_invalid_dates_skipped(text: str) -> None:
    assert find_dates(f"before {text} after") == []


def test_invalid_date_does_not_hide_valid_neighbours() -> None:
    text = "۱۴۰۰/۱۲/۳۰ و ۱۳۹۹/۱۲/۳۰ و 2016-02-29 و 2014-02-29"
    assert [d.iso for d in find_dates(text)] == ["2021-03-20", "2016-02-29"]


def test_weekday_not_taken_from_other_words() -> None:
    d = only_date("مورخ ۱۲ مرداد ۱۳۹۳")
    assert d.original == "۱۲ مرداد ۱۳۹۳"
    d = only_date("روز جمعه و ۱۲ مرداد ۱۳۹۳")
    assert d.original == "۱۲ مرداد ۱۳۹۳"
    d = only_date("جلسه روز جمعه. ۱۲ مرداد ۱۳۹۳ نامه رسید")  # the sentence ended
    assert d.original == "۱۲ مرداد ۱۳۹۳"
    d = only_date("sent Sun. 3 Aug 2014")
    assert d.original == "Sun. 3 Aug 2014"


def test_found_date_is_frozen() -> None:
    d = only_date("2014-08-03")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.iso = "x"  # type: ignore[misc]


CABLE = """\
بسمه تعالی
وزارت امور خارجه
شماره: ۴۵۶۷/۱۲۳ تاریخ: ۱۳۹۳/۰۵/۱۲ پیوست: ندارد
سه‌شنبه ۱۴ مرداد ۱۳۹۳ - ۸ شوال ۱۴۳۵ ه.ق
Ref: cable of 3 August 2014, received 2014-08-05.
در جلسه مورخ ۱۵ مرداد ماه ۱۳۹۳ که با حضور ۱۲ نفر برگزار شد، دی ماه به عنوان موعد
تعیین گردید. تلفن ۰۲۱-۸۸۱۲-۳۴۵۶. نسخه v2.14.2014
رونوشت: August 7, 2014; ١٣ شوال ١٤٣٥هـ
Page 1 of 3
صفحه ۱ از ۳
"""


def test_cable_with_mixed_forms() -> None:
    found = find_dates(CABLE)
    assert [(d.original, d.calendar, d.iso) for d in found] == [
        ("۱۳۹۳/۰۵/۱۲", "jalali", "2014-08-03"),
        ("سه‌شنبه ۱۴ مرداد ۱۳۹۳", "jalali", "2014-08-05"),
        ("۸ شوال ۱۴۳۵ ه.ق", "hijri", "2014-08-04"),
        ("3 August 2014", "gregorian", "2014-08-03"),
        ("2014-08-05", "gregorian", "2014-08-05"),
        ("۱۵ مرداد ماه ۱۳۹۳", "jalali", "2014-08-06"),
        ("August 7, 2014", "gregorian", "2014-08-07"),
        ("١٣ شوال ١٤٣٥هـ", "hijri", "2014-08-09"),
    ]
    for d in found:
        assert CABLE[d.start : d.end] == d.original
    starts = [d.start for d in found]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))


def test_every_day_of_1393_in_generator_forms() -> None:
    """The forms the fixture generator writes, for a whole year, inside cable-like text."""
    months = [
        "فروردین",
        "اردیبهشت",
        "خرداد",
        "تیر",
        "مرداد",
        "شهریور",
        "مهر",
        "آبان",
        "آذر",
        "دی",
        "بهمن",
        "اسفند",
    ]
    english = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    g = jalali_to_gregorian(1393, 1, 1)
    while g < jalali_to_gregorian(1394, 1, 1):
        jy, jm, jd = gregorian_to_jalali(g)
        forms = {
            f"{jy}/{jm:02d}/{jd:02d}": "jalali",
            fa(f"{jy}/{jm:02d}/{jd:02d}"): "jalali",
            f"{fa(str(jd))} {months[jm - 1]} {fa(str(jy))}": "jalali",
            g.isoformat(): "gregorian",
            f"{g.day} {english[g.month - 1]} {g.year}": "gregorian",
            f"{english[g.month - 1]} {g.day}, {g.year}": "gregorian",
        }
        for written, calendar in forms.items():
            text = f"تاریخ: {written}\nموضوع: گزارش"
            d = only_date(text)
            assert (d.original, d.calendar, d.iso) == (written, calendar, g.isoformat())
        g += dt.timedelta(days=1)


def test_named_month_dates_split_over_lines_by_rtl_extraction() -> None:
    """PDF text layers break a Persian line at each change of direction (digits)."""
    text = "جلسه بعدی در تاریخ ۱۴\n رمضان\n۱۴۳۵\n در اهواز\nو ۲۱\nفروردین\n۱۳۹۴"
    found = find_dates(text)
    assert [(d.calendar, d.iso) for d in found] == [
        ("hijri", "2014-07-11"),
        ("jalali", "2015-04-10"),
    ]
    assert all(text[d.start : d.end] == d.original for d in found)
    assert find_dates("۱۴\n\nرمضان\n\n۱۴۳۵") == []  # a blank line ends the date


# --------------------------------------------------------------------------- page markers


@pytest.mark.parametrize(
    ("text", "original", "number", "total"),
    [
        ("Page 2 of 5", "Page 2 of 5", 2, 5),
        ("page 2 of 5", "page 2 of 5", 2, 5),
        ("PAGE 2 OF 5", "PAGE 2 OF 5", 2, 5),
        ("Page 2/5", "Page 2/5", 2, 5),
        ("p. 2 of 5", "p. 2 of 5", 2, 5),
        ("Pg 12 of 40", "Pg 12 of 40", 12, 40),
        ("صفحه ۲ از ۵", "صفحه ۲ از ۵", 2, 5),
        ("صفحه 2 از 5", "صفحه 2 از 5", 2, 5),
        ("صفحهٔ ۲ از ۵", "صفحهٔ ۲ از ۵", 2, 5),
        ("ص ۲ از ۵", "ص ۲ از ۵", 2, 5),
        ("صفحة ٢ من ٥", "صفحة ٢ من ٥", 2, 5),
        ("- footer - صفحه ۱۰ از ۱۲", "صفحه ۱۰ از ۱۲", 10, 12),
        ("صفحه | از ۴", "صفحه | از ۴", 1, 4),  # OCR's readings of the Persian one
        ("صفحه ا از ۳", "صفحه ا از ۳", 1, 3),
        ("صفحه ۲ از !", None, None, None),  # 2 of 1 is not a marker
    ],
)
def test_page_markers(text: str, original: str | None, number: int, total: int) -> None:
    marker = find_page_marker(f"متن صفحه\n{text}\n")
    if original is None:
        assert marker is None
        return
    assert marker is not None
    assert (marker.original, marker.number, marker.total) == (original, number, total)
    full = f"متن صفحه\n{text}\n"
    assert full[marker.start : marker.end] == marker.original


def test_last_page_marker_wins() -> None:
    text = "Page 1 of 5\nbody text\nصفحه ۳ از ۵\nmore\nPage 4 of 5"
    marker = find_page_marker(text)
    assert marker == PageMarker(4, 5, text.rindex("Page"), len(text), "Page 4 of 5")
    text = "Page 4 of 5\nfooter: صفحه ۳ از ۵"
    marker = find_page_marker(text)
    assert marker is not None and (marker.number, marker.total) == (3, 5)


@pytest.mark.parametrize(
    "text",
    [
        "Page 6 of 5",
        "page 1 of 0",
        "Page 0 of 3",
        "صفحه ۶ از ۵",
        "- 2 of 5 -",
        "Step 2 of 5",
        "خاص ۲ از ۵",
        "2 of 5",
        "no marker here",
    ],
)
def test_no_page_marker(text: str) -> None:
    assert find_page_marker(text) is None


def test_invalid_last_marker_falls_back_to_valid_one() -> None:
    marker = find_page_marker("Page 2 of 5\nref Page 9 of 5")
    assert marker is not None and marker.number == 2


# --------------------------------------------------------------------------- parse_user_date


@pytest.mark.parametrize(
    "typed",
    [
        "2014-08-03",
        "1393/05/12",
        "۱۳۹۳/۰۵/۱۲",
        "١٣٩٣/٠٥/١٢",
        "12 مرداد 1393",
        "۱۲ مرداد ۱۳۹۳",
        "3 August 2014",
        "August 3, 2014",
        "  2014/8/3  ",
        "7 شوال 1435",
    ],
)
def test_parse_user_date(typed: str) -> None:
    assert parse_user_date(typed) == (dt.date(2014, 8, 3), "1393/05/12")


def test_parse_user_date_pads_jalali() -> None:
    assert parse_user_date("2014-03-21") == (dt.date(2014, 3, 21), "1393/01/01")


@pytest.mark.parametrize(
    "typed", ["", "yesterday", "03/08/2014", "1400/12/30", "on 2014-08-03", "1393", "2014-08-03x"]
)
def test_parse_user_date_errors(typed: str) -> None:
    with pytest.raises(DateParseError) as info:
        parse_user_date(typed)
    message = str(info.value)
    assert "2014-08-03" in message and "1393/05/12" in message and "مرداد" in message


def test_parse_user_date_explains_the_problem() -> None:
    with pytest.raises(DateParseError, match="ambiguous"):
        parse_user_date("03/08/2014")
    with pytest.raises(DateParseError, match="1400/12"):
        parse_user_date("1400/12/30")
