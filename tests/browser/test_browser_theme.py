"""Dark mode, contrast and the keyboard path in chromium, on the demo server (review B15, B16, gap 7).

- The theme follows the system (`emulate_media(color_scheme=...)`) until the navbar's choice overrides
  it; the choice survives a reload (localStorage) and is on <html> before the page's body exists.
- Text contrast (WCAG relative luminance, from the computed styles) is >= 4.5:1 for the navbar links,
  muted text and buttons, in both themes.
- Tab from the top of a page with charts never lands on a Plotly modebar button, and every stop shows
  its focus; the modebar still appears on hover.
- No console errors under the app's Content-Security-Policy.
"""

from __future__ import annotations

import pytest
import requests

from tests.browser.helpers import shot, wait_for_traces
from tests.browser.theme_helpers import CONTRAST_JS, FOCUSED_JS, THEME_STATE_JS, brightness
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser
AA = 4.5

# Records data-bs-theme the moment <body> is parsed: set by then, the first paint is already themed.
THEME_AT_BODY = """
new MutationObserver((_, observer) => {
    if (document.body) {
        window.__themeAtBody = document.documentElement.getAttribute('data-bs-theme');
        observer.disconnect();
    }
}).observe(document, {childList: true, subtree: true});
"""


@pytest.fixture
def themed(browser, demo_server):
    """themed(username, path, scheme) -> a logged-in page whose system colour scheme is `scheme`."""
    contexts = []

    def _open(username: str, path: str, scheme: str):
        context = browser.new_context(
            base_url=demo_server, viewport={"width": 1400, "height": 1000}, color_scheme=scheme
        )
        contexts.append(context)
        context.add_init_script(THEME_AT_BODY)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto("/login")
        page.fill("#login-username", username)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#nav-logout")
        page.goto(path)
        page.wait_for_selector("#nav-logout")
        return page

    yield _open
    for context in contexts:
        context.close()


def state(page) -> dict:
    return page.evaluate(THEME_STATE_JS)


def choose(page, choice: str) -> None:
    page.select_option("#theme-choice", choice)
    page.wait_for_function(
        "(c) => document.documentElement.getAttribute('data-theme-choice') === c", arg=choice
    )


def test_theme_script_loads_in_head_under_the_csp(demo_server):
    """The script that sets the theme is in <head> (before the first paint), from this origin, which the
    CSP's script-src 'self' allows; Dash does not load it a second time at the end of the body."""
    answer = requests.get(demo_server + "/login", timeout=10)
    head, body = answer.text.split("</head>", 1)
    assert '<script src="/assets/theme.js?m=' in head
    assert "theme.js" not in body
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    script = requests.get(demo_server + "/assets/theme.js", timeout=10)
    assert script.ok and "data-bs-theme" in script.text


def test_dark_mode_follows_the_system_and_the_override_is_remembered(themed):
    page = themed("analyst", "/historical", "dark")
    wait_for_traces(page, "historical-consumption")
    dark = state(page)
    assert page.evaluate("window.__themeAtBody") == "dark"  # themed before the body: no light flash
    assert dark["theme"] == "dark" and dark["choice"] == "system" and dark["select"] == "system"
    assert brightness(dark["body"]) < 60
    assert brightness(dark["tick"]) > 180  # chart text light on the dark page
    assert dark["paper"] in ("rgba(0, 0, 0, 0)", "transparent")
    # the spec's colours stay whatever the theme
    traces = wait_for_traces(page, "historical-consumption")
    assert traces[0]["color"] == "#1f77b4"
    shot(page, "theme-dark-system-historical")

    choose(page, "light")  # override: light on a dark system
    light = state(page)
    assert light["theme"] == "light" and brightness(light["body"]) > 200 and brightness(light["tick"]) < 120
    page.reload()
    page.wait_for_selector("#theme-choice")
    wait_for_traces(page, "historical-consumption")
    assert page.evaluate("window.__themeAtBody") == "light"  # remembered, and applied before the body
    after = state(page)
    assert after["theme"] == "light" and after["select"] == "light"
    shot(page, "theme-light-override-historical")

    choose(page, "system")  # back to the system's, which then changes live
    assert state(page)["theme"] == "dark"
    page.emulate_media(color_scheme="light")
    page.wait_for_function("() => document.documentElement.getAttribute('data-bs-theme') === 'light'")
    page.emulate_media(color_scheme="dark")
    page.wait_for_function("() => document.documentElement.getAttribute('data-bs-theme') === 'dark'")
    assert page.errors == []


def test_dark_override_on_a_light_system_before_first_paint(themed):
    page = themed("consumer", "/home", "light")
    assert state(page)["theme"] == "light"
    choose(page, "dark")
    page.goto("/exports")
    page.wait_for_selector("#exports-rows")
    assert page.evaluate("window.__themeAtBody") == "dark"
    assert brightness(state(page)["body"]) < 60
    shot(page, "theme-dark-override-exports")
    assert page.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa_in_both_themes(themed, scheme):
    """Navbar links (2.36:1 before), muted text and button text: >= 4.5:1, computed in the browser."""
    page = themed("admin", "/exports", scheme)
    page.wait_for_selector("#exports-rows")
    assert state(page)["theme"] == scheme
    measured = {
        "navbar link": page.evaluate(CONTRAST_JS, ".navbar .nav-link, .navbar .navbar-brand"),
        "muted text": page.evaluate(CONTRAST_JS, ".text-muted, .form-text"),
        "button": page.evaluate(CONTRAST_JS, ".btn"),
    }
    page.goto("/admin")
    page.wait_for_selector("#admin-users-rows")
    measured["button"] += page.evaluate(CONTRAST_JS, ".btn")
    measured["muted text"] += page.evaluate(CONTRAST_JS, ".text-muted, .form-text")
    shot(page, f"contrast-{scheme}-admin")
    for kind, items in measured.items():
        assert items, f"no {kind} found to measure"
        low = [item for item in items if item["ratio"] < AA]
        assert not low, f"{kind} below {AA}:1 in the {scheme} theme: {low}"
    assert min(i["ratio"] for i in measured["navbar link"]) >= AA
    assert page.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_tab_from_the_top_skips_chart_toolbars_and_focus_is_always_visible(themed, scheme):
    page = themed("analyst", "/historical", scheme)
    wait_for_traces(page, "historical-consumption")
    page.wait_for_selector(".modebar-btn", state="attached")
    untabbed = page.evaluate(
        "() => Array.from(document.querySelectorAll('.modebar-btn')).map(b => b.getAttribute('tabindex'))"
    )
    assert untabbed and set(untabbed) == {"-1"}
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    stops = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused is None or focused in stops[:1]:  # past the last control, or round again
            break
        stops.append(focused)
    assert len(stops) >= 10, stops  # the navbar, theme choice, the page's radios and dropdowns
    assert not [s for s in stops if s["in_modebar"]], stops
    hidden = [s for s in stops if not s["visible_focus"]]
    assert not hidden, f"focus not visible on: {hidden}"
    # the toolbar is still there for the mouse: it shows on hover and its buttons answer clicks
    graph = page.locator("#historical-consumption .js-plotly-plot")
    graph.hover()
    autoscale = page.locator("#historical-consumption .modebar-btn[data-title='Autoscale']")
    autoscale.wait_for(state="visible")
    autoscale.click()
    shot(page, f"keyboard-{scheme}-historical")
    assert page.errors == []
