# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint-imports test-fast test-slow test-isolation bench bench-ray clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[serve]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(PY) examples/agent_swarm.py

test: $(TEST_STAMP) lint-imports
	$(PY) -m pytest -q --ignore=tests/isolation
	tests/isolation/run_contained.sh
	# the same suite without host privileges: root only inside a user namespace of its own
	ACTORIUM_ISOTEST_USERNS=1 tests/isolation/run_contained.sh -q
	# and with bubblewrap building the namespaces, where bwrap is installed
	@if command -v bwrap >/dev/null; then ACTORIUM_SANDBOX_BACKEND=bwrap tests/isolation/run_contained.sh -q; \
	else echo "bwrap not on PATH: skipping the bubblewrap backend run"; fi

# The layers of docs/architecture.md (contracts in pyproject.toml): an upward import fails.
lint-imports: $(TEST_STAMP)
	$(VENV)/bin/lint-imports --no-cache

test-slow: $(TEST_STAMP)
	$(PY) -m pytest -q -m slow --ignore=tests/isolation; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

bench: $(STAMP)
	$(PY) benchmarks/microbenchmark.py --compare-ray

bench-ray:
	bash benchmarks/setup_ray_venv.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
