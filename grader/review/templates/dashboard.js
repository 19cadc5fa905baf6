"use strict";
(function () {
  var data = JSON.parse(document.getElementById("dash-data").textContent);
  var body = document.getElementById("students-body");
  if (!body) { return; }
  var rows = Array.prototype.slice.call(body.querySelectorAll("tr"));
  var filter = document.getElementById("filter");
  var onlyPending = document.getElementById("only-pending");
  var onlyFlagged = document.getElementById("only-flagged");
  var shown = document.getElementById("shown");
  var sortKey = null, sortDir = 1;
  function value(s, key) {
    if (key === "student" || key === "name") { return s[key].toLowerCase(); }
    if (key.indexOf("q:") === 0) { return s.q[parseInt(key.slice(2), 10)]; }
    if (key === "flags") { return s.flags.length; }
    return s[key];
  }
  function compare(a, b) {
    var x = value(data.students[a.dataset.i], sortKey), y = value(data.students[b.dataset.i], sortKey);
    if (x === null || x === undefined) { return (y === null || y === undefined) ? 0 : 1; }
    if (y === null || y === undefined) { return -1; }
    return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
  }
  function apply() {
    var text = filter.value.trim().toLowerCase(), n = 0;
    rows.forEach(function (row) {
      var s = data.students[row.dataset.i];
      var hay = (s.student + " " + s.name + " " + s.flags.join(" ")).toLowerCase();
      var ok = (!text || hay.indexOf(text) >= 0) &&
        (!onlyPending.checked || s.unreviewed > 0) &&
        (!onlyFlagged.checked || s.flags.length > 0);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " students shown";
  }
  document.querySelectorAll("th.sortable").forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.dataset.key;
      sortDir = (sortKey === key) ? -sortDir : (key === "student" || key === "name" ? 1 : -1);
      sortKey = key;
      document.querySelectorAll("th.sortable").forEach(function (other) {
        other.classList.remove("sorted-asc", "sorted-desc");
      });
      th.classList.add(sortDir === 1 ? "sorted-asc" : "sorted-desc");
      rows.sort(compare);
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  [filter, onlyPending, onlyFlagged].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();
})();
