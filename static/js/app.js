// Small progressive enhancements; every page works without them. No inline script or style
// attribute anywhere: the Content-Security-Policy allows neither.
(function () {
  "use strict";

  // Progress bars carry their width as data-percent; it is set here through the CSSOM, which
  // the policy allows (a style="" attribute would need 'unsafe-inline').
  function fillBars(root) {
    root.querySelectorAll("[data-percent]").forEach(function (bar) {
      bar.style.width = bar.getAttribute("data-percent") + "%";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fillBars(document); });
  // HTMX swaps in new progress every second or two.
  document.addEventListener("htmx:load", function (event) { fillBars(event.target); });

  // NSFW: a blurred image is revealed by clicking its overlay (a real button, so keyboard works too).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reveal]");
    if (button) {
      event.preventDefault();
      var holder = button.closest(".nsfw");
      if (holder) {
        holder.classList.add("revealed");
        var link = holder.querySelector("a");
        (link || holder).focus && (link || holder).focus();
      }
      button.remove();
    }
  });

  // Image pages: the arrow keys move to the previous / next image of the album.
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var selector = event.key === "ArrowLeft" ? "[data-key-prev]" : event.key === "ArrowRight" ? "[data-key-next]" : null;
    if (!selector) return;
    var link = document.querySelector(selector);
    if (link) {
      event.preventDefault();
      window.location.assign(link.href);
    }
  });
})();

// Copy buttons: data-copy names the element whose text goes to the clipboard.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Select and copy by hand";
    });
  });

  // Image pages on a phone: a horizontal swipe moves to the previous / next image, as the arrow keys do.
  var start = null;
  document.addEventListener("touchstart", function (event) {
    if (!document.querySelector("[data-key-prev], [data-key-next]") || event.touches.length !== 1) return;
    start = { x: event.touches[0].clientX, y: event.touches[0].clientY };
  }, { passive: true });
  document.addEventListener("touchend", function (event) {
    if (!start || event.changedTouches.length !== 1) return;
    var dx = event.changedTouches[0].clientX - start.x;
    var dy = event.changedTouches[0].clientY - start.y;
    start = null;
    if (Math.abs(dx) < 60 || Math.abs(dx) < 2 * Math.abs(dy)) return;
    var link = document.querySelector(dx > 0 ? "[data-key-prev]" : "[data-key-next]");
    if (link) window.location.assign(link.href);
  });
})();

// Long tables of prompts (a template's rows): on a phone each prompt starts folded, one tap opens it.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.matchMedia("(max-width: 800px)").matches) return;
    document.querySelectorAll("details.row-prompt[open]").forEach(function (details) { details.open = false; });
  });
})();
