#!/usr/bin/env bash
# Fetch the book's third-party web assets from the npm registry into OUTDIR (default _vendor),
# so that the built HTML loads MathJax and the ipywidgets manager from the book itself:
# no CDN, no outside request, pages work offline.
#
#   bash book/tools/vendor_assets.sh _vendor
#
# Layout written (OUTDIR is on Sphinx's html_static_path, so it is copied to _build/html/_static/):
#   OUTDIR/mathjax/tex-mml-chtml.js (+ input/, output/chtml/, a11y/, ui/, sre/)   mathjax@3.2.2 es5
#   OUTDIR/widgets/require.js                                                      requirejs
#   OUTDIR/widgets/require-config.js     copied from book/tools/require-config.js
#   OUTDIR/widgets/html-manager/dist/embed-amd.js (+ its icon fonts)               html-manager
#   OUTDIR/pyodide/pyodide.mjs (+ pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip,
#                     pyodide-lock.json)                                           pyodide core
#   OUTDIR/VENDOR_STATUS                 "ok", or "cdn-fallback: <reason>"
#
# Pyodide (the CPython of the chapters' "Run live" labs, ~13 MB, fetched by a reader's browser
# only when they press "Run live") has no CDN fallback: a book must never load code from another
# host. Without it the extension leaves the labs out and the pages keep their frame sliders.
#
# Only tarballs are fetched (`npm pack`, no dependency tree, ~11 MB, a few seconds). Idempotent:
# a part already in OUTDIR is skipped. Where npm is missing or fails the script prints a warning,
# writes "cdn-fallback" into OUTDIR/VENDOR_STATUS and exits 0; the Sphinx extension
# book/tools/optlab_assets.py then points the book at the public CDNs for whatever is missing
# (the book still builds; it just needs the network to show math and widgets).
set -uo pipefail

OUT=${1:-_vendor}
MATHJAX_VERSION=3.2.2            # v4 has no es5/ tree; Sphinx 7's MathJax-3 integration needs v3
HTML_MANAGER_VERSION=1.0.15      # @jupyter-widgets/html-manager 1.x = ipywidgets 8 (widget protocol 2)
REQUIREJS_VERSION=2.3.8
PYODIDE_VERSION=314.0.7          # the core only (CPython + stdlib); packages would need its CDN
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
failures=()

warn() { echo "vendor_assets: WARNING: $*" >&2; }

# fetch PKG@VERSION: npm pack into a temp dir and unpack; prints the unpacked package dir
fetch() {
  local spec=$1 tmp
  command -v npm >/dev/null 2>&1 || { warn "npm not found; cannot fetch $spec"; return 1; }
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/vendor.XXXXXX")
  if ! (cd "$tmp" && npm pack --silent --fetch-retries=1 --fetch-timeout=60000 "$spec" >pack.log 2>&1); then
    warn "npm pack $spec failed: $(tail -n 3 "$tmp/pack.log" | tr '\n' ' ')"
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$tmp/x" && tar xzf "$tmp"/*.tgz -C "$tmp/x" || { warn "cannot unpack $spec"; return 1; }
  echo "$tmp"
}

# --- MathJax 3 (only the parts tex-mml-chtml.js loads: 7 MB of the 24 MB es5 tree) -------------
if [[ -f $OUT/mathjax/tex-mml-chtml.js && -f $OUT/mathjax/.version-$MATHJAX_VERSION ]]; then
  echo "vendor_assets: mathjax@$MATHJAX_VERSION present"
elif tmp=$(fetch "mathjax@$MATHJAX_VERSION"); then
  es5=$tmp/x/package/es5
  rm -rf "$OUT/mathjax" && mkdir -p "$OUT/mathjax/output"
  cp "$es5/tex-mml-chtml.js" "$OUT/mathjax/"
  cp -r "$es5/input" "$es5/a11y" "$es5/ui" "$es5/sre" "$OUT/mathjax/"
  cp -r "$es5/output/chtml" "$OUT/mathjax/output/"
  cp "$tmp/x/package/LICENSE" "$OUT/mathjax/LICENSE"
  touch "$OUT/mathjax/.version-$MATHJAX_VERSION"
  rm -rf "$tmp"
  echo "vendor_assets: mathjax@$MATHJAX_VERSION -> $OUT/mathjax"
else
  failures+=("mathjax@$MATHJAX_VERSION")
fi

# --- require.js + the ipywidgets html-manager (renders saved widget state without a kernel) -----
mkdir -p "$OUT/widgets"
if [[ -f $OUT/widgets/require.js && -f $OUT/widgets/.version-$REQUIREJS_VERSION ]]; then
  echo "vendor_assets: requirejs@$REQUIREJS_VERSION present"
elif tmp=$(fetch "requirejs@$REQUIREJS_VERSION"); then
  cp "$tmp/x/package/require.js" "$OUT/widgets/require.js"
  touch "$OUT/widgets/.version-$REQUIREJS_VERSION"
  rm -rf "$tmp"
  echo "vendor_assets: requirejs@$REQUIREJS_VERSION -> $OUT/widgets/require.js"
else
  failures+=("requirejs@$REQUIREJS_VERSION")
fi

hm=$OUT/widgets/html-manager
if [[ -f $hm/dist/embed-amd.js && -f $hm/.version-$HTML_MANAGER_VERSION ]]; then
  echo "vendor_assets: @jupyter-widgets/html-manager@$HTML_MANAGER_VERSION present"
elif tmp=$(fetch "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION"); then
  rm -rf "$hm" && mkdir -p "$hm/dist"
  # embed-amd.js and the Font Awesome files it references relative to its own module URL
  # (require-config.js maps that URL here; without it the fonts 404 under chapters/@jupyter-widgets/).
  cp "$tmp/x/package/dist/embed-amd.js" "$hm/dist/"
  cp "$tmp"/x/package/dist/*.{woff2,woff,ttf} "$hm/dist/"   # .eot/.svg: legacy browsers only
  cp "$tmp/x/package/LICENSE" "$hm/LICENSE" 2>/dev/null || true
  touch "$hm/.version-$HTML_MANAGER_VERSION"
  rm -rf "$tmp"
  echo "vendor_assets: @jupyter-widgets/html-manager@$HTML_MANAGER_VERSION -> $hm/dist"
else
  failures+=("@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION")
fi

# --- Pyodide core: CPython in WebAssembly for the live labs (pure Python only, offline) ---------
py=$OUT/pyodide
if [[ -f $py/pyodide.asm.wasm && -f $py/.version-$PYODIDE_VERSION ]]; then
  echo "vendor_assets: pyodide@$PYODIDE_VERSION present"
elif tmp=$(fetch "pyodide@$PYODIDE_VERSION"); then
  rm -rf "$py" && mkdir -p "$py"
  for f in pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip pyodide-lock.json \
           package.json README.md; do
    cp "$tmp/x/package/$f" "$py/"
  done
  touch "$py/.version-$PYODIDE_VERSION"
  rm -rf "$tmp"
  echo "vendor_assets: pyodide@$PYODIDE_VERSION -> $py"
else
  rm -rf "$py"
  warn "no pyodide: the chapters' live labs are left out (the frame sliders stay)"
  failures+=("pyodide@$PYODIDE_VERSION")
fi

# Our own file: always refreshed (cheap), so edits to it reach the next build.
cp "$HERE/require-config.js" "$OUT/widgets/require-config.js"

if ((${#failures[@]})); then
  echo "cdn-fallback: could not fetch ${failures[*]}" >"$OUT/VENDOR_STATUS"
  warn "could not fetch ${failures[*]}: the book will load them from public CDNs (needs network)"
else
  echo "ok" >"$OUT/VENDOR_STATUS"
fi
exit 0
