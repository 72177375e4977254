// Finish page: the live preview follows the chosen design and card.
(function () {
  "use strict";
  var design = document.querySelector("[data-preview-design]");
  var index = document.querySelector("[data-preview-index]");
  var image = document.getElementById("card-preview");
  if (!design || !image) return;
  function update() {
    var option = design.options[design.selectedIndex];
    if (!option) return;
    var url = option.getAttribute("data-preview-url") + "?album=" + encodeURIComponent(image.getAttribute("data-album"));
    if (index && index.value) url += "&index=" + encodeURIComponent(index.value);
    image.src = url;
  }
  design.addEventListener("change", update);
  if (index) index.addEventListener("change", update);
  update();
})();
