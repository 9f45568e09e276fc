"""The fast ``strptime`` gives strptime's answer, and its error, for every text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pane.connectors.timeformat import _compiled, parse_time

FORMATS = [
    "%d/%m/%Y %H:%M",
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%m/%d/%y %H:%M:%S",
    "%d.%m.%Y",
    "%Y%m%d%H%M%S",
    "%H:%M %d-%m-%Y",
    "%Y-%m-%d %H:%M:%S%z",
    "%d %b %Y",  # a month name: not compiled, strptime itself answers
]


def _outcome(text: str, fmt: str) -> tuple[str, object]:
    try:
        moment = datetime.strptime(text, fmt)
        return "value", (moment, moment.utcoffset())
    except ValueError as exc:
        return "error", str(exc)


def _ours(text: str, fmt: str) -> tuple[str, object]:
    try:
        moment = parse_time(text, fmt)
        return "value", (moment, moment.utcoffset())
    except ValueError as exc:
        return "error", str(exc)


moments = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.none()
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(moment=moments, offset=offsets, fmt=st.sampled_from(FORMATS))
def test_what_strftime_writes_is_read_back_as_strptime_reads_it(
    moment: datetime, offset: timedelta, fmt: str
) -> None:
    text = moment.replace(tzinfo=timezone(offset)).strftime(fmt)
    assert _ours(text, fmt) == _outcome(text, fmt)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet="0123456789/:-.+ TZz", max_size=26),
    fmt=st.sampled_from(FORMATS),
)
def test_any_text_gets_strptimes_answer_or_its_error(text: str, fmt: str) -> None:
    assert _ours(text, fmt) == _outcome(text, fmt)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("31/02/2026 10:00", "%d/%m/%Y %H:%M"),  # no 31 February
        ("05/01/2026 20:47 ", "%d/%m/%Y %H:%M"),  # unconverted data
        ("05/01/2026   20:47", "%d/%m/%Y %H:%M"),  # any run of blanks matches one
        ("2026-01-05T20:47:00.5Z", "%Y-%m-%dT%H:%M:%S.%f%z"),
        ("2026-01-05T20:47:00.5z", "%Y-%m-%dT%H:%M:%S.%f%z"),  # lower-case z is no zone
        ("2026-01-05T20:47:00.5+01:30:15", "%Y-%m-%dT%H:%M:%S.%f%z"),  # seconds: strptime's
        ("68", "%y"),
        ("69", "%y"),
        ("100%", "%Y%%"),
        ("2026", "%Y%"),  # a lone % is strptime's error
    ],
)
def test_edges_match_strptime(text: str, fmt: str) -> None:
    assert _ours(text, fmt) == _outcome(text, fmt)


def test_numeric_formats_take_the_fast_path_and_names_do_not() -> None:
    assert _compiled("%d/%m/%Y %H:%M") is not None
    assert _compiled("%d %b %Y") is None
    assert _compiled("%Y %Y") is None  # strptime refuses a repeated directive itself


def test_an_offset_becomes_the_zone() -> None:
    moment = parse_time("2026-03-01 10:00:00-0230", "%Y-%m-%d %H:%M:%S%z")
    assert moment.astimezone(UTC) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
