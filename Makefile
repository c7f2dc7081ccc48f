# The project's entry points: install, run, test, bench.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint clean etcd

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>/dev/null || true
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# etcd-server is only needed by the etcd run of the store tests.
etcd:
	@command -v etcd >/dev/null || (apt-get install -y -q etcd-server >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null && apt-get install -y -q etcd-server >/dev/null))

run: install
	$(BIN)/lks up --demo

test: install etcd
	$(BIN)/python -m pytest -q

bench: install
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
