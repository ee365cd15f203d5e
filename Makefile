# kefu: `make run` serves the bot, `make test` runs every test. Both set up first.
SHELL := /bin/bash
VENV := .venv
export HF_HUB_OFFLINE := 1

.PHONY: setup run train test test-unit test-stories lock bench clean

setup:
	@bash scripts/setup-env.sh

run: setup
	$(VENV)/bin/kefu run

train: setup
	$(VENV)/bin/rasa train

test: setup
	@bash scripts/test.sh

test-unit: setup
	$(VENV)/bin/python -m pytest -q

# Regenerate requirements.lock from requirements.in in a scratch environment.
lock:
	@bash scripts/lock.sh

bench: setup
	$(VENV)/bin/python bench/compare_nlu.py

clean:
	rm -rf build results .pytest_cache
