"""Strict JSON out of every Flask response: NaN and Infinity are not JSON (a browser's `JSON.parse` and
most clients reject the whole body), so a non-finite number goes out as null. And safe JSON in: every
`request.get_json()` (the API's and Dash's callbacks') parses through dashboard.untrusted.loads (depth
limit, 64-bit integers, no NUL or lone surrogate), so a hostile body is a 4xx, never a RecursionError.

Set once on the server (dashboard/server.py), so no route has to remember it. A body without NaN costs
one strict `json.dumps` (C encoder); only a body that has one is walked and cleaned.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from flask.json.provider import DefaultJSONProvider

from dashboard import untrusted


def finite(value: Any) -> Any:
    """`value` with every non-finite float (numpy's too) replaced by None, recursively."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _default(value: Any) -> Any:
    """Flask's conversions (dates, dataclasses, ...) and numpy scalars/arrays, cleaned like the rest."""
    if isinstance(value, np.generic | np.ndarray):
        return finite(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return finite(dataclasses.asdict(value))
    return DefaultJSONProvider.default(value)


class FiniteJSONProvider(DefaultJSONProvider):
    default = staticmethod(_default)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return untrusted.loads(s)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        try:
            return super().dumps(obj, **kwargs)
        except ValueError as exc:
            if "not JSON compliant" not in str(exc):
                raise
            return super().dumps(finite(obj), **kwargs)
