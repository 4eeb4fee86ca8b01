"""Short HTTP calls from the launcher, the CLI, the benchmarks and the tests to kapnet's own services.

``httpx.get(...)`` makes a client for the call, and each client a TLS context that loads a CA bundle:
52 ms of CPU on this machine, for what is plain HTTP on loopback. In `make run` the launcher spent half its CPU on
it (py-spy), polling health and loading the demo patients, and the tests' polling loops did the same. One context,
made on first use, serves every call. Each call still has its own client, so no cookie or connection outlives it.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own default context (certifi's CA bundle, or SSL_CERT_FILE/SSL_CERT_DIR; hostname checks), made
    once: an https URL is verified as a plain ``httpx.get`` would verify it."""
    return httpx.create_ssl_context()


def request(method: str, url: str, **options: Any) -> httpx.Response:
    return httpx.request(method, url, verify=tls_context(), **options)


def get(url: str, **options: Any) -> httpx.Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> httpx.Response:
    return request("POST", url, **options)


def put(url: str, **options: Any) -> httpx.Response:
    return request("PUT", url, **options)


def client(**options: Any) -> httpx.Client:
    """A client for several calls (a browser-like session with cookies), on the one context."""
    return httpx.Client(verify=tls_context(), **options)
