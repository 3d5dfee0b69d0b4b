// Sorting and filtering of the server-rendered tables; reads data-* attributes, never builds markup.
(function () {
  "use strict";
  var filters = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));

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
      section.querySelectorAll("table.board tbody tr").forEach(function (row) {
        row.hidden = !matches(row, want, ["model", "recipe"]);
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
    // Numbers start with the best (highest) first, names alphabetically; each further click reverses.
    var direction = current === "none" ? (numeric ? "descending" : "ascending")
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
  applyFilters();
})();
