# Two entry points: `make brief` (set up, run today's sample edition) and `make test`;
# `make test-fast` is the developer's inner loop (no end-to-end, server or browser tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATE ?= 2026-11-20

.PHONY: brief test test-fast lint browser clean bench chaos

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

brief: $(BIN)/.installed
	$(BIN)/briefcast subscribers import sample/subscribers.csv
	$(BIN)/briefcast run --date $(DATE)

# Chromium for the browser tests, from Debian's archive (needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "Chromium not installed: browser tests will be skipped"; }

test: $(BIN)/.installed browser
	$(BIN)/ruff check .
	$(BIN)/pytest

# Test folders on tmpfs where there is one: a SQLite commit there is no disk flush
# (the ledger commits per delivery; on disk the channel tests wait on fsync).
FAST_TMP := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm)
test-fast: $(BIN)/.installed
	TMPDIR=$(or $(FAST_TMP),$${TMPDIR:-/tmp}) $(BIN)/pytest -q -m "not slow and not server and not browser"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var/outbox var/preview

# How it scales: the real CLI against loopback stand-ins (see README, "Scale").
# make bench BENCH_ARGS="--subscribers 100000 --db sqlite postgresql"
BENCH_ARGS ?=
bench: $(BIN)/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

chaos: $(BIN)/.installed
	$(BIN)/python -m bench chaos $(CHAOS_ARGS)
