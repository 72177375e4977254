// Generate page: a PNG dropped anywhere on the page is sent to the recipe import form.
// Without JavaScript the form's file input and button do the same.
(function () {
  "use strict";
  var form = document.querySelector("[data-recipe-drop]");
  if (!form) return;
  var input = form.querySelector("input[type=file]");

  function hasFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") !== -1;
  }
  document.addEventListener("dragover", function (event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    form.classList.add("dragging");
  });
  document.addEventListener("dragleave", function (event) {
    if (event.target === document.documentElement || !event.relatedTarget) form.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    if (!hasFiles(event) || !event.dataTransfer.files.length) return;
    event.preventDefault();
    form.classList.remove("dragging");
    input.files = event.dataTransfer.files;
    form.submit();
  });
  input.addEventListener("change", function () {
    if (input.files.length) form.submit();
  });
})();
