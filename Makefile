# portal-audit: `make audit` audits a portal (the bundled reference portal by default),
# `make test` runs the project's own tests. Both set everything up first; set-up is idempotent.
PYTHON ?= python3
VENV := .venv
PROFILE ?= profiles/reference.yaml
WEAKEN ?=
ARGS ?=

.PHONY: setup browser audit test lint format clean

setup: $(VENV)/.installed node_modules/.installed browser

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser: $(VENV)/.installed
	@scripts/ensure-chromium.sh

# The exact audit status (0 compliant, 1 noncompliant, 2 inconclusive, 3 bad profile) is printed
# and kept in reports/latest/exit-status; make itself reports any non-zero status as an error.
audit: setup
	$(VENV)/bin/python -m portal.audit --profile $(PROFILE) $(if $(WEAKEN),--weaken $(WEAKEN)) $(ARGS)

test: setup
	$(VENV)/bin/python -m pytest tests $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .

clean:
	rm -rf reports/runs reports/latest
