#!/bin/sh
# Install Debian's PostgreSQL server binaries (for deploy/postgres/launcher.py) unless some version is
# already there. Idempotent and quiet. Note: the Debian package also creates a "main" cluster on port
# 5432 (started only where services may start); the launcher never uses it and picks its own ports.
set -eu

for ctl in /usr/lib/postgresql/*/bin/pg_ctl; do
    if [ -x "$ctl" ]; then
        exit 0
    fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
# env rather than export: sudo drops the caller's environment.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
