"""Every page's state in its URL (beyond Historical, tests/ui/test_url_state.py): a link opens the same view,
hostile or foreign values fall back with a notice, and the auto-refresh choice pauses the interval."""

from __future__ import annotations

import pytest

from pages._components import REFRESH_CHOICES
from tests.ui.helpers import callback_payload, component, cookie_login, router_payload


def page(client, csrf, path, search):
    r = client.post("/_dash-update-component", json=router_payload(path, search), headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]["_pages_content"]["children"]


@pytest.fixture
def ui(client, world):
    assert client.get("/").status_code == 200
    return client


@pytest.mark.parametrize(
    ("path", "search", "expected"),
    [
        ("/real-time", "?scope={h2}&window=60m&refresh=off",
         {"realtime-scope": "{h2}", "realtime-window": "60m", "realtime-refresh-every": "off"}),
        ("/", "?refresh=1m", {"overview-refresh-every": "1m"}),
        ("/analytics", "?scope={h2}&range=custom&from=2026-01-01&to=2026-01-31&tab=voltage",
         {"analytics-scope": "{h2}", "analytics-tabs": "voltage"}),
        ("/exports", "?period=weekly&range=custom&from=2026-01-01&to=2026-03-31&scope={h2}",
         {"exports-period": "weekly", "exports-scope": "{h2}"}),
        ("/forecasts", "?product=short-term&horizon=4&model=ridge&strategy=recursive&scope={h2}",
         {"forecasts-product": "short-term", "forecasts-horizon": 4, "forecasts-model": "ridge",
          "forecasts-strategy": "recursive", "forecasts-scope": "{h2}"}),
        ("/home", "?scope={h2}&period=week", {"home-house": "{h2}", "home-period": "week"}),
    ],
)  # fmt: skip
def test_a_link_opens_the_same_view_on_every_page(ui, world, path, search, expected):
    csrf = cookie_login(ui, "admin")
    search = search.format(h2=world.house2)
    tree = page(ui, csrf, path, search)
    for component_id, value in expected.items():
        value = value.format(h2=world.house2) if isinstance(value, str) else value
        assert component(tree, component_id)["value"] == value, component_id
    prefix = {"/": "overview", "/real-time": "realtime"}.get(path, path.strip("/"))
    assert component(tree, f"{prefix}-url")["search"] == search  # canonical already: unchanged
    assert component(tree, f"{prefix}-url-notice")["is_open"] is False


@pytest.mark.parametrize(
    ("path", "control"),
    [("/real-time", "realtime-scope"), ("/analytics", "analytics-scope"), ("/exports", "exports-scope"),
     ("/forecasts", "forecasts-scope"), ("/home", "home-house")],
)  # fmt: skip
def test_a_consumers_link_to_another_house_falls_back_to_their_own(ui, world, path, control):
    csrf = cookie_login(ui, "consumer")  # house 1 only
    tree = page(ui, csrf, path, f"?scope={world.house2}")
    assert component(tree, control)["value"] != str(world.house2)
    assert str(world.house2) not in [o["value"] for o in component(tree, control)["options"]]
    prefix = {"/real-time": "realtime"}.get(path, path.strip("/"))
    notice = component(tree, f"{prefix}-url-notice")
    assert notice["is_open"] and "'scope'" in notice["children"]
    assert "House B" not in str(tree)


def test_hostile_values_on_other_pages_are_refused(ui):
    csrf = cookie_login(ui, "analyst")
    tree = page(ui, csrf, "/forecasts", "?product=../../etc&horizon=999&model=%3Cimg%3E&strategy=")
    assert component(tree, "forecasts-product")["value"] == "next-24-hours"
    assert component(tree, "forecasts-horizon")["value"] == 8
    assert component(tree, "forecasts-model")["value"] == "auto"
    assert component(tree, "forecasts-url-notice")["is_open"]
    tree = page(ui, csrf, "/real-time", "?refresh=0&window=1y")
    assert component(tree, "realtime-refresh-every")["value"] == "5s"
    assert component(tree, "realtime-window")["value"] == "15m"
    assert component(tree, "realtime-interval")["disabled"] is False


def refresh(client, csrf, prefix, interval, choice):
    body = callback_payload(
        [(interval, "interval"), (interval, "disabled")], [(f"{prefix}-refresh-every", "value", choice)]
    )
    r = client.post("/_dash-update-component", json=body, headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    out = r.json["response"][interval]
    return out["interval"], out["disabled"]


@pytest.mark.parametrize(
    ("prefix", "interval"), [("realtime", "realtime-interval"), ("overview", "overview-refresh")]
)
def test_auto_refresh_choice_sets_the_interval_and_pause_disables_it(ui, prefix, interval):
    csrf = cookie_login(ui, "consumer")
    assert refresh(ui, csrf, prefix, interval, "5s") == (5_000, False)
    assert refresh(ui, csrf, prefix, interval, "1m") == (60_000, False)
    assert refresh(ui, csrf, prefix, interval, "off")[1] is True
    assert refresh(ui, csrf, prefix, interval, "<junk>")[1] is True  # unknown: paused, never a busy loop
    # the paused choice is kept in the URL, and a reload opens with the interval disabled
    path = {"realtime": "/real-time", "overview": "/"}[prefix]
    tree = page(ui, csrf, path, "?refresh=off")
    assert component(tree, interval)["disabled"] is True


@pytest.mark.parametrize(
    ("path", "prefix", "interval"),
    [("/real-time", "realtime", "realtime-interval"), ("/", "overview", "overview-refresh")],
)
def test_the_layout_sets_the_interval_as_the_choice_would_so_loading_calls_nothing_back(
    ui, path, prefix, interval
):
    csrf = cookie_login(ui, "consumer")
    for choice in REFRESH_CHOICES:
        shown = component(page(ui, csrf, path, f"?refresh={choice}"), interval)
        every, disabled = refresh(ui, csrf, prefix, interval, choice)
        assert shown["disabled"] is disabled, choice
        assert disabled or shown["interval"] == every, choice  # a paused period is never used
    follow = [
        d for d in ui.get("/_dash-dependencies").json if d["output"].startswith(f"..{interval}.interval")
    ]
    assert len(follow) == 1 and follow[0]["prevent_initial_call"] is True


def test_real_time_says_when_it_last_updated_and_that_it_is_paused(ui):
    csrf = cookie_login(ui, "consumer")
    body = callback_payload(
        [("realtime-updated", "children")],
        [("realtime-interval", "n_intervals", 3), ("realtime-refresh-every", "value", "off")],
    )
    r = ui.post("/_dash-update-component", json=body, headers=csrf)
    assert r.status_code == 200
    text = r.json["response"]["realtime-updated"]["children"]
    assert text.startswith("Last updated ") and "paused" in text
    assert ui.post("/_dash-update-component", json=body).status_code == 401
