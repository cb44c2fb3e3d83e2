# `make demo` runs the main job, `make test` the test suite; both build .venv first (nothing by hand).
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU build of PyTorch for this project's machines and CI (a local wheel there); override with TORCH_SPEC=...
# --no-compile: Python compiles only the modules it imports, on first import (the install took 2 min with
# every .py of torch compiled up front, 30 s without)
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(PY) -m pip install -q --no-compile -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/rhm info --v 8 --m 4 --s 2 --L 3 --rules balanced
	$(VENV)/bin/rhm sample --v 8 --m 4 --L 3 --n 1000 --no-replace --tree --out /tmp/rhm-demo.npz
	$(PY) -c "import numpy as np, json, rhm; f = np.load('/tmp/rhm-demo.npz'); \
	g = rhm.RHM.from_dict(json.loads(str(f['grammar']))); \
	print('parse recovers every label:', bool((g.parse(f['x']) == f['y']).all()))"
	$(VENV)/bin/rhm reproduce --quick --out report

# one pytest worker per core (pytest-xdist); --dist loadscope keeps each file's tests on one worker, so a module
# fixture (a fit) is built once; --no-loadscope-reorder hands the files out in tests/conftest.py's order, the
# longest first (xdist's default, most tests first, started the 13-test test_defaults last). The Ray cluster
# tests run after, alone: their worker nodes need a free core (on 2 cores beside a busy xdist worker, a node-loss
# test timed out waiting for its node; alone it takes 18 s)
test: $(VENV)/.installed
	$(PY) -m pytest -n auto --dist loadscope --no-loadscope-reorder --ignore=tests/test_ray_cluster.py
	$(PY) -m pytest tests/test_ray_cluster.py

# everything but the long statistical tests (@pytest.mark.slow): the inner loop, <= 2 minutes
test-fast: $(VENV)/.installed
	$(PY) -m pytest -n auto --dist loadscope --no-loadscope-reorder -m "not slow"

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/generation.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
