// The "Generate report" page: the Print button, and charts redrawn at the printed page's
// width (plotly keeps the width it was drawn at, which is wider than an A4 page on a big
// screen), then back at the screen's width afterwards.
(function () {
  "use strict";

  function resizeCharts() {
    if (!window.Plotly) return;
    Array.prototype.forEach.call(document.querySelectorAll(".report-chart .js-plotly-plot"), function (plot) {
      window.Plotly.Plots.resize(plot);
    });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
  window.addEventListener("beforeprint", resizeCharts);
  window.addEventListener("afterprint", resizeCharts);
  if (window.matchMedia) {
    var print = window.matchMedia("print");
    if (print.addEventListener) print.addEventListener("change", resizeCharts);
  }
})();
