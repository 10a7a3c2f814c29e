#!/usr/bin/env bash
# CI for the VS Code extension: install what the end-to-end tests need, check the wire types
# against the server's models, then type-check (host, webview and tests apart), build, unit-test,
# package and run the end-to-end tests in a real VS Code (code-server + headless Chromium).
#   LSP_AGENT_PYTHON  interpreter with lsp_agent installed (default: ../.venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_yes=true npm_config_nodedir=/usr npm_config_unsafe_perm=true

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential pkg-config libkrb5-dev \
    libsecret-1-dev libx11-dev libxkbfile-dev ripgrep chromium fonts-liberation >/dev/null
fi

export LSP_AGENT_PYTHON="${LSP_AGENT_PYTHON:-$(cd .. && pwd)/.venv/bin/python}"
npm ci --no-audit --no-fund
npm run check:protocol
npm run typecheck
npm run build
npm run test:unit
npm run package

# code-server (VS Code 1.100) for the end-to-end tests; its ripgrep comes from the system's.
scripts/ripgrep-cache.sh
(cd test/e2e/host && npm ci --no-audit --no-fund)
timeout 1200 npm run test:e2e
