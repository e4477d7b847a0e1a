// Refreshes a replay's progress (counts, deliveries, messages) every 2 seconds while it runs or
// while the messages it sent are still being delivered. When its status changes the page is
// reloaded, so that the buttons fit the new state, unless the operator is typing in a form.
// Without this script the page is complete: reload it to see progress.
(function () {
  "use strict";
  if (!document.getElementById("progress") || !window.fetch || !window.DOMParser) {
    return;
  }
  function typing() {
    var fields = document.querySelectorAll("form input[type=text], form textarea");
    for (var i = 0; i < fields.length; i += 1) {
      if (fields[i].value || fields[i] === document.activeElement) {
        return true;
      }
    }
    return false;
  }
  function refresh() {
    var current = document.getElementById("progress");
    if (!current || current.getAttribute("data-live") !== "true") {
      return;
    }
    fetch(current.getAttribute("data-url"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        var fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById("progress");
        if (fresh) {
          if (fresh.getAttribute("data-status") !== current.getAttribute("data-status") && !typing()) {
            window.location.reload();
            return;
          }
          current.replaceWith(fresh);
        }
        window.setTimeout(refresh, 2000);
      })
      .catch(function () {
        window.setTimeout(refresh, 5000);
      });
  }
  window.setTimeout(refresh, 2000);
})();
