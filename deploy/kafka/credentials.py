"""make run's Kafka passwords: one per principal, generated once and kept in ``var/kafka/credentials.json`` (mode 0600).

The launcher gives each service its own through its environment (KAPNET_KAFKA_SASL_PASSWORD) and no other; the
broker stores only SCRAM's salted hashes of them. docker-compose.yml takes them from ``.env`` instead
(``python -m deploy.kafka compose-secrets``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def new_password() -> str:
    # URL-safe base64: no quote, backslash or '=' to escape in JAAS lines, properties or .env files.
    return secrets.token_urlsafe(24)


def _write_private(path: Path, text: str) -> None:
    """Written to a new file that is 0600 from its first byte, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text)
    tmp.replace(path)


def read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: expected a JSON object of principal names to passwords")
    return dict(data)


def load_or_create(path: Path, principals: Iterable[str]) -> dict[str, str]:
    """The passwords of ``principals``: those already in ``path``, and new ones for the rest (saved)."""
    stored = read(path)
    wanted = list(principals)
    missing = [name for name in wanted if name not in stored]
    if missing or (path.exists() and path.stat().st_mode & 0o077):
        stored |= {name: new_password() for name in missing}
        _write_private(path, json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return {name: stored[name] for name in wanted}


def rotate(path: Path, principal: str) -> None:
    """A new password for ``principal``; the next ``make run`` sets it on the broker and hands it to the service."""
    stored = read(path)
    if principal not in stored:
        raise KeyError(f"{principal} has no password in {path}")
    stored[principal] = new_password()
    _write_private(path, json.dumps(stored, indent=2, sort_keys=True) + "\n")
