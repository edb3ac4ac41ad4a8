"""Browser-side measurements for the theme, contrast, keyboard and phone tests: WCAG contrast from the
computed styles, the boxes of a chart's legend, modebar, title and axis titles."""

from __future__ import annotations

# The WCAG 2.x contrast ratio of every visible element a selector matches: its text colour composited
# over the backgrounds of its ancestors (alpha included), relative luminance per WCAG 2.1 1.4.3.
CONTRAST_JS = """(selector) => {
    const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
        const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
        return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
    const over = (top, bottom) => ({ r: top.r * top.a + bottom.r * (1 - top.a),
        g: top.g * top.a + bottom.g * (1 - top.a), b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
    const background = (el) => {
        const layers = [];
        for (let e = el; e; e = e.parentElement) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
        }
        let colour = {r: 255, g: 255, b: 255, a: 1};  // the canvas behind everything
        for (let i = layers.length - 1; i >= 0; i--) colour = over(layers[i], colour);
        return colour;
    };
    const lum = (c) => { const f = (v) => { v /= 255;
        return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
    return Array.from(document.querySelectorAll(selector))
        .filter(e => e.offsetParent !== null && e.innerText.trim() && !e.disabled
                     && getComputedStyle(e).visibility !== 'hidden')
        .map(e => { const bg = background(e); const fg = over(parse(getComputedStyle(e).color), bg);
            const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
            return {text: e.innerText.trim().slice(0, 40), id: e.id, ratio: (hi + 0.05) / (lo + 0.05),
                    fg: [fg.r, fg.g, fg.b].map(Math.round), bg: [bg.r, bg.g, bg.b].map(Math.round)}; });
}"""

# Per drawn chart: the boxes of its legend, modebar (when shown), title and axis titles.
CHART_BOXES_JS = """() => {
    const box = (e) => { if (!e) return null; const r = e.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return null;
        const s = getComputedStyle(e.closest('.modebar-container') || e);
        if (s.display === 'none' || s.visibility === 'hidden') return null;
        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
    return Array.from(document.querySelectorAll('.js-plotly-plot')).filter(p => p._fullLayout).map(p => ({
        id: (p.closest('[id]') || {}).id || '',
        figure: box(p.querySelector('.main-svg')),
        legend: box(p.querySelector('.infolayer .legend')),
        modebar: box(p.querySelector('.modebar')),
        gtitle: box(p.querySelector('.gtitle')),
        xtitle: box(p.querySelector('.xtitle')),
        ytitle: box(p.querySelector('.ytitle')),
        xticks: Array.from(p.querySelectorAll('.xaxislayer-above .xtick text')).map(box).filter(Boolean),
    }));
}"""

# The theme as the page shows it: <html>'s attribute, the body's background and a chart's tick text.
THEME_STATE_JS = """() => {
    const tick = document.querySelector('.js-plotly-plot .xtick text');
    return { theme: document.documentElement.getAttribute('data-bs-theme'),
             choice: document.documentElement.getAttribute('data-theme-choice'),
             select: (document.getElementById('theme-choice') || {}).value || null,
             body: getComputedStyle(document.body).backgroundColor,
             tick: tick ? getComputedStyle(tick).fill : null,
             paper: (document.querySelector('.js-plotly-plot .main-svg') ?
                     getComputedStyle(document.querySelector('.js-plotly-plot .main-svg')).backgroundColor
                     : null) };
}"""

# The focused element after a Tab: where it is and whether its focus can be seen.
FOCUSED_JS = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
    const s = getComputedStyle(e);
    return { tag: e.tagName, id: e.id, cls: String(e.className && e.className.baseVal !== undefined
                                                     ? e.className.baseVal : e.className),
             text: (e.innerText || e.getAttribute('aria-label') || e.getAttribute('data-title') || '').slice(0, 30),
             in_modebar: !!e.closest('.modebar, .modebar-container'),
             visible_focus: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                            || (s.boxShadow && s.boxShadow !== 'none') };
}"""


def overlaps(a: dict | None, b: dict | None, slack: float = 0.5) -> bool:
    """Whether two boxes share more than `slack` pixels in both directions (None: not shown)."""
    if a is None or b is None:
        return False
    return (
        a["left"] + slack < b["right"]
        and b["left"] + slack < a["right"]
        and a["top"] + slack < b["bottom"]
        and b["top"] + slack < a["bottom"]
    )


def brightness(css_colour: str) -> float:
    """The mean of an rgb()/rgba() colour's channels, 0-255 (a dark theme's background is low)."""
    inner = css_colour[css_colour.index("(") + 1 : css_colour.index(")")]
    parts = [float(p) for p in inner.replace("/", " ").replace(",", " ").split()]
    return sum(parts[:3]) / 3
