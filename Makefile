# The two commands: `make run` and `make test`. Everything else they need, they do themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# The front end: npm ci re-runs only when the lock file changes; the build (a copy out of
# node_modules) when npm ran again or the script changed. build.json is the build's last file.
NPM_STAMP := node_modules/.npm-ci-stamp
ASSETS_STAMP := triage/web/static/build.json
# Debian's Chromium for the browser tests (never a browser download by Playwright).
CHROMIUM := /usr/bin/chromium

.PHONY: install assets chromium run test lint typecheck unit bench clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed (the stamp is older than it).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

assets: $(ASSETS_STAMP)

$(NPM_STAMP): package-lock.json package.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "make assets: npm is not installed (it comes with Node.js 20 or later: e.g." \
			"apt-get install nodejs npm); it installs the GOV.UK and MoJ Frontend packages" \
			"that package-lock.json pins" >&2; \
		exit 1; }
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

$(ASSETS_STAMP): $(NPM_STAMP) triage/web/build_assets.py triage/web/styles/app.css
	$(PYTHON) -m triage.web.build_assets

chromium: $(CHROMIUM)

# Runs only when the file is missing. sudo only when not already root.
$(CHROMIUM):
	@echo "$(CHROMIUM) is missing: installing Debian's chromium package for the browser tests"
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	{ $$sudo apt-get update && $$sudo apt-get install -y chromium; } || { \
		echo "make chromium: could not install the Debian package chromium with apt-get" \
			"(the browser tests need $(CHROMIUM)): install it by hand" >&2; \
		exit 1; }
	@test -x $(CHROMIUM) || { \
		echo "make chromium: the chromium package installed but $(CHROMIUM) is still" \
			"missing" >&2; \
		exit 1; }

run: install assets
	$(BIN)/triage dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit -q

test: lint typecheck assets chromium
	$(BIN)/pytest -q

bench: install
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis node_modules triage/web/static
