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

# The whole suite on SQLite, then on PostgreSQL. Without a reachable PostgreSQL the second pass
# is skipped, unless CLOSEOUT_REQUIRE_SERVICES=1 (CI), where it fails.
test: install test-sqlite test-postgres lint

test-sqlite: install
	env -u DATABASE_URL $(PY) -m pytest -q -p no:cacheprovider

test-postgres: install
	DATABASE_URL=$(CLOSEOUT_TEST_POSTGRES_URL) $(PY) -m pytest -q -p no:cacheprovider

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
