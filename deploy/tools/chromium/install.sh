#!/bin/sh
# Install Debian's Chromium headless shell for the browser tests (tests/browser.py says why not the full browser),
# driven by Playwright with its executable path: Playwright's own browser download cannot reach its CDN here.
# Idempotent and quiet.
set -eu

if command -v chromium-headless-shell >/dev/null 2>&1; then
    exit 0
fi
sh "$(dirname "$0")/../debian-package.sh" chromium-headless-shell
