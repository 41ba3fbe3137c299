// The filter forms of the log list and analytics sit in <details data-filters-fold open>: without
// this script they stay open. On a narrow screen (below 700 px) the form starts collapsed behind
// its "Filters" summary, so the first screen shows rows; the summary counts the active filters
// (the form's visible fields that have a value in the URL). A form with errors stays open.
(function () {
  "use strict";
  var narrow = window.matchMedia("(max-width: 700px)");

  function activeCount(form) {
    var params = new URLSearchParams(window.location.search);
    var names = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "hidden" || el.type === "submit") return;
      if (params.getAll(el.name).some(function (v) { return v !== ""; })) names[el.name] = true;
    });
    return Object.keys(names).length;
  }

  function setUp(fold) {
    var form = fold.querySelector("form");
    var badge = fold.querySelector("[data-filters-count]");
    if (form && badge) {
      var count = activeCount(form);
      badge.textContent = String(count);
      badge.hidden = count === 0;
      fold.querySelector("summary").setAttribute("aria-label", "Filters, " + count + " active");
    }
    var hasErrors = !!fold.querySelector(".has-error, .error");
    if (narrow.matches && !hasErrors) fold.open = false;
    // Back to a wide screen: the form shows again (its summary is hidden there).
    narrow.addEventListener("change", function (event) {
      if (!event.matches) fold.open = true;
    });
  }

  document.querySelectorAll("[data-filters-fold]").forEach(setUp);
})();
