"""A local Sphinx extension with two fixes for a clean browser console (``make browser``).

1. sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``)
   twice (once with filename None, once with ""), so Sphinx does not see a duplicate and the browser raises
   "Identifier 'THEBE_JS_URL' has already been declared". We drop duplicate scripts from
   each page's ``script_files``.
2. pydata-sphinx-theme sets ``data-mode`` from ``localStorage`` or ``default_mode``; with
   neither, a first visit logs "Got invalid theme mode". We set ``default_mode`` to ``auto``
   (the theme's own default behaviour) unless the configuration sets it.

3. sphinx-book-theme writes ``launch_buttons.jupyterlite_url`` into every page verbatim, so a
   site-relative value (``lite/lab/index.html``) would point below the page's own folder. We
   rewrite it relative to each page (``../lite/lab/index.html?path=...`` from ``chapters/``),
   so the JupyterLite button works from any sub-path (``https://<user>.github.io/<repo>/``).

4. sphinx-mathjax-offline copies all of MathJax 3 (every combined variant, 24 MB) into
   ``_static/mathjax``. The book uses one, ``mathjax_path`` (``tex-chtml.js``); after the copy we
   keep that file and only what it loads at run time (:data:`MATHJAX_KEEP`: the CHTML fonts, TeX
   extensions it autoloads, the menu and the accessibility components it offers) and delete the
   rest. ``make browser`` fails on any request that then 404s.

Loaded from ``_config.yml`` (``sphinx.local_extensions``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

# what tex-chtml.js may request at run time, relative to _static/mathjax/ (besides itself)
MATHJAX_KEEP = ("output/chtml", "input/tex", "ui", "a11y", "sre")


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", None) or "", attrs.get("body"))  # None and "" both mean inline
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    context["script_files"] = unique


def _default_mode(app, config):
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def _relative_launch_links(app, pagename, templatename, context, doctree):
    """Make site-relative launch links (the JupyterLite button) relative to the page."""
    pathto = context.get("pathto")

    def fix(buttons):
        for button in buttons or []:
            fix(button.get("buttons"))
            url = button.get("url", "")
            if url and not url.startswith(("http://", "https://", "/", "#", "..")):
                path, sep, query = url.partition("?")
                button["url"] = pathto(path, 1) + sep + query

    if pathto is not None:
        fix(context.get("header_buttons"))


def prune_mathjax(static: Path, variant: str) -> list[Path]:
    """Delete every file of ``static/mathjax`` except ``variant`` and :data:`MATHJAX_KEEP`; returns them."""
    root = Path(static) / "mathjax"
    keep = {variant, *MATHJAX_KEEP}

    def walk(folder: Path) -> list[Path]:
        removed = []
        for path in sorted(folder.iterdir()):
            rel = path.relative_to(root).as_posix()
            if rel in keep:
                continue
            if path.is_dir() and any(k.startswith(rel + "/") for k in keep):
                removed += walk(path)
                continue
            removed.append(path)
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return removed

    return walk(root) if root.is_dir() else []


def _prune_mathjax(app, exc):
    path = str(app.config.mathjax_path or "")
    if exc is None and path.startswith("mathjax/") and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        before = sum(p.stat().st_size for p in (static / "mathjax").rglob("*") if p.is_file())
        prune_mathjax(static, path.removeprefix("mathjax/"))
        after = sum(p.stat().st_size for p in (static / "mathjax").rglob("*") if p.is_file())
        logger.info(f"MathJax: kept {after / 2**20:.1f} MiB of {before / 2**20:.1f} MiB ({path} and what it loads)")


def setup(app):
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _relative_launch_links, priority=901)  # after the theme's (501)
    app.connect("build-finished", _prune_mathjax, priority=900)  # after sphinx-mathjax-offline's copy (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
