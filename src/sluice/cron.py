"""Quartz cron expressions (Databricks ``schedule.quartz_cron_expression``): parse them, find fire times.

Pure: no clock reads and no I/O; time zones are :class:`zoneinfo.ZoneInfo`. ``parse`` checks an expression
the way Quartz does and raises :class:`CronError` naming the field, the bad token and the fix;
``next_fire`` jumps field by field (year, month, day, hour, minute, second), never scanning second by
second, and gives up with ``None`` after the year 2099 (the last year Quartz cron can name), which also
caps the work for expressions that can never fire, such as ``0 0 0 30 2 ?``.

Syntax: ``second minute hour day-of-month month day-of-week [year]``; ``*``, ``?``, lists ``a,b``, ranges
``a-b`` (wrapping ranges such as ``FRI-MON`` or ``22-2`` run past the end of the field and start again),
increments ``a/n``, ``*/n`` and ``a-b/n``; day-of-month ``L``, ``L-n``, ``nW``, ``LW``, ``L-nW``;
day-of-week ``1``-``7`` with 1 = Sunday, ``nL`` (last such weekday of the month), ``n#k`` (k-th such
weekday) and ``L`` alone (= 7, Saturday, as in Quartz); names JAN-DEC and SUN-SAT in any case; exactly
one of the two day fields is ``?``. Where Quartz is buggy or lenient, Sluice is stricter (it refuses
``6#3,2`` and ``15-20W``, which Quartz accepts and misreads) and finds every ``nW`` day (Quartz can miss
``15W`` moved to Monday the 16th when asked from the 16th).

Daylight-saving policy (fire times are wall-clock times in the schedule's zone; each wall-clock time fires
at most once):

* **Fall-back (a wall time occurs twice)**: it fires once, at its first occurrence (``fold=0``). The
  repeated stretch of clock time fires nothing the second time round. ``0 30 * * * ?`` in
  America/New_York on 2025-11-02 fires at 00:30 EDT, 01:30 EDT and 02:30 EST: two real hours between the
  last two. ``0 0/15 * * * ?`` fires at 01:45 EDT and then 02:00 EST, 75 real minutes later.
* **Spring-forward (a wall time does not exist)**: the clock jumps from A to B (02:00 to 03:00 in New
  York) at instant T. The expression's fire times in [A, B) are made up by ONE run at T, the first valid
  instant after the gap (the clock shows B) -- unless the expression's next real fire time comes no later
  than the first skipped time would have come had the clock not jumped (T + (first skipped - A)); then
  nothing is late and the skipped times are dropped. So expressions that name a missing time get it:
  ``0 30 2 * * ?`` fires at 03:00 EDT on 2025-03-09. Sub-daily expressions keep their real-time cadence:
  ``0 30 * * * ?`` fires at 01:30 EST and 03:30 EDT (one real hour apart, no extra 03:00 run) and
  ``0 0/15 * * * ?`` at 01:45 EST and 03:00 EDT (15 real minutes). Where the jump is 30 minutes
  (Australia/Lord_Howe, 02:00 to 02:30) ``0 0 * * * ?`` fires at 01:00, 02:30 (made up) and 03:00.

Use the zone ``UTC`` for a cadence that never bends. Databricks also starts scheduled runs at least
``MIN_SECONDS_BETWEEN_RUNS`` apart whatever the expression says; that is the scheduler's rule, not this
module's.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from calendar import monthrange
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sluice.errors import SluiceError

#: First and last year a Quartz cron expression can fire in (the year field's range).
MIN_YEAR = 1970
MAX_YEAR = 2099
#: Databricks starts schedule-triggered runs at least this many seconds apart (applied by the scheduler).
MIN_SECONDS_BETWEEN_RUNS = 10
#: Largest n in ``L-n`` (Quartz's limit).
MAX_LAST_DAY_OFFSET = 30

_SECOND = timedelta(seconds=1)
_ZERO = timedelta(0)
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1)
_FIELD_ORDER = "second minute hour day-of-month month day-of-week [year]"
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DOM_LAST = re.compile(r"L(?:-(\d+))?(W)?", re.IGNORECASE)
_DOM_WEEKDAY = re.compile(r"(\d+)W", re.IGNORECASE)


class CronError(SluiceError):
    """A Quartz cron expression (or its time zone) that Sluice cannot use; the message says how to fix it."""

    def __init__(self, detail: str, expression: str | None = None) -> None:
        self.expression = expression
        self.detail = detail
        super().__init__(
            detail if expression is None else f"invalid Quartz cron expression '{expression}': {detail}"
        )


@dataclass(frozen=True)
class DayOfMonth:
    """The day-of-month field when it names the days (day-of-week is ``?``)."""

    days: tuple[int, ...] = ()  # plain days 1-31; a day a month lacks never fires in it
    last_offsets: tuple[int, ...] = ()  # L (0) and L-n (n): n days before the month's last day
    nearest_weekdays: tuple[int, ...] = ()  # nW: the weekday nearest day n, within the month
    last_weekday_offsets: tuple[int, ...] = ()  # LW (0) and L-nW (n): the weekday nearest L-n


@dataclass(frozen=True)
class DayOfWeek:
    """The day-of-week field when it names the days (day-of-month is ``?``); 1 = Sunday ... 7 = Saturday."""

    days: tuple[int, ...]
    last: bool = False  # nL: only the last such weekday of the month (days holds one value)
    nth: int = 0  # n#k: only the k-th such weekday of the month, k = nth (days holds one value)


@dataclass(frozen=True)
class CronExpression:
    """A parsed Quartz cron expression: the sorted values each field allows."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: DayOfMonth | None
    months: tuple[int, ...]
    day_of_week: DayOfWeek | None
    years: tuple[int, ...]

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------- parsing


class _Invalid(Exception):
    """One field is wrong; ``parse`` turns it into a CronError naming the whole expression."""


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    max_step: int  # the largest n in 'a/n' (Quartz's limits)
    names: tuple[str, ...] = ()  # names[i] stands for lo + i
    note: str = ""

    @property
    def allowed(self) -> str:
        numbers = f"{self.lo}-{self.hi}{self.note}"
        return f"{numbers} or {self.names[0]}-{self.names[-1]}" if self.names else numbers


_SECONDS = _Field("second", 0, 59, 59)
_MINUTES = _Field("minute", 0, 59, 59)
_HOURS = _Field("hour", 0, 23, 23)
_DOM = _Field("day-of-month", 1, 31, 31)
_MONTHS = _Field("month", 1, 12, 12, _MONTH_NAMES)
_DOW = _Field("day-of-week", 1, 7, 7, _DAY_NAMES, " (1 = Sunday)")
_YEARS = _Field("year", MIN_YEAR, MAX_YEAR, MAX_YEAR - MIN_YEAR)


def parse(expression: str) -> CronExpression:
    """Parse a 6- or 7-field Quartz cron expression; raise CronError naming the field, token and fix."""
    parts = expression.split()
    if len(parts) not in (6, 7):
        raise CronError(_count_problem(len(parts)), expression)
    try:
        seconds = _parse_plain(_SECONDS, parts[0])
        minutes = _parse_plain(_MINUTES, parts[1])
        hours = _parse_plain(_HOURS, parts[2])
        day_of_month = _parse_day_of_month(parts[3])
        months = _parse_plain(_MONTHS, parts[4])
        day_of_week = _parse_day_of_week(parts[5])
        years = _parse_plain(_YEARS, parts[6] if len(parts) == 7 else "*")
    except _Invalid as exc:
        raise CronError(str(exc), expression) from None
    if day_of_month is not None and day_of_week is not None:
        raise CronError(
            f"day-of-month '{parts[3]}' and day-of-week '{parts[5]}' are both set: specify '?' in "
            "day-of-month or day-of-week: Quartz does not support both",
            expression,
        )
    if day_of_month is None and day_of_week is None:
        raise CronError(
            "day-of-month and day-of-week are both '?': exactly one of them is '?', the other names the "
            "days (use '*' in day-of-month for every day)",
            expression,
        )
    return CronExpression(expression, seconds, minutes, hours, day_of_month, months, day_of_week, years)


def _count_problem(count: int) -> str:
    problem = f"it has {count} field{'' if count == 1 else 's'}; Quartz cron has 6 or 7 ({_FIELD_ORDER})"
    if count == 5:
        return (
            f"{problem}: this looks like Unix cron, which has no seconds field: put the seconds first "
            "(e.g. '0 ') and '?' in day-of-month or day-of-week, e.g. '0 30 2 * * ?'"
        )
    return f"{problem}, e.g. '0 30 2 * * ?' (02:30:00 every day)"


def _parse_plain(field: _Field, text: str) -> tuple[int, ...]:
    if "?" in text:
        raise _Invalid(f"{field.name} '{text}': '?' is only allowed in day-of-month and day-of-week")
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(field, item))
    return tuple(sorted(values))


def _parse_item(field: _Field, item: str) -> list[int]:
    if not item:
        raise _Invalid(f"{field.name} has an empty list item: remove the extra ','")
    bare = item.upper()
    for name in field.names:  # JUL and WED hold letters that are special characters elsewhere
        bare = bare.replace(name, "")
    for special in ("L", "W", "#"):
        if special in bare:
            raise _Invalid(f"{field.name} '{item}': {_special_problem(field, special)}")
    base, slash, step_text = item.partition("/")
    step = _parse_step(field, item, step_text) if slash else 1
    if base in ("*", ""):  # Quartz reads '/5' as '*/5'
        start, end = field.lo, field.hi
    else:
        first, dash, last = base.partition("-")
        start = _parse_value(field, item, first)
        end = _parse_value(field, item, last) if dash else (field.hi if slash else start)
    return _expand(field, item, start, end, step)


def _special_problem(field: _Field, special: str) -> str:
    if field is _DOM and special in "LW":
        return "use 'L', 'L-3', 'LW', 'L-3W' or one day before 'W' such as '15W' (no ranges or increments)"
    if field is _DOW and special in "L#":
        return "use one day before 'L' or '#', such as '6L' (last Friday) or '6#3' (third Friday)"
    where = {"L": "day-of-month and day-of-week", "W": "day-of-month", "#": "day-of-week"}[special]
    return f"'{special}' is only allowed in {where}"


def _parse_step(field: _Field, item: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= field.max_step:
        raise _Invalid(
            f"{field.name} '{item}': the increment after '/' must be a whole number from 1 to "
            f"{field.max_step}, e.g. '0/15'"
        )
    return int(text)


def _parse_value(field: _Field, item: str, text: str) -> int:
    if text.isdigit():
        value = int(text)
        if not field.lo <= value <= field.hi:
            hint = " (0 is Sunday in Unix cron, 1 in Quartz)" if field is _DOW and value == 0 else ""
            raise _Invalid(f"{field.name} '{item}' is out of range {field.allowed}{hint}")
        return value
    if text.upper() in field.names:
        return field.lo + field.names.index(text.upper())
    if not text:
        raise _Invalid(f"{field.name} '{item}' is missing a value: use {field.allowed}")
    shown = f"'{text}' in '{item}'" if text != item else f"'{item}'"
    raise _Invalid(f"{field.name} {shown} is not a value: use {field.allowed}")


def _expand(field: _Field, item: str, start: int, end: int, step: int) -> list[int]:
    if end >= start:
        return list(range(start, end + 1, step))
    if field is _YEARS:
        raise _Invalid(f"year '{item}' runs backwards: write the earlier year first")
    span = field.hi - field.lo + 1  # a wrapping range such as FRI-MON or 22-2 continues past the end
    return [field.lo + (value - field.lo) % span for value in range(start, end + span + 1, step)]


def _parse_day_of_month(text: str) -> DayOfMonth | None:
    if text == "?":
        return None
    if "?" in text:
        raise _Invalid(f"day-of-month '{text}': '?' must stand alone")
    days: set[int] = set()
    last: set[int] = set()
    nearest: set[int] = set()
    last_weekday: set[int] = set()
    for item in text.split(","):
        if match := _DOM_LAST.fullmatch(item):
            offset = int(match[1] or 0)
            if offset > MAX_LAST_DAY_OFFSET:
                raise _Invalid(
                    f"day-of-month '{item}': the offset from the last day must be at most "
                    f"{MAX_LAST_DAY_OFFSET}, e.g. 'L-3'"
                )
            (last_weekday if match[2] else last).add(offset)
        elif match := _DOM_WEEKDAY.fullmatch(item):
            nearest.add(_parse_value(_DOM, item, match[1]))
        else:
            days.update(_parse_item(_DOM, item))
    return DayOfMonth(
        tuple(sorted(days)), tuple(sorted(last)), tuple(sorted(nearest)), tuple(sorted(last_weekday))
    )


def _parse_day_of_week(text: str) -> DayOfWeek | None:
    if text == "?":
        return None
    if "?" in text:
        raise _Invalid(f"day-of-week '{text}': '?' must stand alone")
    if text.upper() == "L":
        return DayOfWeek((7,))  # Quartz: 'L' alone in day-of-week is 7, Saturday
    items = text.split(",")
    if len(items) > 1 and any("L" in item.upper() or "#" in item for item in items):
        raise _Invalid(
            f"day-of-week '{text}': 'L' and '#' take one day and no list (Quartz cannot combine them "
            "with other days); make a second schedule for the other days"
        )
    if "#" in text:
        day_text, _, nth_text = text.partition("#")
        day = _parse_single_day(text, day_text)
        if not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise _Invalid(
                f"day-of-week '{text}': the number after '#' must be 1-5, e.g. '6#3' (third Friday)"
            )
        return DayOfWeek((day,), nth=int(nth_text))
    if text.upper().endswith("L"):
        return DayOfWeek((_parse_single_day(text, text[:-1]),), last=True)
    return DayOfWeek(_parse_plain(_DOW, text))


def _parse_single_day(item: str, text: str) -> int:
    if not text.isdigit() and text.upper() not in _DAY_NAMES:
        raise _Invalid(f"day-of-week '{item}': {_special_problem(_DOW, 'L')}")
    return _parse_value(_DOW, item, text)


def resolve_timezone(timezone_id: str) -> ZoneInfo:
    """The zone of a schedule's ``timezone_id`` (an IANA/Java region id such as ``America/Los_Angeles``)."""
    try:
        return ZoneInfo(timezone_id)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"timezone_id '{timezone_id}' is not a known time zone: use a zone id such as 'UTC' or "
            "'America/Los_Angeles'",
        ) from None


# ------------------------------------------------------------------------------------- wall-clock search


def next_fire(expr: CronExpression, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first fire time strictly after the aware ``after``, in ``tz``; None when none is left (>2099).

    Fields are matched against wall-clock time in ``tz``; see the module docstring for the DST policy.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"next_fire needs an aware datetime, got naive {after.isoformat()}")
    after_ts = after.timestamp()
    local = after.astimezone(tz)
    if local.year > MAX_YEAR:
        return None
    start = local.replace(tzinfo=None, microsecond=0) + _SECOND
    if local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset():
        start = max(start, _overlap_end(local, tz))  # earlier wall times already fired (first occurrence)
    wall = _next_match(expr, start)
    while wall is not None:
        before, later = _offsets(wall, tz)
        if before < later:  # the wall time falls in a spring-forward gap
            return _gap_fire(expr, wall, tz)
        ts = _epoch(wall, before)
        if ts > after_ts:
            return datetime.fromtimestamp(ts, tz)
        wall = _next_match(expr, wall + _SECOND)
    return None


def fire_times(expr: CronExpression, after: datetime, tz: ZoneInfo, n: int) -> list[datetime]:
    """The next ``n`` fire times strictly after ``after`` (fewer when the years run out)."""
    if n < 0:
        raise ValueError(f"fire_times needs n >= 0, got {n}")
    found: list[datetime] = []
    current: datetime | None = after
    while len(found) < n and current is not None:
        current = next_fire(expr, current, tz)
        if current is not None:
            found.append(current)
    return found


def _offsets(wall: datetime, tz: ZoneInfo) -> tuple[timedelta, timedelta]:
    """UTC offsets of a naive wall time at fold 0 and 1: equal normally, 0 < 1 in a gap, 0 > 1 in a fold."""
    # ZoneInfo always has an offset; ``or _ZERO`` only narrows the type (a zero offset stays zero).
    return tz.utcoffset(wall) or _ZERO, tz.utcoffset(wall.replace(fold=1)) or _ZERO


def _epoch(wall: datetime, offset: timedelta) -> int:
    return (wall - offset - _EPOCH) // _SECOND


def _offset_at(ts: int, tz: ZoneInfo) -> timedelta:
    return datetime.fromtimestamp(ts, tz).utcoffset() or _ZERO


def _transition(lo: int, hi: int, tz: ZoneInfo) -> int:
    """The first second in (lo, hi] whose UTC offset is the one at hi (one transition lies in between)."""
    target = _offset_at(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(mid, tz) == target:
            hi = mid
        else:
            lo = mid
    return hi


def _overlap_end(local: datetime, tz: ZoneInfo) -> datetime:
    """Naive wall time at which the repeated stretch holding ``local`` (its second pass) ends."""
    wall = local.replace(tzinfo=None, microsecond=0)
    before, _ = _offsets(wall, tz)
    change = _transition(_epoch(wall, before), int(local.timestamp()), tz)
    return _EPOCH + timedelta(seconds=change) + before


def _gap_fire(expr: CronExpression, first: datetime, tz: ZoneInfo) -> datetime:
    """Fire for the skipped wall times from ``first`` (the first in its gap) on: at the jump, or dropped."""
    before, later = _offsets(first, tz)
    jump = _transition(_epoch(first, later), _epoch(first, before), tz)
    gap_start = _EPOCH + timedelta(seconds=jump) + before
    gap_end = _EPOCH + timedelta(seconds=jump) + later
    due = jump + (first - gap_start) // _SECOND  # when ``first`` would have come without the jump
    real = _next_match(expr, gap_end)
    if real is not None:
        real_before, real_later = _offsets(real, tz)
        if real_before >= real_later and _epoch(real, real_before) <= due:
            return datetime.fromtimestamp(_epoch(real, real_before), tz)  # nothing late: drop the skipped
    return datetime.fromtimestamp(jump, tz)


def _next_match(expr: CronExpression, start: datetime) -> datetime | None:
    """The first naive wall time >= ``start`` (whole seconds) that the fields allow, or None after 2099."""
    year, month, day = start.year, start.month, start.day
    clock = (start.hour, start.minute, start.second)
    while True:  # at most twice: a day found from (0, 0, 0) always has a time
        found = _next_day(expr, year, month, day)
        if found is None:
            return None
        if found != (year, month, day):
            clock = (0, 0, 0)
        hms = _next_clock(expr, clock)
        if hms is not None:
            return datetime(*found, *hms)
        following = datetime(*found) + _DAY
        year, month, day = following.year, following.month, following.day
        clock = (0, 0, 0)


def _next_clock(expr: CronExpression, clock: tuple[int, int, int]) -> tuple[int, int, int] | None:
    hour, minute, second = clock
    for h in expr.hours[bisect_left(expr.hours, hour) :]:
        first_minute = minute if h == hour else 0
        for m in expr.minutes[bisect_left(expr.minutes, first_minute) :]:
            first_second = second if (h, m) == (hour, minute) else 0
            index = bisect_left(expr.seconds, first_second)
            if index < len(expr.seconds):
                return h, m, expr.seconds[index]
    return None


def _next_day(expr: CronExpression, year: int, month: int, day: int) -> tuple[int, int, int] | None:
    """The first allowed date >= the given one; at most 130 years x 12 months of day sets are looked at."""
    rule: DayOfMonth | DayOfWeek | None = expr.day_of_month or expr.day_of_week
    assert rule is not None  # parse guarantees exactly one day field
    for y in expr.years[bisect_left(expr.years, year) :]:
        first_month, first_day = (month, day) if y == year else (1, 1)
        for m in expr.months[bisect_left(expr.months, first_month) :]:
            days = _month_days(rule, y, m)
            index = bisect_left(days, first_day if m == first_month else 1)
            if index < len(days):
                return y, m, days[index]
    return None


@lru_cache(maxsize=4096)
def _month_days(rule: DayOfMonth | DayOfWeek, year: int, month: int) -> tuple[int, ...]:
    """The days of one month that a day-of-month or day-of-week rule allows, sorted."""
    first_weekday, last = monthrange(year, month)  # Monday = 0
    if isinstance(rule, DayOfWeek):
        return _weekday_days(rule, (first_weekday + 1) % 7 + 1, last)
    days = {d for d in rule.days if d <= last}
    days.update(last - n for n in rule.last_offsets if last - n >= 1)
    targets = [d for d in rule.nearest_weekdays if d <= last]
    targets += [last - n for n in rule.last_weekday_offsets if last - n >= 1]
    days.update(_nearest_weekday(d, (first_weekday + d - 1) % 7, last) for d in targets)
    return tuple(sorted(days))


def _nearest_weekday(day: int, weekday: int, last: int) -> int:
    """Quartz ``W``: the Monday-Friday day nearest ``day`` without leaving the month (weekday: Monday = 0)."""
    if weekday == 5:  # Saturday: Friday before, or Monday the 3rd for the 1st
        return day + 2 if day == 1 else day - 1
    if weekday == 6:  # Sunday: Monday after, or Friday before for the month's last day
        return day - 2 if day == last else day + 1
    return day


def _weekday_days(rule: DayOfWeek, first: int, last: int) -> tuple[int, ...]:
    """Days allowed by a day-of-week rule in a month whose 1st is Quartz weekday ``first`` (1 = Sunday)."""
    if rule.last or rule.nth:
        first_such = 1 + (rule.days[0] - first) % 7
        if rule.last:
            return (first_such + 7 * ((last - first_such) // 7),)
        day = first_such + 7 * (rule.nth - 1)
        return (day,) if day <= last else ()
    return tuple(d for d in range(1, last + 1) if (first + d - 2) % 7 + 1 in rule.days)
