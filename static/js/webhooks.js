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
    // Event ids in the Delivery Log: <button data-copy-text="evt_..." hidden>.
    document.querySelectorAll("[data-copy-text]").forEach(function (button) {
      if (button.dataset.ready) return;
      button.dataset.ready = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.getAttribute("data-copy-text")).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
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
        var changed = fresh.innerHTML !== log.innerHTML;
        log.replaceWith(fresh);
        setUpCopy();
        showLocalTimes(fresh);
        if (changed) announce(fresh);
        setUpLiveLog();
      })
      .catch(function () { setTimeout(function () { refresh(log); }, REFRESH_MS * 5); });
  }

  // Said politely by screen readers: the log's table was replaced by a fresher one.
  function announce(log) {
    var status = document.querySelector("[data-log-status]");
    if (!status) return;
    var waiting = log.hasAttribute("data-refresh");
    status.textContent = "Delivery Log updated. " +
      (waiting ? "Some deliveries are still in progress." : "Every delivery shown has finished.");
  }

  // One rule for times: the server writes UTC; here each <time data-local> shows the viewer's
  // local time and how long ago, with the UTC time kept in its tooltip.
  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
               ["minute", 60], ["second", 1]];
  function ago(date) {
    if (!window.Intl || !Intl.RelativeTimeFormat) return "";
    var seconds = (date.getTime() - Date.now()) / 1000;
    var format = new Intl.RelativeTimeFormat(undefined, {numeric: "auto", style: "short"});
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1] || UNITS[i][0] === "second") {
        return format.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return "";
  }
  function showLocalTimes(root) {
    if (!window.Intl) return;
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      var options = {day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
                     hourCycle: "h23", timeZoneName: "short"};
      if (el.getAttribute("data-local") === "seconds") options.second = "2-digit";
      el.textContent = new Intl.DateTimeFormat(undefined, options).format(date) + " (" + ago(date) + ")";
      el.title = el.dataset.utc;
    });
  }

  // A datetime-local input read as UTC (data-utc="hint-id"): the hint says that moment in the viewer's zone.
  function setUpUtcHints() {
    if (!window.Intl) return;
    document.querySelectorAll("input[data-utc]").forEach(function (input) {
      var hint = document.getElementById(input.getAttribute("data-utc"));
      if (!hint) return;
      function show() {
        var date = new Date(input.value + "Z");
        if (!input.value || isNaN(date.getTime())) { hint.hidden = true; return; }
        hint.textContent = "That is " + new Intl.DateTimeFormat(undefined, {
          day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
          timeZoneName: "short"}).format(date) + " in your time zone.";
        hint.hidden = false;
      }
      input.addEventListener("input", show);
      show();
    });
  }

  // A form whose <select> applies itself (the Test Webhook type); its button stays for no-script use.
  function setUpAutosubmit() {
    document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
      var button = form.querySelector("[data-autosubmit-button]");
      if (button) button.hidden = true;
      form.querySelectorAll("select").forEach(function (select) {
        select.addEventListener("change", function () { form.submit(); });
      });
    });
  }

  // The error summary takes focus after a failed submit (autofocus does it too; this covers bfcache).
  function focusErrorSummary() {
    var summary = document.querySelector("[data-focus-on-load]");
    if (summary) summary.focus();
  }

  function start() {
    setUpCopy();
    setUpSelectAll();
    setUpLiveLog();
    setUpAutosubmit();
    setUpUtcHints();
    showLocalTimes(document);
    setInterval(function () { showLocalTimes(document); }, 60000);
    focusErrorSummary();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
