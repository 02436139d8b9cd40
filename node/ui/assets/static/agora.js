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
  // A field whose value differs from the page's: someone is filling a form.
  var edited = function () {
    var fields = document.querySelectorAll("#main input, #main textarea, #main select");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "hidden") { continue; }
      if (f.type === "checkbox" || f.type === "radio") {
        if (f.checked !== f.defaultChecked) { return true; }
      } else if (f.tagName === "SELECT") {
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].selected !== f.options[j].defaultSelected) { return true; }
        }
      } else if (f.value !== f.defaultValue) {
        return true;
      }
    }
    return false;
  };
  var refresh = function () {
    // Coalesce bursts: refresh the main region at most every second.
    if (pending || typed || edited() || document.querySelector("#main [aria-invalid=true]")) { return; }
    pending = setTimeout(function () {
      pending = null;
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main"), cur = document.getElementById("main");
        if (next && cur && !cur.contains(document.activeElement) && !typed && !edited()) { cur.innerHTML = next.innerHTML; }
      });
    }, 1000);
  };
  ["peer.connected", "peer.disconnected", "community.created", "community.joined", "community.left",
   "record.new", "task.updated", "skills.changed", "policy.changed", "trust.updated", "audit.done",
   "workflow.step", "events.gap"].forEach(function (t) { es.addEventListener(t, refresh); });
  es.onmessage = refresh;
})();
