"""The metadata resources described as data (defined in dashboard/metadata.py, served by the API and the
Admin page): each field's JSON type, bounds and conversion, and the validation of a create or patch body
against them (all problems reported at once, nothing applied)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.errors import ValidationFailed
from dashboard.scope import Scope


@dataclass(frozen=True)
class Field:
    type: type | tuple
    required: bool = False
    choices: tuple | None = None
    positive: bool = False
    schema_type: str = "string"
    convert: Callable[[Any], Any] | None = None  # checks further and returns the value to store
    description: str | None = None
    max_length: int = 120  # strings: 1 to this many characters (after stripping)
    format: str | None = None  # the OpenAPI string format, e.g. email
    alias_of: str | None = None  # another name of that field (as answers name it); both given must agree


@dataclass
class Resource:
    name: str
    model: Any
    fields: dict[str, Field]
    to_json: Callable[[Any], dict]
    visible: Callable[[Scope], Any]  # SQL condition on model for the scope
    read_permission: str = "metadata:read"
    write_permission: str = "metadata:write"
    before_save: Callable[[Any, dict, bool], None] | None = None
    relations: dict[str, Any] = field(default_factory=dict)  # field -> (attribute, model)


def _nullable(resource: Resource, name: str) -> bool:
    """Whether the field's column takes NULL; fields without a column of their own (password) do."""
    column = resource.model.__table__.columns.get(resource.fields[name].alias_of or name)
    return column is None or column.nullable


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (e.g. 10**400)
        return False


def validate(resource: Resource, data: dict, creating: bool) -> dict:
    problems = []
    allowed = set(resource.fields) | set(resource.relations)
    for name in sorted(set(data) - allowed):
        problems.append({"field": name, "message": f"unknown field; expected {', '.join(sorted(allowed))}"})
    for name, spec in resource.fields.items():
        value = data.get(name)
        if value is None:
            if creating and spec.required and not (resource.name == "users" and name == "password"):
                problems.append({"field": name, "message": "is required"})
            elif not creating and name in data and (spec.required or not _nullable(resource, name)):
                problems.append({"field": name, "message": "may not be null"})
            continue
        bad_bool = isinstance(value, bool) and spec.type is not bool
        if bad_bool or not isinstance(value, spec.type):
            problems.append({"field": name, "message": f"must be a {spec.schema_type}"})
        elif spec.schema_type in ("integer", "number") and not _finite(value):
            problems.append({"field": name, "message": "must be a finite number"})
        elif spec.choices and value not in spec.choices:
            problems.append({"field": name, "message": f"one of {', '.join(spec.choices)}"})
        elif spec.positive and not value > 0:
            problems.append({"field": name, "message": "must be > 0"})
        elif isinstance(value, str) and not 0 < len(value.strip()) <= spec.max_length:
            problems.append({"field": name, "message": f"1 to {spec.max_length} characters"})
        elif spec.convert is not None:
            try:
                data = data | {name: spec.convert(value)}
            except ValueError as exc:
                problems.append({"field": name, "message": str(exc)})
    for name, spec in resource.fields.items():  # an alias is stored under its field's name, never its own
        if spec.alias_of is None or name not in data:
            continue
        value, data = data[name], {k: v for k, v in data.items() if k != name}
        if value is None or any(p["field"] == name for p in problems):
            continue
        if data.get(spec.alias_of) not in (None, value):
            problems.append(
                {"field": name, "message": f"the same as {spec.alias_of}: give one, or both equal"}
            )
        data = data | {spec.alias_of: value}
    for name in resource.relations:
        value = data.get(name)
        if name in data and (
            not isinstance(value, list)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            problems.append({"field": name, "message": "must be a list of integer ids"})
    if problems:
        raise ValidationFailed(details=problems)
    return data
