// The pure parts of the live labs' script (book/tools/assets/optlab-lab.js), with Node's own
// test runner:  node --test book/tests/   (tests/test_live_lab.py runs it under pytest).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import test from "node:test";

const require = createRequire(import.meta.url);
const lab = require("../tools/assets/optlab-lab.js");

const EXTENT = [-2, 2, -1, 3]; // Rosenbrock's box: [xmin, xmax, ymin, ymax]

test("data corners map to the image corners, y pointing down", () => {
  assert.deepEqual(lab.dataToPx([-2, 3], EXTENT, 560, 400), [0, 0]);
  assert.deepEqual(lab.dataToPx([2, -1], EXTENT, 560, 400), [560, 400]);
  assert.deepEqual(lab.dataToPx([0, 1], EXTENT, 560, 400), [280, 200]);
});

test("pxToData inverts dataToPx", () => {
  for (const p of [[-1.2, 1], [0.3, -0.7], [1.99, 2.5]]) {
    const back = lab.pxToData(lab.dataToPx(p, EXTENT, 560, 400), EXTENT, 560, 400);
    assert.ok(Math.abs(back[0] - p[0]) < 1e-12 && Math.abs(back[1] - p[1]) < 1e-12, `${back}`);
  }
});

test("a click on an image drawn at another size finds the image pixel", () => {
  const rect = { left: 100, top: 50, width: 280, height: 200 }; // drawn at half size
  assert.deepEqual(lab.clientToPx(240, 150, rect, 560, 400), [280, 200]);
  const p = lab.pxToData(lab.clientToPx(100, 250, rect, 560, 400), EXTENT, 560, 400);
  assert.deepEqual(p, [-2, -1]); // bottom-left corner
});

test("the log slider spans its decades and its readout is the value used", () => {
  assert.equal(lab.logValue(0, -4, 0, 200), 1e-4);
  assert.equal(lab.logValue(200, -4, 0, 200), 1);
  assert.equal(lab.logValue(100, -4, 0, 200), 0.01);
  const v = lab.logValue(37, -4, 0, 200);
  assert.equal(v, Number(v.toPrecision(3)));
  assert.equal(lab.logPosition(lab.logValue(37, -4, 0, 200), -4, 0, 200), 37);
  assert.equal(lab.logPosition(1e-9, -4, 0, 200), 0); // clamped to the slider
  assert.equal(lab.logPosition(10, -4, 0, 200), 200);
});

test("the beta slider puts 0, 0.9, 0.99, 0.999 at quarters", () => {
  assert.deepEqual([0, 50, 100, 150, 200].map((p) => lab.betaValue(p, 200)),
    [0, 0.9, 0.99, 0.999, 0.9999]);
  assert.equal(lab.betaPosition(0.99, 200), 100);
  assert.equal(lab.betaPosition(0, 200), 0);
  assert.ok(lab.betaValue(199, 200) < 1);
});

test("a typed number is read, or refused in one line naming the fix", () => {
  assert.deepEqual(lab.parseNumber(" 0.01 ", "weight decay λ", 0, "0.01"), { value: 0.01 });
  assert.deepEqual(lab.parseNumber("1e-3", "λ", 0, "0.01"), { value: 0.001 });
  for (const bad of ["", "abc", "0.0.1", "Infinity", "NaN"]) {
    const r = lab.parseNumber(bad, "weight decay λ", 0, "0.01");
    assert.match(r.error, /^weight decay λ must be a number such as 0\.01/);
    assert.ok(!r.error.includes("\n"));
  }
  assert.match(lab.parseNumber("-1", "λ", 0, "0.01").error, /must be >= 0; got -1/);
});

test("controls' values become the rule's hyperparameters, betas as a pair", () => {
  assert.deepEqual(
    lab.collectHparams({ "betas.0": 0.9, "betas.1": 0.999, eps: 1e-8, centered: false }),
    { betas: [0.9, 0.999], eps: 1e-8, centered: false });
  assert.deepEqual(lab.collectHparams({}), {});
});

test("values print short", () => {
  assert.equal(lab.formatValue(0.0123456), "0.01235");
  assert.equal(lab.formatValue(1e-8), "1e-8");
  assert.equal(lab.formatValue(0), "0");
  assert.equal(lab.formatValue(-2), "-2");
  assert.equal(lab.formatValue(2.5e-4), "2.5e-4");
});

test("a path becomes SVG polyline points in image pixels", () => {
  assert.equal(lab.polylinePoints([[-2, 3], [0, 1]], EXTENT, 560, 400), "0.0,0.0 280.0,200.0");
  assert.equal(lab.polylinePoints([], EXTENT, 560, 400), "");
});

test("an error becomes one line: a Python traceback's last line, else the first", () => {
  const tb = "Traceback (most recent call last):\n  File \"<exec>\", line 3, in <module>\n" +
    "ModuleNotFoundError: No module named 'numpy'\n";
  assert.equal(lab.oneLine(tb), "ModuleNotFoundError: No module named 'numpy'");
  assert.equal(lab.oneLine("TypeError: x is not a function\n    at foo (a.js:1)"),
    "TypeError: x is not a function");
  assert.equal(lab.oneLine("\n\n"), "");
});
