// The log detail page: copy buttons (request id, raw JSON) and j / k for the older / newer
// request of the list it was opened from.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain-HTTP installs have no clipboard API: copy through a selected textarea.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var done = document.execCommand && document.execCommand("copy");
      area.remove();
      if (done) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy-target]"), function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.querySelector(button.getAttribute("data-copy-target"));
        if (!source) return;
        var label = button.textContent;
        copyText(source.textContent.trim()).then(function () {
          button.textContent = "Copied";
        }, function () {
          button.textContent = "Copy failed";
        }).then(function () {
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      var tag = event.target.tagName;
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable) return;
      var link = document.getElementById(event.key === "j" ? "older-link" : event.key === "k" ? "newer-link" : "");
      if (link) link.click();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
