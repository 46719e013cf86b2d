// Progressive enhancement for the Webhooks pages: every page works without this file.
// No inline scripts anywhere, so a strict Content-Security-Policy can forbid them.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#input-id" hidden>.
  function setUpCopy() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (!target) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(target.value).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
        }, function () {
          target.select();
        });
      });
    });
    document.querySelectorAll("[data-secret]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
    });
  }

  // "Select all" per activity-type category.
  function setUpSelectAll() {
    document.querySelectorAll("[data-category]").forEach(function (group) {
      var all = group.querySelector("[data-select-all]");
      var boxes = Array.prototype.slice.call(group.querySelectorAll('input[name="activity_types"]'));
      if (!all || !boxes.length) return;
      all.closest("label").hidden = false;
      function sync() {
        var checked = boxes.filter(function (b) { return b.checked; }).length;
        all.checked = checked === boxes.length;
        all.indeterminate = checked > 0 && checked < boxes.length;
      }
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        sync();
      });
      boxes.forEach(function (b) { b.addEventListener("change", sync); });
      sync();
    });
  }

  // The Delivery Log refreshes itself while some of its deliveries are unfinished.
  var REFRESH_MS = 2000;
  function setUpLiveLog() {
    var log = document.querySelector("[data-log][data-refresh]");
    if (!log || !window.fetch) return;
    var note = log.querySelector("[data-live-note]");
    if (note) note.hidden = false;
    setTimeout(function () { refresh(log); }, REFRESH_MS);
  }
  function refresh(log) {
    // Not while the tab is hidden, nor while the user is using the filters.
    if (document.hidden || log.contains(document.activeElement)) {
      setTimeout(function () { refresh(log); }, REFRESH_MS);
      return;
    }
    fetch(log.getAttribute("data-refresh"), {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("[data-log]");
        if (!fresh) return;
        log.replaceWith(fresh);
        setUpLiveLog();
      })
      .catch(function () { setTimeout(function () { refresh(log); }, REFRESH_MS * 5); });
  }

  function start() {
    setUpCopy();
    setUpSelectAll();
    setUpLiveLog();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
