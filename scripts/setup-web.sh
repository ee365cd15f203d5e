#!/usr/bin/env bash
# The chat widget's browser dependencies: socket.io-client from npm (pinned by
# bot/webchat/package-lock.json) into bot/webchat/node_modules. With --browser
# (scripts/test.sh) also what the widget's browser tests need: Debian's chromium,
# and npm itself when it is missing, installed with apt when running as root.
# Idempotent: does nothing when what is installed matches the lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/bot/webchat"

apt_install() {  # apt_install PACKAGE...: only as root on Debian/Ubuntu; false otherwise
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "setup-web: apt-get install $* (for the chat widget's browser tests)"
  if [ -z "${_apt_updated:-}" ]; then apt-get update -qq; _apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ "${1:-}" = "--browser" ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm \
    || echo "setup-web: warning: npm not found and cannot be installed here; the widget's socket.io tests will fail" >&2
  command -v chromium >/dev/null 2>&1 || apt_install chromium \
    || echo "setup-web: warning: chromium not found and cannot be installed here (needs root and apt-get); browser tests will skip" >&2
fi

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
