// When the web server itself does not answer (stopped, restarting, a proxy's 502/503/504), Dash only logs
// "Callback failed: the server did not respond" in the console and the old page stays on screen. This
// watches the page's own requests to Dash and shows a banner instead, dims the stale content, probes
// /healthz every 5 s and offers a reload once the server is back. (An outage of the database or Redis
// behind a running server is told by the server itself: #outage-banner, dashboard/api/outages.py.)
(function () {
  "use strict";
  var BANNER_ID = "server-unreachable-banner";
  var PROBE_MS = 5000;
  var DASH_PATHS = ["/_dash-update-component", "/_dash-layout", "/_dash-dependencies"];
  var originalFetch = window.fetch.bind(window);
  var probe = null;

  function isDash(input) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    return DASH_PATHS.some(function (path) { return url.indexOf(path) !== -1; });
  }

  function banner() {
    var el = document.getElementById(BANNER_ID);
    if (el) return el;
    el = document.createElement("div");
    el.id = BANNER_ID;
    el.setAttribute("role", "alert");
    el.className = "alert alert-danger d-flex align-items-center justify-content-between m-0 rounded-0";
    el.style.position = "sticky";
    el.style.top = "0";
    el.style.zIndex = "2000";
    el.style.display = "none";
    var text = document.createElement("span");
    text.id = BANNER_ID + "-text";
    var reload = document.createElement("button");
    reload.id = BANNER_ID + "-reload";
    reload.type = "button";
    reload.className = "btn btn-sm btn-light ms-3";
    reload.textContent = "Reload the page";
    reload.addEventListener("click", function () { window.location.reload(); });
    el.appendChild(text);
    el.appendChild(reload);
    document.body.insertBefore(el, document.body.firstChild);
    return el;
  }

  function show(message, back) {
    var el = banner();
    document.getElementById(BANNER_ID + "-text").textContent = message;
    el.className = el.className.replace(/alert-(danger|success)/, back ? "alert-success" : "alert-danger");
    el.style.display = "flex";
    document.body.classList.toggle("server-unreachable", !back);
    var content = document.getElementById("_pages_content");
    if (content) content.style.opacity = back ? "" : "0.45"; // what is on screen may be stale
  }

  function hide() {
    var el = document.getElementById(BANNER_ID);
    if (el) el.style.display = "none";
    document.body.classList.remove("server-unreachable");
    var content = document.getElementById("_pages_content");
    if (content) content.style.opacity = "";
  }

  function startProbe() {
    if (probe !== null) return;
    probe = window.setInterval(function () {
      originalFetch("/healthz", { cache: "no-store" }).then(function (r) {
        if (!r.ok) return;
        window.clearInterval(probe);
        probe = null;
        show("The server is back. Reload the page to see current data.", true);
      }, function () { /* still away: keep probing */ });
    }, PROBE_MS);
  }

  function down(why) {
    show("The server is not answering (" + why + "): what you see may be out of date. " +
         "Checking again every " + PROBE_MS / 1000 + " s.", false);
    startProbe();
  }

  window.fetch = function (input, init) {
    var request = originalFetch(input, init);
    if (!isDash(input)) return request;
    return request.then(function (response) {
      var json = (response.headers.get("Content-Type") || "").indexOf("application/json") !== -1;
      if ([502, 503, 504].indexOf(response.status) !== -1 && !json) {
        down("HTTP " + response.status);  // a proxy's page; the app's own 503s are JSON and say more
      } else if (response.ok && probe === null) {
        hide();
      }
      return response;
    }, function (error) {
      down("no connection");
      throw error;
    });
  };
})();
