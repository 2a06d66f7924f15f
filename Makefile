# portal-audit: `make audit` audits a portal (the bundled reference portal by default),
# `make test` runs the project's own tests. Both set everything up first; set-up is idempotent.
PYTHON ?= python3
VENV := .venv
PROFILE ?= profiles/reference.yaml
WEAKEN ?=
ARGS ?=
TYPED := portal scanners steps tests reference_portal benchmarks tools targets setup.py

.PHONY: setup browser audit test targets test-targets lint format clean

setup: $(VENV)/.installed node_modules/.installed browser

# The pinned requirements first (runtime and, for lint, development), then this project itself
# (editable, no further dependencies), which registers the audit plugin with pytest through its
# pytest11 entry point and installs the portal-audit command.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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

# The project's own tests; the audits of real third-party portals are `make test-targets`.
test: setup
	$(VENV)/bin/python -m pytest tests -m "not third_party" $(ARGS)

# Third-party portals audited as a hospital would (targets/): a Flask-Security portal in its own
# virtualenv, and an OpenID Connect provider (node oidc-provider) for the reference portal's SSO.
targets: setup .venv-flask-security/.requirements.sha256 targets/oidc_provider/node_modules/.installed

.venv-flask-security/.requirements.sha256: targets/flask_security/requirements.txt
	PYTHON=$(PYTHON) sh targets/flask_security/setup.sh

targets/oidc_provider/node_modules/.installed: targets/oidc_provider/package.json targets/oidc_provider/package-lock.json
	npm ci --prefix targets/oidc_provider --no-audit --no-fund --loglevel=error
	touch $@

test-targets: targets
	$(VENV)/bin/python -m pytest tests -m third_party $(ARGS)

# Every Python directory is linted, format-checked and type-checked.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(TYPED)

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .

clean:
	rm -rf reports/runs reports/latest
