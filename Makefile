# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench sample clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aposos needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,dask,notebooks]'
	touch $(STAMP)

install: $(STAMP)

# Reduce the bundled sample night to a database and print its summary.
demo: install
	$(VENV)/bin/aposos demo --out demo_output

# The whole test suite (uses ../shared/realdata where present, skips with a reason where not).
test: install
	$(PY) -m pytest -n 2 --dist loadfile

# Benchmarks side by side with peers (SEP, photutils, SatrecArray, memory-bandwidth floor).
bench: install
	$(PY) -m pytest benchmarks -p no:xdist --benchmark-columns=min,median,max

# Regenerate data_samples/ from the simulator (deterministic seed).
sample: install
	$(VENV)/bin/aposos simulate --sample-night data_samples

clean:
	rm -rf $(VENV) demo_output .pytest_cache
