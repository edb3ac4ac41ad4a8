// The colour theme: light, dark or "system" (the default: follows prefers-color-scheme, live). The choice
// is the browser's own (localStorage), so it needs no account and no server round trip.
//
// Loaded from <head> (app.py's index page), before the first paint: it sets Bootstrap 5.3's
// data-bs-theme on <html> at once, so a dark page never flashes white. Dash does not list it again at
// the end of the page (app.py: assets_ignore). The navbar's #theme-choice <select>, rendered later by
// React, is kept in step with the stored choice; changing it applies and remembers the new one.
(function () {
  "use strict";
  if (window.aggregatorTheme) return;
  var KEY = "aggregator-theme";
  var CHOICES = ["light", "dark", "system"];
  var SELECT_ID = "theme-choice";
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return CHOICES.indexOf(value) !== -1 ? value : "system";
    } catch (e) {  // storage blocked: follow the system
      return "system";
    }
  }

  function effective(choice) {
    if (choice !== "system") return choice;
    return media && media.matches ? "dark" : "light";
  }

  function syncSelect(choice) {
    var select = document.getElementById(SELECT_ID);
    if (select && select.value !== choice) select.value = choice;
  }

  function apply() {
    var choice = stored();
    var root = document.documentElement;
    root.setAttribute("data-bs-theme", effective(choice));
    root.setAttribute("data-theme-choice", choice);
    syncSelect(choice);
  }

  function choose(choice) {
    if (CHOICES.indexOf(choice) === -1) return;
    try {
      if (choice === "system") window.localStorage.removeItem(KEY);
      else window.localStorage.setItem(KEY, choice);
    } catch (e) { /* not remembered, still applied below */ }
    var root = document.documentElement;
    root.setAttribute("data-bs-theme", effective(choice));
    root.setAttribute("data-theme-choice", choice);
  }

  apply();
  if (media) {
    var follow = function () { if (stored() === "system") apply(); };
    if (media.addEventListener) media.addEventListener("change", follow);
    else if (media.addListener) media.addListener(follow);
  }
  window.addEventListener("storage", function (event) { if (event.key === KEY) apply(); });  // other tabs
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === SELECT_ID) choose(event.target.value);
  });
  document.addEventListener("DOMContentLoaded", function () {
    new MutationObserver(function () { syncSelect(stored()); })
      .observe(document.body, { childList: true, subtree: true });
  });
  window.aggregatorTheme = { choose: choose, stored: stored, effective: effective };
})();
