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
  // The stream names its events (event: task.updated ...), and
  // EventSource.onmessage sees only unnamed ones: listen to each name.
  // A form the person has typed in, or one shown with an error, is never
  // replaced by a refresh.
  var typed = false;
  document.addEventListener("input", function () { typed = true; });
  var refresh = function () {
    // Coalesce bursts: refresh the main region at most every second.
    if (pending || typed || document.querySelector("#main [aria-invalid=true]")) { return; }
    pending = setTimeout(function () {
      pending = null;
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main"), cur = document.getElementById("main");
        if (next && cur && !cur.contains(document.activeElement)) { cur.innerHTML = next.innerHTML; }
      });
    }, 1000);
  };
  ["peer.connected", "peer.disconnected", "community.created", "community.joined", "community.left",
   "record.new", "task.updated", "skills.changed", "policy.changed", "trust.updated", "audit.done",
   "workflow.step", "events.gap"].forEach(function (t) { es.addEventListener(t, refresh); });
  es.onmessage = refresh;
})();
