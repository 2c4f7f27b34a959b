# closeout: the two commands a new user needs are `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
CLOSEOUT := $(VENV)/bin/closeout
CLOSEOUT_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-sqlite test-postgres lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml package.json
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	# axe-core for the accessibility checks of the browser tests (npm's registry; not served).
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; fi
	touch $@

run: install
	$(CLOSEOUT) migrate --no-input -v0
	$(CLOSEOUT) demo
	$(CLOSEOUT) serve --host $(HOST) --port $(PORT)

# The whole suite on SQLite and on PostgreSQL, side by side (two cores), then lint beside them.
# Without a reachable PostgreSQL the second pass is skipped, unless CLOSEOUT_REQUIRE_SERVICES=1
# (CI), where it fails. Each pass has its own temporary directory and Redis cache database, so the
# passes never share state. The browser tests drive the whole stack through the embedded default
# (SQLite) once per `make test`; `make test-postgres` alone runs them on PostgreSQL too.
test: install
	$(MAKE) --no-print-directory -j3 --output-sync=target test-sqlite test-postgres lint \
		BROWSER_TESTS_RAN=sqlite

BROWSER_TESTS_RAN ?=

test-sqlite: install
	mkdir -p var
	env -u DATABASE_URL CLOSEOUT_TEST_CACHE_URL=redis://127.0.0.1:6379/10 \
		$(PY) -m pytest -q -p no:cacheprovider --basetemp=var/pytest-sqlite

test-postgres: install
	mkdir -p var
	DATABASE_URL=$(CLOSEOUT_TEST_POSTGRES_URL) CLOSEOUT_TEST_CACHE_URL=redis://127.0.0.1:6379/12 \
		CLOSEOUT_BROWSER_TESTS_RAN=$(BROWSER_TESTS_RAN) \
		$(PY) -m pytest -q -p no:cacheprovider --basetemp=var/pytest-postgres

lint: install
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy
	PYTHONPATH=src $(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format src tests bench examples
	$(VENV)/bin/ruff check --fix src tests bench examples

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
