# Two commands do everything on a fresh machine:
#   make demo   create the virtualenv, install fervid, run the demo on built-in generated data
#   make test   same set-up, then the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Dependencies are reinstalled only when pyproject.toml changes (the stamp holds its hash);
# the package itself is always re-linked to this checkout, which is cheap.
DEPS_HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
STAMP := $(VENV)/.fervid-deps-$(DEPS_HASH)

.PHONY: venv demo test lint bench clean browser

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.fervid-deps-*
	@touch $(STAMP)

venv: $(STAMP)
	$(PY) -m pip install --quiet --no-deps -e .

demo: venv
	$(VENV)/bin/fervid demo --out runs/demo

test: venv browser
	$(PY) -m pytest -q

# The HTML report test renders in headless Chromium (Debian's package); installed here when
# missing and possible (root with apt-get), otherwise that one test skips with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will skip"

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks scripts

bench: venv
	$(PY) benchmarks/loso_speed.py

clean:
	rm -rf runs/demo .pytest_cache
