# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test install lint bench bench-smoke bench-ingest clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Node packages of the tests (the interop verifier, axe-core), pinned by their lock files:
# installed when missing or when a lock file changes. Without npm, `make install` says how to
# get it (and installs them on the next run once it is there); those tests fail saying the same.
NODE_PACKAGES := delivery/tests/node/node_modules/.package-lock.json console/tests/node/node_modules/.package-lock.json

%/node_modules/.package-lock.json: %/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  echo "npm ci --prefix $*"; npm ci --silent --prefix $* --no-audit --no-fund; \
	else echo "npm not found: the interop and accessibility tests need Node.js and npm" \
	  "(Debian/Ubuntu: sudo apt-get install nodejs npm; or https://nodejs.org/), then run make install again"; fi

install: $(VENV)/.installed $(NODE_PACKAGES)

## make run: web server, Celery worker and scheduler together, on embedded defaults.
run: install
	$(PY) -m webhooks_project.run

## make test: the whole suite on SQLite + the embedded broker, then on PostgreSQL + Redis
## when they answer on 127.0.0.1 (always with REQUIRE_SERVICES=1: then a missing service fails).
test: install
	TEST_STORES=embedded $(PY) -m pytest $(PYTEST_ARGS)
	@if [ "$$REQUIRE_SERVICES" = 1 ] || $(PY) -c 'import socket,sys; [socket.create_connection(("127.0.0.1", p), 1).close() for p in (5432, 6379)]' 2>/dev/null; then \
	  echo "== the same suite on PostgreSQL + Redis"; TEST_STORES=services $(PY) -m pytest $(PYTEST_ARGS); \
	else echo "== PostgreSQL or Redis not answering on 127.0.0.1: the suite ran on SQLite + the embedded broker only"; fi

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m bench.run

bench-smoke: install
	$(PY) -m bench.run --smoke

bench-ingest: install
	$(PY) -m bench.ingest

clean:
	rm -rf var/ staticfiles/ .pytest_cache
