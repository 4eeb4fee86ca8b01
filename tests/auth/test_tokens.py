"""Every kind of bad token gets 401 with a WWW-Authenticate challenge; an OIDC issuer's JWKS is trusted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter

from services.intake.app import create_app
from shared.auth.guard import declare_permissions
from shared.auth.tokens import DEV_PRIVATE_KEY, DEV_PUBLIC_KEY, ensure_dev_keypair
from shared.settings import ServiceSettings
from tests.harness import app_in_process

ROUTE = "/patients/00000000-0000-0000-0000-000000000000"  # any protected route; 404 once let in


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "u1",
        "name": "Test User",
        "site": "north",
        "roles": ["clinician"],
        "iss": "kapnet-dev",
        "aud": "kapnet",
        "iat": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], sign: Any) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.fixture(scope="module")
async def intake(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    var_dir = tmp_path_factory.mktemp("tokens")
    settings = ServiceSettings(
        service="intake", site="north", var_dir=var_dir, kafka_bootstrap_servers="127.0.0.1:1", kafka_timeout_seconds=1
    )
    async with app_in_process(create_app(settings)) as client:
        yield client, settings.dev_key_dir


def dev_key(key_dir: Path) -> bytes:
    ensure_dev_keypair(key_dir)
    return (key_dir / DEV_PRIVATE_KEY).read_bytes()


def bad_tokens(key_dir: Path) -> dict[str, str]:
    private = dev_key(key_dir)
    public = (key_dir / DEV_PUBLIC_KEY).read_bytes()
    good = jwt.encode(claims(), private, algorithm="RS256")
    head, _payload, signature = good.split(".")
    forged_payload = b64(json.dumps(claims(roles=["site_admin"])).encode())
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "expired": jwt.encode(claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), private, "RS256"),
        "tampered": f"{head}.{forged_payload}.{signature}",
        "wrong issuer": jwt.encode(claims(iss="https://evil.example"), private, "RS256"),
        "wrong audience": jwt.encode(claims(aud="someone-else"), private, "RS256"),
        "alg none": hand_made({"alg": "none", "typ": "JWT"}, claims(), lambda _: b""),
        # HS/RS confusion: an HMAC over the token with the (public) RSA key as its secret.
        "HS256 with the public key": hand_made(
            {"alg": "HS256", "typ": "JWT"}, claims(), lambda data: hmac.new(public, data, hashlib.sha256).digest()
        ),
        "signed by another key": jwt.encode(claims(), stranger, "RS256"),
        "no expiry": jwt.encode(claims(exp=None), private, "RS256"),
        "no roles": jwt.encode(claims(roles=None), private, "RS256"),
        "unknown roles only": jwt.encode(claims(roles=["superuser"]), private, "RS256"),
        "not a JWT": "not-a-jwt",
    }


BAD_KINDS = [
    "expired",
    "tampered",
    "wrong issuer",
    "wrong audience",
    "alg none",
    "HS256 with the public key",
    "signed by another key",
    "no expiry",
    "no roles",
    "unknown roles only",
    "not a JWT",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
async def test_a_bad_token_is_401_with_a_challenge(intake: tuple[httpx.AsyncClient, Path], kind: str) -> None:
    client, key_dir = intake
    reply = await client.get(ROUTE, headers={"Authorization": f"Bearer {bad_tokens(key_dir)[kind]}"})
    assert reply.status_code == 401, reply.text
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}])
async def test_no_bearer_token_is_401(intake: tuple[httpx.AsyncClient, Path], headers: dict[str, str]) -> None:
    client, _ = intake
    reply = await client.get(ROUTE, headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")


async def test_a_good_token_gets_in(intake: tuple[httpx.AsyncClient, Path]) -> None:
    client, key_dir = intake
    token = jwt.encode(claims(), dev_key(key_dir), algorithm="RS256")
    assert (await client.get(ROUTE, headers={"Authorization": f"Bearer {token}"})).status_code == 404


def test_a_route_without_a_permission_is_refused() -> None:
    router = APIRouter()

    @router.get("/patients/{patient_id}/notes")
    async def forgotten(patient_id: str) -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="declares no permission"):
        declare_permissions(router)


class _JwksHandler(BaseHTTPRequestHandler):
    document: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def oidc_issuer() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A stand-in OIDC issuer on loopback: it serves only its JWKS, which is all a resource server reads."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    handler = type(
        "Handler", (_JwksHandler,), {"document": json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}).encode()}
    )
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()


async def test_an_oidc_deployment_trusts_the_issuers_keys_only(
    oidc_issuer: tuple[str, rsa.RSAPrivateKey], tmp_path: Path
) -> None:
    jwks_url, key = oidc_issuer
    settings = ServiceSettings(
        service="intake",
        site="north",
        var_dir=tmp_path,
        auth_mode="oidc",
        auth_jwks_url=jwks_url,
        auth_issuer="https://login.example",
        auth_audience="kapnet-api",
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_timeout_seconds=1,
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    issued = jwt.encode(claims(iss="https://login.example", aud="kapnet-api"), pem, "RS256", headers={"kid": "k1"})
    dev_signed = jwt.encode(claims(), dev_key(tmp_path / "other"), "RS256", headers={"kid": "k1"})
    async with app_in_process(create_app(settings)) as client:
        assert (await client.get(ROUTE, headers={"Authorization": f"Bearer {issued}"})).status_code == 404
        assert (await client.get(ROUTE, headers={"Authorization": f"Bearer {dev_signed}"})).status_code == 401
    assert not (tmp_path / "auth").exists(), "an OIDC deployment makes no development key"
