"""A fresh tab's first page is drawn into the app's layout (app.py page_container): the layout request names
the page (X-Dash-Page, sent by assets/first_page.js), the server draws it exactly as Dash's page router
would (guards, scope and the link's query included), and the location starts at that path and query so
the router is not asked again. Without the header, or with a header that names no page, the layout is
Dash's empty container and the router draws the page as before."""

from __future__ import annotations

import pytest

from tests.ui.helpers import component, cookie_login, router_payload

HEADER = "X-Dash-Page"


@pytest.fixture
def ui(client, world):
    assert client.get("/").status_code == 200
    return client


def layout(client, page: str | None) -> dict:
    r = client.get("/_dash-layout", headers={HEADER: page} if page is not None else {})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json


def routed(client, csrf, path, search=""):
    r = client.post("/_dash-update-component", json=router_payload(path, search), headers=csrf)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.json["response"]["_pages_content"]["children"]


def test_the_named_page_comes_with_the_layout_as_the_router_draws_it(ui, world):
    csrf = cookie_login(ui, "analyst")
    search = f"?range=custom&from=2026-10-20&to=2026-10-31&bars=day&scope={world.house2}"
    tree = layout(ui, "/historical" + search)
    location = component(tree, "_pages_location")
    assert (location["pathname"], location["search"]) == ("/historical", search)
    assert component(tree, "_pages_store")["data"] == {"title": "Historical - Aggregator"}
    content = component(tree, "_pages_content")["children"]
    assert content == routed(ui, csrf, "/historical", search)  # the same page, control for control
    assert component(content, "historical-scope")["value"] == str(world.house2)
    assert component(content, "historical-dates")["start_date"] == "2026-10-20"
    # the navbar is still there, with the role's links
    assert component(tree, "nav-logout") is not None


def test_without_a_named_page_the_router_draws_it_as_before(ui):
    cookie_login(ui, "analyst")
    for header in (None, "", "historical", "//evil.example/historical", "/no-such-page", "/" + "a" * 5000):
        tree = layout(ui, header)
        location = component(tree, "_pages_location")
        assert "pathname" not in location and "search" not in location, header
        assert component(tree, "_pages_content").get("children") is None, header


def test_the_first_page_keeps_the_guards(ui, world):
    # anonymous: the page is the login link (with the query kept), as the router gives it
    tree = layout(ui, "/historical?range=7d")
    content = component(tree, "_pages_content")["children"]
    assert component(content, "login-link")["href"] == "/login?next=/historical%3Frange%3D7d"
    # a consumer on the Admin page: refused; on a foreign house's link: their own default and a notice
    cookie_login(ui, "consumer")
    content = component(layout(ui, "/admin"), "_pages_content")["children"]
    assert component(content, "forbidden") is not None
    content = component(layout(ui, f"/historical?range=7d&scope={world.house2}"), "_pages_content")[
        "children"
    ]
    assert component(content, "historical-scope")["value"] == "all"
    assert "not in your scope" in component(content, "historical-url-notice")["children"]


def test_hostile_query_values_fall_back_with_a_notice_in_the_first_page_too(ui):
    cookie_login(ui, "analyst")
    tree = layout(ui, "/historical?range=%3Cscript%3E&bars=1s&range=7d")
    content = component(tree, "_pages_content")["children"]
    assert component(content, "historical-range")["value"] == "24h"
    assert component(content, "historical-url-notice")["is_open"] is True
    assert "<script>" not in str(content)


def has_graph(node) -> bool:
    if isinstance(node, list):
        return any(has_graph(n) for n in node)
    if isinstance(node, dict):
        if node.get("type") == "Graph" and node.get("namespace") == "dash_core_components":
            return True
        return any(has_graph(v) for v in node.get("props", {}).values() if isinstance(v, list | dict))
    return False


def test_the_index_names_the_pages_with_charts_and_only_those(client, world):
    """assets/first_page.js loads plotly.js with a fresh tab's layout on the pages the index names: each
    page whose first draw has a chart for some role, and no other (where it would be evaluated for nothing)."""
    from pages import PAGES

    html = client.get("/login").get_data(as_text=True)
    named = html.split('<meta name="aggregator-chart-pages" content="', 1)[1].split('"', 1)[0].split(" ")
    drawn = set()
    for role in ("analyst", "consumer", "admin"):
        client.delete_cookie("access_token_cookie")
        cookie_login(client, role)
        for page in PAGES:
            content = component(layout(client, page.PATH), "_pages_content")
            if page.PERMISSION and has_graph(content.get("children")):
                drawn.add(page.PATH)
    assert sorted(named) == sorted(drawn)
    assert {"/", "/home", "/real-time", "/historical", "/forecasts", "/analytics"} <= drawn


def test_a_page_s_main_callback_is_drawn_with_its_layout_and_not_called_on_load(ui, world):
    """Historical's charts, summary and caption (callbacks.common.drawn_with_layout) are in the layout the
    server draws, fresh tab and page router alike, equal to what the callback answers for the same
    controls; Dash is told not to call it on load (prevent_initial_call), only when a control changes."""
    from tests.ui.test_historical_page import payload

    csrf = cookie_login(ui, "analyst")
    search = f"?range=custom&from=2026-10-20&to=2026-10-31&bars=day&scope={world.house2}"
    content = component(layout(ui, "/historical" + search), "_pages_content")["children"]
    assert content == routed(ui, csrf, "/historical", search)
    figure = component(content, "historical-consumption")["figure"]
    assert len(figure["data"][0]["x"]) == 12 and figure["data"][0]["x"][0] == "2026-10-20"
    answer = ui.post(
        "/_dash-update-component",
        json=payload("custom", "2026-10-20", "2026-10-31", "day", str(world.house2)),
        headers=csrf,
    ).json["response"]
    assert answer["historical-consumption"]["figure"] == figure
    assert answer["historical-caption"]["children"] == component(content, "historical-caption")["children"]
    deps = ui.get("/_dash-dependencies").json
    mine = [d for d in deps if "historical-consumption.figure" in d["output"]]
    assert len(mine) == 1 and mine[0]["prevent_initial_call"] is True
    # a consumer's foreign scope in the link: the layout falls back to their own, drawn as such
    cookie_login(ui, "consumer")
    content = component(layout(ui, "/historical?scope=" + str(world.house2)), "_pages_content")["children"]
    drawn = component(content, "historical-consumption")["figure"]
    assert f"(#{world.house2})" not in drawn["layout"]["title"]["text"]


def fresh_thread_layout(client, page: str) -> dict:
    """The layout drawn in a thread no callback ran in (as a server thread's first request): Dash's callback
    context is unset there, not just empty."""
    import threading

    out = {}
    worker = threading.Thread(target=lambda: out.update(tree=layout(client, page)))
    worker.start()
    worker.join(60)
    assert "tree" in out, "the layout request failed in the thread"
    return out["tree"]


@pytest.mark.parametrize(
    ("page", "drawn"),
    [
        (
            "/real-time",
            {"realtime-graph": "figure", "realtime-voltage": "children", "realtime-updated": "children"},
        ),
        ("/home", {"home-flow": "figure", "home-comparison": "children"}),
        ("/exports", {"exports-table": "children"}),
        ("/historical", {"historical-consumption": "figure", "historical-summary": "children"}),
    ],
)
def test_each_page_s_first_callbacks_are_in_the_fresh_tab_s_layout(ui, page, drawn):
    cookie_login(ui, "consumer")
    tree = fresh_thread_layout(ui, page)
    assert component(tree, "_pages_location")["pathname"] == page  # drawn, not left to the router
    content = component(tree, "_pages_content")["children"]
    for component_id, prop in drawn.items():
        assert component(content, component_id).get(prop) is not None, (page, component_id)
