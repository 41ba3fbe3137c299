// The alert rule form: show the parameters of the chosen kind only (all show without JS).
(function () {
  "use strict";
  var form = document.getElementById("rule-form");
  if (!form) return;
  var kind = form.elements.kind;
  function show() {
    var current = kind.value;
    Array.prototype.forEach.call(form.querySelectorAll(".rule-params"), function (fieldset) {
      fieldset.hidden = fieldset.getAttribute("data-kind") !== current;
    });
  }
  kind.addEventListener("change", show);
  show();
})();
