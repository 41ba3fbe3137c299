// The "Generate report" page: the Print button, and the charts redrawn at the printed
// page's width before printing (plotly keeps the width it was drawn at: a chart as wide as
// a big screen would be cut at the page's edge), then again at the screen's width after.
(function () {
  "use strict";

  var PRINT_WIDTH = 680; // px: an A4 page less its 12 mm margins, with room to spare
  var fitted = false;

  function plots() {
    return document.querySelectorAll(".report-chart .js-plotly-plot");
  }

  function fitForPrint() {
    if (!window.Plotly || fitted) return;
    fitted = true;
    Array.prototype.forEach.call(plots(), function (plot) {
      window.Plotly.relayout(plot, { width: PRINT_WIDTH, autosize: false });
    });
  }

  function fitForScreen() {
    if (!window.Plotly || !fitted) return;
    fitted = false;
    Array.prototype.forEach.call(plots(), function (plot) {
      window.Plotly.relayout(plot, { width: null, autosize: true });
    });
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-print]")) return;
    fitForPrint();
    // Let the relayout reach the page before the print dialog takes its picture.
    window.setTimeout(function () { window.print(); }, 150);
  });
  window.addEventListener("beforeprint", fitForPrint);
  window.addEventListener("afterprint", fitForScreen);
  if (window.matchMedia) {
    var print = window.matchMedia("print");
    if (print.addEventListener) {
      print.addEventListener("change", function (event) {
        if (event.matches) fitForPrint(); else fitForScreen();
      });
    }
  }
  window.MeterlogReport = { fitForPrint: fitForPrint, fitForScreen: fitForScreen };
})();
