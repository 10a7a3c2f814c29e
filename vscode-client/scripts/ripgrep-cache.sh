#!/usr/bin/env bash
# @vscode/ripgrep (a code-server dependency) downloads rg from GitHub at install time unless its
# cache already holds the archive. Fill the cache from the system's ripgrep (same 13.0.0).
set -euo pipefail
rg_bin=$(command -v rg) || { echo "ripgrep-cache: install ripgrep first" >&2; exit 1; }
cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
archive="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
[ -f "$archive" ] && exit 0
mkdir -p "$cache"
work=$(mktemp -d)
cp "$rg_bin" "$work/rg"
tar -czf "$archive" -C "$work" rg
rm -rf "$work"
