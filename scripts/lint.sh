#!/usr/bin/env bash
# Code health, first stage of `make test`: ruff (lint) and import-linter (the floors
# and contracts in pyproject.toml). Fails on the first broken rule.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
.venv/bin/ruff check --quiet .
echo "lint: ruff clean"
# Quiet unless a contract breaks; then the full report says which import crosses which floor.
if ! out="$(.venv/bin/lint-imports --no-cache 2>&1)"; then
  echo "$out" >&2
  echo "lint: import contracts BROKEN (see above; the floors are described in README.md)" >&2
  exit 1
fi
echo "lint: import contracts kept ($(grep -c '^id = ' pyproject.toml) contracts)"
# Project imports inside functions: only where they keep start-up light (listed, at most 15).
.venv/bin/python scripts/local_imports.py --budget 15
