# `make run` starts the whole stack on embedded defaults; `make test` runs the suite.
# Both create .venv and install the project into it first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv system-deps test-deps bench-deps bench clean

venv: $(STAMP)

$(STAMP): setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Debian packages as command:package pairs. `make run` needs redis-server; the
# browser tests also need chromium. Missing ones are installed with apt-get when
# running as root, and named otherwise.
RUN_PACKAGES := redis-server:redis-server
TEST_PACKAGES := $(RUN_PACKAGES) chromium:chromium
# `make bench` drives load with wrk and uses nginx-light as the reference proxy.
BENCH_PACKAGES := $(RUN_PACKAGES) wrk:wrk nginx:nginx-light

define install_missing
	@missing=""; for pair in $(1); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing; install them (apt-get install$$missing)" >&2; exit 1; \
	  fi; \
	fi
endef

system-deps:
	$(call install_missing,$(RUN_PACKAGES))

test-deps:
	$(call install_missing,$(TEST_PACKAGES))

bench-deps:
	$(call install_missing,$(BENCH_PACKAGES))

run: system-deps venv
	$(PY) scripts/devstack.py

test: test-deps venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Not part of `make test`: about 8 minutes on 2 cores, report in bench/report.md.
# BENCH_ARGS passes options to bench/suite.py, e.g. BENCH_ARGS='--seconds 5'.
bench: bench-deps venv
	$(PY) bench/suite.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache .hypothesis *.egg-info
