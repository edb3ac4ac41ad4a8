"""The relative range picker the date-range pages share (Historical, Analytics, Exports): last 24 h,
7 d, 30 d, this month or custom local days, previous / next by the range's length, and zoom or a click
on a chart turned into a range. Pure date arithmetic on local days, so shifting is DST-true (a local day
is 23 or 25 hours on a change day: the bounds are local midnights, dashboard/clock.py)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from dash import Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks.common import local_days_range, parse_date
from dashboard.clock import local_midnight_utc, to_local
from dashboard.errors import DomainError, ValidationFailed
from dashboard.ui_auth import ui_scope
from pages._charts import STEPS
from pages._ranges import PRESET_DAYS, RANGE_CUSTOM, RANGE_MONTH, next_disabled, preset_days, range_ids
from pages._ranges import today as local_today


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


def zoom_out(first: date, last: date, today: date) -> tuple[date, date]:
    """Grafana's zoom out: the range twice as long around its middle (an odd extra day before it), moved
    back to end today if it would pass today."""
    length = (last - first).days + 1
    first, last = first - timedelta(days=(length + 1) // 2), last + timedelta(days=length // 2)
    if last > today:
        first, last = first - (last - today), today
    return first, last


def clipped(first: date, last: date, max_days: int | None) -> tuple[date, date]:
    """At most `max_days` local days, the last ones kept (the end the chart was zoomed or panned to)."""
    if max_days is not None and (last - first).days + 1 > max_days:
        first = last - timedelta(days=max_days - 1)
    return first, last


def _shown_days(range_choice, start_date, end_date, today: date) -> tuple[date, date] | None:
    """The local days the controls show: a preset's (the server's today), a custom range's dates."""
    if range_choice in (*PRESET_DAYS, RANGE_MONTH):
        return preset_days(range_choice, today)
    if range_choice != RANGE_CUSTOM:
        return None
    try:
        first, last = date.fromisoformat(str(start_date)[:10]), date.fromisoformat(str(end_date)[:10])
    except ValueError:
        return None
    return None if last < first else (first, last)


def navigate(trigger: str, range_choice, start_date, end_date, resolution, event, today: date,
             max_days: int | None = None):  # fmt: skip
    """(range, first day, last day, bar size) after a previous / next click ("previous", "next"), a zoom
    ("zoom", event: relayoutData), a double-click ("zoomout") or a bar click ("click", event: clickData,
    `resolution`: the bars it was on); None when nothing should change. The day bounds are ISO text for
    the date pickers; a zoom's are at most `max_days` local days.

    A click drills down: a day bar opens that day in hourly bars, an hour bar that day in 15-minute bars
    (a custom range is whole local days). A zoom makes the zoomed span the range (whole local days, up to
    today), bar size "auto"; a double-click zooms out as Grafana's does (`zoom_out`)."""
    if trigger in ("previous", "next", "zoomout"):
        days = _shown_days(range_choice, start_date, end_date, today)
        if days is None or (trigger == "next" and at_now(days[1], today)):
            return None
        if trigger == "zoomout":
            first, last = clipped(*zoom_out(*days, today), max_days)
        else:
            first, last = shift(*days, -1 if trigger == "previous" else 1, today, range_choice == RANGE_MONTH)
        return RANGE_CUSTOM, first.isoformat(), last.isoformat(), "auto"
    if trigger == "zoom":
        days = zoom_days(event, today)
        if days is None:
            return None
        first, last = clipped(*days, max_days)
        return RANGE_CUSTOM, first.isoformat(), last.isoformat(), "auto"
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


def clock_spans(buckets: list[datetime], resolution: str, timezone: str) -> list[timedelta]:
    """Each bucket's length on a chart's local wall-clock axis, from the time its start shows to the time
    its end shows: a local day is midnight to midnight, 24 h on the axis whatever its length (23 or 25 h
    on a DST change day); the hour the clocks skip in spring is the bucket's before it (02:00 EET to
    04:00 EEST); a bucket of the hour repeated in autumn, whose end shows no later time than its start,
    keeps its own length (both are drawn at one time, stacked)."""
    if resolution == "day":  # drawn at its date: midnight to midnight even where a change skips midnight
        return [timedelta(days=1)] * len(buckets)
    end = bucket_ends(buckets, resolution, timezone)
    spans = []
    for i, start in enumerate(buckets):
        shown = to_local(end(i), timezone) - to_local(start, timezone)
        spans.append(shown if shown > timedelta(0) else end(i) - start)
    return spans


# ---- the days a page's callbacks read -----------------------------------------------------------------


def checked_days(start_date, end_date, timezone: str, today: date, max_days: int | None = None):
    """(first, last, naive-UTC [start, end)) of the date picker's local days, checked on the server
    whatever the browser sent: real dates, not reversed, not after today (the future has no readings:
    refused, never drawn as empty), at most `max_days` days. ValidationFailed otherwise."""
    first, last = parse_date(start_date, "start_date"), parse_date(end_date, "end_date")
    start, end = local_days_range(first, last, timezone)  # refuses a reversed range
    if last > today:
        field, day = ("end_date", last) if first <= today else ("start_date", first)
        raise ValidationFailed(
            details=[{"field": field, "message": f"{day.isoformat()} is in the future: choose days up to "
                      f"today ({today.isoformat()}, {timezone})"}]
        )  # fmt: skip
    if max_days is not None and (last - first).days + 1 > max_days:
        raise ValidationFailed(details=[{"field": "end_date", "message": f"at most {max_days} days"}])
    return first, last, start, end


# ---- the picker's callbacks ---------------------------------------------------------------------------

# In the browser, before any request: of the picker's events, only those the server must answer reach it
# (the range's store, pages/_ranges.py). A chosen preset (its days are the server's today), a chart's zoom
# (an x range of times) and a double-click on a time axis (Plotly's autorange: zoom out) pass; choosing
# "custom" (the dates shown stay), a chart's first draw or resize ({"autosize": true}), a legend click and
# a zoom on a category axis (numbers) never call back. The server checks what it gets all the same.
PICKER_EVENT_JS = """
function () {
    const dc = window.dash_clientside, fired = (dc.callback_context.triggered || [])[0];
    if (!fired) { return dc.no_update; }
    const dot = fired.prop_id.lastIndexOf("."), id = fired.prop_id.slice(0, dot);
    const value = fired.value, at = Date.now();
    if (fired.prop_id.slice(dot + 1) === "value") {
        return typeof value === "string" && value !== "custom" ? {trigger: "preset", at: at} : dc.no_update;
    }
    const e = value || {}, both = Array.isArray(e["xaxis.range"]) ? e["xaxis.range"] : [];
    const lo = e["xaxis.range[0]"] !== undefined ? e["xaxis.range[0]"] : both[0];
    const hi = e["xaxis.range[1]"] !== undefined ? e["xaxis.range[1]"] : both[1];
    if (typeof lo === "string" && typeof hi === "string") {
        return {trigger: "zoom", graph: id, event: {"xaxis.range": [lo, hi]}, at: at};
    }
    const plot = document.getElementById(id), full = plot && plot.querySelector(".js-plotly-plot");
    const dates = !!(full && full._fullLayout && full._fullLayout.xaxis && full._fullLayout.xaxis.type === "date");
    return e["xaxis.autorange"] === true && dates ? {trigger: "zoomout", graph: id, at: at} : dc.no_update;
}
"""


def register_range_picker(app, prefix: str, graphs=(), resolution_of=None, bars_id=None, fill=False,
                          max_days: int | None = None) -> None:  # fmt: skip
    """The range picker of the page with this id prefix (pages/_ranges.py). Previous / next, a zoom or a
    double-click (zoom out) on one of `graphs`' time axes, and with `resolution_of` a bar click on them,
    rewrite the range controls (range, dates and, with `bars_id`, the bar size); a zoom is at most
    `max_days` local days. Next is disabled at now; the date picker is enabled for a custom range only.
    With `fill`, a chosen preset writes its days into the date picker (the page's callbacks read the days
    only). `resolution_of(range, start, end, bars)` names the bars the controls draw (a click drills one
    size finer); it may raise DomainError for bad controls. The browser filters the events first
    (PICKER_EVENT_JS): only those that can change the range call the server."""
    ids = range_ids(prefix)
    graphs = tuple(graphs)
    drills = graphs if resolution_of is not None else ()

    def move(_previous, _next, picked_event, *args):
        if ui_scope() is None:
            raise PreventUpdate
        clicks, (range_choice, start, end, *bars) = args[: len(drills)], args[len(drills) :]
        trigger = {ids.previous: "previous", ids.next: "next"}.get(ctx.triggered_id)
        event, resolution = None, None
        if ctx.triggered_id == ids.event:
            picked_event = picked_event if isinstance(picked_event, dict) else {}
            trigger, event = picked_event.get("trigger"), picked_event.get("event")
            if trigger == "preset":
                return preset_filled(range_choice)
            if trigger not in ("zoom", "zoomout") or picked_event.get("graph") not in graphs:
                raise PreventUpdate
        elif ctx.triggered_id in drills:
            trigger, event = "click", clicks[drills.index(ctx.triggered_id)]
            try:
                resolution = resolution_of(range_choice, start, end, *bars)
            except DomainError:
                raise PreventUpdate from None
        picked = navigate(trigger, range_choice, start, end, resolution, event, local_today(), max_days)
        if picked is None:
            raise PreventUpdate
        return picked if bars_id is not None else picked[:3]

    def preset_filled(range_choice):
        """A chosen preset's days into the date picker (a custom range keeps the days it shows)."""
        if not fill or range_choice not in (*PRESET_DAYS, RANGE_MONTH):
            raise PreventUpdate
        first, last = preset_days(range_choice, local_today())
        return (no_update, first.isoformat(), last.isoformat(), *((no_update,) if bars_id else ()))

    def follow(range_choice):
        """The date picker is enabled for a custom range only."""
        if ui_scope() is None:
            raise PreventUpdate
        return range_choice != RANGE_CUSTOM

    app.callback(  # the layout draws it right (pages/_ranges.py range_fields): no call on load
        Output(ids.next, "disabled"),
        Input(ids.range, "value"),
        Input(ids.dates, "end_date"),
        prevent_initial_call=True,
    )(next_disabled)
    app.callback(Output(ids.dates, "disabled"), Input(ids.range, "value"), prevent_initial_call=True)(follow)
    watched = [*((Input(ids.range, "value"),) if fill else ()), *(Input(g, "relayoutData") for g in graphs)]
    if watched:
        app.clientside_callback(
            PICKER_EVENT_JS, Output(ids.event, "data"), *watched, prevent_initial_call=True
        )
    bars = (bars_id,) if bars_id is not None else ()
    app.callback(
        Output(ids.range, "value"),
        Output(ids.dates, "start_date"),
        Output(ids.dates, "end_date"),
        *(Output(b, "value") for b in bars),
        Input(ids.previous, "n_clicks"),
        Input(ids.next, "n_clicks"),
        Input(ids.event, "data"),
        *[Input(g, "clickData") for g in drills],
        State(ids.range, "value"),
        State(ids.dates, "start_date"),
        State(ids.dates, "end_date"),
        *(State(b, "value") for b in bars),
        prevent_initial_call=True,
    )(move)
