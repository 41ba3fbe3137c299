// Progress of export and import jobs: each [data-progress-url] element is polled every two
// seconds; its <progress> and text follow the job, and the page reloads when the job ends
// (to show the download link, the counts or the error). Without JavaScript the page
// refreshes itself every five seconds (<noscript> meta refresh).
(function () {
  "use strict";

  var ACTIVE = { queued: true, running: true };

  function format(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function poll(box) {
    var url = box.getAttribute("data-progress-url");
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-progress-text]");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (!ACTIVE[data.state]) {
            window.location.reload();
            return;
          }
          if (bar && data.percent !== null && data.percent !== undefined) bar.value = data.percent;
          if (text) {
            text.textContent = data.state === "queued" ? "Queued" : format(data.rows) + " rows" +
              (data.rows_estimate ? " of about " + format(data.rows_estimate) : "");
          }
          window.setTimeout(tick, 2000);
        })
        .catch(function () {
          window.setTimeout(tick, 5000);
        });
    }
    window.setTimeout(tick, 1000);
  }

  document.querySelectorAll("[data-progress-url]").forEach(poll);
})();
