from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.events.timefmt import InvalidTime, normalize_time


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2017-06-26T18:41:00.9584103Z", "2017-06-26T18:41:00.958410300Z"),  # Event Grid's 7 digits
        ("2017-06-26T18:41:00Z", "2017-06-26T18:41:00.000000000Z"),  # no fraction
        ("2017-06-26T18:41:00.958Z", "2017-06-26T18:41:00.958000000Z"),
        ("2017-06-26T18:41:00.123456789Z", "2017-06-26T18:41:00.123456789Z"),
        ("2017-06-26T18:41:00.1234567891Z", "2017-06-26T18:41:00.123456789Z"),  # past nanoseconds: dropped
        ("2017-06-26T18:41:00.9584103+00:00", "2017-06-26T18:41:00.958410300Z"),
        ("2017-06-26T20:41:00.5+02:00", "2017-06-26T18:41:00.500000000Z"),
        ("2017-06-26T13:11:00-0530", "2017-06-26T18:41:00.000000000Z"),
        ("2017-06-26T23:30:00-01:00", "2017-06-27T00:30:00.000000000Z"),  # crosses midnight
        ("2017-01-01T00:30:00+01:00", "2016-12-31T23:30:00.000000000Z"),  # crosses the year
        ("2017-06-26 18:41:00z", "2017-06-26T18:41:00.000000000Z"),
        ("2017-06-26T18:41:00", "2017-06-26T18:41:00.000000000Z"),  # no offset: UTC
    ],
)
def test_normalises_every_iso_form_to_utc_at_full_precision(text, expected):
    assert normalize_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2017-02-30T00:00:00Z",
        "2017-06-26T24:00:00Z",
        "2017-06-26T18:41Z",
        "2017-06-26T18:41:00+25:00",
        "20170626T184100Z",
        None,
        17,
    ],
)
def test_rejects_what_is_not_a_date_time(text):
    with pytest.raises(InvalidTime):
        normalize_time(text)


def test_seven_digit_times_that_differ_only_in_the_seventh_digit_stay_distinct():
    assert normalize_time("2017-06-26T18:41:00.9584103Z") < normalize_time("2017-06-26T18:41:00.9584104Z")


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)),
    st.integers(-23 * 60, 23 * 60),
)
def test_string_order_is_instant_order_whatever_the_offset(a, b, offset_minutes):
    tz = timezone(timedelta(minutes=offset_minutes))
    a_text = a.astimezone(tz).isoformat()
    b_text = b.isoformat().replace("+00:00", "Z")
    assert (normalize_time(a_text) < normalize_time(b_text)) == (a < b)
    assert (normalize_time(a_text) == normalize_time(b_text)) == (a == b)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60.000000000Z"),
        ("2016-12-31T23:59:60.5Z", "2016-12-31T23:59:60.500000000Z"),
        ("2016-12-31T23:59:60+00:00", "2016-12-31T23:59:60.000000000Z"),
        ("2016-12-31T15:59:60-08:00", "2016-12-31T23:59:60.000000000Z"),
    ],
)
def test_a_leap_second_is_accepted_as_rfc_3339_allows(text, expected):
    assert normalize_time(text) == expected


def test_a_leap_second_orders_after_the_59th_second_and_before_the_next_minute():
    ordered = ["2016-12-31T23:59:59.9999999Z", "2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5Z", "2017-01-01T00:00:00Z"]
    keys = [normalize_time(t) for t in ordered]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00.0000000Z".translate(ARABIC_INDIC),  # every digit
        "2026-01-01T00:00:0" + "٥" + ".0000000Z",  # one digit of the seconds
        "２０２６-01-01T00:00:00Z",  # full-width digits in the year
        "2026-01-01T00:00:00.00000٠٠Z",  # in the fraction
        "2026-01-01T00:00:00+0٥:00",  # in the offset
    ],
)
def test_only_ascii_digits_make_a_time(text):
    with pytest.raises(InvalidTime):
        normalize_time(text)


def test_a_time_with_foreign_digits_is_refused_even_after_its_date_was_seen_in_ascii():
    normalize_time("2026-01-01T00:00:00.0000000Z")  # warms the fast path's cache of dates
    with pytest.raises(InvalidTime):
        normalize_time("2026-01-01T00:00:0٥.0000000Z")
