// The live pages' only script (served by `aggregator serve`; the CSP allows no other).
// The wall: replace its panels with each update from /wall/events (server-rendered, escaped HTML).
// The moderation page: one key per action on the focused post (j/k to move), and a notice when
// new posts arrive. Every action is a plain form, so the page works without this script too.
(function () {
  "use strict";
  var body = document.body;
  var source = body.getAttribute("data-events");

  function connect(event, handle) {
    if (!source || !window.EventSource) return;
    var events = new EventSource(source);
    events.addEventListener(event, function (e) { handle(JSON.parse(e.data)); });
  }

  if (body.classList.contains("wall")) {
    var wall = document.getElementById("wall");
    connect("wall", function (data) { wall.innerHTML = data.html; });
    return;
  }

  var first = true;
  connect("changed", function () {
    if (first) { first = false; return; }  // the state the page was drawn from
    var fresh = document.getElementById("fresh");
    if (fresh) fresh.hidden = false;
  });

  var cards = Array.prototype.slice.call(document.querySelectorAll("[data-card]"));
  function current() {
    var el = document.activeElement;
    return el && el.closest ? el.closest("[data-card]") : null;
  }
  function move(step) {
    var at = cards.indexOf(current());
    var next = cards[Math.max(0, Math.min(cards.length - 1, at < 0 ? 0 : at + step))];
    if (next) { next.focus(); next.scrollIntoView({block: "nearest"}); }
  }
  var back = window.location.hash.match(/^#c\d+$/) && document.getElementById(window.location.hash.slice(1));
  if (back) back.focus(); else if (cards.length) cards[0].focus();

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    var key = e.key.toLowerCase();
    if (key === "j" || key === "arrowdown") { move(1); e.preventDefault(); return; }
    if (key === "k" || key === "arrowup") { move(-1); e.preventDefault(); return; }
    if (key === "r") { window.location.assign("/moderate"); return; }
    var card = current();
    if (!card) return;
    var button = card.querySelector('button[data-key="' + key + '"]');
    if (button) { e.preventDefault(); button.form.requestSubmit(button); }
  });
})();
