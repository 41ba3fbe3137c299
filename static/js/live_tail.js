// The log list's "Live" switch: every few seconds it asks the list for the rows newer than
// the first one shown (?newer_than=<cursor>&<the applied filters>, a keyset query) and puts
// them on top of the table. It pauses while the page is scrolled down, while a filter is
// being edited, and while the tab is hidden. The switch is remembered for the tab.
(function () {
  "use strict";

  var STORE = "meterlog.live";

  function init() {
    var box = document.getElementById("live-tail");
    var toggle = document.getElementById("live-toggle");
    var table = document.getElementById("log-table");
    if (!box || !toggle || !table) return;
    var tbody = table.tBodies[0];
    var status = document.getElementById("live-status");
    var form = document.getElementById("log-filters");
    var size = document.getElementById("page-size");
    var newest = box.getAttribute("data-newest");
    var interval = parseInt(box.getAttribute("data-poll-ms"), 10) || 3000;
    var timer = null;
    var busy = false;
    var editing = false;
    var arrived = 0;

    function say(text) { status.textContent = text; }

    function pausedWhy() {
      if (editing) return "Paused: apply the filters to resume";
      if (scrolledPast()) return "Paused while you read further down; scroll up to the newest row to resume";
      if (document.hidden) return "Paused";
      return "";
    }

    // New rows would push what the user is reading down the page: the tail waits while the
    // newest row is above the window (on a phone the table starts below the fold, so this
    // is about the table, not the page's scroll offset).
    function scrolledPast() {
      var first = tbody.rows[0];
      return !!first && first.getBoundingClientRect().top < 0;
    }

    function schedule(delay) {
      clearTimeout(timer);
      if (toggle.checked) timer = setTimeout(poll, delay);
    }

    function poll() {
      if (!toggle.checked || busy) return;
      var why = pausedWhy();
      box.classList.toggle("paused", !!why);
      if (why) { say(why); schedule(interval); return; }
      var params = new URLSearchParams(window.location.search);
      params.delete("cursor");
      params.set("newer_than", newest);
      busy = true;
      fetch(window.location.pathname + "?" + params.toString(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (answer) {
        busy = false;
        if (!answer.ok) {
          var errors = answer.body && answer.body.errors ? Object.values(answer.body.errors)[0] : ["error"];
          toggle.checked = false;
          say("Live stopped: " + errors);
          return;
        }
        var body = answer.body;
        if (body.count) {
          insert(body.html);
          newest = body.newest;
          arrived += body.count;
        }
        var at = new Date().toLocaleTimeString();
        say(arrived ? arrived + " new since Live was switched on · checked " + at : "Waiting for new requests · checked " + at);
        schedule(body.more ? 0 : interval);
      }).catch(function () {
        busy = false;
        say("Live: the server did not answer; trying again");
        schedule(interval * 3);
      });
    }

    function insert(html) {
      var empty = tbody.querySelector("tr.empty-row");
      if (empty) empty.remove();
      var holder = document.createElement("tbody");
      holder.innerHTML = html;
      var rows = Array.prototype.slice.call(holder.rows);
      for (var i = rows.length - 1; i >= 0; i--) {
        rows[i].classList.add("row-new");
        tbody.insertBefore(rows[i], tbody.firstChild);
      }
      trim();
    }

    // The table stays one page long: rows pushed off the bottom are on the "Older" page,
    // whose link now starts after the last row still shown.
    function trim() {
      var limit = size ? parseInt(size.value, 10) : 50;
      if (tbody.rows.length <= limit) return;
      while (tbody.rows.length > limit) tbody.deleteRow(tbody.rows.length - 1);
      var last = tbody.rows[tbody.rows.length - 1].getAttribute("data-cursor");
      var older = document.getElementById("older-link");
      if (!older) {
        older = document.createElement("a");
        older.className = "btn";
        older.id = "older-link";
        older.rel = "next";
        older.textContent = "Older →";
        document.querySelector("nav.pager").appendChild(older);
      }
      var params = new URLSearchParams(window.location.search);
      params.set("cursor", last);
      older.href = "?" + params.toString();
    }

    function start() {
      box.classList.add("on");
      say("Live: checking for new requests");
      schedule(0);
    }

    function stop() {
      clearTimeout(timer);
      box.classList.remove("on", "paused");
      say("");
    }

    toggle.addEventListener("change", function () {
      try { sessionStorage.setItem(STORE, toggle.checked ? "1" : "0"); } catch (e) { /* private mode */ }
      if (toggle.checked) { start(); } else { stop(); }
    });
    if (form) {
      form.addEventListener("input", function () { editing = true; });
      form.addEventListener("change", function () { editing = true; });
    }
    window.addEventListener("scroll", function () {
      if (toggle.checked && !scrolledPast() && box.classList.contains("paused") && !editing) schedule(0);
    }, { passive: true });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && toggle.checked) schedule(0);
    });
    var remembered = null;
    try { remembered = sessionStorage.getItem(STORE); } catch (e) { /* private mode */ }
    if (remembered === "1") {
      toggle.checked = true;
      start();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
