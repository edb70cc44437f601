# Set-up and entry points. The virtual environment lives outside the clone (default
# ~/.cache/clbench/venv) so fresh clones and CI runs reuse one ~6 GB install; it is
# (re)installed only when pyproject.toml changes. Override with `make VENV=/path ...`.
VENV ?= $(HOME)/.cache/clbench/venv
PYTHON ?= python3
PY := $(VENV)/bin/python
DEPS_HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
DEPS_STAMP := $(VENV)/.clbench-deps-$(DEPS_HASH)
DEMO_RESULTS ?= results/demo

.PHONY: install demo test test-fast lint clean-demo gpu-wheels gpu-evidence

$(DEPS_STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,sweep]"
	@rm -f $(VENV)/.clbench-deps-*
	@touch $@

# Dependencies once per pyproject.toml; the package itself (editable, no deps) every
# time, so the `clbench` script always points at this clone.
install: $(DEPS_STAMP)
	@$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

# Every strategy on splitmnist (grids/demo.toml) as one sweep: as many runs at once as the
# cores allow, each run's output in <run folder>/sweep.log; then the figures and tables.
demo: install
	@rm -rf $(DEMO_RESULTS)
	@$(PY) cli.py sweep run grids/demo.toml --results $(DEMO_RESULTS)
	@$(PY) cli.py plot $(DEMO_RESULTS)
	@$(PY) cli.py compare $(DEMO_RESULTS)

# One pytest worker per core (pytest-xdist), a test module's tests on one worker so its
# shared fixtures (one tiny run reused by many tests) are built once.
PYTEST := $(PY) -m pytest -q -n auto --dist loadfile

test: install
	$(PYTEST)

test-fast: install
	$(PYTEST) -m "not slow"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean-demo:
	rm -rf $(DEMO_RESULTS)

# Wheels of what the GPU machine lacks (it reaches no registry), fetched here into .whl/.
gpu-wheels: install
	$(PY) -m tests.gpu.wheels .whl

# On the GPU machine (its own python3 with torch, the wheels carried in .whl/): throughput
# of the papers' architectures, every strategy end to end on a fixture finegrained with
# `check`, and both in-memory pipeline placements; JSON per step, within a time budget.
gpu-evidence:
	bash tests/gpu/device.sh
