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

sh "$(dirname "$0")/../tools/debian-package.sh" postgresql
