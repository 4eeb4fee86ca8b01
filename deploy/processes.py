"""Running kapnet services as real processes: used by ``make run`` and by the end-to-end tests alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deploy import local_http
from deploy.lifetime import die_with_parent
from shared.freed_memory import allocator_environment

ROOT = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """One ``python -m services.<name>`` process, configured only through ``KAPNET_*`` environment variables."""

    def __init__(self, service: str, port: int, env: dict[str, str], log_path: Path) -> None:
        self.service = service
        self.port = port
        self.env = {**os.environ, **allocator_environment(), **env, "KAPNET_SERVICE": service, "KAPNET_PORT": str(port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        where = "network" if self.env.get("KAPNET_ROLE") == "network" else self.env.get("KAPNET_SITE", "north")
        return f"{self.service}@{where}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C reaches the launcher, which stops services in order.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        return self

    def wait_healthy(self, timeout: float = 60.0) -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                if local_http.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not answer /healthz within {timeout}s:\n{self.log_tail()}")

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """A crash: the process gets no chance to finish anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
