// Probe: replay the JupyterLite Pyodide kernel's start under Node, offline, then run cells
// through the kernel's own IPython (pyodide_kernel.kernel_instance.run), as the browser does.
//
//   node kernel.mjs                      Pyodide 0.27.7 harness + jupyterlite-pyodide-kernel 0.5.2's
//                                        piplite/pyodide_kernel (the kernel release for Pyodide 0.27)
//   node kernel.mjs --pyodide 314        Pyodide 314.0.6 core (npm) + the shipped 0.8.6 kernel
//                                        wheels; the lock's pure-Python packages from PyPI wheels
//                                        of the same versions; no NumPy exists for it
//   --pypi-fallback                      leave piplite's PyPI fallback on (the site's default) and
//                                        count what it would ask PyPI for
//   --cells FILE.json                    run these code strings instead of the built-in ones
//
// Served on 127.0.0.1: /ext/ = the kernel extension's static/pypi (piplite, pyodide_kernel,
// ipykernel and widgetsnbextension stubs, with its all.json), /pypi/ = harness/site-pypi (the
// site's pypi/: the library wheel and its pure-Python dependencies, all.json written by
// jupyterlite_pyodide_kernel's write_wheel_index). Everything else is counted and refused.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync, existsSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const FLAVOUR = opt("--pyodide", "0.27.7");
const FALLBACK = argv.includes("--pypi-fallback");
const t0 = performance.now();
const log = (...a) => console.log(`[${((performance.now() - t0) / 1000).toFixed(2)} s]`, ...a);
const canon = (n) => n.replace(/[-_.]+/g, "-").toLowerCase();
const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");

// ---------------------------------------------------------------- network guard
const requests = { local: [], refused: [] };
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = new URL(typeof input === "string" ? input : input.url ?? String(input));
  if (url.protocol === "file:" || LOOPBACK.has(url.hostname)) { requests.local.push(url.pathname); return realFetch(input, init); }
  requests.refused.push(url.href);
  throw new TypeError(`refused (not local): ${url.href}`);
};
const realConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...a) {
  const o = typeof a[0] === "object" && a[0] !== null ? (Array.isArray(a[0]) ? a[0][0] : a[0]) : { port: a[0], host: a[1] };
  const host = o?.host ?? "localhost";
  if (o?.path === undefined && !LOOPBACK.has(host)) { requests.refused.push(`socket ${host}:${o?.port}`); throw new Error(`refused socket ${host}`); }
  return realConnect.apply(this, a);
};

// ---------------------------------------------------------------- which Pyodide, which kernel
const F = {
  "0.27.7": {
    core: "node_modules/pyodide/", pkgs: "harness/wheels-0.27.7", verify: "sha256",
    ext: "kernel-0.5/x/jupyterlite_pyodide_kernel-0.5.2.data/data/share/jupyter/labextensions/@jupyterlite/pyodide-kernel-extension/static/pypi",
  },
  "314": {
    core: "node_modules/pyodide-314/", pkgs: "harness/pure-314", verify: "name-version",
    ext: "/work/main/.venv/share/jupyter/labextensions/@jupyterlite/pyodide-kernel-extension/static/pypi",
  },
}[FLAVOUR];
const CORE = path.resolve(HERE, F.core) + "/";
const PKGS = path.resolve(HERE, F.pkgs);
const EXT = path.resolve(HERE, F.ext);
const SITE = path.resolve(HERE, opt("--site", "harness/site-pypi"));

const official = JSON.parse(readFileSync(CORE + "pyodide-lock.json", "utf8"));
const present = new Set(readdirSync(PKGS));
const kept = {};
for (const [name, pkg] of Object.entries(official.packages)) {
  if (!present.has(pkg.file_name)) continue;
  const sha = sha256(path.join(PKGS, pkg.file_name));
  if (F.verify === "sha256" && sha !== pkg.sha256) throw new Error(`${pkg.file_name}: sha256 differs from the official lock`);
  kept[name] = { ...pkg, sha256: sha };  // 314: PyPI's wheel of the lock's name and version
}
for (let changed = true; changed;) {
  changed = false;
  const names = new Set(Object.keys(kept).map(canon));
  for (const [name, pkg] of Object.entries(kept)) {
    const missing = (pkg.depends ?? []).filter((d) => !names.has(canon(d)));
    if (missing.length) { delete kept[name]; changed = true; log(`lock entry ${name} dropped: needs ${missing}`); }
  }
}
const lockPath = path.join(HERE, `harness/pyodide-lock.${FLAVOUR}.local.json`);
writeFileSync(lockPath, JSON.stringify({ ...official, packages: kept }));
log(`pyodide ${FLAVOUR}: ${Object.keys(kept).length} of ${Object.keys(official.packages).length} lock entries local (${F.verify === "sha256" ? "sha256 = official lock" : "same name and version as the lock, from PyPI"})`);

// ---------------------------------------------------------------- 127.0.0.1: /ext/ and /pypi/
const roots = { ext: EXT, pypi: SITE };
const server = http.createServer((req, res) => {
  const m = new URL(req.url, "http://x").pathname.match(/^\/(ext|pypi)\/([^/]+)$/);
  const file = m && path.join(roots[m[1]], decodeURIComponent(m[2]));
  if (!file || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
  res.writeHead(200, { "content-type": file.endsWith(".json") ? "application/json" : "application/octet-stream" }).end(readFileSync(file));
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

// ---------------------------------------------------------------- the worker's start, step by step
const { loadPyodide } = await import(pathToFileURL(CORE + "pyodide.mjs").href);
const py = await loadPyodide({ indexURL: CORE, packageCacheDir: PKGS + "/", lockFileURL: lockPath });
log("core up:", py.version, py.runPython("import sys; sys.version.split()[0]"));
const piplite = readdirSync(EXT).find((f) => f.startsWith("piplite-"));
py.globals.set("PIPLITE_WHEEL", `${base}/ext/${piplite}`);
py.globals.set("PIPLITE_URLS", py.toPy([`${base}/ext/all.json`, `${base}/pypi/all.json`]));
py.globals.set("DISABLE_PYPI", !FALLBACK);
await py.loadPackage(["micropip"], { messageCallback: () => {} });
const start = async (label, code) => {
  const t = performance.now();
  try { await py.runPythonAsync(code); log(`${label}: ok (${((performance.now() - t) / 1000).toFixed(2)} s)`); return true; }
  catch (e) { log(`${label}: FAILED:`, String(e.message ?? e).trim().split("\n").slice(-3).join(" | ")); return false; }
};
await start("micropip.install(piplite)", `import micropip\nawait micropip.install(PIPLITE_WHEEL, keep_going=True)`);
await start("piplite config", `import piplite.piplite\npiplite.piplite._PIPLITE_DISABLE_PYPI = DISABLE_PYPI\npiplite.piplite._PIPLITE_URLS = list(PIPLITE_URLS)`);
let ok = true;
for (const e of ["ipykernel", "comm", "pyodide-kernel", "jedi", "ipython"]) ok = (await start(`piplite.install('${e}')`, `import piplite\nawait piplite.install('${e}', keep_going=True)`)) && ok;
ok = (await start("import pyodide_kernel", "import pyodide_kernel")) && ok;
log(`kernel start: ${ok ? "OK" : "FAILED"}; ${requests.refused.length} requests refused so far`);

// ---------------------------------------------------------------- a notebook, every code cell, nbformat outputs
if (ok && argv.includes("--notebook")) {
  const nb = JSON.parse(readFileSync(opt("--notebook"), "utf8"));
  py.globals.set("NB_JSON", JSON.stringify(nb));
  const t = performance.now();
  const summary = JSON.parse(await py.runPythonAsync(`
import json, time
from pyodide_kernel import stdout_stream, stderr_stream, ipython_shell, kernel_instance
nb = json.loads(NB_JSON)
OUT = []
def stream(name, text):
    if OUT and OUT[-1]["output_type"] == "stream" and OUT[-1]["name"] == name:
        OUT[-1]["text"] += text
    else:
        OUT.append({"output_type": "stream", "name": name, "text": text})
stdout_stream.publish_stream_callback = stream
stderr_stream.publish_stream_callback = stream
ipython_shell.display_pub.display_data_callback = lambda data, md, transient=None: OUT.append(
    {"output_type": "display_data", "data": dict(data), "metadata": dict(md or {})})
ipython_shell.displayhook.publish_execution_result = lambda count, data, md: OUT.append(
    {"output_type": "execute_result", "execution_count": count, "data": dict(data), "metadata": dict(md or {})})
ipython_shell.send_comm = lambda *a, **k: None
cells = []
for cell in nb["cells"]:
    if cell["cell_type"] != "code":
        continue
    OUT.clear()
    t = time.perf_counter()
    res = await kernel_instance.run("".join(cell["source"]))
    if res["status"] == "error":
        OUT.append({"output_type": "error", "ename": res["ename"], "evalue": res["evalue"], "traceback": list(res["traceback"])})
    cell["outputs"] = json.loads(json.dumps(OUT, default=str))
    cells.append({"status": res["status"], "seconds": round(time.perf_counter() - t, 2),
                  "error": (res.get("ename", "") + ": " + res.get("evalue", "")) if res["status"] == "error" else ""})
json.dumps({"nb": nb, "cells": cells})
`));
  writeFileSync(opt("--out"), JSON.stringify(summary.nb, null, 1));
  summary.cells.forEach((c, i) => log(`code cell ${i}: ${c.status} ${c.seconds} s ${c.error}`));
  log(`notebook: ${summary.cells.length} code cells, ${summary.cells.filter((c) => c.status === "error").length} errors, ${((performance.now() - t) / 1000).toFixed(1)} s -> ${opt("--out")}`);
} else if (ok) {
  const setup = JSON.parse(readFileSync("/work/main/chapters/03_spiking_neuron.ipynb", "utf8")).cells.find((c) => (c.metadata.tags ?? []).includes("mc-setup"));
  const cells = argv.includes("--cells") ? JSON.parse(readFileSync(opt("--cells"), "utf8")) : [
    [setup.source].flat().join(""),
    "import microcircuit, numpy as np\nprint(microcircuit.__version__, np.__version__)",
    "from microcircuit import Network\nrng = np.random.default_rng(0)\nnet = Network([16, 8, 4], T=2).fit(rng.random((64, 16)), rng.integers(0, 4, 64), epochs=1)\nnet.history_[-1]",
    "import matplotlib, matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3), dpi=100)\nax.plot([0, 1], [1, 0])\nprint(matplotlib.__version__, matplotlib.get_backend())\nplt.show()",
    "import ipywidgets as w\nw.IntSlider(value=3, max=10)",
  ];
  await py.runPythonAsync(`
from pyodide_kernel import stdout_stream, stderr_stream, ipython_shell, kernel_instance
OUT = []
stdout_stream.publish_stream_callback = lambda name, text: OUT.append({"output_type": "stream", "name": name, "text": text})
stderr_stream.publish_stream_callback = lambda name, text: OUT.append({"output_type": "stream", "name": name, "text": text})
ipython_shell.display_pub.display_data_callback = lambda data, md, transient=None: OUT.append({"output_type": "display_data", "data": data})
ipython_shell.displayhook.publish_execution_result = lambda count, data, md: OUT.append({"output_type": "execute_result", "data": data})
ipython_shell.send_comm = lambda *a, **k: OUT.append({"output_type": "comm", "msg_type": a[0]})  # the worker wires this to the page
`);
  for (const [i, code] of cells.entries()) {
    const t = performance.now();
    py.globals.set("CODE", code);
    const r = await py.runPythonAsync(`
import json
OUT.clear()
res = await kernel_instance.run(CODE)
def short(o):
    if o["output_type"] == "stream": return f'{o["name"]}: {o["text"].strip()[:200]}'
    if o["output_type"] == "comm": return f'comm {o["msg_type"]}'
    d = o["data"]
    return f'{o["output_type"]}: ' + ", ".join(f"{k} ({len(str(v))} chars)" if k.startswith("image/") else f"{k}: {str(v)[:120]!r}" for k, v in d.items())
json.dumps({"status": res["status"], "error": (res.get("ename", "") + " " + res.get("evalue", "")).strip(), "outputs": [short(o) for o in OUT]})
`);
    const res = JSON.parse(r);
    log(`cell ${i}: ${res.status}${res.error ? " " + res.error : ""} (${((performance.now() - t) / 1000).toFixed(2)} s)`);
    for (const o of res.outputs) console.log("    ", o);
  }
}
server.close();
log(`requests: ${requests.local.length} local, ${requests.refused.length} refused`);
for (const r of requests.refused) console.log("     refused:", r);
process.exit(0);
