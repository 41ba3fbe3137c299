// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // <select data-autosubmit>: submit its form on change (the account switcher).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("select[data-autosubmit]")) {
      target.form.submit();
    }
    // Picking a time range preset clears a custom start/end (an explicit start wins
    // over a preset on the server) and applies the filters at once.
    if (target.matches("[data-range] input[type=radio]")) {
      var form = target.form;
      form.elements.start.value = "";
      form.elements.end.value = "";
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
  });

  // <form data-confirm="...">: ask before destructive POSTs (revoke, remove).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // Empty GET filters clutter the URL that users copy and share: leave them out.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "log-filters") return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.disabled && (el.value === "" || el.value == null) && el.type !== "submit") {
        el.disabled = true;
      }
    });
  });

  // Coming back through the history restores the page with those fields still disabled.
  window.addEventListener("pageshow", function () {
    var form = document.getElementById("log-filters");
    if (!form) return;
    Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
  });

  // <button data-copy="#selector">: copy that element's text (the new token).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
})();
