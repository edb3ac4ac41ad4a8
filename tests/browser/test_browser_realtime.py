"""The Real-Time page in chromium on the demo server (the live simulator posts every 5 s): the traces
draw, each 5-second tick answers with a Patch and new points arrive without a redraw, the last reading
is seconds old, and a scope or window change redraws the whole figure. No console errors."""

from __future__ import annotations

import json

import pytest

from tests.browser.helpers import dropdown_labels, graph_traces, shot, wait_for_traces

pytestmark = pytest.mark.browser


def choose(page, dropdown_id: str, label: str) -> None:
    page.click(f"#{dropdown_id}")
    page.locator('[role="option"]', has_text=label).first.click()


def is_chart_call(response, trigger: str) -> bool:
    """A callback response for the chart, fired by `trigger` (e.g. "realtime-interval.n_intervals")."""
    if "_dash-update-component" not in response.url:
        return False
    body = json.loads(response.request.post_data or "{}")
    return "realtime-graph.figure" in body.get("output", "") and trigger in body.get("changedPropIds", [])


def title(page, graph_id: str = "realtime-graph") -> str:
    return page.evaluate(
        """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                     const t = el && el.layout && el.layout.title; return String((t && (t.text || t)) || ''); }""",
        graph_id,
    )


def test_live_points_arrive_as_patches(open_as):
    page = open_as("analyst", "/real-time")
    traces = wait_for_traces(page, "realtime-graph")
    assert [t["name"] for t in traces] == ["Consumption", "Production"]
    assert traces[0]["color"] == "#1f77b4" and traces[1]["color"] == "#2ca02c"
    assert traces[0]["points"] <= 61 and "15 min" in title(page)  # 15 s buckets over 15 minutes
    last_x = traces[0]["x1"]

    # the next tick is a Patch (only the change), never a whole figure
    with page.expect_response(
        lambda r: is_chart_call(r, "realtime-interval.n_intervals"), timeout=12_000
    ) as info:
        pass
    figure = info.value.json()["response"]["realtime-graph"]["figure"]
    assert figure.get("__dash_patch_update") == "__dash_patch_update" and "data" not in figure

    # the simulator posts every 5 s: a later 15-second bucket arrives within a few ticks
    page.wait_for_function(
        """([id, x]) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                          const t = el && el.data && el.data[0]; return !!t && String(t.x[t.x.length - 1]) > x; }""",
        arg=["realtime-graph", last_x],
        timeout=25_000,
    )
    after = graph_traces(page, "realtime-graph")[0]
    assert after["points"] <= 61 and after["x1"] > last_x

    text = page.inner_text("#realtime-last-reading")
    assert text.startswith("Last reading: ") and text.endswith(" s ago)")
    assert not page.is_visible("#realtime-silent")  # readings keep arriving: no warning
    assert 200 < float(page.inner_text("#realtime-voltage")) < 260
    assert 0 < float(page.inner_text("#realtime-pf")) <= 1
    shot(page, "realtime-analyst")
    assert page.errors == []


def test_scope_and_window_changes_redraw(open_as):
    page = open_as("analyst", "/real-time")
    wait_for_traces(page, "realtime-graph")
    with page.expect_response(lambda r: is_chart_call(r, "realtime-scope.value"), timeout=10_000) as info:
        choose(page, "realtime-scope", "Community: ")
    figure = info.value.json()["response"]["realtime-graph"]["figure"]
    assert "data" in figure and "__dash_patch_update" not in figure  # a full redraw
    page.wait_for_function(
        "() => document.querySelector('#realtime-graph .gtitle')?.textContent.startsWith('Community: ')"
    )
    assert wait_for_traces(page, "realtime-graph")[0]["points"] > 0

    with page.expect_response(lambda r: is_chart_call(r, "realtime-window.value"), timeout=10_000) as info:
        page.click("text=Last 60 min, per minute")
    assert "data" in info.value.json()["response"]["realtime-graph"]["figure"]
    page.wait_for_function(
        "() => document.querySelector('#realtime-graph .gtitle')?.textContent.endsWith('60 min')"
    )
    assert wait_for_traces(page, "realtime-graph")[0]["points"] <= 61
    shot(page, "realtime-analyst-community-60min")
    assert page.errors == []


def test_consumer_sees_only_their_house(open_as):
    page = open_as("consumer", "/real-time")
    wait_for_traces(page, "realtime-graph")
    labels, options = dropdown_labels(page, "realtime-scope")
    assert labels[0] == "All my houses" and len(labels) == 2, labels  # the demo consumer has one house
    assert not any("Community" in label for label in labels)
    options.nth(1).click()
    page.wait_for_function(
        "() => document.querySelector('#realtime-graph .gtitle')?.textContent.includes('(#')"
    )
    assert wait_for_traces(page, "realtime-graph")[0]["points"] > 0
    assert page.inner_text("#realtime-last-reading").startswith("Last reading: ")
    shot(page, "realtime-consumer")
    assert page.errors == []
