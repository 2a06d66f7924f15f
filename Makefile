# portal-audit: `make audit` audits a portal (the bundled reference portal by default),
# `make test` runs the project's own tests. Both set everything up first; set-up is idempotent.
PYTHON ?= python3
VENV := .venv
PROFILE ?= profiles/reference.yaml
WEAKEN ?=
ARGS ?=
TYPED := portal scanners steps tests reference_portal benchmarks tools

.PHONY: setup browser audit test lint format clean

setup: $(VENV)/.installed node_modules/.installed browser

# The pinned requirements first, then this project itself (editable, no further dependencies),
# which registers the audit plugin with pytest through its pytest11 entry point.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
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

# Every Python directory is linted, format-checked and type-checked.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(TYPED)

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .

clean:
	rm -rf reports/runs reports/latest
