# The project's entry points: install, run, test, bench.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the real Azure CLI for tests/az, pinned in tests/az/requirements.txt
AZ_VENV := .venv-az
AZ_STAMP := $(AZ_VENV)/.installed

.PHONY: install run test bench lint clean etcd az

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>/dev/null || true
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

az: $(AZ_STAMP)

$(AZ_STAMP): tests/az/requirements.txt
	test -x $(AZ_VENV)/bin/python || $(PY) -m venv $(AZ_VENV)
	$(AZ_VENV)/bin/pip install -q --upgrade pip 2>/dev/null || true
	$(AZ_VENV)/bin/pip install -q -r tests/az/requirements.txt
	touch $(AZ_STAMP)

# etcd-server is only needed by the etcd run of the store tests.
etcd:
	@command -v etcd >/dev/null || (apt-get install -y -q etcd-server >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null && apt-get install -y -q etcd-server >/dev/null))

run: install
	$(BIN)/lks up --demo

test: install etcd az
	$(BIN)/python -m pytest -q

bench: install
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(AZ_VENV) .pytest_cache
