#!/bin/sh
# Install Debian's Chromium for the console's browser tests (tests/console), driven by Playwright with its
# executable path: Playwright's own browser download cannot reach its CDN here. Idempotent and quiet.
set -eu

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
sh "$(dirname "$0")/../debian-package.sh" chromium
