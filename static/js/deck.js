// Deck page: keyboard between cards and takes, 1-9 picks a take. A card whose takes are being made
// refreshes itself (htmx, every few seconds), unless the person is working in it.
(function () {
  "use strict";
  function allCards() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-card]"));
  }
  function current() {
    var active = document.activeElement;
    return active ? active.closest("[data-card]") : null;
  }
  document.addEventListener("keydown", function (event) {
    if (event.target.matches("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    var cards = allCards();
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
  // Leave a card alone while its form is open, a take is ticked or a field in it has focus.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var card = event.target.closest ? event.target.closest("[data-card]") : null;
    if (!card) return;
    var busy = card.querySelector("details[open], input:checked") ||
      (card.contains(document.activeElement) && document.activeElement.matches("input, select, textarea, button"));
    if (busy) event.preventDefault();
  });
  // The comparison board still reloads whole while its variants are made.
  var board = document.querySelector("[data-refresh]");
  if (board) {
    window.setTimeout(function () {
      if (!document.querySelector("details[open]") && !document.activeElement.matches("input, select")) {
        window.location.reload();
      }
    }, Number(board.dataset.refresh) * 1000);
  }
  // A refreshed card keeps the keyboard focus it had.
  var refocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    refocus = document.activeElement === event.target ? event.target.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (refocus && document.getElementById(refocus)) document.getElementById(refocus).focus();
    refocus = null;
  });
})();
