"""The Forecasts page in chromium on the demo server (6 houses x 30 days, in-process jobs): an analyst
trains from the page and watches the job's progress, then sees history in blue, the forecast in red and
its confidence range in orange; short-term with a horizon shortens the forecast. A consumer has no Train
button. No console errors."""

from __future__ import annotations

import pytest

from pages._charts import BAND_ORANGE, BAND_ORANGE_LINE, FORECAST_RED, HISTORY_BLUE
from pages.forecasts_view import PREPARING
from tests.browser.helpers import graph_traces, shot, wait_for_traces

pytestmark = pytest.mark.browser
GRAPHS = ("forecasts-consumption-graph", "forecasts-production-graph")
TRAIN_TIMEOUT_MS = 240_000  # in-process training on a busy 2-CPU machine; usually 5-20 s


def choose(page, dropdown_id: str, label: str) -> None:
    page.click(f"#{dropdown_id}")
    page.locator('[role="option"]', has_text=label).first.click()


def pick(page, radio_id: str, label: str) -> None:
    page.locator(f"#{radio_id} label", has_text=label).first.click()


def wait_for_message(page, text: str, timeout: float = 20_000) -> None:
    page.wait_for_function(
        """(t) => { const el = document.querySelector('#forecasts-message');
                    return !!el && el.innerText.includes(t); }""",
        arg=text,
        timeout=timeout,
    )


def train_and_wait(page) -> str:
    """Click Train, watch the progress bar, and return the job status text once both jobs ended.

    A previous training's status (and full bar) stays on the page until the first poll of the new jobs,
    so the wait is for a status that differs from the one before the click (new versions or errors)."""
    before = page.inner_text("#forecasts-job-status") if page.locator("#forecasts-job-status").count() else ""
    page.click("#forecasts-train")
    page.wait_for_selector("#forecasts-progress-box .progress", state="visible", timeout=10_000)
    page.wait_for_function(
        """(before) => { const el = document.querySelector('#forecasts-job-status');
                   if (!el || el.innerText === before) return false;
                   const lines = el.innerText.split('\\n').filter(l => l.trim());
                   return lines.length === 2 && lines.every(l => /trained|failed/.test(l)); }""",
        arg=before,
        timeout=TRAIN_TIMEOUT_MS,
    )
    bar = page.locator("#forecasts-progress .progress-bar")
    assert bar.get_attribute("aria-valuenow") == "100" and bar.inner_text() == "done"
    page.wait_for_function(  # the bar fills the track once its width transition has run
        """() => { const bar = document.querySelector('#forecasts-progress .progress-bar');
                   const track = document.querySelector('#forecasts-progress');
                   return bar.getBoundingClientRect().width >= track.getBoundingClientRect().width - 1; }""",
        timeout=5_000,
    )
    return page.inner_text("#forecasts-job-status")


def wait_for_forecast(page, graph_id: str, points: int) -> list[dict]:
    """Wait until the graph shows a red forecast trace of `points` points; its traces."""
    page.wait_for_function(
        """([id, color, n]) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
             return !!(el && el.data && el.data.some(t => t.name === 'Forecast' && t.line
                       && t.line.color === color && (t.y || []).length === n)); }""",
        arg=[graph_id, FORECAST_RED, points],
        timeout=20_000,
    )
    return graph_traces(page, graph_id)


def check_colours(traces: list[dict]) -> dict[str, dict]:
    by_name = {t["name"]: t for t in traces}
    assert {t["color"] for t in traces} == {HISTORY_BLUE, FORECAST_RED, BAND_ORANGE_LINE}
    assert by_name["History"]["color"] == HISTORY_BLUE and by_name["History"]["points"] > 0
    assert by_name["Forecast"]["color"] == FORECAST_RED
    assert [t["fillcolor"] for t in traces if t["fillcolor"]] == [BAND_ORANGE]  # the filled band
    assert by_name["History"]["x1"] < by_name["Forecast"]["x0"]  # the forecast starts after the history
    return by_name


def test_analyst_trains_and_sees_history_forecast_and_band(open_as):
    page = open_as("analyst", "/forecasts")
    wait_for_traces(page, GRAPHS[0])
    pick(page, "forecasts-model", "SARIMA")
    wait_for_message(page, PREPARING)  # nothing trained for this slot yet: its training is queued
    shot(page, "forecasts-analyst-no-model")

    status = train_and_wait(page)
    assert "failed" not in status and status.count("trained") == 2, status
    for graph_id in GRAPHS:
        traces = check_colours(wait_for_forecast(page, graph_id, 24))
        assert traces["Forecast"]["points"] == 24  # next 24 hours, hourly
    assert page.locator("#forecasts-consumption-model code").inner_text() in status  # the version shown
    assert "MAE" in page.inner_text("#forecasts-consumption-model")
    assert "trained" in page.inner_text("#forecasts-production-model")
    shot(page, "forecasts-analyst-next-24-hours")

    # short-term, 4 steps of 15 minutes: its own slot, trained here too; the forecast is 4 points long
    pick(page, "forecasts-product", "Short-term")
    choose(page, "forecasts-horizon", "4 steps (1 h 00 min)")
    pick(page, "forecasts-model", "XGBoost")
    pick(page, "forecasts-strategy", "Recursive")
    wait_for_message(page, PREPARING)
    status = train_and_wait(page)
    assert "failed" not in status, status
    for graph_id in GRAPHS:
        traces = check_colours(wait_for_forecast(page, graph_id, 4))
        assert traces["Forecast"]["points"] == 4
    assert not page.locator("#forecasts-message").is_visible()  # no message once both slots forecast
    shot(page, "forecasts-analyst-short-term")
    assert page.errors == []


def test_consumer_has_no_train_button(open_as):
    page = open_as("consumer", "/forecasts")
    traces = wait_for_traces(page, GRAPHS[0])
    assert page.locator("#forecasts-train").count() == 0
    wait_for_message(page, PREPARING)  # no model for their house yet: being prepared, no error
    assert all(t["color"] in (HISTORY_BLUE, FORECAST_RED, BAND_ORANGE_LINE) for t in traces)
    assert any(t["name"] == "History" and t["color"] == HISTORY_BLUE for t in traces)
    options = page.evaluate("() => document.querySelector('#forecasts-scope').innerText")
    assert "Community" not in options
    shot(page, "forecasts-consumer")
    assert page.errors == []
