// A fresh tab's first page comes with the app's layout: the renderer's GET of /_dash-layout carries the
// page's path and query (X-Dash-Page), so the server draws that page into the layout (app.py
// page_container) instead of the browser asking Dash's page router for it in a second round trip once
// the layout is drawn. Without the header (an older cached copy of this script) the router draws the
// page as before.
(function () {
  "use strict";
  var originalFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    if (/\/_dash-layout$/.test(url.split("?")[0])) {
      init = Object.assign({}, init || {});
      var headers = new Headers(init.headers || {});
      headers.set("X-Dash-Page", window.location.pathname + window.location.search);
      init.headers = headers;
    }
    return originalFetch(input, init);
  };
})();
