# The project's entry points: install, run, test, bench.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the real Azure CLI for tests/az, pinned in tests/az/requirements.txt
AZ_VENV := .venv-az
AZ_STAMP := $(AZ_VENV)/.installed

.PHONY: install run test bench lint clean etcd az net dig

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

# $(call debian,COMMAND,PACKAGE): the Debian package that gives COMMAND, installed when missing
# (apt's lists refreshed only when the first try fails).
debian = @command -v $(1) >/dev/null || (apt-get install -y -q $(2) >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null && apt-get install -y -q $(2) >/dev/null))

# etcd-server is only needed by the etcd run of the store tests.
etcd:
	$(call debian,etcd,etcd-server)

# iproute2 (`ip`): what the pod network's tests look at namespaces and links with; nftables
# (`nft`): what Service virtual IPs and network policies are programmed with, as kube-proxy's
# nftables mode does.
net:
	$(call debian,ip,iproute2)
	$(call debian,nft,nftables)

run: install net
	$(BIN)/lks up --demo

# dig (bind9-dnsutils) checks cluster DNS's wire format in tests/net/test_dns.py.
dig:
	$(call debian,dig,bind9-dnsutils)

test: install etcd az dig net
	$(BIN)/python -m pytest -q

bench: install
	$(call debian,wrk,wrk)
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(AZ_VENV) .pytest_cache
