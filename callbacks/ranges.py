"""The relative range picker the date-range pages share (Historical, Analytics, Exports): last 24 h,
7 d, 30 d, this month or custom local days, previous / next by the range's length, and zoom or a click
on a chart turned into a range. Pure date arithmetic on local days, so shifting is DST-true (a local day
is 23 or 25 hours on a change day: the bounds are local midnights, dashboard/clock.py)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from dash import Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from dashboard.clock import local_midnight_utc, to_local, utcnow
from dashboard.context import services
from dashboard.errors import DomainError
from dashboard.ui_auth import ui_scope
from pages._charts import STEPS

RANGE_24H, RANGE_7D, RANGE_30D, RANGE_MONTH, RANGE_CUSTOM = "24h", "7d", "30d", "month", "custom"
PRESET_DAYS = {RANGE_24H: 1, RANGE_7D: 7, RANGE_30D: 30}


def preset_days(range_choice: str, today: date) -> tuple[date, date]:
    """The local days [first, last] a preset covers, today included ("24 h": today; "this month": the
    1st to today)."""
    if range_choice == RANGE_MONTH:
        return today.replace(day=1), today
    days = PRESET_DAYS.get(range_choice)
    if days is None:
        raise ValueError(f"not a preset range: {range_choice!r}")
    return today - timedelta(days=days - 1), today


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def shift(first: date, last: date, direction: int, today: date, month: bool = False) -> tuple[date, date]:
    """[first, last] moved by its own length (-1: previous, +1: next): a calendar month (or `month`: this
    month so far) moves by a month, anything else by its number of local days. Never past today: a next
    range that would end after today ends today with the same length (a month: the month so far)."""
    if month or (first.day == 1 and last == _month_end(first)):
        anchor = first - timedelta(days=1) if direction < 0 else _month_end(first) + timedelta(days=1)
        new_first = anchor.replace(day=1)
        return new_first, min(_month_end(new_first), today)
    length = (last - first).days + 1
    new_first, new_last = (
        first + timedelta(days=direction * length),
        last + timedelta(days=direction * length),
    )
    if new_last > today:
        new_first, new_last = today - timedelta(days=length - 1), today
    return new_first, new_last


def at_now(last: date, today: date) -> bool:
    """Whether a range ending on `last` already reaches now (the next button is disabled)."""
    return last >= today


def _local(text) -> datetime | None:
    """A Plotly axis value (local wall clock, 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM[:SS.fff]') as a datetime."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        return None


def zoom_days(relayout, today: date) -> tuple[date, date] | None:
    """The local days a chart's zoom (Plotly relayoutData x-range) covers, clamped to today; None for any
    other relayout (autorange, a legend click, a resize) or values that are not times."""
    if not isinstance(relayout, dict):
        return None
    lo, hi = relayout.get("xaxis.range[0]"), relayout.get("xaxis.range[1]")
    if lo is None and isinstance(relayout.get("xaxis.range"), list) and len(relayout["xaxis.range"]) == 2:
        lo, hi = relayout["xaxis.range"]
    start, end = _local(lo), _local(hi)
    if start is None or end is None or end <= start:
        return None
    first = start.date()
    last = (end - timedelta(microseconds=1)).date() if end.time() == datetime.min.time() else end.date()
    last = min(last, today)
    if first > last:
        return None
    return first, last


def clicked_bucket(click) -> datetime | None:
    """The local start of the bar a click landed on (Plotly clickData), or None."""
    points = click.get("points") if isinstance(click, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    return _local(points[0].get("x"))


def navigate(trigger: str, range_choice, start_date, end_date, resolution, event, today: date):
    """(range, first day, last day, bar size) after a previous / next click ("previous", "next"), a zoom
    ("zoom", event: relayoutData) or a bar click ("click", event: clickData, `resolution`: the bars it
    was on); None when nothing should change. The day bounds are ISO text for the date pickers.

    A click drills down: a day bar opens that day in hourly bars, an hour bar that day in 15-minute bars
    (a custom range is whole local days). A zoom makes the zoomed span the range, bar size "auto"."""
    if trigger in ("previous", "next"):
        if range_choice == RANGE_CUSTOM:
            try:
                first, last = date.fromisoformat(str(start_date)[:10]), date.fromisoformat(str(end_date)[:10])
            except ValueError:
                return None
            if last < first:
                return None
        elif range_choice in (*PRESET_DAYS, RANGE_MONTH):
            first, last = preset_days(range_choice, today)
        else:
            return None
        if trigger == "next" and at_now(last, today):
            return None
        first, last = shift(
            first, last, -1 if trigger == "previous" else 1, today, range_choice == RANGE_MONTH
        )
        return RANGE_CUSTOM, first.isoformat(), last.isoformat(), "auto"
    if trigger == "zoom":
        days = zoom_days(event, today)
        return None if days is None else (RANGE_CUSTOM, days[0].isoformat(), days[1].isoformat(), "auto")
    if trigger == "click":
        bucket = clicked_bucket(event)
        finer = {"day": "hour", "hour": "15min"}.get(resolution)
        if bucket is None or finer is None or bucket.date() > today:
            return None
        day = bucket.date().isoformat()
        return RANGE_CUSTOM, day, day, finer
    return None


# ---- the current, unfinished bucket (drawn by pages/_charts.py) ------------------------------------


def bucket_ends(buckets: list[datetime], resolution: str, timezone: str):
    """end(i) of each bucket start (naive UTC): the next step, or for daily bars the next local midnight."""
    if resolution != "day":
        step = STEPS[resolution]
        return lambda i: buckets[i] + step
    return lambda i: local_midnight_utc(to_local(buckets[i], timezone).date() + timedelta(days=1), timezone)


# ---- the picker's callbacks ---------------------------------------------------------------------------


def register_range_picker(
    app, range_id, dates_id, bars_id, previous_id, next_id, graphs, resolution_of
) -> None:
    """Previous / next buttons, zoom and bar clicks on `graphs` rewrite the range controls (range, dates,
    bar size); next is disabled at now. `resolution_of(range, start, end, bars)` names the bars the
    controls draw (a click drills one size finer); it may raise DomainError for bad controls."""

    def today() -> date:
        return to_local(utcnow(), services().settings.timezone).date()

    def move(*args):
        if ui_scope() is None:
            raise PreventUpdate
        n = len(graphs)
        zooms, clicks, (range_choice, start, end, bars) = args[2 : 2 + n], args[2 + n : 2 + 2 * n], args[-4:]
        trigger = {previous_id: "previous", next_id: "next"}.get(ctx.triggered_id)
        event, resolution = None, None
        if trigger is None and ctx.triggered_id in graphs:
            i = graphs.index(ctx.triggered_id)
            prop = ctx.triggered[0]["prop_id"].rpartition(".")[2]
            trigger, event = ("zoom", zooms[i]) if prop == "relayoutData" else ("click", clicks[i])
        if trigger == "click":
            try:
                resolution = resolution_of(range_choice, start, end, bars)
            except DomainError:
                raise PreventUpdate from None
        picked = navigate(trigger, range_choice, start, end, resolution, event, today())
        if picked is None:
            raise PreventUpdate
        return picked

    def next_disabled(range_choice, end_date) -> bool:
        if range_choice != RANGE_CUSTOM:
            return True  # a preset ends now
        try:
            return at_now(date.fromisoformat(str(end_date)[:10]), today())
        except ValueError:
            return True

    app.callback(Output(next_id, "disabled"), Input(range_id, "value"), Input(dates_id, "end_date"))(
        next_disabled
    )
    app.callback(
        Output(range_id, "value"),
        Output(dates_id, "start_date"),
        Output(dates_id, "end_date"),
        Output(bars_id, "value"),
        Input(previous_id, "n_clicks"),
        Input(next_id, "n_clicks"),
        *[Input(g, "relayoutData") for g in graphs],
        *[Input(g, "clickData") for g in graphs],
        State(range_id, "value"),
        State(dates_id, "start_date"),
        State(dates_id, "end_date"),
        State(bars_id, "value"),
        prevent_initial_call=True,
    )(move)
