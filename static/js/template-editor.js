// The template editor's rows table: the "Rows as CSV" textarea stays the form's field (and works
// without this script); this shows it as a table whose cells, rows and columns can be edited,
// added, deleted and reordered, writing the CSV back on every change.
(function () {
  "use strict";

  function parseCsv(text) {
    var rows = [], row = [], field = "", quoted = false, i = 0;
    text = text.replace(/^\uFEFF/, "");
    while (i < text.length) {
      var c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
        if (c === '"') { quoted = false; i += 1; continue; }
        field += c; i += 1; continue;
      }
      if (c === '"') { quoted = true; i += 1; continue; }
      if (c === ",") { row.push(field); field = ""; i += 1; continue; }
      if (c === "\r") { i += 1; continue; }
      if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; i += 1; continue; }
      field += c; i += 1;
    }
    if (field !== "" || row.length) { row.push(field); rows.push(row); }
    return rows.filter(function (r) { return r.some(function (v) { return v.trim() !== ""; }); });
  }

  function quote(value) {
    return /[",\n\r]/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }

  function toCsv(rows) {
    return rows.map(function (r) { return r.map(quote).join(","); }).join("\n") + (rows.length ? "\n" : "");
  }

  function button(label, action, title) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "button small";
    b.textContent = label;
    b.setAttribute("data-action", action);
    b.setAttribute("aria-label", title);
    return b;
  }

  function setup(editor) {
    var form = editor.closest("form");
    var source = form.querySelector("[data-rows-source]");
    if (!source) return;
    var table = editor.querySelector("table");
    var rows = parseCsv(source.value);
    editor.hidden = false;

    function write() {
      source.value = toCsv(rows);
      source.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function render() {
      var head = table.tHead, body = table.tBodies[0];
      head.textContent = "";
      body.textContent = "";
      var width = rows.length ? Math.max.apply(null, rows.map(function (r) { return r.length; })) : 0;
      rows.forEach(function (r) { while (r.length < width) r.push(""); });
      rows.forEach(function (r, index) {
        var tr = document.createElement("tr");
        var number = document.createElement(index === 0 ? "th" : "td");
        number.textContent = index === 0 ? "Columns" : String(index);
        tr.appendChild(number);
        r.forEach(function (value, column) {
          var cell = document.createElement(index === 0 ? "th" : "td");
          var input = document.createElement("input");
          input.value = value;
          input.setAttribute("aria-label", index === 0 ? "Column " + (column + 1) + " name" : "Row " + index + ", " + (rows[0][column] || "column " + (column + 1)));
          input.setAttribute("data-row", index);
          input.setAttribute("data-column", column);
          cell.appendChild(input);
          tr.appendChild(cell);
        });
        var tools = document.createElement(index === 0 ? "th" : "td");
        if (index > 0) {
          if (index > 1) tools.appendChild(button("↑", "up", "Move row " + index + " up"));
          if (index < rows.length - 1) tools.appendChild(button("↓", "down", "Move row " + index + " down"));
          tools.appendChild(button("✕", "delete", "Delete row " + index));
        }
        tools.setAttribute("data-index", index);
        tr.appendChild(tools);
        (index === 0 ? head : body).appendChild(tr);
      });
    }

    table.addEventListener("input", function (event) {
      var input = event.target;
      if (!input.hasAttribute("data-row")) return;
      event.stopPropagation();  // the CSV box's own input event below refreshes the preview
      rows[+input.getAttribute("data-row")][+input.getAttribute("data-column")] = input.value;
      write();
    });
    table.addEventListener("click", function (event) {
      var b = event.target.closest("[data-action]");
      if (!b) return;
      var index = +b.parentNode.getAttribute("data-index");
      var action = b.getAttribute("data-action");
      if (action === "delete") rows.splice(index, 1);
      if (action === "up") rows.splice(index - 1, 0, rows.splice(index, 1)[0]);
      if (action === "down") rows.splice(index + 1, 0, rows.splice(index, 1)[0]);
      render();
      write();
    });
    editor.querySelector("[data-row-add]").addEventListener("click", function () {
      if (!rows.length) rows.push(["name"]);
      rows.push(rows[0].map(function () { return ""; }));
      render();
      write();
      var inputs = table.tBodies[0].querySelectorAll("tr:last-child input");
      if (inputs.length) inputs[0].focus();
    });
    editor.querySelector("[data-column-add]").addEventListener("click", function () {
      if (!rows.length) rows.push([]);
      rows.forEach(function (r, index) { r.push(index === 0 ? "column" + r.length : ""); });
      render();
      write();
    });
    // Typing or pasting into the CSV box redraws the table.
    source.addEventListener("change", function () { rows = parseCsv(source.value); render(); });
    source.addEventListener("paste", function () { window.setTimeout(function () { rows = parseCsv(source.value); render(); }, 0); });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-rows-editor]").forEach(setup);
  });
})();
