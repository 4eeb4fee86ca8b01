"""Bearer JWTs: verified against an OIDC issuer's JWKS in production, or a development key pair.

The algorithm is pinned (RS256 by default): a token that names another algorithm, ``none`` included, fails,
and so does an HS256 token signed with the public key as its secret (the HS/RS confusion attack).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.permissions import Role

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
CLOCK_SKEW_SECONDS = 30
DEV_PRIVATE_KEY = "dev-signing-key.pem"
DEV_PUBLIC_KEY = "dev-signing-key.pub.pem"


class TokenRejected(Exception):
    """The token is missing, malformed, expired, forged or not for us: HTTP 401."""


@dataclass(frozen=True)
class Principal:
    sub: str
    name: str
    site: str
    roles: frozenset[Role]


class TokenVerifier:
    def __init__(
        self, *, issuer: str, audience: str, algorithm: str, public_key: Any = None, jwks_url: str | None = None
    ) -> None:
        if (public_key is None) == (jwks_url is None):
            raise ValueError("give exactly one of a public key (development) or a JWKS URL (OIDC)")
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.public_key = public_key
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"malformed token: {exc}") from None
        if header.get("alg") != self.algorithm:
            raise TokenRejected(f"token algorithm {header.get('alg')!r} is not the pinned {self.algorithm}")
        key = self.public_key
        if self.jwks is not None:
            try:
                # PyJWKClient fetches with urllib (blocking); its cache makes this rare.
                key = (await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWTError as exc:
                raise TokenRejected(f"no signing key for this token: {exc}") from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(str(exc)) from None
        return principal_from(claims)


def principal_from(claims: dict[str, Any]) -> Principal:
    name, site, roles = claims.get("name"), claims.get("site"), claims.get("roles")
    if not isinstance(name, str) or not isinstance(site, str) or not site:
        raise TokenRejected("token lacks the name or site claim")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise TokenRejected("token's roles claim is not a list of roles")
    known = {r for r in roles if r in Role.__members__}
    if not known:
        raise TokenRejected("token names no role kapnet knows")
    return Principal(sub=str(claims["sub"]), name=name, site=site, roles=frozenset(Role(r) for r in known))


def ensure_dev_keypair(key_dir: Path) -> tuple[Path, Path]:
    """The development signing key, made once per key folder (var/auth): never used in production."""
    private, public = key_dir / DEV_PRIVATE_KEY, key_dir / DEV_PUBLIC_KEY
    if private.exists() and public.exists():
        return private, public
    key_dir.mkdir(parents=True, exist_ok=True)
    # Services of one stack start together: one makes the pair, the others wait and use it.
    with (key_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (private.exists() and public.exists()):
            _write_keypair(private, public)
    return private, public


def _write_keypair(private: Path, public: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tmp = private.with_suffix(".tmp")
    tmp.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tmp.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    tmp.rename(private)  # last, so a half-made pair is made again rather than used


@functools.lru_cache(maxsize=16)
def _dev_signing_key(private: Path, modified_ns: int) -> rsa.RSAPrivateKey:
    """The loaded key, once per file version: loading checks the RSA key, which took 55 ms of every token."""
    key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"{private} holds no RSA key")
    return key


def mint_dev_token(
    key_dir: Path,
    *,
    site: str,
    roles: list[str],
    sub: str | None = None,
    name: str | None = None,
    issuer: str = "kapnet-dev",
    audience: str = "kapnet",
    hours: float = 12.0,
) -> str:
    private, _ = ensure_dev_keypair(key_dir)
    now = int(time.time())
    claims = {
        "sub": sub or f"dev-{roles[0]}-{site}",
        "name": name or f"Dev {roles[0].replace('_', ' ')} ({site})",
        "site": site,
        "roles": roles,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + int(hours * 3600),
        "jti": str(uuid.uuid4()),
    }
    key = _dev_signing_key(private, private.stat().st_mtime_ns)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "kapnet-dev"})
