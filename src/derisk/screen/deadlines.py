"""Deadline arithmetic: calendar and business days, months and years, with clock stops.

Conventions (derisk's, stated in every memo, not taken from any regime's text):

* a period of N days starting on day S ends on the N-th counted day after S (S itself is not counted);
* business days are Monday to Friday; **public holidays are not modelled** (no cited holiday list), so
  a business-day deadline may in fact end later than shown;
* a period in months ends on the same day of the month (the last day of a shorter month);
* the clock stops for an information request: the days after ``requested`` up to and including
  ``answered`` do not count; a request not yet answered leaves the end unknown (``None``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

Kind = Literal["calendar", "business"]
Stop = tuple[date, date | None]
MAX_DAYS: Final = 3 * 366


@dataclass(frozen=True)
class DeadlineSpec:
    """One phase or window of a regime, as cited in its regime file."""

    id: str
    phase: str
    kind: Kind
    start: str  # "notification" | "closing" | "after:<phase id>"
    source: str
    confidence: str
    days: int | None = None
    months: int | None = None
    years: int | None = None
    conditional: str | None = None
    note: str | None = None
    stops: bool = True


@dataclass(frozen=True)
class Computed:
    spec: DeadlineSpec
    start: date | None
    ends: date | None
    suspended_days: int
    open_request: bool


def _stopped(day: date, stops: Sequence[Stop]) -> bool | None:
    for requested, answered in stops:
        if day > requested and (answered is None or day <= answered):
            return True if answered is not None else None
    return False


def add_days(start: date, days: int, kind: Kind, stops: Sequence[Stop] = ()) -> tuple[date | None, int]:
    """The day ``days`` counted days after ``start``, and how many days the clock stood still."""
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
        if kind == "business" and day.weekday() >= 5:
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
    specs: Sequence[DeadlineSpec], anchors: dict[str, date | None], stops: Sequence[Stop] = ()
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
                end, suspended = add_days(start, spec.days, spec.kind, use)
            elif spec.months is not None:
                end, suspended = add_months_stopped(start, spec.months, use)
            elif spec.years is not None:
                end = add_months(start, 12 * spec.years)
            open_request = end is None
        ends[spec.id] = end
        out.append(Computed(spec, start, end, suspended, open_request))
    return out
