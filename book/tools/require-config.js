// Loaded between require.js and embed-amd.js on pages with ipywidgets (see _config.yml,
// nb_ipywidgets_js). The html-manager finds its Font Awesome files relative to the URL of its
// AMD module "@jupyter-widgets/html-manager/dist/libembed-amd"; unmapped, that URL resolves
// against the page (chapters/@jupyter-widgets/html-manager/dist/*.woff2 -> 404). Map the module
// path to the vendored copy in _static/widgets/html-manager/dist/ (vendor_assets.sh puts it there).
(function () {
  var here = document.currentScript && document.currentScript.src;
  var base = here
    ? new URL("html-manager/dist", here).href
    : new URL((document.documentElement.dataset.content_root || "./") +
              "_static/widgets/html-manager/dist", document.baseURI).href;
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": base } });
})();
