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

  // Chart bars: one Tab stop a chart; the arrow keys, Home and End move hour by hour (a roving tabindex).
  document.addEventListener("keydown", function (event) {
    var hour = event.target.closest && event.target.closest("[data-chart-hour]");
    if (!hour) return;
    var hours = Array.prototype.slice.call(hour.ownerSVGElement.querySelectorAll("[data-chart-hour]"));
    var at = hours.indexOf(hour);
    var to = {ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
              Home: 0, End: hours.length - 1}[event.key];
    if (to === undefined || to < 0 || to >= hours.length) return;
    event.preventDefault();
    hours.forEach(function (h) { h.setAttribute("tabindex", "-1"); });
    hours[to].setAttribute("tabindex", "0");
    hours[to].focus();
  });

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
    log.webhooksFilters = filterValues(log);
    setTimeout(function () { refresh(log); }, REFRESH_MS);
  }
  // What the filters hold, as one string; a log remembers what it held when it was set up.
  function filterValues(log) {
    return Array.prototype.map.call(log.querySelectorAll("input, select, textarea"), function (field) {
      if (field.type === "checkbox" || field.type === "radio") return field.name + "=" + field.checked;
      return field.name + "=" + field.value;
    }).join("&");
  }
  // The user is using the filters: a field has the focus, or holds something other than when the
  // log was set up (typed, then the focus moved on). A refresh would throw that away.
  function inUse(log) {
    return log.contains(document.activeElement) || filterValues(log) !== log.webhooksFilters;
  }
  // The note under the log says whether it refreshes now or waits for the user's search (both texts
  // are the template's: its own, and its data-paused).
  function noteLive(log, paused) {
    var note = log.querySelector("[data-live-note]");
    if (!note) return;
    if (!note.dataset.live) note.dataset.live = note.textContent;
    note.textContent = paused ? note.dataset.paused : note.dataset.live;
  }
  function later(log, paused) {
    noteLive(log, paused);
    setTimeout(function () { refresh(log); }, REFRESH_MS);
  }
  function refresh(log) {
    // Not while the tab is hidden, nor while the user is using the filters.
    var paused = inUse(log);
    if (document.hidden || paused) {
      later(log, paused);
      return;
    }
    noteLive(log, false);
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
        // The answer took a while and the user began to search meanwhile: keep what they typed.
        if (inUse(log)) {
          later(log, true);
          return;
        }
        var changed = fresh.innerHTML !== log.innerHTML;
        log.replaceWith(fresh);
        setUpCopy();
        setUpMomentInputs(fresh);
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
  // Every page writes a time one way, "2 Dec 2026, 16:39:42", in UTC on the server and in the viewer's
  // zone here, 24-hour, the zone named after it: the filters read the same text back.
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function momentText(date, seconds, utc) {
    var g = utc ? [date.getUTCDate(), date.getUTCMonth(), date.getUTCFullYear(), date.getUTCHours(),
                   date.getUTCMinutes(), date.getUTCSeconds()]
                : [date.getDate(), date.getMonth(), date.getFullYear(), date.getHours(), date.getMinutes(),
                   date.getSeconds()];
    return g[0] + " " + MONTHS[g[1]] + " " + g[2] + ", " + two(g[3]) + ":" + two(g[4]) + (seconds ? ":" + two(g[5]) : "");
  }
  function zoneName(date) {
    if (date.getTimezoneOffset() === 0) return "UTC";  // the server's own words for it (not "GMT")
    try {
      var parts = new Intl.DateTimeFormat("en-US", {timeZoneName: "short"}).formatToParts(date);
      for (var i = 0; i < parts.length; i++) if (parts[i].type === "timeZoneName") return parts[i].value;
    } catch (e) { /* an old browser: no name */ }
    return "";
  }
  // Read "2 Dec 2026, 16:39[:42]" (anything after it, such as the zone or "(3 min ago)", ignored) or ISO
  // "2026-12-02T16:39[:42]", as a time in the viewer's zone (or in UTC); return a Date, or null.
  function parseMoment(text, utc) {
    var m = /^\s*(\d{1,2}) ([A-Za-z]{3})[a-z]* (\d{4}),? (\d{1,2}):(\d{2})(?::(\d{2}))?/.exec(text);
    var y, mo, d, h, mi, s;
    if (m) {
      mo = MONTHS.indexOf(m[2].charAt(0).toUpperCase() + m[2].slice(1, 3).toLowerCase());
      if (mo < 0) return null;
      y = +m[3]; d = +m[1]; h = +m[4]; mi = +m[5]; s = +(m[6] || 0);
    } else {
      m = /^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(text);
      if (!m) return null;
      y = +m[1]; mo = +m[2] - 1; d = +m[3]; h = +(m[4] || 0); mi = +(m[5] || 0); s = +(m[6] || 0);
    }
    var date = utc ? new Date(Date.UTC(y, mo, d, h, mi, s)) : new Date(y, mo, d, h, mi, s);
    return isNaN(date.getTime()) ? null : date;
  }
  function showLocalTimes(root) {
    (root || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      if (!el.dataset.utc) el.dataset.utc = el.textContent;
      var when = ago(date);
      el.textContent = momentText(date, el.getAttribute("data-local") === "seconds") + " " + zoneName(date) +
        (when ? " (" + when + ")" : "");
      el.title = el.dataset.utc;
    });
  }

  // The From/To filters (input[data-moment]): the server writes and reads UTC; here they show and take the
  // viewer's zone, like the times of the page, with the UTC time on hover; on submit the UTC time is sent.
  function setUpMomentInputs(root) {
    root = root || document;
    root.querySelectorAll("input[data-moment]").forEach(function (input) {
      var label = document.querySelector("label[for='" + input.id + "'][data-moment-label]");
      var zone = zoneName(new Date());
      if (label && zone) label.textContent = label.textContent.replace("(UTC)", "(" + zone + ")");
      var given = parseMoment(input.value, true);
      if (given) input.value = momentText(given, /\d:\d{2}:\d{2}/.test(input.value));
      function hover() {
        var date = parseMoment(input.value, false);
        input.title = date ? momentText(date, true, true) + " UTC" : "";
      }
      input.addEventListener("input", hover);
      hover();
    });
    root.querySelectorAll("form").forEach(function (form) {
      if (!form.querySelector("input[data-moment]")) return;
      form.addEventListener("submit", function () {
        form.querySelectorAll("input[data-moment]").forEach(function (input) {
          var date = parseMoment(input.value, false);
          if (!input.value || !date) return;  // empty, or unreadable: the server says so at the field
          var sent = document.createElement("input");
          sent.type = "hidden";
          sent.name = input.name;
          sent.value = date.toISOString().slice(0, 19);
          input.removeAttribute("name");
          form.appendChild(sent);
        });
      });
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

  // Escape closes an open menu (the Administration menu is a <details>) and gives focus back to its summary.
  function setUpMenus() {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      document.querySelectorAll("details.menu[open]").forEach(function (menu) {
        menu.open = false;
        var summary = menu.querySelector("summary");
        if (summary && menu.contains(document.activeElement)) summary.focus();
      });
    });
  }

  // A link that carries a select's choice (a[data-follows="select id"]): "See and edit the payload first"
  // opens on the type just chosen.
  function setUpFollowingLinks() {
    document.querySelectorAll("a[data-follows]").forEach(function (link) {
      var select = document.getElementById(link.getAttribute("data-follows"));
      if (!select) return;
      function follow() {
        var url = new URL(link.href, window.location.href);
        url.searchParams.set(select.name, select.value);
        link.href = url.pathname + url.search;
      }
      select.addEventListener("change", follow);
      follow();
    });
  }

  function start() {
    setUpMenus();
    setUpFollowingLinks();
    setUpCopy();
    setUpSelectAll();
    setUpAutosubmit();
    setUpUtcHints();
    setUpMomentInputs(document);
    setUpLiveLog();  // after the moment inputs: it remembers what the filters hold once they are local
    showLocalTimes(document);
    setInterval(function () { showLocalTimes(document); }, 60000);
    focusErrorSummary();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
