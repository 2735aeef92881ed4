/* The chapters' "Run live" labs (issue 14): the package's own optlab.rules and optlab.surfaces,
   running in the reader's browser in Pyodide, drawn over a contour image rendered at build time.

   A lab is a <div class="optlab-lab" data-lab="{json}"> that book/tools/optlab_assets.py writes
   under a chapter's frame slider (it is hidden without JavaScript; the frame slider works
   without it). Nothing loads until the reader presses "Run live": then Pyodide's core (from the
   book's own _static/pyodide/, never another host) and the package's source files
   (_static/optlab-lab/optlab-py.json) load once per page, from the browser's cache on the next
   pages, and every control change re-runs optlab.live.run_json and redraws the paths.

   Python runs in a Web Worker (optlab-lab-worker.js): the page stays responsive while it boots
   and computes, and a reader's rule that never returns is stopped after runTimeoutMs (10 s).

   window.optlabLab: {labs, lastPaths, lastRequest, lastAnswer, bootMs, loadMs, computeMs,
   pythonMs, drawMs, runTimeoutMs, boot()} for tests and benchmarks. The pure parts (coordinate
   transforms, the log sliders, parsing what a reader types, error lines) are exported for
   Node's test runner: book/tests/*.test.mjs. */
(function (root, factory) {
  "use strict";
  var core = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = core;
  } else {
    root.optlabLabCore = core;
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /* ---- pure parts ------------------------------------------------------------------------- */

  /** Data point [w1, w2] -> image pixel [px, py] (extent [xmin, xmax, ymin, ymax], y up). */
  function dataToPx(point, extent, width, height) {
    return [
      ((point[0] - extent[0]) / (extent[1] - extent[0])) * width,
      ((extent[3] - point[1]) / (extent[3] - extent[2])) * height
    ];
  }

  /** Image pixel [px, py] -> data point [w1, w2]: the inverse of dataToPx. */
  function pxToData(px, extent, width, height) {
    return [
      extent[0] + (px[0] / width) * (extent[1] - extent[0]),
      extent[3] - (px[1] / height) * (extent[3] - extent[2])
    ];
  }

  /** A click at client coordinates on an element drawn at `rect` (its bounding box) showing an
      image of width x height pixels: the image pixel under the click. */
  function clientToPx(clientX, clientY, rect, width, height) {
    return [((clientX - rect.left) / rect.width) * width,
      ((clientY - rect.top) / rect.height) * height];
  }

  /** A number with `digits` significant digits, as a number (what the readouts show). */
  function round(value, digits) {
    return Number(Number(value).toPrecision(digits));
  }

  /** Short text for a value: 3 significant digits, exponent form for tiny/huge values. */
  function formatValue(value) {
    var v = Number(value);
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    if (a < 1e-3 || a >= 1e5) {
      return v.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
    }
    return String(round(v, 4));
  }

  /** Log slider: integer position in [0, n] -> value 10^(lo + (hi - lo) pos / n), rounded to
      3 significant digits so that the readout is the value used. */
  function logValue(pos, lo, hi, n) {
    return round(Math.pow(10, lo + ((hi - lo) * pos) / n), 3);
  }

  /** Log slider: the position nearest to `value`. */
  function logPosition(value, lo, hi, n) {
    var p = Math.round(((Math.log10(value) - lo) / (hi - lo)) * n);
    return Math.max(0, Math.min(n, p));
  }

  /** Slider for a decay rate beta in [0, 1): position in [0, n] -> 1 - 10^(-4 pos / n), so
      that 0, 0.9, 0.99, 0.999 and 0.9999 sit at 0, 1/4, 1/2, 3/4 and the end. */
  function betaValue(pos, n) {
    return round(1 - Math.pow(10, (-4 * pos) / n), 4);
  }

  /** The beta slider's position nearest to `value`. */
  function betaPosition(value, n) {
    var p = Math.round((-Math.log10(Math.max(1 - value, 1e-4)) / 4) * n);
    return Math.max(0, Math.min(n, p));
  }

  /** What a reader typed into a number box: {value} or {error: one line naming the fix}. */
  function parseNumber(text, name, min, example) {
    var t = String(text).trim();
    var v = Number(t);
    if (t === "" || !isFinite(v)) {
      return {error: name + " must be a number such as " + example + "; got \"" + t + "\""};
    }
    if (min !== null && min !== undefined && v < min) {
      return {error: name + " must be >= " + min + "; got " + t};
    }
    return {value: v};
  }

  /** The hyperparameters of one rule from its controls' values: {key: value}, with the pair
      betas.0 / betas.1 put back together as betas: [b1, b2]. */
  function collectHparams(values) {
    var out = {};
    Object.keys(values).forEach(function (key) {
      var m = /^(\w+)\.(\d)$/.exec(key);
      if (m) {
        out[m[1]] = out[m[1]] || [];
        out[m[1]][Number(m[2])] = values[key];
      } else {
        out[key] = values[key];
      }
    });
    return out;
  }

  /** One line of an error text: a Python traceback's last line (the exception), else the
      first line. */
  function oneLine(text) {
    var lines = String(text).split("\n").map(function (l) { return l.trim(); })
      .filter(function (l) { return l; });
    if (!lines.length) { return ""; }
    return /^Traceback/.test(lines[0]) ? lines[lines.length - 1] : lines[0];
  }

  /** SVG polyline points ("x,y x,y ...") of a path in data coordinates. */
  function polylinePoints(path, extent, width, height) {
    return path.map(function (p) {
      var q = dataToPx(p, extent, width, height);
      return q[0].toFixed(1) + "," + q[1].toFixed(1);
    }).join(" ");
  }

  var core = {
    dataToPx: dataToPx, pxToData: pxToData, clientToPx: clientToPx, round: round,
    formatValue: formatValue, logValue: logValue, logPosition: logPosition,
    betaValue: betaValue, betaPosition: betaPosition, parseNumber: parseNumber,
    collectHparams: collectHparams, polylinePoints: polylinePoints, oneLine: oneLine
  };
  if (typeof document === "undefined") { return core; } // Node: the pure parts only

  /* ---- the page --------------------------------------------------------------------------- */

  var SVGNS = "http://www.w3.org/2000/svg";
  var SLIDER_STEPS = 200;
  var MINE_COLOR = "#0f8f8f"; // the reader's rule: teal, dashed (no rule of the book has it)
  var scriptSrc = document.currentScript ? document.currentScript.src : "";
  var STATIC = scriptSrc.slice(0, scriptSrc.lastIndexOf("/") + 1); // .../_static/
  var state = {labs: [], lastPaths: null, lastRequest: null, lastAnswer: null,
    bootMs: null, computeMs: null, drawMs: null, booted: null, runTimeoutMs: 10000};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  /** Python, once per page (the files come from the HTTP cache after the first page): a Web
      Worker running optlab-lab-worker.js. Resolves to call(request) -> Promise of the answer
      (a JSON string), which rejects with one line if Python fails or runs longer than
      state.runTimeoutMs (a reader's rule that never returns: the worker is then stopped, and the
      next run starts a new one). */
  function boot() {
    if (state.booted) { return state.booted; }
    var t0 = performance.now();
    state.booted = new Promise(function (resolve, reject) {
      if (typeof WebAssembly !== "object") {
        throw new Error("this browser has no WebAssembly; the frame slider above still works");
      }
      if (location.protocol === "file:") { // browsers refuse workers and fetch from file://
        throw new Error("a page opened as a file cannot load Python: serve the book, e.g. " +
          "python -m http.server -d _build/html, and open http://localhost:8000");
      }
      var worker = new Worker(STATIC + "optlab-lab-worker.js", {type: "module"});
      var waiting = {};
      var nextId = 1;
      var stopped = false;
      function stop(why) {
        stopped = true;
        worker.terminate();
        state.booted = null;
        Object.keys(waiting).forEach(function (id) { waiting[id].reject(new Error(why)); });
        waiting = {};
      }
      function call(request) {
        if (stopped) { // another lab on the page stopped it: the next change restarts it
          return Promise.reject(new Error("Python was stopped; it restarts on the next change"));
        }
        return new Promise(function (res, rej) {
          var id = nextId++;
          var limit = state.runTimeoutMs;
          var timer = setTimeout(function () {
            stop("the rules ran for more than " + limit / 1000 + " s and were stopped (a " +
              "loop that never ends?); your rule is hidden, Python restarts on the next change");
          }, limit);
          waiting[id] = {resolve: function (m) { clearTimeout(timer); res(m); },
            reject: function (e) { clearTimeout(timer); rej(e); }};
          worker.postMessage({type: "run", id: id, request: request});
        });
      }
      worker.onmessage = function (ev) {
        var m = ev.data;
        if (m.type === "ready") {
          state.loadMs = m.loadMs;
          state.bootMs = performance.now() - t0;
          resolve(call);
        } else if (m.type === "answer" && waiting[m.id]) {
          var w = waiting[m.id];
          delete waiting[m.id];
          state.pythonMs = m.ms;
          w.resolve(m.answer);
        } else if (m.type === "error") {
          if (m.id && waiting[m.id]) {
            var v = waiting[m.id];
            delete waiting[m.id];
            v.reject(new Error(oneLine(m.error)));
          } else {
            stop("boot failed");
            reject(new Error(oneLine(m.error)));
          }
        }
      };
      worker.onerror = function (ev) {
        stop("the worker failed");
        reject(new Error(ev.message || "the Python worker could not start"));
      };
      worker.postMessage({type: "boot", staticUrl: STATIC});
    });
    state.booted.catch(function () { state.booted = null; });
    return state.booted;
  }

  function Lab(root, config) {
    this.root = root;
    this.cfg = config;
    this.start = config.start.slice();
    this.values = {}; // rule -> {key: value}
    this.enabled = {};
    this.source = config.edit ? config.edit.source : null;
    this.editOn = false;
    this.call = null; // call(request) -> Promise of the answer, once Python runs
    this.busy = false;
    this.pending = false;
    this.build();
  }

  Lab.prototype.build = function () {
    var cfg = this.cfg;
    var self = this;
    this.root.hidden = false;
    this.root.textContent = "";
    var head = el("div", {"class": "optlab-lab-head"});
    this.button = el("button", {"type": "button", "class": "optlab-lab-run",
      text: "Run live"});
    this.button.addEventListener("click", function () { self.run(); });
    head.appendChild(this.button);
    head.appendChild(el("span", {"class": "optlab-lab-note", text: "Recompute the paths " +
      "in your browser with the package's own rules (Python in WebAssembly, loaded once: " +
      cfg.downloadMB + " MB)" + (cfg.noise ? ", without gradient noise." : ".")}));
    this.root.appendChild(head);

    // the figure and the controls appear (and the image loads) when the reader presses Run
    // live: until then the lab costs the page one button
    var figure = el("div", {"class": "optlab-lab-figure", hidden: ""});
    this.figure = figure;
    this.img = el("img", {alt: "contour lines of the " + cfg.label +
      " surface; click to set the start point", width: cfg.width, height: cfg.height});
    var img = this.img;
    this.svg = svg("svg", {viewBox: "0 0 " + cfg.width + " " + cfg.height,
      "class": "optlab-lab-svg", role: "img", "aria-label": "optimizer paths"});
    this.svg.addEventListener("click", function (ev) { self.clickStart(ev); });
    figure.appendChild(img);
    figure.appendChild(this.svg);
    this.root.appendChild(figure);
    var e = cfg.extent;
    this.axes = el("p", {"class": "optlab-lab-axes", hidden: "", text: "w\u2081 from " +
      formatValue(e[0]) + " to " + formatValue(e[1]) + " (left to right), w\u2082 from " +
      formatValue(e[2]) + " to " + formatValue(e[3]) + " (bottom to top); \u25cb the start: " +
      "click the picture to move it"});
    this.root.appendChild(this.axes);
    this.legend = el("div", {"class": "optlab-lab-legend"});
    this.root.appendChild(this.legend);
    this.status = el("p", {"class": "optlab-lab-status", role: "status"});
    this.error = el("p", {"class": "optlab-lab-error", role: "alert"});
    this.root.appendChild(this.status);
    this.root.appendChild(this.error);
    this.controls = el("div", {"class": "optlab-lab-controls", hidden: ""});
    this.root.appendChild(this.controls);
    this.buildControls();
    this.drawStart();
  };

  /** A slider over positions 0..n showing toValue(position); it starts at `value` exactly
      (the chapter's setting), at the position nearest to it. */
  Lab.prototype.slider = function (label, value, pos, n, toValue, onValue) {
    var input = el("input", {type: "range", min: 0, max: n, step: 1, value: pos,
      "aria-label": label});
    var out = el("output", {text: formatValue(value)});
    input.addEventListener("input", function () {
      var v = toValue(Number(input.value));
      out.textContent = formatValue(v);
      onValue(v);
    });
    onValue(value, true);
    return el("label", {"class": "optlab-lab-control"},
      [el("span", {text: label + " = "}), out, input]);
  };

  Lab.prototype.buildControls = function () {
    var cfg = this.cfg;
    var self = this;
    var c = this.controls;
    var shared = el("div", {"class": "optlab-lab-row"});
    var lr = cfg.lr;
    shared.appendChild(this.slider("learning rate η", lr.value,
      logPosition(lr.value, lr.lo, lr.hi, SLIDER_STEPS), SLIDER_STEPS,
      function (p) { return logValue(p, lr.lo, lr.hi, SLIDER_STEPS); },
      function (v, init) { self.lr = v; if (!init) { self.schedule(); } }));
    shared.lastChild.classList.add("optlab-lab-lr");
    var steps = el("input", {type: "range", min: 10, max: cfg.maxSteps, step: 10,
      value: cfg.steps, "aria-label": "steps"});
    var stepsOut = el("output", {text: String(cfg.steps)});
    this.steps = cfg.steps;
    steps.addEventListener("input", function () {
      self.steps = Number(steps.value);
      stepsOut.textContent = steps.value;
      self.schedule();
    });
    shared.appendChild(el("label", {"class": "optlab-lab-control"},
      [el("span", {text: "steps = "}), stepsOut, steps]));
    c.appendChild(shared);

    cfg.rules.forEach(function (rule) {
      self.values[rule.name] = {};
      self.enabled[rule.name] = true;
      var box = el("input", {type: "checkbox", checked: ""});
      box.addEventListener("change", function () {
        self.enabled[rule.name] = box.checked;
        self.schedule();
      });
      var group = el("details", {"class": "optlab-lab-rule"});
      var summary = el("summary", {}, [box, el("span", {"class": "optlab-lab-swatch",
        style: "background:" + rule.color}), el("span", {text: " " + rule.name})]);
      box.addEventListener("click", function (ev) { ev.stopPropagation(); });
      group.appendChild(summary);
      rule.hparams.forEach(function (h) { group.appendChild(self.hparamControl(rule, h)); });
      if (!rule.hparams.length) {
        group.appendChild(el("p", {text: "no hyperparameter besides η"}));
      }
      c.appendChild(group);
    });

    if (cfg.edit) {
      var ed = el("details", {"class": "optlab-lab-editor"});
      ed.appendChild(el("summary", {text: "Write your own rule"}));
      ed.appendChild(el("p", {text: "Edit " + cfg.edit.rule + "'s code below and press " +
        "\u201cRun my rule\u201d: it runs, dashed, next to the others, with " + cfg.edit.rule +
        "'s settings above. Functions you define replace optlab.rules' own (define " +
        cfg.edit.init + " too if you change the state)."}));
      this.textarea = el("textarea", {rows: 14, spellcheck: "false",
        "aria-label": "your rule's Python code"});
      this.textarea.value = cfg.edit.source;
      this.textarea.addEventListener("keydown", function (ev) { // Tab indents (Python)
        if (ev.key !== "Tab" || ev.shiftKey) { return; }
        ev.preventDefault();
        var t = self.textarea;
        var a = t.selectionStart;
        t.value = t.value.slice(0, a) + "    " + t.value.slice(t.selectionEnd);
        t.selectionStart = t.selectionEnd = a + 4;
      });
      var go = el("button", {type: "button", "class": "optlab-lab-mine",
        text: "Run my rule"});
      var reset = el("button", {type: "button", text: "Reset the code"});
      var off = el("button", {type: "button", text: "Hide my rule"});
      go.addEventListener("click", function () {
        self.source = self.textarea.value;
        self.editOn = true;
        self.run();
      });
      reset.addEventListener("click", function () { self.textarea.value = cfg.edit.source; });
      off.addEventListener("click", function () { self.editOn = false; self.schedule(); });
      ed.appendChild(this.textarea);
      ed.appendChild(el("div", {"class": "optlab-lab-buttons"}, [go, reset, off]));
      c.appendChild(ed);
    }
  };

  Lab.prototype.hparamControl = function (rule, h) {
    var self = this;
    var vals = this.values[rule.name];
    function set(v, init) { vals[h.key] = v; if (!init) { self.schedule(); } }
    if (h.kind === "bool") {
      var box = el("input", {type: "checkbox"});
      box.checked = Boolean(h.value);
      vals[h.key] = Boolean(h.value);
      box.addEventListener("change", function () { set(box.checked); });
      return el("label", {"class": "optlab-lab-control optlab-lab-bool"},
        [box, el("span", {text: " " + h.label})]);
    }
    if (h.kind === "beta") {
      return this.slider(h.label, h.value, betaPosition(h.value, SLIDER_STEPS), SLIDER_STEPS,
        function (p) { return betaValue(p, SLIDER_STEPS); }, set);
    }
    if (h.kind === "log") {
      return this.slider(h.label, h.value, logPosition(h.value, h.lo, h.hi, SLIDER_STEPS),
        SLIDER_STEPS, function (p) { return logValue(p, h.lo, h.hi, SLIDER_STEPS); }, set);
    }
    var input = el("input", {type: "text", inputmode: "decimal", value: String(h.value),
      "aria-label": h.label, size: 8});
    vals[h.key] = h.value;
    input.addEventListener("change", function () {
      var r = parseNumber(input.value, h.label, h.min, h.example);
      if (r.error) { self.showError(r.error); return; }
      set(r.value);
    });
    return el("label", {"class": "optlab-lab-control"},
      [el("span", {text: h.label + " = "}), input]);
  };

  Lab.prototype.request = function () {
    var self = this;
    var rules = [];
    this.cfg.rules.forEach(function (rule) {
      if (!self.enabled[rule.name]) { return; }
      rules.push({rule: rule.name, color: rule.color,
        hparams: Object.assign(collectHparams(self.values[rule.name]), {lr: self.lr})});
    });
    if (this.cfg.edit && this.editOn) {
      var base = this.cfg.edit.rule;
      var hp = this.values[base] ? collectHparams(this.values[base]) : {};
      rules.push({rule: base, source: this.source, color: MINE_COLOR, mine: true,
        hparams: Object.assign(hp, {lr: this.lr})});
    }
    return {surface: this.cfg.surface, start: this.start.slice(), steps: this.steps,
      rules: rules};
  };

  Lab.prototype.run = async function () {
    this.started = true;
    if (!this.img.getAttribute("src")) { this.img.setAttribute("src", this.cfg.image); }
    this.figure.hidden = false;
    this.axes.hidden = false;
    this.controls.hidden = false;
    this.button.disabled = true;
    if (!this.call) {
      this.status.textContent = "loading Python (once per page; cached for the next pages)\u2026";
      try {
        this.call = await boot();
      } catch (e) {
        this.status.textContent = "";
        this.showError("could not start Python: " + oneLine(String(e && e.message || e)));
        this.button.disabled = false;
        return;
      }
      this.button.textContent = "Running live";
    }
    this.schedule();
  };

  /** Recompute soon: at most one computation runs at a time, and changes that arrive while it
      runs are folded into one more, from the controls' latest values. */
  Lab.prototype.schedule = function () {
    if (!this.call) {
      if (this.started && !this.button.disabled) { this.run(); } // Python was stopped
      return;
    }
    if (this.busy) { this.pending = true; return; }
    this.compute();
  };

  Lab.prototype.compute = async function () {
    var req = this.request();
    var body = JSON.stringify({surface: req.surface, start: req.start, steps: req.steps,
      rules: req.rules.map(function (r) {
        var out = {rule: r.rule, hparams: r.hparams};
        if (r.source !== undefined) { out.source = r.source; }
        return out;
      })});
    this.busy = true;
    var t0 = performance.now();
    var answer;
    try {
      answer = JSON.parse(await this.call(body));
    } catch (e) {
      this.busy = false;
      this.pending = false;
      this.call = null; // the worker was stopped: the next change starts a new one
      if (/ran for more than/.test(String(e && e.message))) { this.editOn = false; }
      this.button.disabled = false;
      this.button.textContent = "Run live";
      this.showError(oneLine(String(e && e.message || e)));
      return;
    }
    var t1 = performance.now();
    this.draw(req, answer);
    var t2 = performance.now();
    state.computeMs = t1 - t0;
    state.drawMs = t2 - t1;
    state.lastRequest = req;
    state.lastAnswer = answer;
    state.lastPaths = answer.paths;
    state.lastLab = this;
    var errs = (answer.errors || []).filter(function (e) { return e; });
    this.showError(errs.length ? errs[0] : "");
    // count the rules that ran: one whose settings or code failed drew nothing
    this.status.textContent = (req.rules.length - errs.length) + " rule(s) \u00d7 " +
      req.steps + " steps in " + Math.round(t2 - t0) + " ms" +
      (errs.length ? "; " + errs.length + " failed (the first error is below)" : "");
    this.busy = false;
    if (this.pending) {
      this.pending = false;
      this.compute();
    }
  };

  Lab.prototype.showError = function (text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  };

  Lab.prototype.draw = function (req, answer) {
    var cfg = this.cfg;
    var self = this;
    while (this.svg.firstChild) { this.svg.removeChild(this.svg.firstChild); }
    this.legend.textContent = "";
    (answer.paths || []).forEach(function (path, i) {
      var r = req.rules[i];
      if (!r || !path.length) { return; }
      self.svg.appendChild(svg("polyline", {points: polylinePoints(path, cfg.extent,
        cfg.width, cfg.height), fill: "none", stroke: r.color, "stroke-width": 2.2,
      "stroke-linejoin": "round", "stroke-dasharray": r.mine ? "6 4" : "none",
      "class": "optlab-lab-path"}));
      var end = dataToPx(path[path.length - 1], cfg.extent, cfg.width, cfg.height);
      self.svg.appendChild(svg("circle", {cx: end[0], cy: end[1], r: 4, fill: r.color}));
      var full = path.length === req.steps + 1;
      self.legend.appendChild(el("span", {"class": "optlab-lab-key"}, [
        el("span", {"class": "optlab-lab-swatch", style: "background:" + r.color}),
        el("span", {text: " " + (r.mine ? "your " + r.rule : r.rule) + (full ? "" :
          " (diverged at step " + path.length + ")")})]));
    });
    this.drawStart();
  };

  Lab.prototype.drawStart = function () {
    var cfg = this.cfg;
    var old = this.svg.querySelector(".optlab-lab-start");
    if (old) { old.parentNode.removeChild(old); }
    var p = dataToPx(this.start, cfg.extent, cfg.width, cfg.height);
    this.svg.appendChild(svg("circle", {cx: p[0], cy: p[1], r: 6, fill: "white",
      stroke: "black", "stroke-width": 2, "class": "optlab-lab-start"}));
  };

  Lab.prototype.clickStart = function (ev) {
    var cfg = this.cfg;
    var px = clientToPx(ev.clientX, ev.clientY, this.svg.getBoundingClientRect(), cfg.width,
      cfg.height);
    var p = pxToData(px, cfg.extent, cfg.width, cfg.height);
    this.start = [round(p[0], 4), round(p[1], 4)];
    this.drawStart();
    if (this.call) { this.schedule(); } else { this.run(); }
  };

  function init() {
    document.querySelectorAll("div.optlab-lab[data-lab]").forEach(function (node) {
      try {
        state.labs.push(new Lab(node, JSON.parse(node.getAttribute("data-lab"))));
      } catch {
        node.hidden = true; // a lab that cannot be read: the frame slider stays
      }
    });
  }

  state.boot = boot;
  state.core = core;
  window.optlabLab = state;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  return core;
});
