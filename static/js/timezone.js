// Tell the server the viewer's time zone (cookie meterlog_tz, read by
// console.middleware.ViewerTimezoneMiddleware) so pages show local times.
// Reloads once when the cookie was missing or stale; the sessionStorage mark stops a
// loop when cookies are blocked or the server does not know the zone.
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
  var mark = "meterlog_tz_reloaded";
  try {
    if (sessionStorage.getItem(mark) === zone) return;
    sessionStorage.setItem(mark, zone);
  } catch (e) {
    return; // no sessionStorage: no way to guard against a loop, so do not reload
  }
  // Only a GET can be repeated safely: reloading a POST answer (the page that shows a new
  // token once) would send the form again. base.html stamps the method on <html>.
  if (document.documentElement.getAttribute("data-method") === "GET") {
    location.reload();
  }
})();
