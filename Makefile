# The README's two commands: `make demo` and `make test`. Both set everything up.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: setup demo dev test lint test-js test-py test-lowest docs bench browser clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	npm ci --no-audit --no-fund
	npm run build
	$(PY) -m pip install --quiet -e ".[all]" --group dev
	$(PY) -m pip install --quiet --no-deps --group grad-cam-peer  # see pyproject.toml
	touch $(STAMP)

setup: $(STAMP)

# Browser tests drive Debian's Chromium; install it when missing (needs root or sudo).
browser:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; }

# Jupyter refuses to run as root (containers, CI) without --allow-root.
LAB := $(VENV)/bin/jupyter lab notebooks/quickstart.ipynb --no-browser --ip=127.0.0.1 \
  --port=8888 $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

demo: setup
	@echo "Opening JupyterLab on notebooks/quickstart.ipynb; open the URL printed below."
	$(LAB)

# Front-end dev loop: esbuild rebuilds ig_widget/static/ on every save and anywidget's hot
# reload (ANYWIDGET_HMR=1, with watchfiles) puts the new code and styles into the open widgets.
dev: setup
	node js/build.mjs --watch & watcher=$$!; trap 'kill $$watcher' EXIT; ANYWIDGET_HMR=1 $(LAB)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	npm run lint

test-js: setup
	npm run build
	$(PY) -m tests.js_vectors js/tests/vectors
	npm test

# Two workers (pytest-xdist), one per core; tests/conftest.py groups the tests by
# file so that a file's fixtures are made once. PYTEST_WORKERS=0 runs in one process.
# pytest exits with 5 when a selection (PYTEST_ARGS="-m ...") collects no test;
# that is not a failure, so it maps to 0 with a note.
PYTEST_WORKERS ?= 2
test-py: setup browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests selected"; rc=0; fi; exit $$rc

# The lowest versions pyproject.toml allows, tested: a fresh venv on the lowest
# Python it allows with the lowest version of every direct dependency (uv's
# --resolution lowest-direct; the extras but ray), then the test tools, with the dev
# group's pins of pytest and of the CPU torch (torch's lowest wheels on PyPI are CUDA
# builds of several GB).
# There: the demo on Keras' JAX backend, then the fast tests but the peers' parity
# (the peers want newer NumPy) and the other backends' subprocesses (minutes).
LOWEST := .venv-lowest
LOWEST_PYTHON := 3.11
TEST_PINS = $$($(PY) -c "import tomllib; print(*[r for r in tomllib.load(open('pyproject.toml', 'rb'))['dependency-groups']['dev'] if r.startswith(('torch', 'pytest'))])")
SMOKE := images, _ = igw.demo.images(); \
  widget = igw.IGWidget(igw.demo.model(), images[0], steps=8); \
  assert widget.result.target == 0 and widget.to_png("$(LOWEST)/smoke.png").read_bytes()[:4] == b"\x89PNG"; print("smoke: ok")
test-lowest: setup
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv --quiet --python $(LOWEST_PYTHON) $(LOWEST)
	$(VENV)/bin/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct \
	  -e ".[tensorflow,jax,dataset,xrai]"
	$(PY) -m pip --python $(LOWEST)/bin/python install --quiet \
	  nbformat nbclient nbconvert psutil comm watchfiles $(TEST_PINS)
	$(VENV)/bin/uv pip list --python $(LOWEST)/bin/python
	KERAS_BACKEND=jax $(LOWEST)/bin/python -c 'import ig_widget as igw; $(SMOKE)'
	$(LOWEST)/bin/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder -p no:cacheprovider \
	  -m "not browser and not slow" --ignore=tests/test_parity.py --ignore=tests/test_backends.py

# The documentation site (MkDocs Material, mkdocstrings, mkdocs-jupyter) into site/,
# offline; --strict: a broken link or an unparsable docstring fails the build.
# The notebooks in docs/notebooks/ run during the build.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test: lint test-js test-py docs

bench: setup browser
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) $(LOWEST) site .cache node_modules ig_widget/static tests/artifacts js/tests/vectors
