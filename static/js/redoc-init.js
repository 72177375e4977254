// ReDoc under this site's Content-Security-Policy, with nothing fetched from another host.
// Loaded before ReDoc's bundle (which it prepares) and starts ReDoc once the page is parsed.
(function () {
  "use strict";
  var nonce = document.currentScript.nonce;

  // ReDoc's bundle adds its style sheets as <style> elements, some as it loads (before it
  // could be told the nonce); each gets this page's nonce, which the policy lets through.
  function withNonce(node) {
    if (node && node.nodeName === "STYLE" && !node.nonce) node.setAttribute("nonce", nonce);
    return node;
  }
  var appendChild = Node.prototype.appendChild;
  var insertBefore = Node.prototype.insertBefore;
  Node.prototype.appendChild = function (node) { return appendChild.call(this, withNonce(node)); };
  Node.prototype.insertBefore = function (node, before) { return insertBefore.call(this, withNonce(node), before); };

  // ReDoc's sidebar shows Redocly's logo from their CDN. An empty src fails at once, and
  // ReDoc then leaves the logo out: nothing is asked of another host (the page works offline).
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) { src.set.call(this, String(value).indexOf("https://cdn.redoc.ly/") === 0 ? "" : value); },
  });

  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("redoc-container");
    var settings = JSON.parse(container.getAttribute("data-settings") || "{}");
    settings.nonce = nonce;  // for the style sheets ReDoc adds while it draws
    Redoc.init(container.getAttribute("data-schema-url"), settings, container);
  });
})();
