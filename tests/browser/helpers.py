"""Helpers for the Playwright tests (fixtures live in tests/browser/conftest.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact (test-artifacts/screenshots/NAME.png)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def graph_traces(page, graph_id: str) -> list[dict]:
    """The traces a dcc.Graph has drawn in the browser: name, colour, point count, first/last x."""
    return page.evaluate(
        """(id) => {
            const el = document.querySelector('#' + id + ' .js-plotly-plot');
            if (!el || !el.data) return [];
            return el.data.map(t => ({
                name: t.name || null, type: t.type || 'scatter',
                color: (t.line && t.line.color) || (t.marker && t.marker.color) || t.fillcolor || null,
                fillcolor: t.fillcolor || null,
                points: (t.y || []).filter(v => v !== null).length, length: (t.x || []).length,
                x0: t.x && t.x.length ? String(t.x[0]) : null,
                x1: t.x && t.x.length ? String(t.x[t.x.length - 1]) : null }));
        }""",
        graph_id,
    )


def wait_for_traces(page, graph_id: str, timeout: float = 20_000) -> list[dict]:
    """Wait until the graph has at least one trace with a non-null point, then return the traces."""
    page.wait_for_function(
        """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                     return !!(el && el.data && el.data.some(t => (t.y || []).some(v => v !== null))); }""",
        arg=graph_id,
        timeout=timeout,
    )
    return graph_traces(page, graph_id)


def wait_for_length(page, graph_id: str, length: int) -> list[dict]:
    """Wait until the graph's first trace has `length` x values (its bars redrawn), then return the traces."""
    page.wait_for_function(
        """([id, n]) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                          return !!(el && el.data && el.data.length && (el.data[0].x || []).length === n); }""",
        arg=[graph_id, length],
        timeout=20_000,
    )
    return graph_traces(page, graph_id)


def dropdown_labels(page, dropdown_id: str):
    """Open a dcc.Dropdown and return (its option labels, the options locator) as the browser shows them."""
    page.click(f"#{dropdown_id}")
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=5_000)
    return [text.strip() for text in options.all_inner_texts()], options


def hover(page, graph_id: str, point) -> str:
    """Move the mouse onto a drawn point (a locator) as a user does; the text of the hover label(s) the
    browser shows then (one label per point, or one box for the hovered time in "x unified" mode)."""
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "(id) => (document.querySelector('#' + id + ' .hoverlayer') || {}).textContent",
        arg=graph_id,
        timeout=5_000,
    )
    return page.locator(f"#{graph_id} .hoverlayer").text_content()


def click_point(page, graph_id: str, point, done_js: str, attempts: int = 3) -> None:
    """Click a drawn point of a chart (a bar, a marker: a locator) the way a user does, until `done_js`
    (a JS function) holds. Plotly binds its click handler after drawing, and its drag layer takes the
    mouse: hover until the hover label shows, then press."""
    for _attempt in range(attempts):
        hover(page, graph_id, point)
        page.mouse.down()
        page.mouse.up()
        try:
            page.wait_for_function(done_js, timeout=5_000)
            return
        except Exception:  # noqa: BLE001 - retried, then the final wait below fails with the reason
            continue
    page.wait_for_function(done_js, timeout=10_000)
