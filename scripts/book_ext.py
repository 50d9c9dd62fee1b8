"""A local Sphinx extension with two fixes for a clean browser console (``make browser``).

1. sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``)
   twice (once with filename None, once with ""), so Sphinx does not see a duplicate and the browser raises
   "Identifier 'THEBE_JS_URL' has already been declared". We drop duplicate scripts from
   each page's ``script_files``.
2. pydata-sphinx-theme sets ``data-mode`` from ``localStorage`` or ``default_mode``; with
   neither, a first visit logs "Got invalid theme mode". We set ``default_mode`` to ``auto``
   (the theme's own default behaviour) unless the configuration sets it.

Loaded from ``_config.yml`` (``sphinx.local_extensions``).
"""

from __future__ import annotations


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


def setup(app):
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
