#!/usr/bin/env bash
# Resolves requirements.in in a scratch Python 3.10 environment and pins the result.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${KEFU_PYTHON:-$(ls -1 /root/.pyenv/versions/3.10.*/bin/python 2>/dev/null | tail -1)}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet --upgrade "pip<25"
"$scratch/venv/bin/pip" install -r "$root/requirements.in"
{
  echo "# Fully pinned environment for kefu (Python 3.10). Generated from requirements.in by 'make lock'."
  echo "# The setup script keys its cached virtual environment on this file's hash."
  "$scratch/venv/bin/pip" freeze --all | grep -vE "^(pip|-e |kefu)"
} > "$root/requirements.lock"
echo "requirements.lock: $(grep -c == "$root/requirements.lock") pinned packages"
