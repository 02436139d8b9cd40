// Live updates: the page listens to the node's events (same origin, the
// session cookie authenticates) and reloads its data when something it
// shows changes. Without JavaScript every page still reads fine.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!window.EventSource || !live) { return; }
  var es = new EventSource("/ui/events");
  var pending = null;
  es.onopen = function () { live.textContent = "live"; };
  es.onerror = function () { live.textContent = "reconnecting…"; };
  es.onmessage = function () {
    // Coalesce bursts: refresh the main region at most every second.
    if (pending) { return; }
    pending = setTimeout(function () {
      pending = null;
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main"), cur = document.getElementById("main");
        if (next && cur && !cur.contains(document.activeElement)) { cur.innerHTML = next.innerHTML; }
      });
    }, 1000);
  };
})();
