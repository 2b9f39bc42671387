"""Deadline arithmetic: calendar and working days with public holidays, months, clock stops; checked against a calendar by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from derisk.screen.deadlines import DeadlineSpec, add_days, add_months, add_months_stopped, compute

MON = date(2025, 3, 3)  # a Monday


@pytest.mark.parametrize(
    ("start", "days", "kind", "stops", "ends", "suspended"),
    [
        (MON, 30, "calendar", [], date(2025, 4, 2), 0),
        (date(2025, 3, 10), 30, "calendar", [], date(2025, 4, 9), 0),
        # a week-long request: requested Mon 24 March, answered Mon 31 March -> 7 days stopped
        (date(2025, 3, 10), 30, "calendar", [(date(2025, 3, 24), date(2025, 3, 31))], date(2025, 4, 16), 7),
        # two requests add up
        (
            date(2025, 3, 10),
            30,
            "calendar",
            [(date(2025, 3, 12), date(2025, 3, 14)), (date(2025, 3, 20), date(2025, 3, 21))],
            date(2025, 4, 12),
            3,
        ),
        # a request answered the same day stops nothing
        (date(2025, 3, 10), 30, "calendar", [(date(2025, 3, 12), date(2025, 3, 12))], date(2025, 4, 9), 0),
        # a request after the period ended changes nothing
        (date(2025, 3, 10), 30, "calendar", [(date(2025, 5, 1), date(2025, 5, 9))], date(2025, 4, 9), 0),
        # business days: Monday + 5 business days = next Monday
        (MON, 5, "business", [], date(2025, 3, 10), 0),
        # Friday + 1 business day = Monday
        (date(2025, 3, 7), 1, "business", [], date(2025, 3, 10), 0),
        # Saturday start: first business day is Monday
        (date(2025, 3, 8), 1, "business", [], date(2025, 3, 10), 0),
        # 30 business days from Monday 3 March 2025, no country given (weekends only): Monday 14 April
        (MON, 30, "business", [], date(2025, 4, 14), 0),
        # business days with a stop over a weekend: Tue 4, Wed 5, Thu 6 count; Fri 7..Tue 11 stopped (5 days);
        # Wed 12 and Thu 13 count
        (MON, 5, "business", [(date(2025, 3, 6), date(2025, 3, 11))], date(2025, 3, 13), 5),
        # across a leap day
        (date(2024, 2, 1), 30, "calendar", [], date(2024, 3, 2), 0),
    ],
)
def test_add_days(
    start: date, days: int, kind: str, stops: list[tuple[date, date]], ends: date, suspended: int
) -> None:
    assert add_days(start, days, kind, stops) == (ends, suspended)  # type: ignore[arg-type]


def test_open_request_leaves_the_end_unknown() -> None:
    end, suspended = add_days(date(2025, 3, 10), 30, "calendar", [(date(2025, 3, 20), None)])
    assert end is None and suspended == 0


@pytest.mark.parametrize(
    ("start", "months", "ends"),
    [
        (date(2025, 3, 10), 2, date(2025, 5, 10)),
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 11, 15), 4, date(2026, 3, 15)),
        (date(2025, 6, 30), 24, date(2027, 6, 30)),
    ],
)
def test_add_months(start: date, months: int, ends: date) -> None:
    assert add_months(start, months) == ends


def test_months_with_a_stop_extend_by_the_stopped_days() -> None:
    end, suspended = add_months_stopped(date(2025, 3, 10), 2, [(date(2025, 4, 1), date(2025, 4, 11))])
    assert (end, suspended) == (date(2025, 5, 20), 10)


def test_phases_chain_and_stops_apply_to_the_phase_they_fall_in() -> None:
    specs = [
        DeadlineSpec("verification", "Verification", "calendar", "notification", "s", "S", days=30),
        DeadlineSpec("screening", "Screening", "calendar", "after:verification", "s", "S", days=28),
        DeadlineSpec("window", "Ex officio", "calendar", "closing", "s", "V", years=2, stops=False),
    ]
    out = compute(
        specs,
        {"notification": date(2025, 3, 10), "closing": date(2025, 6, 30)},
        [(date(2025, 4, 20), date(2025, 4, 25))],
    )
    assert [(c.start, c.ends, c.suspended_days) for c in out] == [
        (date(2025, 3, 10), date(2025, 4, 9), 0),
        (date(2025, 4, 9), date(2025, 5, 12), 5),
        (date(2025, 6, 30), date(2027, 6, 30), 0),
    ]


def test_unknown_anchor_gives_no_end() -> None:
    spec = DeadlineSpec("eu", "EU", "calendar", "member-state-notification", "s", "U", days=35)
    (c,) = compute([spec], {"member-state-notification": None})
    assert c.start is None and c.ends is None


@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(1, 120))
def test_calendar_days_match_timedelta(start: date, days: int) -> None:
    assert add_days(start, days, "calendar") == (start + timedelta(days=days), 0)


@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(1, 90))
def test_business_days_end_on_a_weekday_and_count_exactly(start: date, days: int) -> None:
    end, _ = add_days(start, days, "business")
    assert end is not None and end.weekday() < 5
    counted = sum(1 for i in range(1, (end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5)
    assert counted == days


@given(
    st.dates(date(2024, 1, 1), date(2026, 12, 31)),
    st.integers(1, 60),
    st.integers(0, 40),
    st.integers(0, 20),
)
def test_a_stop_inside_the_period_extends_calendar_days_by_its_length(
    start: date, days: int, offset: int, length: int
) -> None:
    requested = start + timedelta(days=offset)
    end, suspended = add_days(start, days, "calendar", [(requested, requested + timedelta(days=length))])
    plain = start + timedelta(days=days)
    if requested >= plain:
        assert (end, suspended) == (plain, 0)
    else:
        assert (end, suspended) == (plain + timedelta(days=length), length)


# --- public holidays per member state (the holidays package, pinned) ---


@pytest.mark.parametrize(
    ("country", "day", "name"),
    [
        ("FR", date(2025, 7, 14), "National Day"),
        ("BE", date(2026, 7, 21), "National Day"),
        ("DE", date(2025, 10, 3), "German Unity Day"),
        ("NL", date(2026, 4, 27), "King's Day"),
        ("NL", date(2025, 4, 26), "King's Day"),  # 27 April 2025 is a Sunday: King's Day moves to the 26th
    ],
)
def test_national_days_are_holidays(country: str, day: date, name: str) -> None:
    from derisk.screen.deadlines import holiday

    assert holiday(day, country) == name


def test_germany_counts_nationwide_holidays_only() -> None:
    from derisk.screen.deadlines import holiday

    # Corpus Christi is a holiday in some Länder only; no Land is assumed, so it is a working day
    assert holiday(date(2025, 6, 19), "DE") is None
    assert holiday(date(2025, 6, 19), None) is None


def test_working_days_skip_14_july_in_france() -> None:
    # Mon 7 July 2025 + 10 working days: 8-11 (4), 14 July off, 15-18 (8), 21 (9), 22 (10)
    assert add_days(date(2025, 7, 7), 10, "business", (), "FR") == (date(2025, 7, 22), 0)
    assert add_days(date(2025, 7, 7), 10, "business") == (date(2025, 7, 21), 0)  # no country: weekends only


def test_working_days_skip_easter_monday_and_ascension_in_belgium() -> None:
    # Thu 17 April 2025 + 5 working days: Fri 18 (1), Mon 21 Easter Monday off, 22-25 (5)
    assert add_days(date(2025, 4, 17), 5, "business", (), "BE") == (date(2025, 4, 25), 0)


def test_a_calendar_period_ending_on_a_holiday_names_the_next_working_day() -> None:
    spec = DeadlineSpec("p", "Phase", "calendar", "notification", "s", "U", days=30)
    (c,) = compute([spec], {"notification": date(2026, 6, 21)}, (), "BE")
    assert (c.ends, c.non_working, c.next_working) == (date(2026, 7, 21), "National Day", date(2026, 7, 22))
    (w,) = compute([spec], {"notification": date(2025, 3, 10)}, (), "BE")
    assert (w.ends, w.non_working, w.next_working) == (date(2025, 4, 9), None, None)


def test_a_weekend_end_rolls_past_a_following_holiday() -> None:
    from derisk.screen.deadlines import next_working_day, non_working

    # Sat 12 July 2025 -> Sun 13 -> Mon 14 July (French National Day) -> Tue 15 July
    assert non_working(date(2025, 7, 12), "FR") == "Saturday"
    assert next_working_day(date(2025, 7, 12), "FR") == date(2025, 7, 15)
    assert next_working_day(date(2025, 7, 12), "BE") == date(2025, 7, 14)
