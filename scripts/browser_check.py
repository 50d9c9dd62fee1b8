"""Open every page of the built book in headless Chromium and check what a reader would see.

For each HTML page of ``_build/html`` (a root redirect aside) it checks that

- the page logs no console errors and raises no JavaScript errors, and no request fails
  (the book must work offline: MathJax is served from ``_static/``);
- maths is rendered: if the page has maths, MathJax produced ``mjx-container`` elements;
- every image loaded (``naturalWidth > 0``), figures and widget frames alike;
- every kernel-free widget (``.mc-static-slider``) has two controls, and each responds:
  pressing an arrow key on it shows a different frame and updates its readout;
- every figure has a caption and alt text that describes it (not a file hash), and every
  widget frame has alt text;
- every chapter's title carries its number (``chapters/07_*.html`` opens with "7. ");
- no "chapter N" in the text is left without a link, and no placeholder text is left;
- at a 400 px wide window no table sticks out of the page (wide tables scroll inside).

The site is served under a sub-path (``PREFIX``, ``/microcircuit/``), as GitHub Pages serves a
project site (``https://<user>.github.io/<repo>/``), so a link that assumes the site root fails.
Then (``check_lite``) the JupyterLite site in ``lite/``: its wheel index lists the library,
every chapter's JupyterLite button leads to it, and JupyterLab opens every chapter there
(cells rendered). Running a cell needs Pyodide, which the kernel loads from Pyodide's CDN:
offline that request fails, and the check reports it as not verified rather than as a fault.

Usage::

    python scripts/browser_check.py [_build/html]      # or: make browser

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright`` Python
package (no ``playwright install``: the system Chromium is used). Without either it prints
why and exits 0 (skipped). Set ``CHROMIUM`` to use another executable.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import socketserver
import sys
import threading
from pathlib import Path

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium executable: ``$CHROMIUM``, ``/usr/bin/chromium`` or one on the PATH."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                  shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.path.exists(c)), None)


def missing_requirements() -> str | None:
    """Why the check cannot run here, or ``None`` when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package 'playwright' is not installed (pip install playwright)"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install -y chromium, or set CHROMIUM)"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the report readable
        pass


class _QuietServer(socketserver.ThreadingTCPServer):
    def handle_error(self, request, client_address):  # a browser closing a connection early is no fault
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


PREFIX = "/microcircuit/"  # the sub-path the site is served under (GitHub Pages: /<repo>/)


class _PrefixHandler(_QuietHandler):
    """Serves the folder under ``prefix`` only: any other path is a 404, as on GitHub Pages."""

    prefix = "/"

    def translate_path(self, path):
        if not path.startswith(self.prefix):
            return str(Path(self.directory) / "__outside_the_prefix__")
        return super().translate_path("/" + path[len(self.prefix):])


def serve(folder: Path, prefix: str = PREFIX):
    """Serve ``folder`` under ``prefix`` on localhost on a free port; returns ``(server, base_url)``."""
    handler_class = type("Handler", (_PrefixHandler,), {"prefix": prefix})
    handler = functools.partial(handler_class, directory=str(folder))
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}{prefix}"


def pages(folder: Path) -> list[Path]:
    """The book's pages: every HTML file except a root redirect, search and genindex (and lite/)."""
    skip = {"search.html", "genindex.html"}
    return sorted(p for p in folder.rglob("*.html")
                  if p.name not in skip and not {"_static", "_sources", "lite"} & set(p.relative_to(folder).parts)
                  and not (p.name == "index.html" and "http-equiv" in p.read_text(errors="ignore")[:2000].lower()))


_MATH_JS = """async () => {
  const hasMath = document.querySelector('.math, span.math, div.math') !== null;
  if (!hasMath) return {hasMath, rendered: 0};
  for (let i = 0; i < 100 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  return {hasMath, rendered: document.querySelectorAll('mjx-container').length};
}"""

_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(r => { img.onload = img.onerror = r; })));
  return imgs.filter(img => !(img.naturalWidth > 0)).map(img => (img.getAttribute('src') || '').slice(0, 60));
}"""

_VISIBLE_FRAME_JS = """(root) => {
  const frames = Array.from(root.querySelectorAll('img.mc-frame'));
  return {visible: frames.filter(f => f.style.display !== 'none').map(f => f.dataset.index),
          readout: Array.from(root.querySelectorAll('output')).map(o => o.textContent).join(' | '),
          n: frames.length};
}"""

_HASH = r"^[0-9a-f]{16,}(\.(png|jpe?g|svg))?$"

_FIGURES_JS = """(hash) => {
  const re = new RegExp(hash);
  const article = document.querySelector('article') || document.body;
  const problems = [];
  article.querySelectorAll('img').forEach(img => {
    const alt = (img.getAttribute('alt') || '').trim();
    const src = (img.getAttribute('src') || '').slice(-40);
    if (img.classList.contains('mc-frame')) {
      if (!alt || re.test(alt)) problems.push('widget frame without alt text: ' + src);
      return;
    }
    if (!img.closest('.cell_output') && !img.closest('figure')) return;   // logos, icons
    const fig = img.closest('figure');
    const caption = fig ? (fig.querySelector('figcaption') || {}).textContent || '' : '';
    if (caption.trim().length < 10) problems.push('figure without a caption: ' + src);
    if (!alt || re.test(alt) || alt.length < 20) problems.push('figure without real alt text: ' + (alt || src));
  });
  return problems;
}"""

_TEXT_JS = """() => {
  const article = document.querySelector('article') || document.body;
  const h1 = article.querySelector('h1');
  const skip = 'A, CODE, PRE, SCRIPT, STYLE, MJX-CONTAINER, .math, .headerlink, .highlight, .cell_input';
  const unlinked = [];
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  let text = '';
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    text += node.textContent + ' ';
    const m = node.textContent.match(/\\bchapters? \\d+/i);
    if (m) unlinked.push(node.textContent.trim().slice(0, 80));
  }
  return {title: h1 ? h1.textContent.replace(/[#¶]/g, '').trim() : '', unlinked,
          placeholders: (text.match(/\\b(TODO|TBD|FIXME|lorem ipsum|placeholder|BOOK_TIMES_TABLE)\\b|<[a-z ]*url>/gi) || [])};
}"""

_TABLES_JS = """() => {
  const article = document.querySelector('article') || document.body;
  return Array.from(article.querySelectorAll('table'))
    .filter(t => t.getBoundingClientRect().right > window.innerWidth + 1)
    .map(t => (t.textContent || '').trim().slice(0, 50));
}"""


def check_page(page, url: str) -> tuple[list[str], dict]:
    """Problems found on one page, and what was checked."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"javascript error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    page.goto(url, wait_until="load")
    math = page.evaluate(_MATH_JS)
    if math["hasMath"] and math["rendered"] == 0:
        problems.append("maths not rendered (no mjx-container elements)")
    broken = page.evaluate(_IMAGES_JS)
    problems += [f"image did not load: {src}" for src in broken]
    sliders = page.locator(".mc-static-slider")
    n_sliders = sliders.count()
    for i in range(n_sliders):
        root = sliders.nth(i)
        before = root.evaluate(_VISIBLE_FRAME_JS)
        if len(before["visible"]) != 1:
            problems.append(f"widget {i}: expected exactly one visible frame, got {before['visible']}")
            continue
        controls = root.locator("input[type=range]")
        if controls.count() < 2:
            problems.append(f"widget {i}: {controls.count()} control(s); a teaching widget has two")
        for k in range(controls.count()):
            control = controls.nth(k)
            before = root.evaluate(_VISIBLE_FRAME_JS)
            at_end = control.input_value() == control.get_attribute("max")
            control.focus()
            page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
            after = root.evaluate(_VISIBLE_FRAME_JS)
            if after["visible"] == before["visible"] or after["readout"] == before["readout"]:
                problems.append(f"widget {i}, control {k + 1}: moving it did not change the picture/readout "
                                f"({before['visible']} -> {after['visible']})")
    problems += page.evaluate(_FIGURES_JS, _HASH)
    text = page.evaluate(_TEXT_JS)
    problems += [f"unlinked chapter reference: {t!r}" for t in text["unlinked"]]
    problems += [f"placeholder text: {t!r}" for t in text["placeholders"]]
    number = chapter_number(url)
    if number is not None and not text["title"].startswith(f"{number}. "):
        problems.append(f"title {text['title']!r} does not start with its chapter number {number}")
    if page.locator("article table").count():
        size = page.viewport_size
        page.set_viewport_size({"width": 400, "height": 800})
        problems += [f"table wider than a 400 px window: {t!r}" for t in page.evaluate(_TABLES_JS)]
        if size:
            page.set_viewport_size(size)
    info = {"math": math["rendered"], "images": page.evaluate("document.images.length"), "widgets": n_sliders}
    return problems, info


_LITE_NOTEBOOK_JS = """(title) => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  return nb !== null && nb.querySelectorAll('.jp-Cell').length > 1 && nb.textContent.includes(title);
}"""


def _title(notebook: Path) -> str:
    """The first heading of a notebook (what JupyterLab must render when it opens it)."""
    import json

    for cell in json.loads(notebook.read_text())["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if cell["cell_type"] == "markdown" and line.startswith("#"):
                return line.lstrip("#").strip()
    return ""


def _is_local(url: str, base: str) -> bool:
    return url.startswith(base.split("/", 3)[0] + "//" + base.split("/", 3)[2])


def check_lite(browser, folder: Path, base: str, verbose: bool = True) -> dict[str, list[str]]:
    """The JupyterLite site under ``lite/``: index, launch buttons, every chapter opened in JupyterLab.

    Returns ``{what: [problems]}``. Requests to other hosts (the kernel fetching Pyodide from its
    CDN) are not faults here: offline they fail, and are reported as not verified.
    """
    import json

    results: dict[str, list[str]] = {}
    lite = folder / "lite"
    if not (lite / "lab" / "index.html").is_file():
        return {"lite/": [f"no JupyterLite site in {lite}: run `make lite`"]}
    chapters = sorted(p.name for p in (lite / "files" / "chapters").glob("[0-9][0-9]_*.ipynb"))
    index = json.loads((lite / "pypi" / "all.json").read_text())
    results["lite/pypi/all.json"] = [] if "microcircuit" in index else ["the library's wheel is not in the index"]
    page = browser.new_page()
    try:
        # every chapter page links to the lite site, under the prefix, and the link resolves
        problems = []
        for html in sorted((folder / "chapters").glob("[0-9][0-9]_*.html")):
            page.goto(base + f"chapters/{html.name}", wait_until="domcontentloaded")
            links = page.eval_on_selector_all("a[href*='lite/lab/index.html']", "as => as.map(a => a.href)")
            want = base + f"lite/lab/index.html?path=chapters/{html.stem}.ipynb"
            if want not in links:
                problems.append(f"{html.name}: no JupyterLite button to {want} (found {links})")
        results["JupyterLite buttons"] = problems
    finally:
        page.close()
    external: set[str] = set()
    for name in chapters:
        page = browser.new_page()
        problems = []

        def pageerror(exc, pr=problems):
            # the kernel failing to import Pyodide from its CDN (offline) is "not verified", not a fault
            urls = re.findall(r"https?://[^\s'\"]+", str(exc))
            if urls and not any(_is_local(u, base) for u in urls):
                external.update(urls)
            else:
                pr.append(f"javascript error: {exc}")

        page.on("pageerror", pageerror)

        def failed(req, pr=problems):
            (pr.append(f"request failed: {req.url} ({req.failure})") if _is_local(req.url, base)
             else external.add(req.url.split("?")[0]))

        page.on("requestfailed", failed)
        page.on("response", lambda resp, pr=problems: pr.append(f"HTTP {resp.status}: {resp.url}")
                if resp.status >= 400 and _is_local(resp.url, base) else None)
        try:
            title = _title(lite / "files" / "chapters" / name)
            page.goto(base + f"lite/lab/index.html?path=chapters/{name}", wait_until="load")
            try:
                page.wait_for_function(_LITE_NOTEBOOK_JS, arg=title, timeout=60_000)
                opened = True
            except Exception:  # noqa: BLE001 - reported as a problem
                opened = False
            if not opened:
                problems.append(f"JupyterLab did not render the notebook (its title {title!r} did not appear)")
            elif name == chapters[0]:
                page.wait_for_timeout(5_000)  # let the kernel start: it fetches Pyodide
        finally:
            page.close()
        results[f"lite/lab ?path=chapters/{name}"] = problems
        if verbose:
            print(f"{'ok  ' if not problems else 'FAIL'} lite: chapters/{name} opened in JupyterLab ({title!r})",
                  flush=True)
            for problem in problems:
                print(f"       {problem}")
    if verbose:
        print(f"ok   lite/pypi/all.json lists: {', '.join(sorted(index))}" if "microcircuit" in index
              else "FAIL lite/pypi/all.json has no microcircuit wheel")
        print(f"{'ok  ' if not results['JupyterLite buttons'] else 'FAIL'} JupyterLite button on every chapter page")
        for problem in results["JupyterLite buttons"]:
            print(f"       {problem}")
        if external:
            print("NOT VERIFIED (offline): running code in JupyterLite; the kernel's requests to other hosts "
                  "failed: " + ", ".join(sorted(external)[:3]))
    return results


def chapter_number(url: str) -> int | None:
    """The chapter number of a chapter page (``.../chapters/07_hebbian_rule.html`` -> 7), else None."""
    name = url.rsplit("/", 1)[-1]
    return int(name[:2]) if "/chapters/" in url and name[:2].isdigit() and name[2:3] == "_" else None


def check_book(folder: Path, verbose: bool = True) -> dict[str, list[str]]:
    """Run every check on every page; returns ``{page: [problems]}`` (empty lists when fine)."""
    from playwright.sync_api import sync_playwright

    folder = Path(folder).resolve()
    server, base = serve(folder)
    results: dict[str, list[str]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS, headless=True)
            try:
                page = browser.new_page()
                try:  # the root (the landing page, or a redirect to a chapter) works under the sub-path
                    page.goto(base, wait_until="load")
                    page.wait_for_timeout(500)  # a meta refresh, if the root is a redirect
                    landed = page.url
                    title = page.title()
                finally:
                    page.close()
                ok = (landed.startswith(base + "chapters/") or landed in (base, base + "index.html")) and bool(title)
                results[f"{PREFIX} (root)"] = [] if ok else [
                    f"{base} did not show the landing page or a chapter under the prefix (landed on {landed})"]
                if verbose:
                    print(f"{'ok  ' if ok else 'FAIL'} {base} -> {landed}")
                for path in pages(folder):
                    rel = path.relative_to(folder).as_posix()
                    page = browser.new_page()
                    try:
                        problems, info = check_page(page, base + rel)
                    finally:
                        page.close()
                    results[rel] = problems
                    if verbose:
                        status = "ok  " if not problems else "FAIL"
                        print(f"{status} {rel}: {info['math']} maths, {info['images']} images, "
                              f"{info['widgets']} widgets", flush=True)
                        for problem in problems:
                            print(f"       {problem}")
                results.update(check_lite(browser, folder, base, verbose))
            finally:
                browser.close()
    finally:
        server.shutdown()
    return results


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "_build/html")
    why = missing_requirements()
    if why:
        print(f"SKIPPED browser check: {why}")
        return 0
    if not (folder / "index.html").is_file():
        print(f"no built book at {folder}: run `make book` first")
        return 1
    results = check_book(folder)
    failed = [p for p, probs in results.items() if probs]
    print(f"{len(results) - len(failed)}/{len(results)} pages passed the browser check")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
