// Sorting, filtering and the metric selector of the server-rendered page; reads data-* attributes, never builds
// markup. Each metric has its own pre-rendered view; the selector shows one and hides the others.
(function () {
  "use strict";
  var filters = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var metricSelect = document.querySelector("select[data-metric-select]");

  function showMetric() {
    var chosen = metricSelect ? metricSelect.value : null;
    document.querySelectorAll("[data-metric-view]").forEach(function (view) {
      view.hidden = chosen !== null && view.getAttribute("data-metric-view") !== chosen;
    });
  }

  function wanted() {
    var want = {};
    filters.forEach(function (select) { want[select.getAttribute("data-filter")] = select.value; });
    return want;
  }

  function matches(element, want, keys) {
    return keys.every(function (key) {
      var value = element.getAttribute("data-" + key);
      return !want[key] || value === null || value === want[key];
    });
  }

  function applyFilters() {
    var want = wanted();
    var shown = 0;
    var total = 0;
    document.querySelectorAll("section.setting").forEach(function (section) {
      section.hidden = !matches(section, want, ["dataset"]);
      var counted = !section.closest("[data-metric-view]").hidden;  // rows of the metric on show
      section.querySelectorAll("table.board tbody tr, table.sidebyside tbody tr").forEach(function (row) {
        row.hidden = !matches(row, want, ["model", "recipe"]);
        if (!counted || !row.closest("table.board")) { return; }
        total += 1;
        if (!row.hidden && !section.hidden) { shown += 1; }
      });
    });
    document.querySelectorAll("[data-method]").forEach(function (element) {
      element.classList.toggle("off", !matches(element, want, ["method"]));
    });
    document.querySelectorAll("g.point").forEach(function (point) {
      point.classList.toggle("off", !matches(point, want, ["model", "recipe", "method"]));
    });
    document.getElementById("shown").textContent = shown + " of " + total + " rows shown";
  }

  function sortBy(header) {
    var table = header.closest("table");
    var column = Array.prototype.indexOf.call(header.parentNode.children, header);
    var numeric = header.getAttribute("data-type") === "num";
    var current = header.getAttribute("aria-sort");
    // Numbers start with the best first (highest, or lowest for NLL and ECE), names alphabetically; each further
    // click reverses.
    var best = header.getAttribute("data-better") === "lower" ? "ascending" : "descending";
    var direction = current === "none" ? (numeric ? best : "ascending")
      : (current === "ascending" ? "descending" : "ascending");
    table.querySelectorAll("thead th").forEach(function (th) { th.setAttribute("aria-sort", "none"); });
    header.setAttribute("aria-sort", direction);
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) {
      var value = row.cells[column].getAttribute("data-value");
      if (value === null || value === "") { return null; }
      return numeric ? parseFloat(value) : value;
    }
    rows.sort(function (a, b) {
      var x = key(a);
      var y = key(b);
      if (x === null || y === null) { return (x === null) - (y === null); }  // empty cells always last
      return sign * (numeric ? x - y : x.localeCompare(y));
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.querySelectorAll("table.board thead th button").forEach(function (button) {
    button.addEventListener("click", function () { sortBy(button.closest("th")); });
  });
  filters.forEach(function (select) { select.addEventListener("change", applyFilters); });
  if (metricSelect) {
    metricSelect.addEventListener("change", function () { showMetric(); applyFilters(); });
  }
  showMetric();
  applyFilters();
})();
