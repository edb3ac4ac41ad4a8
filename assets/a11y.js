// Keyboard and phone behaviour Dash and Plotly do not give on their own:
// - Plotly's toolbar (modebar) buttons leave the Tab order: about ten unlabeled stops per chart sat
//   between a page's controls. They stay usable with the mouse, and touch; the chart itself is unchanged.
// - On a phone the collapsed navbar closes after a page is chosen (dbc's NavbarSimple keeps it open
//   because Dash changes pages without a reload). Closing goes through the toggler, so the component's
//   own state stays right.
// - A chart title wider than its chart (a phone's narrow column) is drawn smaller until it fits, down
//   to 9 px, instead of running off the figure's edge (SVG text does not wrap).
(function () {
  "use strict";
  var MODEBAR_BUTTONS = ".modebar-btn:not([tabindex='-1']), .modebar a:not([tabindex='-1'])";

  function untabModebars(root) {
    var buttons = (root || document).querySelectorAll(MODEBAR_BUTTONS);
    for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute("tabindex", "-1");
  }

  var MIN_TITLE_PX = 9;

  function fitTitles() {
    var titles = document.querySelectorAll(".js-plotly-plot .gtitle");
    for (var i = 0; i < titles.length; i++) {
      var title = titles[i];
      var svg = title.ownerSVGElement;
      var plot = title.closest(".js-plotly-plot");
      var layout = plot && plot._fullLayout;
      if (!svg || !layout || !layout.title || !layout.title.font) continue;
      var base = layout.title.font.size;
      var size = parseFloat(window.getComputedStyle(title).fontSize) || base;
      var natural = title.getComputedTextLength() * base / size;
      var room = svg.getBoundingClientRect().right - title.getBoundingClientRect().left - 4;
      var wanted = natural > room ? Math.max(MIN_TITLE_PX, base * room / natural) : base;
      if (Math.abs(wanted - size) > 0.25) title.style.setProperty("font-size", wanted + "px", "important");
    }
  }

  var fitQueued = false;
  function queueFit() {
    if (fitQueued) return;
    fitQueued = true;
    window.requestAnimationFrame(function () { fitQueued = false; fitTitles(); });
  }

  function closeMenuAfterChoice(event) {
    var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
    if (!link) return;
    // open, or still opening (a choice made during the collapse animation must close it too)
    var menu = link.closest(".navbar-collapse.show, .navbar-collapse.collapsing");
    if (!menu) return;
    var navbar = menu.closest(".navbar");
    var toggler = navbar && navbar.querySelector(".navbar-toggler");
    if (toggler && toggler.offsetParent !== null) toggler.click();  // visible only while collapsed
  }

  function start() {
    untabModebars(document);
    new MutationObserver(function (mutations) {
      for (var i = 0; i < mutations.length; i++) {
        if (mutations[i].addedNodes.length) { untabModebars(document); queueFit(); return; }
      }
    }).observe(document.body, { childList: true, subtree: true });
    document.addEventListener("click", closeMenuAfterChoice);
    window.addEventListener("resize", queueFit);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
