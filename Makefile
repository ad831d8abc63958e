# Two entry points for a new user: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench

$(BIN)/s2emu: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	@touch $@

setup: $(BIN)/s2emu

demo: setup
	$(BIN)/s2emu demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/bench_dvs_network.py
