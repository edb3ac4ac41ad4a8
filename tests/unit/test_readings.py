"""The readings contract, shared by the API and the CSV importer."""

from datetime import datetime, timedelta

import pytest

from dashboard.errors import BatchTooLarge, ValidationFailed
from dashboard.readings import parse_timestamp, validate_batch

NOW = datetime(2026, 6, 1, 12, 0)


def test_offsets_are_converted_to_naive_utc():
    assert parse_timestamp("2026-06-01T14:00:00+02:00") == datetime(2026, 6, 1, 12, 0)
    assert parse_timestamp("2026-06-01T12:00:00Z") == datetime(2026, 6, 1, 12, 0)


@pytest.mark.parametrize("value", ["2026-06-01T12:00:00", "2026-06-01", 1717243200, "noon"])
def test_naive_or_non_iso_timestamps_are_refused(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)


def test_every_problem_is_reported_with_index_and_field():
    items = [
        {"device_id": "a", "timestamp": "2026-06-01T11:00:00Z", "power_w": True},
        {"device_id": "a", "timestamp": "2026-06-01T11:00:00Z", "power_w": 1, "power_factor": -1.5},
        "not an object",
    ]
    with pytest.raises(ValidationFailed) as err:
        validate_batch(items, 100, now_utc=NOW)
    got = {(d["index"], d["field"]) for d in err.value.details}
    assert got == {(0, "power_w"), (1, "power_factor"), (2, "")}


def test_five_minutes_of_clock_skew_is_tolerated_but_not_more():
    ok = {"device_id": "a", "timestamp": (NOW + timedelta(minutes=4)).isoformat() + "Z", "power_w": 1}
    assert validate_batch([ok], 10, now_utc=NOW)[0].ts == NOW + timedelta(minutes=4)
    late = ok | {"timestamp": (NOW + timedelta(minutes=6)).isoformat() + "Z"}
    with pytest.raises(ValidationFailed):
        validate_batch([late], 10, now_utc=NOW)


def test_empty_and_oversized_batches():
    with pytest.raises(ValidationFailed):
        validate_batch([], 10)
    with pytest.raises(BatchTooLarge):
        validate_batch([{}] * 11, 10)
