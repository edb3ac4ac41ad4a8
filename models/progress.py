"""Progress of a fit, reported from inside the work: per regressor fitted (one per lead for direct
models), per optimiser iteration (SARIMA), per candidate and per calibration step of `model=auto`.

The forecasters call `tick(done, total, message)` inside the innermost `stage(low, high)`; the caller
(a training job) installs a sink with `reporting(callback)`, which receives the fraction of the whole
fit (0..1) and a message. Without a sink every call is a no-op, so serving pays nothing. A ContextVar
carries the sink, so concurrent fits in threads report to their own jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

MIN_INTERVAL_S = 0.5  # a sink (a Redis write per call under RQ) hears at most two calls a second


@dataclass
class _Reporter:
    sink: Callable[[float, str], None]
    low: float = 0.0
    high: float = 1.0
    label: str = ""
    last_sent: float = 0.0


_reporter: ContextVar[_Reporter | None] = ContextVar("fit_progress", default=None)


@contextmanager
def reporting(sink: Callable[[float, str], None]) -> Iterator[None]:
    """Send this context's fit progress to `sink(fraction, message)`."""
    token = _reporter.set(_Reporter(sink))
    try:
        yield
    finally:
        _reporter.reset(token)


@contextmanager
def stage(low: float, high: float, label: str = "") -> Iterator[None]:
    """Ticks inside map to [low, high] of the enclosing stage (fractions of it)."""
    outer = _reporter.get()
    if outer is None:
        yield
        return
    span = outer.high - outer.low
    label = f"{outer.label}: {label}" if outer.label and label else (label or outer.label)
    inner = _Reporter(outer.sink, outer.low + span * low, outer.low + span * high, label, outer.last_sent)
    token = _reporter.set(inner)
    try:
        tick(0, 1, force=True)
        yield
    finally:
        _reporter.reset(token)
        outer.last_sent = inner.last_sent


def tick(done: float, total: float, message: str = "", force: bool = False) -> None:
    """`done` of `total` units of the current stage are finished."""
    rep = _reporter.get()
    if rep is None:
        return
    now = time.monotonic()
    if not force and now - rep.last_sent < MIN_INTERVAL_S and done < total:
        return
    rep.last_sent = now
    share = min(1.0, max(0.0, done / total)) if total else 1.0
    text = f"{rep.label} ({message})" if rep.label and message else (rep.label or message)
    rep.sink(rep.low + (rep.high - rep.low) * share, text)


def stages(items: list, low: float = 0.0, high: float = 1.0) -> Iterator[tuple[int, object, tuple]]:
    """(index, item, (low, high)) for items sharing [low, high] evenly."""
    width = (high - low) / max(1, len(items))
    for i, item in enumerate(items):
        yield i, item, (low + i * width, low + (i + 1) * width)
