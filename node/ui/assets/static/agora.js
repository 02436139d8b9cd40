// Live updates: the page listens to the node's events (same origin, the
// session cookie authenticates) and reloads its data when something it
// shows changes. Ranked ballots can be put in order by dragging or with
// buttons. Without JavaScript every page still reads fine, and every form
// still works (a ranked ballot by its numbers).
(function () {
  "use strict";
  // Controls that need this script (.gov-js) show only with it.
  document.documentElement.classList.add("js");
  // "Skip to content" moves the keyboard focus to the content, also in
  // browsers that only scroll to it.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.skip");
    var to = a && document.getElementById(a.getAttribute("href").slice(1));
    if (to) { to.focus(); }
  });

  // Ranked ballots: an <ol class="gov-ranked"> of <li class="gov-rank">,
  // each with its rank's number input. Moving a choice (drag and drop, or
  // its up and down buttons) renumbers every choice by its place; typing a
  // number puts the list in that order. The form posts the numbers.
  var rankInput = function (li) { return li.querySelector("input[type=number]"); };
  var renumber = function (ol) {
    var items = ol.querySelectorAll("li.gov-rank");
    for (var i = 0; i < items.length; i++) { rankInput(items[i]).value = String(i + 1); }
  };
  var say = function (li) {
    var status = document.getElementById("v-rank-status");
    var items = Array.prototype.slice.call(li.parentNode.querySelectorAll("li.gov-rank"));
    if (status) { status.textContent = li.getAttribute("data-name") + ": rank " + (items.indexOf(li) + 1) + " of " + items.length + "."; }
  };
  var enhance = function () {
    var items = document.querySelectorAll("ol.gov-ranked li.gov-rank");
    for (var i = 0; i < items.length; i++) { items[i].draggable = true; }
  };
  enhance();
  // The up and down buttons, by mouse or keyboard (Enter or Space).
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("ol.gov-ranked button.gov-up, ol.gov-ranked button.gov-down");
    if (!b) { return; }
    var li = b.closest("li.gov-rank"), ol = li.parentNode;
    var up = b.classList.contains("gov-up");
    var other = up ? li.previousElementSibling : li.nextElementSibling;
    if (!other) { return; }
    ol.insertBefore(li, up ? other : other.nextElementSibling);
    renumber(ol);
    // Moving the item takes the focus away: give it back, or to the other
    // button when this one reached the end.
    var keep = up ? (li.previousElementSibling ? b : li.querySelector(".gov-down")) : (li.nextElementSibling ? b : li.querySelector(".gov-up"));
    keep.focus();
    say(li);
  });
  // Typing a number: the list follows, blanks last.
  document.addEventListener("change", function (e) {
    var li = e.target.closest && e.target.closest("ol.gov-ranked li.gov-rank");
    if (!li) { return; }
    var ol = li.parentNode, focused = document.activeElement;
    var items = Array.prototype.slice.call(ol.querySelectorAll("li.gov-rank"));
    var rank = function (x) { var n = parseInt(rankInput(x).value, 10); return isNaN(n) ? Infinity : n; };
    items.map(function (x, i) { return { x: x, i: i }; })
      .sort(function (a, b) { return (rank(a.x) - rank(b.x)) || (a.i - b.i); })
      .forEach(function (p) { ol.appendChild(p.x); });
    if (focused && focused !== document.activeElement && document.contains(focused)) { focused.focus(); }
  });
  // Drag and drop: a choice dropped on another takes its place.
  var dragged = null;
  document.addEventListener("dragstart", function (e) {
    var li = e.target.closest && e.target.closest("ol.gov-ranked li.gov-rank");
    if (!li) { return; }
    dragged = li;
    li.classList.add("gov-dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", li.getAttribute("data-index"));
  });
  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("gov-dragging"); }
    dragged = null;
  });
  var target = function (e) {
    var li = e.target.closest && e.target.closest("ol.gov-ranked li.gov-rank");
    return li && (!dragged || li.parentNode === dragged.parentNode) ? li : null;
  };
  document.addEventListener("dragover", function (e) {
    if (target(e)) { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }
  });
  document.addEventListener("drop", function (e) {
    var to = target(e);
    if (!to) { return; }
    e.preventDefault();
    var ol = to.parentNode;
    var from = dragged || ol.querySelector('li.gov-rank[data-index="' + e.dataTransfer.getData("text/plain") + '"]');
    if (!from || from === to) { return; }
    var items = Array.prototype.slice.call(ol.querySelectorAll("li.gov-rank"));
    ol.insertBefore(from, items.indexOf(from) < items.indexOf(to) ? to.nextElementSibling : to);
    renumber(ol);
    say(from);
  });

  var live = document.getElementById("live");
  if (!window.EventSource || !live) { return; }
  var es = new EventSource("/ui/events");
  var pending = null;
  var connected = false, held = false;
  // The footer says whether updates arrive, wait, or are cut off.
  var status = function () {
    live.textContent = held ? "paused while you select" : connected ? "live" : "reconnecting…";
  };
  es.onopen = function () { connected = true; status(); };
  es.onerror = function () { connected = false; status(); };
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
  // Nor is the page replaced under a pressed pointer (a click lands on
  // the element that was pressed, and browsers that do not focus a button
  // on press would lose it) or while text in it is selected (to copy a
  // peer ID): the refresh waits, the indicator says so, and it happens
  // when the pointer is released or the selection cleared.
  var pressed = false;
  var selecting = function () {
    var sel = window.getSelection && window.getSelection();
    var main = document.getElementById("main");
    return !!(sel && !sel.isCollapsed && sel.rangeCount > 0 && main && sel.getRangeAt(0).intersectsNode(main));
  };
  var waiting = function () {
    if (!pressed && !selecting()) { return false; }
    if (!held) { held = true; status(); }
    return true;
  };
  var refresh;
  var resume = function () {
    if (held && !pressed && !selecting()) {
      held = false;
      status();
      refresh();
    }
  };
  // Only the primary button's press: a context menu's or a drag's may
  // end without a pointerup, so those end the press too, as does leaving
  // the window (a release outside it may never reach the page).
  document.addEventListener("pointerdown", function (e) {
    if (e.isPrimary && e.button === 0) { pressed = true; }
  }, true);
  ["pointerup", "pointercancel", "dragstart", "dragend", "contextmenu"].forEach(function (t) {
    document.addEventListener(t, function () { pressed = false; resume(); }, true);
  });
  window.addEventListener("blur", function () { pressed = false; resume(); });
  document.addEventListener("selectionchange", resume);
  refresh = function () {
    // Coalesce bursts: refresh the main region at most every second.
    if (pending || typed || edited() || document.querySelector("#main [aria-invalid=true]") || waiting()) { return; }
    pending = setTimeout(function () {
      pending = null;
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("main"), cur = document.getElementById("main");
        if (waiting()) { return; }
        if (next && cur && !cur.contains(document.activeElement) && !typed && !edited() && !dragged) {
          cur.innerHTML = next.innerHTML;
          enhance();
        }
      });
    }, 1000);
  };
  ["peer.connected", "peer.disconnected", "community.created", "community.joined", "community.left",
   "record.new", "task.updated", "skills.changed", "policy.changed", "trust.updated", "audit.done",
   "workflow.step", "events.gap"].forEach(function (t) { es.addEventListener(t, refresh); });
  es.onmessage = refresh;
})();
