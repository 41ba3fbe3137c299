// The log list's toolbar and filter bar extras: the column picker and page size (kept in
// cookies the server reads, see logs/list_prefs.py) and the date fields a preset filled.
(function () {
  "use strict";

  var YEAR = 365 * 24 * 3600;

  function setCookie(name, value) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + YEAR + "; SameSite=Lax";
  }

  function init() {
    var toolbar = document.getElementById("table-toolbar");
    if (toolbar) toolbar.hidden = false;
    var table = document.getElementById("log-table");

    var picker = document.getElementById("column-picker");
    if (picker && table) {
      picker.addEventListener("change", function (event) {
        var box = event.target;
        if (box.name !== "column") return;
        Array.prototype.forEach.call(table.querySelectorAll("[data-col='" + box.value + "']"), function (cell) {
          cell.hidden = !box.checked;
        });
        var chosen = Array.prototype.filter.call(picker.querySelectorAll("input[name=column]"), function (b) {
          return b.checked;
        }).map(function (b) { return b.value; });
        setCookie("meterlog_log_columns", chosen.length ? chosen.join(",") : "-");
      });
      // The menu closes on a click elsewhere, as the other menus do.
      document.addEventListener("click", function (event) {
        if (picker.open && !picker.contains(event.target)) picker.open = false;
      });
    }

    var size = document.getElementById("page-size");
    if (size) {
      size.addEventListener("change", function () {
        setCookie("meterlog_log_page_size", size.value);
        window.location.reload();
      });
    }

    // A preset filled From / To with the window it means. Untouched, they stay out of the
    // URL (the range keeps rolling); edited, the range becomes a custom one.
    var form = document.getElementById("log-filters");
    if (!form) return;
    function onEdit(event) {
      var target = event.target;
      if ((target.name !== "start" && target.name !== "end") || !target.hasAttribute("data-preset")) return;
      ["start", "end"].forEach(function (name) { form.elements[name].removeAttribute("data-preset"); });
      var all = form.querySelector("[data-range] input[value='']");
      if (all) all.checked = true;
    }
    form.addEventListener("input", onEdit);
    form.addEventListener("change", onEdit);
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.querySelectorAll("[data-preset]"), function (el) { el.disabled = true; });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
