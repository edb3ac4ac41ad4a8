// A fresh tab's first page comes with the app's layout: the renderer's GET of /_dash-layout carries the
// page's path and query (X-Dash-Page), so the server draws that page into the layout (app.py
// page_container) instead of the browser asking Dash's page router for it in a second round trip once
// the layout is drawn. Without the header (an older cached copy of this script) the router draws the
// page as before.
//
// On a page with charts (the index's aggregator-chart-pages meta), plotly.js starts loading with that
// request: its download and evaluation (~150-300 ms of main thread) happen while the server draws the
// page, not after React has drawn it, when dcc.Graph would first ask for it. dcc.Graph takes
// window.Plotly, or a promise of it, as loaded (it appends its own script only when there is neither).
(function () {
  "use strict";
  var originalFetch = window.fetch.bind(window);
  var meta = document.querySelector('meta[name="aggregator-chart-pages"]');
  var chartPages = meta ? meta.getAttribute("content").split(" ") : [];

  function plotlyUrl() {
    if (window._dashPlotlyJSURL) return window._dashPlotlyJSURL;
    var prefix = "/";
    try {
      prefix = JSON.parse(document.getElementById("_dash-config").textContent).requests_pathname_prefix || "/";
    } catch (e) { /* Dash's default prefix */ }
    return prefix + "_dash-component-suites/plotly/package_data/plotly.min.js";
  }

  function preloadPlotly() {
    if (window.Plotly || chartPages.indexOf(window.location.pathname) < 0) return;
    var script = document.createElement("script");
    var loading = new Promise(function (resolve, reject) {
      var fail = function (error) {
        clearTimeout(timer);
        if (window.Plotly === loading) window.Plotly = undefined; // a later chart loads it as Dash does
        reject(error);
      };
      var timer = setTimeout(function () { fail(new Error("plotly.js did not load after 30 seconds")); }, 30000);
      script.onload = function () { clearTimeout(timer); resolve(window.Plotly); }; // plotly.js set it
      script.onerror = fail;
    });
    loading.catch(function () { /* dcc.Graph reports it */ });
    window.Plotly = loading;
    script.src = plotlyUrl();
    script.async = true;
    document.head.appendChild(script);
  }

  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    if (/\/_dash-layout$/.test(url.split("?")[0])) {
      init = Object.assign({}, init || {});
      var headers = new Headers(init.headers || {});
      headers.set("X-Dash-Page", window.location.pathname + window.location.search);
      init.headers = headers;
      var response = originalFetch(input, init);
      preloadPlotly();
      return response;
    }
    return originalFetch(input, init);
  };
})();
