// Draws every plotly figure on the page: an element with data-figure="<id>" gets the
// figure held in <script type="application/json" id="<id>"> (Django's json_script).
// Load it with `defer` after static/vendor/plotly.min.js. Shared by the analytics page and
// the dashboard; MeterlogCharts.drawAll(root) redraws inside `root` (default: document).
//
// A point whose customdata is a local path ("/logs/?...") is a link: clicking it follows it.
(function () {
  "use strict";

  var CONFIG = { displaylogo: false, responsive: true };

  function linkOf(event) {
    var point = event && event.points && event.points[0];
    var target = point && point.customdata;
    if (Array.isArray(target)) target = target[0];
    return typeof target === "string" && target.charAt(0) === "/" && target.charAt(1) !== "/" ? target : null;
  }

  function draw(element) {
    var source = document.getElementById(element.getAttribute("data-figure"));
    if (!source || !window.Plotly || element.getAttribute("data-drawn") === "1") return;
    var figure = JSON.parse(source.textContent);
    if (!figure) return;
    element.setAttribute("data-drawn", "1");
    var config = Object.assign({}, CONFIG, figure.config || {});
    window.Plotly.newPlot(element, figure.data || [], figure.layout || {}, config).then(function (plot) {
      plot.on("plotly_click", function (event) {
        var url = linkOf(event);
        if (url) window.location.assign(url);
      });
      plot.on("plotly_hover", function (event) {
        if (linkOf(event)) plot.style.cursor = "pointer";
      });
      plot.on("plotly_unhover", function () {
        plot.style.cursor = "";
      });
    });
  }

  function drawAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-figure]"), draw);
  }

  window.MeterlogCharts = { drawAll: drawAll, draw: draw };

  // The analytics filter bar: a preset range applies at once (and drops custom dates);
  // typing a date selects "custom"; empty fields stay out of the URL.
  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.form;
    if (!form || form.id !== "analytics-filters") return;
    if (target.name === "range" && target.value !== "custom") {
      form.elements.start.value = "";
      form.elements.end.value = "";
      form.requestSubmit ? form.requestSubmit() : form.submit();
    } else if (target.name === "range") {
      form.elements.start.focus();
    } else if (target.name === "start" || target.name === "end") {
      var custom = form.querySelector("input[name=range][value=custom]");
      if (custom) custom.checked = true;
    } else if (target.name === "zone") {
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "analytics-filters") return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && !el.disabled && el.type !== "submit" && el.type !== "radio" && el.type !== "select-multiple" && el.value === "") {
        el.disabled = true;
      }
    });
  });
  window.addEventListener("pageshow", function () {
    var form = document.getElementById("analytics-filters");
    if (!form) return;
    Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(); });
  } else {
    drawAll();
  }
})();
