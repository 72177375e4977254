// The LoRA stack picker (templates/generation/_lora_picker.html): find a LoRA by name, set its
// weight with a slider, insert its trigger words into the prompt. A LoRA made for another base
// model than the loaded one cannot be picked: its weight stays empty and the reason is shown.
(function () {
  "use strict";

  function setup(picker) {
    var search = picker.querySelector("[data-lora-search]");
    var target = document.getElementById(picker.getAttribute("data-insert-target"));
    if (search) {
      search.closest("label").hidden = false;
      search.addEventListener("input", function () {
        var needle = search.value.trim().toLowerCase();
        picker.querySelectorAll(".lora-pick").forEach(function (row) {
          row.hidden = needle !== "" && row.getAttribute("data-lora-name").indexOf(needle) === -1;
        });
      });
    }
    picker.querySelectorAll(".lora-pick").forEach(function (row) {
      var weight = row.querySelector("input[type=number]");
      var slider = row.querySelector("[data-weight-slider]");
      if (!weight || !slider) return;
      var unfit = row.getAttribute("data-unfit");
      if (unfit) {
        weight.addEventListener("input", function () {
          weight.value = "";
          weight.setCustomValidity(unfit);
          weight.reportValidity();
        });
        return;
      }
      slider.hidden = false;
      slider.value = weight.value || weight.getAttribute("data-default-weight") || "1";
      slider.addEventListener("input", function () {
        weight.value = slider.value;
        weight.dispatchEvent(new Event("input", { bubbles: true }));
      });
      weight.addEventListener("input", function () { if (weight.value !== "") slider.value = weight.value; });
    });
    picker.addEventListener("click", function (event) {
      var b = event.target.closest("[data-insert-word]");
      if (!b || !target) return;
      var word = b.getAttribute("data-insert-word");
      var current = target.value.trim();
      if ((", " + current + ",").indexOf(", " + word + ",") === -1) {
        target.value = current ? current.replace(/[,\s]+$/, "") + ", " + word : word;
        target.dispatchEvent(new Event("input", { bubbles: true }));
      }
      var row = b.closest(".lora-pick");
      var weight = row && row.querySelector("input[type=number]");
      if (weight && weight.value === "" && !row.getAttribute("data-unfit")) {
        weight.value = weight.getAttribute("data-default-weight") || "1";
        weight.dispatchEvent(new Event("input", { bubbles: true }));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-lora-picker]").forEach(setup);
  });
})();
