#!/bin/sh
# Install Debian's Chromium for the console's browser tests (tests/console), driven by Playwright with its
# executable path: Playwright's own browser download cannot reach its CDN here. Idempotent and quiet.
set -eu

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
