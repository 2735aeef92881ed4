/* The labs' Python, off the page's main thread (a module Web Worker started by optlab-lab.js):
   Pyodide's core from the book's _static/pyodide/ and the package's own source files from
   _static/optlab-lab/optlab-py.json, then optlab.live.run_json for every request. The page
   stays responsive while Python boots and computes, and a reader's rule that never returns
   can be stopped (the page terminates this worker and starts a new one on the next run).

   Messages in: {type: "boot", staticUrl} once, then {type: "run", id, request} (a JSON string).
   Messages out: {type: "ready", loadMs, bootMs}, {type: "answer", id, answer, ms} or
   {type: "error", error} (one line). */
let runJson = null;

async function boot(staticUrl) {
  const t0 = performance.now();
  const filesReq = fetch(staticUrl + "optlab-lab/optlab-py.json");
  const mod = await import(staticUrl + "pyodide/pyodide.mjs");
  const py = await mod.loadPyodide({ indexURL: staticUrl + "pyodide/", packages: [] });
  const loadMs = performance.now() - t0;
  const filesResp = await filesReq;
  if (!filesResp.ok) {
    throw new Error("optlab-lab/optlab-py.json: HTTP " + filesResp.status);
  }
  const bundle = await filesResp.json();
  const site = "/home/pyodide/optlab-lab";
  for (const rel of Object.keys(bundle.files)) {
    const dir = (site + "/" + rel).split("/").slice(0, -1).join("/");
    py.FS.mkdirTree(dir);
    py.FS.writeFile(site + "/" + rel, bundle.files[rel]);
  }
  py.runPython("import sys\nsys.path.insert(0, " + JSON.stringify(site) + ")\n" +
    "from optlab.live import run_json");
  runJson = py.globals.get("run_json");
  return { loadMs, bootMs: performance.now() - t0 };
}

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "boot") {
      const times = await boot(msg.staticUrl);
      self.postMessage({ type: "ready", ...times });
    } else if (msg.type === "run") {
      const t0 = performance.now();
      const answer = runJson(msg.request);
      self.postMessage({ type: "answer", id: msg.id, answer, ms: performance.now() - t0 });
    }
  } catch (e) {
    self.postMessage({ type: "error", id: msg.id, error: String((e && e.message) || e) });
  }
};
