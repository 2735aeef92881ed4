// Shipped with the book by book/tools/optlab_assets.py. On a phone a figure of two or three
// panels shrunk to the column is unreadable (its 8 pt labels end up near 3 pt). This marks each
// output image much wider than tall as "optlab-wide"; optlab.css then gives it a readable width
// on a narrow screen, scrolling sideways inside its own output box (the page does not scroll).
// Checked by tests/test_site_browser.py at 390 px.
(function () {
  "use strict";
  var WIDE = 2.2; // width / height above which a figure is wide (two panels side by side)
  function mark(img) {
    if (img.naturalHeight > 0 && img.naturalWidth > WIDE * img.naturalHeight) {
      img.classList.add("optlab-wide");
    }
  }
  function markAll() {
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
