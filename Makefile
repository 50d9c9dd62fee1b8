# Two commands on a fresh machine (README):
#   make book     create .venv, install the library with the book tools, build _build/html
#                 and the JupyterLite site in _build/html/lite (make lite)
#   make test     install the test tools, run the library tests and the chapters (nbval, smoke tier)
# More:
#   make nbval      re-run every chapter in the smoke tier and compare marked outputs
#   make wheel-test build the wheel, install it in a fresh venv, run every chapter from it (smoke)
#   make browser    open every built chapter in headless Chromium and check it
#   make lite       build the JupyterLite site (chapters + library wheels) into _build/html/lite
#   make notebooks  store the book-tier outputs (those the HTML shows) in the chapters
#   make setup-cell insert/update every chapter's setup cell and the README's launch links
#   make check      all of it: test, book, browser (what CI runs)
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MICROCIRCUIT_TIER ?= book
export TQDM_DISABLE ?= 1

.PHONY: book lite test nbval wheel-test browser notebooks setup-cell check clean

# one stamp per extra: reinstalls when pyproject.toml changes
$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$*]"
	touch $@

book: $(VENV)/.installed-book $(VENV)/.installed-lite
	$(PY) scripts/book_cache_key.py
	MICROCIRCUIT_TIER=$(MICROCIRCUIT_TIER) $(VENV)/bin/jupyter-book build . -W -n --keep-going
	$(MAKE) lite

lite: $(VENV)/.installed-lite
	$(PY) scripts/build_lite.py --check

test: $(VENV)/.installed-test
	$(PY) -m pytest -q tests
	$(MAKE) nbval
	$(MAKE) wheel-test

nbval: $(VENV)/.installed-test
	MICROCIRCUIT_TIER=smoke $(PY) -m pytest -q --nbval-lax \
		--nbval-sanitize-with chapters/nbval_sanitize.cfg -p no:cacheprovider chapters/

wheel-test: $(VENV)/.installed-test
	MICROCIRCUIT_TEST_WHEEL=1 $(PY) -m pytest -q -s -p no:cacheprovider tests/test_wheel.py

browser: $(VENV)/.installed-browser
	$(PY) scripts/browser_check.py _build/html

notebooks: $(VENV)/.installed-test
	$(PY) scripts/execute_notebooks.py --auto

setup-cell: $(VENV)/.installed-test
	$(PY) scripts/setup_cell.py

check: test book browser

clean:
	rm -rf _build
