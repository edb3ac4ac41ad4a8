"""What one MQTT message means: the device serial its topic names, and its readings validated exactly as
`POST /api/v1/measurements` validates them (dashboard/readings.py). Pure: no broker, no database.

Topic `{MQTT_TOPIC_PREFIX}/devices/{serial}/measurements`; payload the API's body
`{"measurements": [...]}` or one reading object. The topic names the device, so `device_id` may be left
out; a `device_id` that names another device is refused (a gateway's ACL grants topics, not payloads).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dashboard.errors import BatchTooLarge, ValidationFailed
from dashboard.readings import Bounds, Reading, validate_reading
from dashboard.untrusted import UnsafeJSON, loads, text_problem

MEASUREMENTS = "measurements"
ERRORS = "errors"
BYTES_PER_READING = 800  # the API's MAX_CONTENT_LENGTH rule (dashboard/server.py)


def measurements_filter(prefix: str) -> str:
    """The subscription: every device's measurements topic."""
    return f"{prefix}/devices/+/{MEASUREMENTS}"


def errors_topic(prefix: str, serial: str) -> str:
    return f"{prefix}/devices/{serial}/{ERRORS}"


def max_payload_bytes(max_batch_readings: int) -> int:
    return max(8 * 1024 * 1024, max_batch_readings * BYTES_PER_READING)


def serial_of(topic: str, prefix: str) -> str | None:
    """The serial of `{prefix}/devices/{serial}/measurements`, or None for any other topic."""
    head, tail = f"{prefix}/devices/", f"/{MEASUREMENTS}"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    serial = topic[len(head) : len(topic) - len(tail)]
    return serial if serial and "/" not in serial else None


def _items(body: Any, max_batch: int) -> list:
    if isinstance(body, dict) and MEASUREMENTS in body:
        items = body[MEASUREMENTS]
        if not isinstance(items, list) or not items:
            raise ValidationFailed(
                details=[{"field": MEASUREMENTS, "message": "must be a non-empty list of readings"}]
            )
        if len(items) > max_batch:
            raise BatchTooLarge(
                f"{len(items)} readings in one message; the limit is {max_batch} (MAX_BATCH_READINGS). "
                "Split them over several messages."
            )
        return items
    if isinstance(body, dict):
        return [body]
    raise ValidationFailed(
        details=[{"field": "body", "message": 'send a JSON object: {"measurements": [...]} or one reading'}]
    )


def parse_message(
    serial: str,
    payload: bytes,
    now_utc: datetime,
    bounds: Bounds,
    max_batch: int,
    not_before: datetime | None = None,
) -> list[Reading]:
    """The message's readings, or a DomainError (ValidationFailed / BatchTooLarge) whose `body()` is
    what the API would answer for the same body."""
    problem = text_problem(serial)
    if problem or len(serial) > 120:
        message = problem or "must be at most 120 characters"
        raise ValidationFailed(details=[{"field": "topic", "message": f"the device serial {message}"}])
    limit = max_payload_bytes(max_batch)
    if len(payload) > limit:
        raise BatchTooLarge(f"the message is {len(payload)} bytes; the limit is {limit}. Split it.")
    try:
        body = loads(payload)
    except UnsafeJSON as exc:
        raise ValidationFailed(details=[{"field": "body", "message": str(exc)}]) from None
    problems: list[dict] = []
    readings = []
    for index, item in enumerate(_items(body, max_batch)):
        if isinstance(item, dict):
            named = item.get("device_id")
            if named is not None and named != serial:
                problems.append({"index": index, "field": "device_id", "message":
                                 f"names {str(named)[:120]!r} but the topic names {serial!r}: leave device_id "
                                 "out (the topic names the device) or publish on that device's topic"})  # fmt: skip
                continue
            item = {**item, "device_id": serial}
        reading = validate_reading(index, item, now_utc, problems, bounds, not_before)
        if reading is not None:
            readings.append(reading)
    if problems:
        raise ValidationFailed(details=problems[:200])
    return readings
