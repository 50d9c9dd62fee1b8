# Two commands on a fresh machine (README):
#   make book     create .venv, install the library with the book tools, build _build/html
#   make test     install the test tools, run the library tests and the chapters (nbval, smoke tier)
# More:
#   make nbval      re-run every chapter in the smoke tier and compare marked outputs
#   make wheel-test build the wheel, install it in a fresh venv, run every chapter from it (smoke)
#   make browser    open every built chapter in headless Chromium and check it
#   make notebooks  re-execute the chapters in the smoke tier so stored outputs match nbval
#   make check      all of it: test, book, browser (what CI runs)
PYTHON_SYSTEM ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MICROCIRCUIT_TIER ?= book
export TQDM_DISABLE ?= 1

.PHONY: book test nbval wheel-test browser notebooks check clean

# one stamp per extra: reinstalls when pyproject.toml changes
$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$*]"
	touch $@

book: $(VENV)/.installed-book
	$(PY) scripts/book_cache_key.py
	MICROCIRCUIT_TIER=$(MICROCIRCUIT_TIER) $(VENV)/bin/jupyter-book build . -W -n --keep-going

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
	$(PY) scripts/execute_notebooks.py

check: test book browser

clean:
	rm -rf _build
