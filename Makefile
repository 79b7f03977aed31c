# The README's two commands: `make demo` and `make test`. Both set everything up.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: setup demo dev test lint test-js test-py bench browser clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	npm ci --no-audit --no-fund
	npm run build
	$(PY) -m pip install --quiet -e ".[all]" --group dev
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

test: lint test-js test-py

bench: setup browser
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) node_modules ig_widget/static tests/artifacts js/tests/vectors
