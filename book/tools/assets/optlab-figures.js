// Shipped with the book by book/tools/optlab_assets.py. On a phone a figure of two or three
// panels (or a wide single one) shrunk to the column is unreadable: its 8 pt labels end up near
// 3 pt. This marks each output image much wider than tall as "optlab-wide", puts it in a box of
// its own and adds a one-line hint after it; optlab.css then gives the figure a readable width
// on a narrow screen, scrolling sideways inside that box (the page does not scroll), and shows
// the hint there only. A table that scrolls sideways in its box gets the same hint, and a long
// glued sentence is not set in bold. Checked by tests/test_site_browser.py at 390 and 1280 px.
(function () {
  "use strict";
  var WIDE = 1.8; // width / height above which a figure is wide
  function mark(img) {
    if (img.classList.contains("optlab-wide")) return;
    if (!(img.naturalHeight > 0 && img.naturalWidth > WIDE * img.naturalHeight)) return;
    img.classList.add("optlab-wide");
    var box = document.createElement("div");
    box.className = "optlab-wide-box";
    img.parentNode.insertBefore(box, img);
    box.appendChild(img);
    hintAfter(box, "figure");
  }
  function hintAfter(el, what) {
    var next = el.nextElementSibling;
    if (next && next.classList.contains("optlab-scroll-hint")) return;
    var hint = document.createElement("div");
    hint.className = "optlab-scroll-hint";
    hint.textContent = "\u2194 swipe the " + what + " sideways to see all of it";
    el.parentNode.insertBefore(hint, el.nextSibling);
  }
  function markTables() {
    // a table wider than its box (it scrolls inside it on a phone, optlab.css) gets the hint
    document.querySelectorAll("article table.table").forEach(function (table) {
      if (table.scrollWidth > table.clientWidth + 1) hintAfter(table, "table");
    });
  }
  function markLongGlue() {
    // myst-nb sets every glued value in bold, which marks a number as computed but turns a
    // glued sentence into a wall of bold: a long one keeps the text's weight (optlab.css)
    document.querySelectorAll("span.pasted-text").forEach(function (span) {
      if (span.textContent.length > 60) span.classList.add("optlab-glued-long");
    });
  }
  function markAll() {
    markLongGlue();
    markTables();
    document.querySelectorAll("div.cell_output > img").forEach(function (img) {
      if (img.complete) {
        mark(img);
      } else {
        img.addEventListener("load", function () { mark(img); });
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", markAll);
  } else {
    markAll();
  }
})();
