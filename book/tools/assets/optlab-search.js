// Shipped with the book by book/tools/optlab_assets.py. Search result snippets are cut by
// Sphinx's searchtools.js from a page's raw HTML, where math is still TeX source
// ("\(w_{t+1} = w_t - \eta \, d_t\)"). Wrap Search.htmlToText so that the text of every math
// element is turned into plain text first (Greek letters and common symbols as Unicode,
// \frac{a}{b} as (a)/(b), TeX spacing and delimiters dropped).
(function () {
  "use strict";
  var SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", zeta: "ζ",
    eta: "η", theta: "θ", vartheta: "ϑ", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", xi: "ξ",
    pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", varphi: "φ", chi: "χ", psi: "ψ",
    omega: "ω", Gamma: "Γ", Delta: "Δ", Theta: "Θ", Lambda: "Λ", Sigma: "Σ", Phi: "Φ",
    Omega: "Ω", nabla: "∇", partial: "∂", cdot: "·", cdots: "⋯", ldots: "…", dots: "…",
    times: "×", odot: "⊙", circ: "∘", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠",
    approx: "≈", sim: "∼", propto: "∝", infty: "∞", in: "∈", to: "→", rightarrow: "→",
    leftarrow: "←", mapsto: "↦", sum: "Σ", prod: "Π", int: "∫", sqrt: "√", pm: "±", mp: "∓",
    top: "ᵀ", min: "min", max: "max", log: "log", exp: "exp", arg: "arg", argmin: "argmin",
    lVert: "‖", rVert: "‖", Vert: "‖", lvert: "|", rvert: "|", mid: "|", langle: "⟨",
    rangle: "⟩", R: "ℝ", E: "𝔼", quad: " ", qquad: " ", ",": " ", ";": " ", ":": " ", "!": "",
    "\\": " ", "{": "{", "}": "}", "%": "%", "_": "_",
  };
  var DROP = /\\(left|right|big|Big|bigg|Bigg|displaystyle|textstyle|limits|nolimits|begin\{[a-z*]+\}|end\{[a-z*]+\}|label\{[^}]*\}|tag\{[^}]*\})/g;

  function texToText(tex) {
    var s = tex.trim()
      .replace(/^\\\(|\\\)$/g, "").replace(/^\\\[|\\\]$/g, "").replace(/^\$\$?|\$\$?$/g, "")
      .replace(DROP, "")
      .replace(/&/g, " ");
    // \frac{a}{b} -> (a)/(b); \text{..}, \mathrm{..}, \operatorname{..} -> their text
    for (var i = 0; i < 4; i++) {
      s = s.replace(/\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)");
      s = s.replace(/\\(?:text|textrm|textit|textbf|mathrm|mathbf|mathit|mathcal|boldsymbol|operatorname|mathsf)\{([^{}]*)\}/g, "$1");
      s = s.replace(/\\mathbb\{R\}/g, "ℝ").replace(/\\mathbb\{E\}/g, "𝔼");
      s = s.replace(/\\(?:hat|widehat)\{([^{}]*)\}/g, "$1\u0302").replace(/\\(?:bar|overline)\{([^{}]*)\}/g, "$1\u0304");
      s = s.replace(/\\tilde\{([^{}]*)\}/g, "$1\u0303").replace(/\\sqrt\{([^{}]*)\}/g, "√($1)");
    }
    s = s.replace(/\\([A-Za-z]+|.)/g, function (m, name) {
      return Object.prototype.hasOwnProperty.call(SYMBOLS, name) ? SYMBOLS[name] : name;
    });
    s = s.replace(/\^\{([^{}]*)\}/g, "^($1)").replace(/_\{([^{}]*)\}/g, "_$1");
    return s.replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
  }

  function install() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search._optlabPlainMath) return;
    var original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      var doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll(".math").forEach(function (el) {
        el.textContent = " " + texToText(el.textContent) + " ";
      });
      return original(doc.documentElement.outerHTML, anchor);
    };
    Search._optlabPlainMath = true;
  }
  window.optlabTexToText = texToText;  // for the browser test
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", install);
  } else {
    install();
  }
})();
