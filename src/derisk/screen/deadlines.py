"""Deadline arithmetic: calendar and working days, months and years, public holidays, clock stops.

Conventions (derisk's, stated in every memo, not taken from any regime's text):

* a period of N days starting on day S ends on the N-th counted day after S (S itself is not counted);
* working days are Monday to Friday minus the member state's public holidays, taken from the
  ``holidays`` package (pinned in ``requirements.lock``): Belgium, France and the Netherlands as a
  whole; Germany with its nationwide holidays only (no federal state is assumed, so a Land holiday such
  as Corpus Christi is a working day here);
* a period in months ends on the same day of the month (the last day of a shorter month);
* a calendar period that ends on a weekend or public holiday is shown with that fact and the next working
  day; whether the period rolls to it is the regime's own rule (with its confidence tag), not derisk's;
* the clock stops for an information request: the days after ``requested`` up to and including
  ``answered`` do not count; a request not yet answered leaves the end unknown (``None``).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Final, Literal

Kind = Literal["calendar", "business"]
Stop = tuple[date, date | None]
MAX_DAYS: Final = 3 * 366
#: Member states whose holidays derisk counts, and the subdivision assumed (None: the whole country).
HOLIDAY_COUNTRIES: Final[Mapping[str, str | None]] = {"BE": None, "DE": None, "FR": None, "NL": None}


@dataclass(frozen=True)
class DeadlineSpec:
    """One phase or window of a regime, as cited in its regime file."""

    id: str
    phase: str
    kind: Kind
    start: str  # "notification" | "closing" | "complete-documents" | "after:<phase id>"
    source: str
    confidence: str
    days: int | None = None
    months: int | None = None
    years: int | None = None
    conditional: str | None = None
    note: str | None = None
    stops: bool = True
    when_rules: tuple[str, ...] = ()  # shown only when one of these rules decided
    unless_rules: tuple[str, ...] = ()  # hidden when one of these rules decided


@dataclass(frozen=True)
class Computed:
    spec: DeadlineSpec
    start: date | None
    ends: date | None
    suspended_days: int
    open_request: bool
    non_working: str | None = None  # why the end day is not a working day ("Saturday", "National Day")
    next_working: date | None = None


@cache
def _calendar(country: str | None, year: int) -> dict[date, str]:
    if country is None or country not in HOLIDAY_COUNTRIES:
        return {}
    import holidays  # lazy: the CLI must stay instant

    found = holidays.country_holidays(
        country, subdiv=HOLIDAY_COUNTRIES[country], years=year, language="en_US"
    )
    return {d: str(name) for d, name in found.items()}


def holiday(day: date, country: str | None) -> str | None:
    """The public holiday's name if ``day`` is one in ``country`` (ISO alpha-2), else None."""
    return _calendar(country, day.year).get(day)


def non_working(day: date, country: str | None) -> str | None:
    """Why ``day`` is not a working day ("Saturday", "Sunday" or the holiday's name), or None."""
    if day.weekday() >= 5:
        return day.strftime("%A")
    return holiday(day, country)


def next_working_day(day: date, country: str | None) -> date:
    while non_working(day, country):
        day += timedelta(days=1)
    return day


def _stopped(day: date, stops: Sequence[Stop]) -> bool | None:
    for requested, answered in stops:
        if day > requested and (answered is None or day <= answered):
            return True if answered is not None else None
    return False


def add_days(
    start: date, days: int, kind: Kind, stops: Sequence[Stop] = (), country: str | None = None
) -> tuple[date | None, int]:
    """The day ``days`` counted days after ``start``, and how many days the clock stood still.

    Working days (``kind="business"``) skip weekends and ``country``'s public holidays.
    """
    counted, suspended, day = 0, 0, start
    for _ in range(MAX_DAYS * 2):
        if counted >= days:
            return day, suspended
        day += timedelta(days=1)
        stop = _stopped(day, stops)
        if stop is None:
            return None, suspended
        if stop:
            suspended += 1
            continue
        if kind == "business" and non_working(day, country):
            continue
        counted += 1
    return None, suspended  # pragma: no cover - bounded by MAX_DAYS


def add_months(start: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def add_months_stopped(start: date, months: int, stops: Sequence[Stop] = ()) -> tuple[date | None, int]:
    """``months`` of running clock after ``start``: each stopped day inside the window extends it."""
    end = add_months(start, months)
    for _ in range(64):
        suspended = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            stop = _stopped(day, stops)
            if stop is None:
                return None, suspended
            suspended += int(stop)
        new_end = add_months(start, months) + timedelta(days=suspended)
        if new_end == end:
            return end, suspended
        end = new_end
    return end, suspended  # pragma: no cover - converges: stops are finite


def compute(
    specs: Sequence[DeadlineSpec],
    anchors: Mapping[str, date | None],
    stops: Sequence[Stop] = (),
    country: str | None = None,
) -> list[Computed]:
    """Compute each phase in order; ``anchors`` gives the dates a phase can start from."""
    out: list[Computed] = []
    ends: dict[str, date | None] = {}
    for spec in specs:
        start = ends.get(spec.start[6:]) if spec.start.startswith("after:") else anchors.get(spec.start)
        end: date | None = None
        suspended = 0
        use = stops if spec.stops else ()
        open_request = False
        if start is not None:
            if spec.days is not None:
                end, suspended = add_days(start, spec.days, spec.kind, use, country)
            elif spec.months is not None:
                end, suspended = add_months_stopped(start, spec.months, use)
            elif spec.years is not None:
                end = add_months(start, 12 * spec.years)
            open_request = end is None
        ends[spec.id] = end
        why = non_working(end, country) if end is not None and spec.kind == "calendar" else None
        out.append(
            Computed(
                spec,
                start,
                end,
                suspended,
                open_request,
                why,
                next_working_day(end, country) if end is not None and why else None,
            )
        )
    return out
