# kefu: `make run` serves the bot, `make test` runs every test. Both set up first.
SHELL := /bin/bash
VENV := .venv
export HF_HUB_OFFLINE := 1

.PHONY: setup run train test test-unit test-stories lint lock bench bench-kb bench-throughput clean

setup:
	@bash scripts/setup-env.sh

run: setup
	$(VENV)/bin/kefu run

train: setup
	$(VENV)/bin/rasa train

test: setup
	@bash scripts/test.sh

# ruff + import-linter contracts (the floors); also the first stage of `make test`.
lint: setup
	@bash scripts/lint.sh

test-unit: setup
	$(VENV)/bin/python -m pytest -q

# Regenerate requirements.lock from requirements.in in a scratch environment.
lock:
	@bash scripts/lock.sh

bench: setup
	$(VENV)/bin/python bench/compare_nlu.py

# Knowledge base: retriever vs ResponseSelector, then the whole pipeline's answer decision
# on the model `make test` trained.
bench-kb: setup
	$(VENV)/bin/python bench/compare_kb.py
	$(VENV)/bin/python bench/kb_decision.py --model build/test/models/kefu.tar.gz

# kefu (`kefu run`), kefu on DIET and a stock `rasa init` bot under the same REST load (minutes;
# trains the two comparison models once into ~/.cache/kefu/bench-models). Model: KEFU_TEST_MODEL or models/.
bench-throughput: setup
	flock /tmp/kefu-cpu.lock $(VENV)/bin/python bench/throughput.py

clean:
	rm -rf build results .pytest_cache
