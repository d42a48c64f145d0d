# sipgw-lab: `make lab` runs the emulated lab through the suites, `make test` runs the tests.
# Both work as the very first command on a fresh machine: they create .venv/ and install
# the Debian packages they need when missing (apt-get; CI runs as root).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEB_PACKAGES := sip-tester kamailio chromium postgresql tshark poppler-utils valgrind
PYTEST_WORKERS ?= auto

.PHONY: lab test lint check-imports pytest sipcore debs clean help

help:
	@echo "make lab    run the embedded gateway and the emulated lab through all suites (reports/)"
	@echo "make test   run ruff, the import-layer check and the test suite"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --force-reinstall --no-deps pyserial-labgrid  # labgrid's serial/ over pyserial's
	touch $(STAMP)

.venv: $(STAMP)

# Debian packages the lab and the tests use: SIPp, Kamailio (benchmark peer), Chromium (page
# tests), PostgreSQL (shared results database), tshark (pcap checks), poppler-utils (pdftoppm: the
# certification PDF's pages as images in the tests), Valgrind (bench.instructions' instruction counts).
# Installed only when missing.
debs:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = "0" ]; then \
	        echo "installing Debian packages:$$missing"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else \
	        echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; \
	    fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

check-imports: $(STAMP)
	$(BIN)/lint-imports

# The SIP core (gateway/sip) and the gateway modules that handle every message above it (gateway/sipcore.py and
# the services and hooks listed in tools/compile_sip_core.py) compiled with mypyc into build/sipcore/: the same
# source, 1.2-2.6x the gateway's REGISTER rate and 1.3-1.75x its call rate in the load runs. Rebuilt (about a
# minute and a half) only when a compiled module's source changed; the gateway uses the build only while it
# matches the source (gateway/sip/_compiled.py).
sipcore: $(STAMP)
	$(BIN)/python tools/compile_sip_core.py

# The tests run the compiled build, as `make lab` does; then the tests of the compiled modules run once more on
# their Python source, the fallback wherever no C compiler is at hand.
pytest: $(STAMP) debs sipcore
	$(BIN)/pytest -n $(PYTEST_WORKERS) tests
	SIPGW_LAB_PURE_PYTHON=1 $(BIN)/pytest -n $(PYTEST_WORKERS) -q tests/gateway/sip tests/gateway/services \
	    tests/gateway/provisioning \
	    tests/gateway/test_stateless_challenge.py tests/gateway/test_mwi_refresh.py tests/gateway/test_endpoints.py \
	    tests/gateway/test_timers_loop.py tests/gateway/shards/test_registrar_workers.py

test: lint check-imports pytest

lab: $(STAMP) debs
	@$(BIN)/python tools/compile_sip_core.py || echo "make lab: going on with the SIP core's Python source"
	$(BIN)/sipgw-lab run --inventory lab_inventory.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build
