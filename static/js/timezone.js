// Tell the server the viewer's time zone (cookie meterlog_tz, read by console.zones) so
// pages can show times in "my zone". It runs on every page, the login page included, so
// the first signed-in request already carries the zone: no page is reloaded to learn it.
// A zone that changed since (travel) applies from the next page; the topbar's switch says
// which zone this page used.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  var match = document.cookie.match(/(?:^|;\s*)meterlog_tz=([^;]*)/);
  var current = match ? decodeURIComponent(match[1]) : null;
  if (current === zone) return;
  document.cookie = "meterlog_tz=" + encodeURIComponent(zone) +
    "; path=/; max-age=31536000; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  // The switch names this browser's zone even before the server has heard of it.
  document.addEventListener("DOMContentLoaded", function () {
    var label = document.querySelector("[data-browser-zone]");
    if (label) label.textContent = zone;
  });
})();
