"""Quartz cron: parsing, every special character, the DST policy, and a brute-force reference."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.cron import (
    CronError,
    CronExpression,
    DayOfMonth,
    DayOfWeek,
    fire_times,
    next_fire,
    parse,
    resolve_timezone,
)
from sluice.errors import SluiceError

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")

DayPredicate = Callable[[int, int, int], bool]


def _days(expression: str, start: str, n: int, tz: ZoneInfo = UTC) -> list[str]:
    after = datetime.fromisoformat(start).replace(tzinfo=tz)
    return [f.date().isoformat() for f in fire_times(parse(expression), after, tz, n)]


def _times(expression: str, start: datetime, tz: ZoneInfo, n: int) -> list[str]:
    return [f.isoformat() for f in fire_times(parse(expression), start, tz, n)]


# ------------------------------------------------------------------------------------- Databricks examples


def test_databricks_daily_0230() -> None:
    la = ZoneInfo("America/Los_Angeles")
    assert _times("0 30 2 * * ?", datetime(2025, 6, 1, 12, tzinfo=la), la, 2) == [
        "2025-06-02T02:30:00-07:00",
        "2025-06-03T02:30:00-07:00",
    ]


def test_databricks_daily_0300() -> None:
    assert _times("0 0 3 * * ?", datetime(2025, 6, 1, 3, tzinfo=UTC), UTC, 2) == [
        "2025-06-02T03:00:00+00:00",
        "2025-06-03T03:00:00+00:00",
    ]


def test_databricks_every_five_seconds() -> None:
    assert _times("0/5 * * * * ?", datetime(2025, 6, 1, 10, 0, 58, tzinfo=UTC), UTC, 3) == [
        "2025-06-01T10:01:00+00:00",
        "2025-06-01T10:01:05+00:00",
        "2025-06-01T10:01:10+00:00",
    ]


# ----------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expression", "attribute", "expected"),
    [
        ("5/15 * * * * ?", "seconds", (5, 20, 35, 50)),
        ("*/10 * * * * ?", "seconds", (0, 10, 20, 30, 40, 50)),
        ("/20 * * * * ?", "seconds", (0, 20, 40)),
        ("59 * * * * ?", "seconds", (59,)),
        ("0 5/15 * * * ?", "minutes", (5, 20, 35, 50)),
        ("0 50-10/5 * * * ?", "minutes", (0, 5, 10, 50, 55)),
        ("0 10-12,30 * * * ?", "minutes", (10, 11, 12, 30)),
        ("0 0 */6 * * ?", "hours", (0, 6, 12, 18)),
        ("0 0 22-2 * * ?", "hours", (0, 1, 2, 22, 23)),
        ("0 0 22-2/2 * * ?", "hours", (0, 2, 22)),
        ("0 0 9-17/4 * * ?", "hours", (9, 13, 17)),
        ("0 0 0 * NOV-FEB ?", "months", (1, 2, 11, 12)),
        ("0 0 0 * 7/6 ?", "months", (7,)),
        ("0 0 0 * */3 ?", "months", (1, 4, 7, 10)),
        ("0 0 0 * JAN,mar,Dec ?", "months", (1, 3, 12)),
        ("0 0 0 * jul ?", "months", (7,)),
        ("0 0 0 * JUN-AUG/2 ?", "months", (6, 8)),
        ("0 0 0 1/5 * ?", "day_of_month", DayOfMonth(days=(1, 6, 11, 16, 21, 26, 31))),
        ("0 0 0 28-3 * ?", "day_of_month", DayOfMonth(days=(1, 2, 3, 28, 29, 30, 31))),
        ("0 0 0 L * ?", "day_of_month", DayOfMonth(last_offsets=(0,))),
        ("0 0 0 L-2 * ?", "day_of_month", DayOfMonth(last_offsets=(2,))),
        ("0 0 0 L,15 * ?", "day_of_month", DayOfMonth(days=(15,), last_offsets=(0,))),
        ("0 0 0 lw * ?", "day_of_month", DayOfMonth(last_weekday_offsets=(0,))),
        ("0 0 0 L-3W * ?", "day_of_month", DayOfMonth(last_weekday_offsets=(3,))),
        ("0 0 0 1W,15W * ?", "day_of_month", DayOfMonth(nearest_weekdays=(1, 15))),
        ("0 0 0 ? * FRI-MON", "day_of_week", DayOfWeek((1, 2, 6, 7))),
        ("0 0 0 ? * 6-2", "day_of_week", DayOfWeek((1, 2, 6, 7))),
        ("0 0 0 ? * 1/2", "day_of_week", DayOfWeek((1, 3, 5, 7))),
        ("0 0 0 ? * mon-fri", "day_of_week", DayOfWeek((2, 3, 4, 5, 6))),
        ("0 0 0 ? * WED", "day_of_week", DayOfWeek((4,))),
        ("0 0 0 ? * WED-SAT/2", "day_of_week", DayOfWeek((4, 6))),
        ("0 0 0 ? * SUN,sat", "day_of_week", DayOfWeek((1, 7))),
        ("0 0 0 ? * L", "day_of_week", DayOfWeek((7,))),
        ("0 0 0 ? * 6L", "day_of_week", DayOfWeek((6,), last=True)),
        ("0 0 0 ? * friL", "day_of_week", DayOfWeek((6,), last=True)),
        ("0 0 0 ? * 6#3", "day_of_week", DayOfWeek((6,), nth=3)),
        ("0 0 0 ? * Fri#3", "day_of_week", DayOfWeek((6,), nth=3)),
        ("0 0 0 * * ?", "years", tuple(range(1970, 2100))),
        ("0 0 0 * * ? *", "years", tuple(range(1970, 2100))),
        ("0 0 0 * * ? 2025/25", "years", (2025, 2050, 2075)),
        ("0 0 0 * * ? 2025-2027,2030", "years", (2025, 2026, 2027, 2030)),
    ],
)
def test_parse_fields(expression: str, attribute: str, expected: object) -> None:
    assert getattr(parse(expression), attribute) == expected


def test_day_fields_and_question_mark() -> None:
    by_month = parse("0 0 0 * * ?")
    assert by_month.day_of_week is None
    assert by_month.day_of_month == DayOfMonth(days=tuple(range(1, 32)))
    by_week = parse("0 0 0 ? * *")
    assert by_week.day_of_month is None
    assert by_week.day_of_week == DayOfWeek(tuple(range(1, 8)))


def test_names_are_case_insensitive() -> None:
    def fields(expr: CronExpression) -> tuple[object, ...]:
        return (expr.seconds, expr.minutes, expr.hours, expr.day_of_month, expr.months, expr.day_of_week)

    numeric = fields(parse("0 0 0 ? 1-3,12 2-6"))
    for text in ("0 0 0 ? JAN-MAR,DEC MON-FRI", "0 0 0 ? jan-mar,dec mon-fri", "0 0 0 ? Jan-Mar,dEc Mon-Fri"):
        assert fields(parse(text)) == numeric


def test_parse_keeps_the_text_and_is_frozen() -> None:
    expr = parse("  0  0\t12 * * ?  ")
    assert expr.text == "  0  0\t12 * * ?  "
    assert str(expr) == expr.text
    assert expr.hours == (12,)
    assert parse("0 0 12 * * ?") == parse("0 0 12 * * ?")
    with pytest.raises(AttributeError):
        expr.hours = (1,)  # type: ignore[misc]  # proving the dataclass is frozen


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "it has 0 fields; Quartz cron has 6 or 7"),
        ("* * * * *", "this looks like Unix cron, which has no seconds field"),
        ("0 0 0 * * ? 2025 1", "it has 8 fields"),
        ("0 0 0 ? * 8", "day-of-week '8' is out of range 1-7 (1 = Sunday)"),
        ("0 0 0 ? * 0", "(0 is Sunday in Unix cron, 1 in Quartz)"),
        ("0 0 0 * * *", "specify '?' in day-of-month or day-of-week: Quartz does not support both"),
        ("0 0 0 1 * MON", "specify '?' in day-of-month or day-of-week: Quartz does not support both"),
        ("0 0 0 ? * ?", "day-of-month and day-of-week are both '?'"),
        ("60 0 0 * * ?", "second '60' is out of range 0-59"),
        ("0 60 0 * * ?", "minute '60' is out of range 0-59"),
        ("0 0 24 * * ?", "hour '24' is out of range 0-23"),
        ("0 0 20-24 * * ?", "hour '20-24' is out of range 0-23"),
        ("0 0 0 32 * ?", "day-of-month '32' is out of range 1-31"),
        ("0 0 0 0 * ?", "day-of-month '0' is out of range 1-31"),
        ("0 0 0 * 13 ?", "month '13' is out of range 1-12 or JAN-DEC"),
        ("0 0 0 * 0 ?", "month '0' is out of range 1-12 or JAN-DEC"),
        ("0 0 0 * * ? 1969", "year '1969' is out of range 1970-2099"),
        ("0 0 0 * * ? 2100", "year '2100' is out of range 1970-2099"),
        ("0 0 0 * * ? 2030-2025", "year '2030-2025' runs backwards: write the earlier year first"),
        ("0 0 0 * JANUARY ?", "month 'JANUARY' is not a value: use 1-12 or JAN-DEC"),
        ("0 0 0 ? * MONDAY", "day-of-week 'MONDAY' is not a value: use 1-7 (1 = Sunday) or SUN-SAT"),
        ("0 0 0 ? * FUN", "day-of-week 'FUN' is not a value"),
        ("0 0 0 * FOO-MAR ?", "month 'FOO' in 'FOO-MAR' is not a value"),
        ("0 0 MON * * ?", "hour 'MON' is not a value: use 0-23"),
        ("0 0/0 * * * ?", "minute '0/0': the increment after '/' must be a whole number from 1 to 59"),
        ("0 0/60 * * * ?", "from 1 to 59"),
        ("0 0 */24 * * ?", "hour '*/24': the increment after '/' must be a whole number from 1 to 23"),
        ("0 0 0 */32 * ?", "from 1 to 31"),
        ("0 0 0 ? * */8", "from 1 to 7"),
        ("0 0 0 * */13 ?", "from 1 to 12"),
        ("0 0/x * * * ?", "minute '0/x': the increment"),
        ("0 0/ * * * ?", "minute '0/': the increment"),
        ("0 5- * * * ?", "minute '5-' is missing a value: use 0-59"),
        ("0 -5 * * * ?", "minute '-5' is missing a value"),
        ("0 1,,2 * * * ?", "minute has an empty list item: remove the extra ','"),
        ("? 0 0 * * ?", "second '?': '?' is only allowed in day-of-month and day-of-week"),
        ("0 0 0 ?,1 * ?", "day-of-month '?,1': '?' must stand alone"),
        ("0 0 0 ? * ?,1", "day-of-week '?,1': '?' must stand alone"),
        ("0 0 L * * ?", "hour 'L': 'L' is only allowed in day-of-month and day-of-week"),
        ("0 0 0 * * ? L", "year 'L': 'L' is only allowed"),
        ("0 0 0 15-20W * ?", "day-of-month '15-20W': use 'L', 'L-3', 'LW', 'L-3W' or one day before 'W'"),
        ("0 0 0 L-31 * ?", "day-of-month 'L-31': the offset from the last day must be at most 30"),
        ("0 0 0 L- * ?", "day-of-month 'L-': use 'L', 'L-3'"),
        ("0 0 0 L/2 * ?", "day-of-month 'L/2': use 'L'"),
        ("0 0 0 3L * ?", "day-of-month '3L': use 'L'"),
        ("0 0 0 32W * ?", "day-of-month '32W' is out of range 1-31"),
        ("0 0 0 0W * ?", "day-of-month '0W' is out of range 1-31"),
        ("0 0 0 W * ?", "day-of-month 'W': use 'L'"),
        ("0 0 0 ? * 3W", "day-of-week '3W': 'W' is only allowed in day-of-month"),
        ("0 0 0 1#2 * ?", "day-of-month '1#2': '#' is only allowed in day-of-week"),
        ("0 0 0 * 1#2 ?", "month '1#2': '#' is only allowed in day-of-week"),
        ("0 0 0 ? * 6#6", "day-of-week '6#6': the number after '#' must be 1-5"),
        ("0 0 0 ? * 6#0", "the number after '#' must be 1-5"),
        ("0 0 0 ? * 6#", "the number after '#' must be 1-5"),
        ("0 0 0 ? * 8#1", "day-of-week '8#1' is out of range 1-7 (1 = Sunday)"),
        ("0 0 0 ? * 6#3,2", "day-of-week '6#3,2': 'L' and '#' take one day and no list"),
        ("0 0 0 ? * 6L,2", "'L' and '#' take one day and no list"),
        ("0 0 0 ? * 1,L", "'L' and '#' take one day and no list"),
        ("0 0 0 ? * 2-6L", "day-of-week '2-6L': use one day before 'L' or '#', such as '6L'"),
        ("0 0 0 ? * 8L", "day-of-week '8L' is out of range 1-7"),
    ],
)
def test_invalid_expressions_name_the_field_token_and_fix(expression: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse(expression)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"invalid Quartz cron expression '{expression}': ")
    assert caught.value.expression == expression
    assert isinstance(caught.value, SluiceError)


def test_resolve_timezone() -> None:
    assert resolve_timezone("America/Los_Angeles") == ZoneInfo("America/Los_Angeles")
    assert resolve_timezone("UTC") == UTC
    for bad in ("Mars/Olympus_Mons", "America", "", "../etc/passwd"):
        with pytest.raises(CronError, match=f"timezone_id '{bad}' is not a known time zone"):
            resolve_timezone(bad)


# ---------------------------------------------------------------------------------------------- days


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 0 12 L * ?", "2025-01-01", ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30"]),
        ("0 0 12 L * ?", "2024-02-01", ["2024-02-29", "2024-03-31"]),
        ("0 0 12 L-2 * ?", "2025-01-01", ["2025-01-29", "2025-02-26", "2025-03-29", "2025-04-28"]),
        (
            "0 0 12 L-30 * ?",
            "2025-01-01",
            ["2025-01-01", "2025-03-01", "2025-05-01", "2025-07-01", "2025-08-01"],
        ),
        (
            "0 0 12 LW * ?",
            "2025-01-01",
            ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-30", "2025-06-30"],
        ),
        ("0 0 12 LW * ?", "2025-07-01", ["2025-07-31", "2025-08-29"]),
        (
            "0 0 12 L-3W * ?",
            "2025-01-01",
            ["2025-01-28", "2025-02-25", "2025-03-28", "2025-04-28", "2025-05-28"],
        ),
        (
            "0 0 12 15W * ?",
            "2025-01-01",
            ["2025-01-15", "2025-02-14", "2025-03-14", "2025-04-15", "2025-05-15"],
        ),
        ("0 0 12 15W * ?", "2025-06-01", ["2025-06-16"]),
        (
            "0 0 12 1W * ?",
            "2025-01-01",
            ["2025-01-01", "2025-02-03", "2025-03-03", "2025-04-01", "2025-05-01"],
        ),
        ("0 0 12 1W * ?", "2025-06-01", ["2025-06-02"]),
        ("0 0 12 1W * ? 2026", "2025-12-01", ["2026-01-01", "2026-02-02", "2026-03-02", "2026-04-01"]),
        (
            "0 0 12 31W * ?",
            "2025-01-01",
            [
                "2025-01-31",
                "2025-03-31",
                "2025-05-30",
                "2025-07-31",
                "2025-08-29",
                "2025-10-31",
                "2025-12-31",
            ],
        ),
        ("0 0 12 30W 2 ?", "2025-01-01", ["END"]),
        ("0 0 12 1W,15W * ?", "2025-02-01", ["2025-02-03", "2025-02-14", "2025-03-03", "2025-03-14"]),
        ("0 0 12 L,15 * ?", "2025-02-01", ["2025-02-15", "2025-02-28", "2025-03-15", "2025-03-31"]),
        (
            "0 0 12 31 * ?",
            "2025-01-01",
            ["2025-01-31", "2025-03-31", "2025-05-31", "2025-07-31", "2025-08-31"],
        ),
        (
            "0 0 12 28-3 * ?",
            "2025-02-26",
            ["2025-02-28", "2025-03-01", "2025-03-02", "2025-03-03", "2025-03-28"],
        ),
        ("0 0 12 29 2 ?", "2025-01-01", ["2028-02-29", "2032-02-29", "2036-02-29"]),
        ("0 0 12 L 2 ?", "2027-06-01", ["2028-02-29", "2029-02-28"]),
        ("0 0 12 29 2 ? 2025-2027", "2025-01-01", ["END"]),
        (
            "0 0 12 ? * 6L",
            "2025-01-01",
            ["2025-01-31", "2025-02-28", "2025-03-28", "2025-04-25", "2025-05-30"],
        ),
        ("0 0 12 ? * 6#3", "2025-01-01", ["2025-01-17", "2025-02-21", "2025-03-21"]),
        ("0 0 12 ? * 1#1", "2025-01-01", ["2025-01-05", "2025-02-02", "2025-03-02", "2025-04-06"]),
        (
            "0 0 12 ? * 2#5",
            "2025-01-01",
            ["2025-03-31", "2025-06-30", "2025-09-29", "2025-12-29", "2026-03-30"],
        ),
        ("0 0 12 ? * L", "2025-01-01", ["2025-01-04", "2025-01-11", "2025-01-18"]),
        (
            "0 0 12 ? * FRI-MON",
            "2025-01-01",
            ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06", "2025-01-10"],
        ),
        ("0 0 12 ? * MON-FRI", "2025-01-03", ["2025-01-03", "2025-01-06", "2025-01-07"]),
        ("0 0 12 ? JUL-AUG WED", "2025-01-01", ["2025-07-02", "2025-07-09"]),
        (
            "0 0 12 1 NOV-FEB ?",
            "2025-03-01",
            ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01", "2026-11-01"],
        ),
        ("0 0 12 1 1 ? 2030,2040-2041", "2025-01-01", ["2030-01-01", "2040-01-01", "2041-01-01", "END"]),
        ("0 0 12 1 1 ? 2025/30", "2025-06-01", ["2055-01-01", "2085-01-01", "END"]),
        ("0 0 12 31 12 ?", "2097-01-01", ["2097-12-31", "2098-12-31", "2099-12-31", "END"]),
    ],
)
def test_day_specials(expression: str, start: str, expected: list[str]) -> None:
    exhaustive = expected[-1:] == ["END"]  # no fire time follows the listed ones
    dates = expected[:-1] if exhaustive else expected
    found = _days(expression, start, len(dates) + 1)
    assert found[: len(dates)] == dates
    assert len(found) == (len(dates) if exhaustive else len(dates) + 1)


def test_nearest_weekday_found_when_asked_after_the_nominal_day() -> None:
    # 2025-06-15 is a Sunday, so 15W is Monday the 16th; Quartz misses it when asked from the 16th.
    after = datetime(2025, 6, 16, 0, 0, tzinfo=UTC)
    assert next_fire(parse("0 0 12 15W * ?"), after, UTC) == datetime(2025, 6, 16, 12, tzinfo=UTC)
    # 2025-02-01 is a Saturday, so 1W is Monday the 3rd, also when asked on the 2nd.
    after = datetime(2025, 2, 2, 0, 0, tzinfo=UTC)
    assert next_fire(parse("0 0 12 1W * ?"), after, UTC) == datetime(2025, 2, 3, 12, tzinfo=UTC)


def test_years_run_out() -> None:
    assert next_fire(parse("0 0 0 1 1 ? 2025"), datetime(2025, 1, 1, tzinfo=UTC), UTC) is None
    assert next_fire(parse("* * * * * ?"), datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC), UTC) is None
    assert next_fire(parse("0 0 0 * * ?"), datetime(2150, 1, 1, tzinfo=UTC), UTC) is None
    first = next_fire(parse("0 0 0 * * ?"), datetime(1900, 1, 1, tzinfo=UTC), UTC)
    assert first == datetime(1970, 1, 1, tzinfo=UTC)
    assert fire_times(
        parse("0 0 0 31 12 ? 2098-2099"), datetime(2098, 1, 1, tzinfo=NEW_YORK), NEW_YORK, 5
    ) == [
        datetime(2098, 12, 31, tzinfo=NEW_YORK),
        datetime(2099, 12, 31, tzinfo=NEW_YORK),
    ]


def test_impossible_and_rare_expressions_are_fast() -> None:
    began = time.perf_counter()
    assert next_fire(parse("0 0 0 30 2 ?"), datetime(1970, 1, 1, tzinfo=UTC), UTC) is None
    assert next_fire(parse("0 0 0 31 4,6,9,11 ?"), datetime(1970, 1, 1, tzinfo=NEW_YORK), NEW_YORK) is None
    assert next_fire(parse("0 0 0 ? 2 2#5 2025-2027"), datetime(2025, 1, 1, tzinfo=UTC), UTC) is None
    leap_days = fire_times(parse("0 0 0 29 2 ?"), datetime(1970, 1, 1, tzinfo=UTC), UTC, 40)
    assert len(leap_days) == 32  # 1972 ... 2096
    assert leap_days[-1] == datetime(2096, 2, 29, tzinfo=UTC)
    # Scanning second by second would take hours; jumping field by field takes milliseconds.
    assert time.perf_counter() - began < 2.0


# --------------------------------------------------------------------------------------------- instants


def test_strictly_after_and_sub_second_after() -> None:
    every_second = parse("* * * * * ?")
    at = datetime(2025, 6, 1, 10, 0, 0, tzinfo=UTC)
    assert next_fire(every_second, at, UTC) == at + timedelta(seconds=1)
    assert next_fire(every_second, at + timedelta(microseconds=500), UTC) == at + timedelta(seconds=1)
    assert next_fire(every_second, at - timedelta(microseconds=1), UTC) == at


def test_after_in_another_zone_and_result_in_tz() -> None:
    after = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)  # 02:00 in New York
    found = next_fire(parse("0 30 2 * * ?"), after, NEW_YORK)
    assert found is not None
    assert found.tzinfo is NEW_YORK
    assert found.isoformat() == "2025-06-01T02:30:00-04:00"


def test_naive_after_and_negative_n_are_refused() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        next_fire(parse("0 0 0 * * ?"), datetime(2025, 1, 1), UTC)  # naive on purpose
    with pytest.raises(ValueError, match="n >= 0"):
        fire_times(parse("0 0 0 * * ?"), datetime(2025, 1, 1, tzinfo=UTC), UTC, -1)
    assert fire_times(parse("0 0 0 * * ?"), datetime(2025, 1, 1, tzinfo=UTC), UTC, 0) == []


# -------------------------------------------------------------------------------------------- DST policy

# Transition dates (local) per zone and year: (spring-forward, fall-back).
_TRANSITIONS = {
    ("America/New_York", 2025): (date(2025, 3, 9), date(2025, 11, 2)),
    ("America/New_York", 2026): (date(2026, 3, 8), date(2026, 11, 1)),
    ("Europe/London", 2025): (date(2025, 3, 30), date(2025, 10, 26)),
    ("Europe/London", 2026): (date(2026, 3, 29), date(2026, 10, 25)),
    ("Australia/Lord_Howe", 2025): (date(2025, 10, 5), date(2025, 4, 6)),
    ("Australia/Lord_Howe", 2026): (date(2026, 10, 4), date(2026, 4, 5)),
}

# (zone, transition, expression, start "D-1 HH:MM" local, expected fires "D+k HH:MM+offset").
_POLICY = [
    # New York: 02:00 EST -> 03:00 EDT; 02:00 EDT -> 01:00 EST.
    (
        "America/New_York",
        "spring",
        "0 30 2 * * ?",
        "D-1 00:00",
        ["D-1 02:30-05:00", "D 03:00-04:00", "D+1 02:30-04:00"],
    ),
    (
        "America/New_York",
        "spring",
        "0 30 * * * ?",
        "D 00:00",
        ["D 00:30-05:00", "D 01:30-05:00", "D 03:30-04:00"],
    ),
    (
        "America/New_York",
        "spring",
        "0 0 * * * ?",
        "D 00:30",
        ["D 01:00-05:00", "D 03:00-04:00", "D 04:00-04:00"],
    ),
    (
        "America/New_York",
        "spring",
        "0 0/15 * * * ?",
        "D 01:20",
        ["D 01:30-05:00", "D 01:45-05:00", "D 03:00-04:00"],
    ),
    (
        "America/New_York",
        "spring",
        "0 30 */2 * * ?",
        "D 00:00",
        ["D 00:30-05:00", "D 03:00-04:00", "D 04:30-04:00"],
    ),
    ("America/New_York", "spring", "0 30 2-3 * * ?", "D 00:00", ["D 03:30-04:00", "D+1 02:30-04:00"]),
    (
        "America/New_York",
        "fall",
        "0 30 1 * * ?",
        "D-1 00:00",
        ["D-1 01:30-04:00", "D 01:30-04:00", "D+1 01:30-05:00"],
    ),
    (
        "America/New_York",
        "fall",
        "0 30 * * * ?",
        "D 00:00",
        ["D 00:30-04:00", "D 01:30-04:00", "D 02:30-05:00"],
    ),
    (
        "America/New_York",
        "fall",
        "0 0/15 * * * ?",
        "D 01:20",
        ["D 01:30-04:00", "D 01:45-04:00", "D 02:00-05:00"],
    ),
    # London: 01:00 GMT -> 02:00 BST; 02:00 BST -> 01:00 GMT.
    (
        "Europe/London",
        "spring",
        "0 30 1 * * ?",
        "D-1 00:00",
        ["D-1 01:30+00:00", "D 02:00+01:00", "D+1 01:30+01:00"],
    ),
    (
        "Europe/London",
        "spring",
        "0 30 * * * ?",
        "D 00:00",
        ["D 00:30+00:00", "D 02:30+01:00", "D 03:30+01:00"],
    ),
    (
        "Europe/London",
        "spring",
        "0 0/15 * * * ?",
        "D 00:20",
        ["D 00:30+00:00", "D 00:45+00:00", "D 02:00+01:00"],
    ),
    (
        "Europe/London",
        "fall",
        "0 30 1 * * ?",
        "D-1 00:00",
        ["D-1 01:30+01:00", "D 01:30+01:00", "D+1 01:30+00:00"],
    ),
    ("Europe/London", "fall", "0 30 * * * ?", "D 00:00", ["D 00:30+01:00", "D 01:30+01:00", "D 02:30+00:00"]),
    (
        "Europe/London",
        "fall",
        "0 0/15 * * * ?",
        "D 01:20",
        ["D 01:30+01:00", "D 01:45+01:00", "D 02:00+00:00"],
    ),
    # Lord Howe: 02:00 +10:30 -> 02:30 +11:00; 02:00 +11:00 -> 01:30 +10:30 (a 30-minute shift).
    (
        "Australia/Lord_Howe",
        "spring",
        "0 15 2 * * ?",
        "D-1 00:00",
        ["D-1 02:15+10:30", "D 02:30+11:00", "D+1 02:15+11:00"],
    ),
    (
        "Australia/Lord_Howe",
        "spring",
        "0 0 * * * ?",
        "D 00:30",
        ["D 01:00+10:30", "D 02:30+11:00", "D 03:00+11:00"],
    ),
    (
        "Australia/Lord_Howe",
        "spring",
        "0 30 * * * ?",
        "D 00:00",
        ["D 00:30+10:30", "D 01:30+10:30", "D 02:30+11:00"],
    ),
    (
        "Australia/Lord_Howe",
        "spring",
        "0 0/15 * * * ?",
        "D 01:20",
        ["D 01:30+10:30", "D 01:45+10:30", "D 02:30+11:00"],
    ),
    (
        "Australia/Lord_Howe",
        "fall",
        "0 45 1 * * ?",
        "D-1 00:00",
        ["D-1 01:45+11:00", "D 01:45+11:00", "D+1 01:45+10:30"],
    ),
    (
        "Australia/Lord_Howe",
        "fall",
        "0 0 * * * ?",
        "D 00:30",
        ["D 01:00+11:00", "D 02:00+10:30", "D 03:00+10:30"],
    ),
    (
        "Australia/Lord_Howe",
        "fall",
        "0 30 * * * ?",
        "D 00:00",
        ["D 00:30+11:00", "D 01:30+11:00", "D 02:30+10:30"],
    ),
    (
        "Australia/Lord_Howe",
        "fall",
        "0 0/15 * * * ?",
        "D 01:20",
        ["D 01:30+11:00", "D 01:45+11:00", "D 02:00+10:30"],
    ),
]


def _label(found: datetime, day: date) -> str:
    shift = (found.date() - day).days
    label = "D" if shift == 0 else f"D{shift:+d}"
    return f"{label} {found:%H:%M}{found.isoformat()[-6:]}"


@pytest.mark.parametrize("year", [2025, 2026])
@pytest.mark.parametrize(("zone", "direction", "expression", "start", "expected"), _POLICY)
def test_dst_policy(
    zone: str, direction: str, expression: str, start: str, expected: list[str], year: int
) -> None:
    tz = ZoneInfo(zone)
    spring, fall = _TRANSITIONS[(zone, year)]
    day = spring if direction == "spring" else fall
    label, clock = start.split()
    shift = 0 if label == "D" else int(label[1:])
    hour, minute = (int(part) for part in clock.split(":"))
    after = datetime.combine(day + timedelta(days=shift), datetime.min.time(), tz).replace(
        hour=hour, minute=minute
    )
    found = fire_times(parse(expression), after, tz, len(expected))
    assert [_label(f, day) for f in found] == expected


def _real_gaps(expression: str, tz: ZoneInfo, day: date) -> list[int]:
    """Real minutes between consecutive fires from the evening before ``day`` to the morning after."""
    after = datetime.combine(day - timedelta(days=1), datetime.min.time(), tz).replace(hour=22)
    fires = fire_times(parse(expression), after, tz, 400)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).replace(hour=2)
    stamps = [f.timestamp() for f in fires if f.timestamp() < end.timestamp()]
    return [round((b - a) / 60) for a, b in pairwise(stamps)]


@pytest.mark.parametrize("year", [2025, 2026])
@pytest.mark.parametrize(
    ("zone", "direction", "expression", "odd_gaps"),
    [
        # Spring-forward: hourly and quarter-hourly keep their real cadence (no extra run, no loss).
        ("America/New_York", "spring", "0 30 * * * ?", []),
        ("America/New_York", "spring", "0 0 * * * ?", []),
        ("America/New_York", "spring", "0 0/15 * * * ?", []),
        ("Europe/London", "spring", "0 30 * * * ?", []),
        ("Europe/London", "spring", "0 0/15 * * * ?", []),
        ("Australia/Lord_Howe", "spring", "0 0/15 * * * ?", []),
        # The clock moves 30 minutes: a wall-clock hourly cannot stay hourly in real time.
        ("Australia/Lord_Howe", "spring", "0 0 * * * ?", [30]),
        ("Australia/Lord_Howe", "spring", "0 30 * * * ?", [30]),
        # Fall-back: each wall time fires once (its first occurrence), so the repeated stretch is skipped.
        ("America/New_York", "fall", "0 30 * * * ?", [120]),
        ("America/New_York", "fall", "0 0 * * * ?", [120]),
        ("America/New_York", "fall", "0 0/15 * * * ?", [75]),
        ("Europe/London", "fall", "0 30 * * * ?", [120]),
        ("Europe/London", "fall", "0 0/15 * * * ?", [75]),
        ("Australia/Lord_Howe", "fall", "0 0 * * * ?", [90]),
        ("Australia/Lord_Howe", "fall", "0 30 * * * ?", [90]),
        ("Australia/Lord_Howe", "fall", "0 0/15 * * * ?", [45]),
    ],
)
def test_sub_daily_cadence_in_real_time(
    zone: str, direction: str, expression: str, odd_gaps: list[int], year: int
) -> None:
    tz = ZoneInfo(zone)
    spring, fall = _TRANSITIONS[(zone, year)]
    gaps = _real_gaps(expression, tz, spring if direction == "spring" else fall)
    period = 15 if "/15" in expression else 60
    assert len(gaps) > 20
    assert [gap for gap in gaps if gap != period] == odd_gaps


def test_after_in_the_second_pass_of_a_repeated_hour() -> None:
    # 2025-11-02 01:10 EST is the second 01:10 in New York: 01:15 and 01:30 already fired (EDT).
    second_pass = datetime(2025, 11, 2, 6, 10, tzinfo=UTC)
    assert second_pass.astimezone(NEW_YORK).fold == 1
    quarter = next_fire(parse("0 0/15 * * * ?"), second_pass, NEW_YORK)
    assert quarter is not None
    assert quarter.isoformat() == "2025-11-02T02:00:00-05:00"
    daily = next_fire(parse("0 30 1 * * ?"), second_pass, NEW_YORK)
    assert daily is not None
    assert daily.isoformat() == "2025-11-03T01:30:00-05:00"
    first_pass = datetime(2025, 11, 2, 5, 10, tzinfo=UTC)
    quarter = next_fire(parse("0 0/15 * * * ?"), first_pass, NEW_YORK)
    assert quarter is not None
    assert quarter.isoformat() == "2025-11-02T01:15:00-04:00"


def test_gap_fire_is_consistent_when_asked_from_inside_and_after() -> None:
    expr = parse("0 30 2 * * ?")
    jump = datetime(2025, 3, 9, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert next_fire(expr, jump - timedelta(seconds=1), NEW_YORK) == jump
    assert next_fire(expr, jump, NEW_YORK) == datetime(2025, 3, 10, 6, 30, tzinfo=UTC)


# ------------------------------------------------------------------------------------- brute-force reference


def _quartz_weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # 1 = Sunday ... 7 = Saturday


def _render(value: int, lo: int, names: tuple[str, ...], name_case: int) -> str:
    if not names or name_case == 0:
        return str(value)
    name = names[value - lo]
    return (name.upper(), name.lower(), name.title())[name_case - 1]


@st.composite
def _plain_item(draw: st.DrawFn, lo: int, hi: int, names: tuple[str, ...] = ()) -> tuple[str, frozenset[int]]:
    """One list item of a numeric field, and the values it stands for (worked out independently)."""
    kind = draw(st.sampled_from(["*", "*/k", "a", "a/k", "a-b", "a-b/k"]))
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(lo, hi))
    k = draw(st.integers(1, hi))
    case = draw(st.integers(0, 3))
    ra, rb = _render(a, lo, names, case), _render(b, lo, names, case)
    ring = list(range(lo, hi + 1))
    if kind == "*":
        return "*", frozenset(ring)
    if kind == "*/k":
        return f"*/{k}", frozenset(ring[::k])
    if kind == "a":
        return ra, frozenset({a})
    if kind == "a/k":
        return f"{ra}/{k}", frozenset(range(a, hi + 1, k))
    walk = [a]
    while walk[-1] != b:  # a wrapping range walks past the end of the field and on from its start
        walk.append(walk[-1] + 1 if walk[-1] < hi else lo)
    if kind == "a-b":
        return f"{ra}-{rb}", frozenset(walk)
    return f"{ra}-{rb}/{k}", frozenset(walk[::k])


@st.composite
def _plain_field(
    draw: st.DrawFn, lo: int, hi: int, names: tuple[str, ...] = ()
) -> tuple[str, frozenset[int]]:
    items = draw(st.lists(_plain_item(lo, hi, names), min_size=1, max_size=3))
    return ",".join(text for text, _ in items), frozenset().union(*(values for _, values in items))


def _weekdays_of(year: int, month: int) -> list[int]:
    last = calendar.monthrange(year, month)[1]
    return [d for d in range(1, last + 1) if date(year, month, d).weekday() < 5]


def _nearest_weekday(year: int, month: int, target: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    if not 1 <= target <= last:
        return None
    return min(_weekdays_of(year, month), key=lambda d: abs(d - target))


@st.composite
def _dom_item(draw: st.DrawFn) -> tuple[str, DayPredicate]:
    kind = draw(st.sampled_from(["plain", "L", "L-n", "LW", "L-nW", "nW"]))
    n = draw(st.integers(0, 30))
    if kind == "plain":
        text, values = draw(_plain_field(1, 31))
        return text, lambda y, m, d: d in values
    if kind in ("L", "L-n"):
        return (
            "L" if kind == "L" else f"L-{n}"
        ), lambda y, m, d: d == calendar.monthrange(y, m)[1] - (0 if kind == "L" else n)
    if kind == "LW":
        return "LW", lambda y, m, d: d == max(_weekdays_of(y, m))
    if kind == "L-nW":
        return f"L-{n}W", lambda y, m, d: d == _nearest_weekday(y, m, calendar.monthrange(y, m)[1] - n)
    day = n + 1
    return f"{day}W", lambda y, m, d: d == _nearest_weekday(y, m, day)


@st.composite
def _day_of_month(draw: st.DrawFn) -> tuple[str, DayPredicate]:
    items = draw(st.lists(_dom_item(), min_size=1, max_size=2))
    text = ",".join(t for t, _ in items)
    return text, lambda y, m, d: any(p(y, m, d) for _, p in items)


@st.composite
def _day_of_week(draw: st.DrawFn) -> tuple[str, DayPredicate]:
    kind = draw(st.sampled_from(["plain", "plain", "L", "nL", "n#k"]))
    day = draw(st.integers(1, 7))
    k = draw(st.integers(1, 5))
    shown = _render(day, 1, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), draw(st.integers(0, 3)))
    if kind == "plain":
        text, values = draw(_plain_field(1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")))
        return text, lambda y, m, d: _quartz_weekday(date(y, m, d)) in values
    if kind == "L":
        return "L", lambda y, m, d: _quartz_weekday(date(y, m, d)) == 7
    if kind == "nL":
        return (
            f"{shown}L",
            lambda y, m, d: _quartz_weekday(date(y, m, d)) == day and d + 7 > calendar.monthrange(y, m)[1],
        )
    return f"{shown}#{k}", lambda y, m, d: _quartz_weekday(date(y, m, d)) == day and (d - 1) // 7 + 1 == k


@st.composite
def _days_spec(draw: st.DrawFn) -> tuple[str, DayPredicate]:
    """'<day-of-month> <month> <day-of-week>' and a predicate on (year, month, day)."""
    month_text, months = draw(
        _plain_field(
            1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
        )
    )
    if draw(st.booleans()):
        dom_text, dom = draw(_day_of_month())
        return f"{dom_text} {month_text} ?", lambda y, m, d: m in months and dom(y, m, d)
    dow_text, dow = draw(_day_of_week())
    return f"? {month_text} {dow_text}", lambda y, m, d: m in months and dow(y, m, d)


def _reference_days(predicate: DayPredicate, start: date, end: date) -> list[date]:
    days, day = [], start
    while day < end:
        if predicate(day.year, day.month, day.day):
            days.append(day)
        day += timedelta(days=1)
    return days


@settings(max_examples=60, deadline=None)
@given(_days_spec(), st.dates(date(2023, 1, 1), date(2031, 1, 1)))
def test_day_rules_match_a_day_by_day_reference(spec: tuple[str, DayPredicate], start: date) -> None:
    text, predicate = spec
    end = start + timedelta(days=800)
    expected = _reference_days(predicate, start, end)
    expr = parse(f"0 0 12 {text}")
    after = datetime.combine(start, datetime.min.time(), UTC)
    found = [f.date() for f in fire_times(expr, after, UTC, len(expected) + 1)]
    assert [d for d in found if d < end] == expected, text


@dataclass(frozen=True)
class _Spec:
    """A random expression and, worked out independently, which wall times it allows."""

    text: str
    seconds: tuple[int, ...]
    minute_matches: Callable[[datetime], bool]  # hour, minute and day; the seconds are ``seconds``

    def matches(self, wall: datetime) -> bool:
        return wall.second in self.seconds and self.minute_matches(wall)


@st.composite
def _expression(draw: st.DrawFn, dense_days: bool = False) -> _Spec:
    sec_text, secs = draw(_plain_field(0, 59))
    min_text, mins = draw(_plain_field(0, 59))
    hour_text, hours = draw(_plain_field(0, 23))
    days_text, days = ("* * ?", _every_day) if dense_days and draw(st.booleans()) else draw(_days_spec())

    def minute_matches(wall: datetime) -> bool:
        return wall.minute in mins and wall.hour in hours and days(wall.year, wall.month, wall.day)

    return _Spec(f"{sec_text} {min_text} {hour_text} {days_text}", tuple(sorted(secs)), minute_matches)


def _every_day(year: int, month: int, day: int) -> bool:
    return True


def _reference_utc(spec: _Spec, start: datetime, window_end: datetime, limit: int) -> list[datetime]:
    """Minute by minute (naive UTC): the first ``limit`` allowed times in (``start``, ``window_end``)."""
    found: list[datetime] = []
    minute = start.replace(second=0, microsecond=0)
    while minute < window_end and len(found) < limit:
        if spec.minute_matches(minute):
            found.extend(t for s in spec.seconds if (t := minute.replace(second=s)) > start)
        minute += timedelta(minutes=1)
    return found[:limit]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expression(dense_days=True), st.datetimes(datetime(2024, 1, 1), datetime(2030, 12, 31)))
def test_matches_a_minute_by_minute_reference_in_utc(spec: _Spec, start: datetime) -> None:
    expr = parse(spec.text)
    limit = 150
    window_end = start.replace(second=0, microsecond=0) + timedelta(days=2)
    expected = _reference_utc(spec, start, window_end, limit)
    found = fire_times(expr, start.replace(tzinfo=UTC), UTC, len(expected) + 1)
    assert [f.replace(tzinfo=None) for f in found[: len(expected)]] == expected, spec.text
    if len(expected) < limit and len(found) > len(expected):  # nothing else inside the window
        assert found[len(expected)].replace(tzinfo=None) >= window_end, spec.text


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _reference_zone(spec: _Spec, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The DST policy worked out the slow way: every allowed wall minute, mapped to instants."""
    walls: list[datetime] = []
    minute = _wall(start, tz).replace(second=0, microsecond=0) - timedelta(hours=3)
    while minute < _wall(end, tz) + timedelta(hours=3):
        if spec.minute_matches(minute):
            walls.extend(minute.replace(second=s) for s in spec.seconds)
        minute += timedelta(minutes=1)
    # A wall time exists when it survives the round trip through UTC; fold 0 is its first occurrence.
    mapped = {w: w.replace(tzinfo=tz).astimezone(UTC) for w in walls}
    real = {w: instant for w, instant in mapped.items() if _wall(instant, tz) == w}
    instants = set(real.values())
    jumps: dict[datetime, datetime] = {}  # the instant the clock jumps -> the first skipped wall time
    for wall in (w for w in walls if w not in real):
        jump = wall.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0)
        while _wall(jump, tz) <= wall:
            jump += timedelta(minutes=1)
        jumps.setdefault(jump, wall)
    for jump, first in jumps.items():
        gap_start = _wall(jump - timedelta(minutes=1), tz) + timedelta(minutes=1)
        due = jump + (first - gap_start)  # when ``first`` would have come without the jump
        if not any(jump <= r <= due for r in instants):
            instants.add(jump)
    return sorted(i for i in instants if start < i < end)


@st.composite
def _dst_window(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and a start within a few hours of one of its transitions."""
    tz = draw(st.sampled_from([NEW_YORK, LONDON, LORD_HOWE]))
    spring, fall = _TRANSITIONS[(str(tz), draw(st.sampled_from([2025, 2026])))]
    day = draw(st.sampled_from([spring, fall]))
    base = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    return tz, base + timedelta(minutes=draw(st.integers(-60, 5 * 60)), seconds=draw(st.integers(0, 59)))


@st.composite
def _sub_daily(draw: st.DrawFn) -> _Spec:
    """Expressions that fire several times an hour in the small hours, every day."""
    secs = draw(st.sampled_from([(0,), (30,), (0, 30), (15,)]))
    min_text, mins = draw(_plain_field(0, 59))
    listed = draw(st.sets(st.integers(0, 5), min_size=1))
    hour_text, hours = draw(
        st.one_of(
            st.just(("*", frozenset(range(24)))),
            st.just((",".join(map(str, sorted(listed))), frozenset(listed))),
            _plain_field(0, 23),
        )
    )

    def minute_matches(wall: datetime) -> bool:
        return wall.minute in mins and wall.hour in hours

    return _Spec(f"{','.join(map(str, secs))} {min_text} {hour_text} * * ?", secs, minute_matches)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_sub_daily(), _dst_window())
def test_matches_a_minute_by_minute_reference_across_dst(
    spec: _Spec, window: tuple[ZoneInfo, datetime]
) -> None:
    tz, start = window
    expr = parse(spec.text)
    end = start + timedelta(hours=4)
    found: list[datetime] = []
    current = next_fire(expr, start, tz)
    while current is not None and current < end:
        found.append(current.astimezone(UTC))
        current = next_fire(expr, current, tz)
    assert found == _reference_zone(spec, tz, start, end), (spec.text, str(tz), start.isoformat())


# -------------------------------------------------------------------------------------------- properties


_ZONES = st.sampled_from([UTC, NEW_YORK, LONDON, LORD_HOWE, ZoneInfo("Asia/Kolkata")])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expression(), _ZONES, st.datetimes(datetime(1975, 1, 1), datetime(2098, 1, 1)))
def test_properties(spec: _Spec, tz: ZoneInfo, start: datetime) -> None:
    expr = parse(spec.text)
    after = start.replace(tzinfo=UTC)
    fires = fire_times(expr, after, tz, 6)
    stamps = [after.timestamp()] + [f.timestamp() for f in fires]
    assert all(a < b for a, b in pairwise(stamps))  # strictly after, increasing
    for fire in fires:
        assert fire.tzinfo is tz
        just_before = (fire.astimezone(UTC) - timedelta(seconds=1)).astimezone(tz)
        made_up = fire.utcoffset() != just_before.utcoffset()  # the first instant after a gap
        assert spec.matches(fire.replace(tzinfo=None)) or made_up, (spec.text, fire.isoformat())
    for current, following in pairwise(fires):
        again = next_fire(expr, current, tz)
        assert again is not None
        assert again.astimezone(UTC) == following.astimezone(UTC)
