#!/usr/bin/env bash
# The chat widget's browser dependencies (socket.io-client from npm, pinned by
# bot/webchat/package-lock.json) into bot/webchat/node_modules, and with
# --browser Debian's chromium for the widget's browser tests.
# Idempotent: does nothing when what is installed matches the lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/bot/webchat"

lock_hash="$(sha256sum "$web/package-lock.json" | cut -c1-16)"
marker="$web/node_modules/.kefu-lock-hash"
if [ "$(cat "$marker" 2>/dev/null)" != "$lock_hash" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup-web: npm ci (socket.io-client for the chat widget)"
    (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > "$marker"
  else
    echo "setup-web: warning: npm not found; the chat widget will use the REST channel only (install Node.js >= 18 and npm)" >&2
  fi
fi

if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-web: installing chromium (apt) for the widget's browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup-web: warning: chromium not found and cannot be installed here (needs root and apt-get); browser tests will skip" >&2
  fi
fi
