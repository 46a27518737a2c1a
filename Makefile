# labsalt: the two commands a user needs are `make run` and `make test`.
PYTHON      ?= python3
VENV        ?= .venv
VENV_3006   ?= .venv-3006
# Latest 3008 and the 3006 LTS.  (3008.5 needs a certifi newer than PyPI mirrors
# may carry; pip then falls back to the newest 3008 it can install.)
SALT_LATEST ?= salt>=3008,<3009
SALT_LTS    ?= salt>=3006,<3007
PYTEST_ARGS ?=

.PHONY: run test test-3006 deps venv venv-3006 lint bench clean

# Predict what the workstation role would change on this machine; changes nothing.
# Needs only Salt and labsalt in the venv (not the test tools): quick on a fresh machine.
run: $(VENV)/.runtime
	$(VENV)/bin/labsalt apply --test

# Install what the tests need (apt packages, venvs) and run the whole suite,
# then the functional tests again on Salt 3006 LTS.
test: deps venv venv-3006
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) test-3006

# On the LTS the hostile-pillar cases run for the labsalt: pillar only: the
# pre-check is the same Python on both Salts, and each case costs a Salt start.
test-3006: venv-3006
	$(VENV_3006)/bin/pytest -m "functional and not lint" \
	    -k "not test_hostile_pillar_is_refused or labsalt-" $(PYTEST_ARGS)

deps:
	scripts/install-deps

$(VENV)/.runtime: setup.cfg pyproject.toml
	scripts/install-deps base
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q "$(SALT_LATEST)" -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(VENV)/bin/pip install -q "$(SALT_LATEST)" -e ".[tests]"
	touch $@

$(VENV_3006)/.installed: setup.cfg pyproject.toml
	scripts/install-deps base
	$(PYTHON) -m venv $(VENV_3006)
	$(VENV_3006)/bin/pip install -q --upgrade pip
	$(VENV_3006)/bin/pip install -q "$(SALT_LTS)" -e ".[tests]"
	touch $@

venv: $(VENV)/.installed
venv-3006: $(VENV_3006)/.installed

lint: venv
	$(VENV)/bin/pytest -m lint

bench: venv
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) $(VENV_3006) build *.egg-info
