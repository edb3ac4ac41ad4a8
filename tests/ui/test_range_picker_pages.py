"""The one range picker on Historical, Analytics and Exports (pages/_ranges.py, callbacks/ranges.py), through
Dash's real endpoints on PostgreSQL: the same pieces under each page's prefix, the range in the URL (a link
opens it, a day after today is refused), previous / next by the range's length and never past today, a
preset's days in the picker, and the days checked on the server whatever the browser sends."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.clock import local_today_clear_of_midnight
from tests.ui.helpers import callback_payload, component, cookie_login, router_payload, url_sync_payload

ZONE = ZoneInfo("Europe/Athens")  # the test settings' TIMEZONE
PAGES = ("historical", "analytics", "exports")
FILLED = ("analytics", "exports")  # the date picker holds the range's days
DEFAULTS = {"historical": "24h", "analytics": "7d", "exports": "30d"}


def range_query(search: str) -> str:
    """A URL's query without the scope (Analytics always writes its caller-dependent default scope)."""
    kept = [pair for pair in search.lstrip("?").split("&") if pair and not pair.startswith("scope=")]
    return "?" + "&".join(kept) if kept else ""


def today():
    return datetime.now(ZONE).date()


@pytest.fixture
def ui(client, world):
    assert client.get("/").status_code == 200
    local_today_clear_of_midnight()  # the tests read today() and have the app read its own seconds later
    return client


def post(client, body, csrf=None):
    return client.post("/_dash-update-component", json=body, headers=csrf or {})


def page(client, csrf, path, search=""):
    r = post(client, router_payload(path, search), csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]["_pages_content"]["children"]


def move(client, csrf, prefix, trigger, range_choice, start, end):
    """A filled page's picker callback (previous, next, or a chosen preset): (range, start, end) or None."""
    outputs = [
        (f"{prefix}-range", "value"),
        (f"{prefix}-dates", "start_date"),
        (f"{prefix}-dates", "end_date"),
    ]
    event = (
        {"trigger": "preset", "at": 1} if trigger == "range" else None
    )  # from the browser (PICKER_EVENT_JS)
    inputs = [(f"{prefix}-previous", "n_clicks", 1 if trigger == "previous" else None),
              (f"{prefix}-next", "n_clicks", 1 if trigger == "next" else None),
              (f"{prefix}-range-event", "data", event)]  # fmt: skip
    states = [(f"{prefix}-range", "value", range_choice), (f"{prefix}-dates", "start_date", start),
              (f"{prefix}-dates", "end_date", end)]  # fmt: skip
    changed = f"{prefix}-range-event.data" if trigger == "range" else f"{prefix}-{trigger}.n_clicks"
    r = post(client, callback_payload(outputs, inputs, states, triggered=changed), csrf)
    if r.status_code == 204:  # PreventUpdate: nothing changes
        return None
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.json["response"]
    rng = body.get(f"{prefix}-range", {}).get("value")
    return rng, body[f"{prefix}-dates"]["start_date"], body[f"{prefix}-dates"]["end_date"]


@pytest.mark.parametrize("prefix", PAGES)
def test_every_range_page_has_the_same_picker_and_a_link_keeps_its_range(ui, prefix):
    csrf = cookie_login(ui, "analyst")
    tree = page(ui, csrf, f"/{prefix}")
    choice = component(tree, f"{prefix}-range")
    assert [o["value"] for o in choice["options"]] == ["24h", "7d", "30d", "month", "custom"]
    assert choice["value"] == DEFAULTS[prefix]
    assert component(tree, f"{prefix}-previous") and component(tree, f"{prefix}-next")["disabled"] is True
    dates = component(tree, f"{prefix}-dates")
    assert dates["disabled"] is True and dates["max_date_allowed"] == today().isoformat()
    assert range_query(component(tree, f"{prefix}-url")["search"]) == ""  # the default range: left out
    # a preset from a link; a filled page shows its days in the picker
    tree = page(ui, csrf, f"/{prefix}", "?range=month")
    assert component(tree, f"{prefix}-range")["value"] == "month"
    if prefix in FILLED:
        dates = component(tree, f"{prefix}-dates")
        assert (dates["start_date"], dates["end_date"]) == (
            today().replace(day=1).isoformat(),
            today().isoformat(),
        )
    # a custom range from a link: the same days, the picker and next enabled
    first, last = today() - timedelta(days=20), today() - timedelta(days=10)
    search = f"?range=custom&from={first}&to={last}"
    tree = page(ui, csrf, f"/{prefix}", search)
    dates = component(tree, f"{prefix}-dates")
    assert (dates["start_date"], dates["end_date"], dates["disabled"]) == (str(first), str(last), False)
    assert component(tree, f"{prefix}-next")["disabled"] is False
    assert range_query(component(tree, f"{prefix}-url")["search"]) == search  # canonical: unchanged
    # a custom range ending today: next is drawn disabled (its callback no longer runs on load)
    ending_today = page(ui, csrf, f"/{prefix}", f"?range=custom&from={first}&to={today()}")
    assert component(ending_today, f"{prefix}-next")["disabled"] is True
    assert component(tree, f"{prefix}-url-notice")["is_open"] is False


@pytest.mark.parametrize("prefix", PAGES)
def test_a_link_to_the_future_is_refused_with_a_notice(ui, prefix):
    csrf = cookie_login(ui, "analyst")
    future = today() + timedelta(days=3)
    tree = page(ui, csrf, f"/{prefix}", f"?range=custom&from={today()}&to={future}")
    dates = component(tree, f"{prefix}-dates")
    assert dates["end_date"] <= today().isoformat()
    notice = component(tree, f"{prefix}-url-notice")
    assert notice["is_open"] and "'to'" in notice["children"] and "up to today" in notice["children"]
    assert str(future) not in component(tree, f"{prefix}-url")["search"]


@pytest.mark.parametrize("prefix", FILLED)
def test_a_link_from_before_the_picker_opens_its_days_as_a_custom_range(ui, prefix):
    csrf = cookie_login(ui, "analyst")
    tree = page(ui, csrf, f"/{prefix}", "?from=2026-01-01&to=2026-01-31")
    assert component(tree, f"{prefix}-range")["value"] == "custom"
    dates = component(tree, f"{prefix}-dates")
    assert (dates["start_date"], dates["end_date"]) == ("2026-01-01", "2026-01-31")
    assert (
        range_query(component(tree, f"{prefix}-url")["search"])
        == "?range=custom&from=2026-01-01&to=2026-01-31"
    )


@pytest.mark.parametrize("prefix", FILLED)
def test_previous_next_and_presets_on_analytics_and_exports(ui, prefix):
    csrf = cookie_login(ui, "consumer")
    t = today()
    week = (str(t - timedelta(days=6)), str(t))
    # a chosen preset writes its days into the picker; custom keeps the days shown
    assert move(ui, csrf, prefix, "range", "7d", "2026-01-01", "2026-01-31") == (None, *week)
    assert move(ui, csrf, prefix, "range", "custom", *week) is None
    # previous: the same length just before; a preset's days are the server's, not the browser's
    before = ("custom", str(t - timedelta(days=13)), str(t - timedelta(days=7)))
    assert move(ui, csrf, prefix, "previous", "7d", "2020-01-01", "2020-01-02") == before
    assert move(ui, csrf, prefix, "next", *before) == ("custom", *week)
    # next never passes today: at now it does nothing; a step that would pass today ends today
    assert move(ui, csrf, prefix, "next", "custom", *week) is None
    assert move(ui, csrf, prefix, "next", "7d", *week) is None
    near = (str(t - timedelta(days=9)), str(t - timedelta(days=3)))
    assert move(ui, csrf, prefix, "next", "custom", *near) == ("custom", *week)
    # whole months move by calendar months
    assert move(ui, csrf, prefix, "previous", "custom", "2026-03-01", "2026-03-31")[1:] == (
        "2026-02-01", "2026-02-28")  # fmt: skip
    # bad days from the browser change nothing
    assert move(ui, csrf, prefix, "previous", "custom", "yesterday", str(t)) is None
    # anonymous callers are refused
    body = callback_payload([(f"{prefix}-dates", "disabled")], [(f"{prefix}-range", "value", "custom")])
    assert post(ui, body).status_code == 401
    assert post(ui, body, csrf).json["response"][f"{prefix}-dates"]["disabled"] is False


@pytest.mark.parametrize("prefix", FILLED)
def test_the_range_is_written_into_the_url(app, ui, prefix):
    csrf = cookie_login(ui, "analyst")
    other = {"analytics": [("analytics-scope", "value", "all"), ("analytics-tabs", "value", "anomaly")],
             "exports": [("exports-period", "value", "daily"), ("exports-scope", "value", "all")]}[prefix]  # fmt: skip

    def url_of(range_choice, start, end):
        rng = [(f"{prefix}-range", "value", range_choice), (f"{prefix}-dates", "start_date", start),
               (f"{prefix}-dates", "end_date", end)]  # fmt: skip
        inputs = other[:1] + rng + other[1:]  # the URL fields' order
        r = post(ui, url_sync_payload(app, prefix, [value for _, _, value in inputs]), csrf)
        assert r.status_code == 200, r.get_data(as_text=True)
        return range_query(r.json["response"][f"{prefix}-url"]["search"])

    assert url_of("30d", "2026-03-01", "2026-03-31") == ("" if prefix == "exports" else "?range=30d")
    assert url_of("custom", "2026-03-01", "2026-03-31") == "?range=custom&from=2026-03-01&to=2026-03-31"
    future = str(today() + timedelta(days=1))
    assert url_of("custom", "2026-03-01", future) == "?range=custom&from=2026-03-01"  # never the future


def zoom(client, csrf, prefix, event, range_choice, start, end):
    """A filled page's picker callback after the browser's picker event `event` (PICKER_EVENT_JS)."""
    outputs = [
        (f"{prefix}-range", "value"),
        (f"{prefix}-dates", "start_date"),
        (f"{prefix}-dates", "end_date"),
    ]
    inputs = [(f"{prefix}-previous", "n_clicks", None), (f"{prefix}-next", "n_clicks", None),
              (f"{prefix}-range-event", "data", event)]  # fmt: skip
    states = [(f"{prefix}-range", "value", range_choice), (f"{prefix}-dates", "start_date", start),
              (f"{prefix}-dates", "end_date", end)]  # fmt: skip
    r = post(client, callback_payload(outputs, inputs, states, triggered=f"{prefix}-range-event.data"), csrf)
    if r.status_code == 204:
        return None
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.json["response"]
    return (
        body[f"{prefix}-range"]["value"],
        body[f"{prefix}-dates"]["start_date"],
        body[f"{prefix}-dates"]["end_date"],
    )


def test_a_zoom_on_an_analytics_chart_becomes_the_pages_range_and_its_url(app, ui):
    """As on Historical (one implementation, callbacks/ranges.py): the zoomed span on a time axis becomes
    the range, in whole local days, never past today, at most 365 days; the URL then holds it."""
    csrf = cookie_login(ui, "analyst")
    t = today()
    week = ("7d", str(t - timedelta(days=6)), str(t))

    def zoomed(graph, lo, hi, controls=week):
        event = {"trigger": "zoom", "graph": graph, "event": {"xaxis.range": [lo, hi]}, "at": 1}
        return zoom(ui, csrf, "analytics", event, *controls)

    lo, hi = f"{t - timedelta(days=4)} 06:12:00", f"{t - timedelta(days=2)} 00:00"  # ends at a midnight
    expected = ("custom", str(t - timedelta(days=4)), str(t - timedelta(days=3)))
    for tab in ("anomaly", "voltage", "pf"):
        assert zoomed(f"analytics-{tab}-graph", lo, hi) == expected
    assert zoomed("analytics-anomaly-graph", f"{t} 01:00", f"{t + timedelta(days=2)} 00:00")[1:] == (
        str(t),
        str(t),
    )
    assert zoomed("analytics-anomaly-graph", "2020-01-01", f"{t} 12:00")[1:] == (
        str(t - timedelta(days=364)),
        str(t),
    )
    # the profile's time of day, another page's chart and a category axis's numbers are no time range
    assert zoomed("analytics-profile-graph", lo, hi) is None
    assert zoomed("historical-consumption", lo, hi) is None
    assert zoom(ui, csrf, "analytics", {"trigger": "zoom", "graph": "analytics-anomaly-graph",
                                        "event": {"xaxis.range": [1.5, 3.5]}}, *week) is None  # fmt: skip
    # a double-click zooms out: twice as long around the middle, never past today, at most 365 days
    out = {"trigger": "zoomout", "graph": "analytics-anomaly-graph", "at": 2}
    assert zoom(ui, csrf, "analytics", out, *expected) == (
        "custom",
        str(t - timedelta(days=5)),
        str(t - timedelta(days=2)),
    )
    assert zoom(ui, csrf, "analytics", out, *week) == ("custom", str(t - timedelta(days=13)), str(t))
    assert zoom(ui, csrf, "analytics", out, "custom", str(t - timedelta(days=299)), str(t))[1] == str(
        t - timedelta(days=364))  # fmt: skip
    # the URL then holds the zoomed range (the page's URL callback, as the browser calls it next)
    controls = ["all", *expected, "anomaly"]  # URL_FIELDS: scope, range, from, to, tab
    r = post(ui, url_sync_payload(app, "analytics", controls), csrf)
    assert range_query(r.json["response"]["analytics-url"]["search"]) == (
        f"?range=custom&from={expected[1]}&to={expected[2]}")  # fmt: skip
    # anonymous callers are refused
    body = callback_payload([("analytics-range", "value")], [("analytics-range-event", "data", out)])
    assert post(ui, body).status_code == 401


def test_the_days_are_checked_on_the_server_whatever_the_browser_sends(ui, world):
    csrf = cookie_login(ui, "analyst")
    t = today()
    future = (str(t - timedelta(days=2)), str(t + timedelta(days=2)))
    # Exports: a day after today is refused with what to do; more than three years too
    outputs = [("exports-table", "children"), ("exports-message", "children"), ("exports-message", "color")]

    def exports(start, end):
        inputs = [("exports-period", "value", "daily"), ("exports-dates", "start_date", start),
                  ("exports-dates", "end_date", end), ("exports-scope", "value", "all")]  # fmt: skip
        body = callback_payload(outputs + [("exports-message", "is_open")], inputs)
        return post(ui, body, csrf).json["response"]["exports-message"]

    message = exports(*future)
    assert message["color"] == "danger" and "is in the future" in message["children"]
    assert f"up to today ({t.isoformat()}" in message["children"]
    message = exports(str(t - timedelta(days=1200)), str(t))
    assert message["color"] == "danger" and "three years" in message["children"]
    # Analytics: the same refusal, and its 365-day limit
    profile = [("analytics-profile-message", p) for p in ("children", "color", "is_open")]
    profile += [("analytics-profile-graph", "figure"), ("analytics-profile-stats", "children"),
                ("analytics-profile-shown", "data")]  # fmt: skip

    def analytics(start, end):
        inputs = [("analytics-scope", "value", str(world.house1)), ("analytics-dates", "start_date", start),
                  ("analytics-dates", "end_date", end), ("analytics-tabs", "value", "profile")]  # fmt: skip
        body = callback_payload(profile, inputs, [("analytics-profile-shown", "data", None)])
        return post(ui, body, csrf).json["response"]["analytics-profile-message"]

    message = analytics(*future)
    assert message["color"] == "danger" and "is in the future" in message["children"]
    message = analytics(str(t - timedelta(days=400)), str(t))
    assert message["color"] == "danger" and "at most 365 days" in message["children"]


@pytest.mark.parametrize(("path", "title"), [("/home", "Household"), ("/forecasts", "Forecasts")])
def test_home_and_forecasts_open_with_the_shared_header(ui, path, title):
    csrf = cookie_login(ui, "analyst")
    tree = page(ui, csrf, path)
    head = tree["props"]["children"][:4]
    assert head[0]["type"] == "H2" and head[0]["props"]["children"] == title
    prefix = path.strip("/")
    ids = [c["props"].get("id") for c in head]
    assert f"{prefix}-url" in ids and f"{prefix}-url-notice" in ids
