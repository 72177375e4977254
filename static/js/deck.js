// Deck page: keyboard between cards and takes, 1-9 picks a take; reload while takes are being made.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("[data-card]"));
  function current() {
    var active = document.activeElement;
    return active ? active.closest("[data-card]") : null;
  }
  document.addEventListener("keydown", function (event) {
    if (event.target.matches("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    var card = current() || cards[0];
    if (!card) return;
    var index = cards.indexOf(card);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var next = cards[index + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) { next.focus(); event.preventDefault(); }
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      var takes = Array.prototype.slice.call(card.querySelectorAll("[data-pick]"));
      var at = takes.indexOf(document.activeElement);
      var target = takes[at + (event.key === "ArrowRight" ? 1 : -1)] || takes[0];
      if (target) { target.focus(); event.preventDefault(); }
    } else if (/^[1-9]$/.test(event.key)) {
      var take = card.querySelectorAll("[data-take]")[Number(event.key) - 1];
      var button = take ? take.querySelector("[data-pick]") : null;
      if (button) { button.click(); event.preventDefault(); }
    }
  });
  var deck = document.querySelector("[data-refresh]");
  if (deck) {
    window.setTimeout(function () {
      if (!document.querySelector("details[open]") && !document.activeElement.matches("input, select")) {
        window.location.reload();
      }
    }, Number(deck.dataset.refresh) * 1000);
  }
})();
